"""Build the static HTML report: leaderboard, plots, per-benchmark/per-model views, run pages.

The site is self-contained (open ``index.html`` from disk, or serve the folder anywhere): one CSS
and one JS file of our own, PNG/SVG plots, copied evidence files. No CDN, no server, no inline
script. Every piece of text that comes from a run (names, errors, traces, metrics) is
HTML-escaped here, once, by :func:`esc`; agent traces are hostile input.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..agents.trace import Trace, TraceStep, load_trace, parse_trace
from ..domain import PHASES
from ..results.layout import RunPaths as run_paths_of
from .data import ReportData, RunEntry, load_report_data
from .plots import draw_all

MAX_TEXT = 20_000  # characters of one trace field shown before it is cut (the rest is noted)
MAX_EVIDENCE_BYTES = 5_000_000
MAX_RAW_TRACE_BYTES = 50 * 2**20
SITE_MARKER = ".ptb-report"  # marks a folder as ours, so a rebuild may clear its old pages  # raw agent output parsed on the fly when there is no trace.json  # evidence files larger than this are linked by path, not copied
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# A strict policy: our own script and style files only; nothing inline can run even if some
# text escaped escaping. ``file:`` is listed for browsers that give every local file its own
# origin (so that ``'self'`` alone would block the site's own files when opened from disk).
CSP = ("default-src 'none'; script-src 'self' file:; style-src 'self' file:; "
       "img-src 'self' file: data:; base-uri 'none'; form-action 'none'")


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _safe_name(text: str) -> str:
    return _SAFE.sub("-", text).strip("-.") or "x"


def fmt_score(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}:{minutes % 60:02d} h"


def _sort_attr(value: float | int | None) -> str:
    return "" if value is None else repr(float(value))


def _td_num(value: float | int | None, text: str, extra: str = "") -> str:
    cls = "num" + (f" {extra}" if extra else "")
    return f'<td class="{cls}" data-sort="{esc(_sort_attr(value))}">{esc(text)}</td>'


def _badge(status: str) -> str:
    return f'<span class="badge {esc(_safe_name(status))}">{esc(status)}</span>'


@dataclass
class SiteResult:
    """What :func:`build_site` wrote."""

    out_dir: Path
    pages: list[Path] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_runs: int = 0
    n_agents: int = 0

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


class _Site:
    def __init__(self, data: ReportData, out: Path) -> None:
        self.data = data
        self.out = out
        self.result = SiteResult(out_dir=out, n_runs=len(data.runs), n_agents=len(data.agents))
        self.problems: list[str] = list(data.problems)
        self.run_pages: dict[int, str] = {}  # id(RunEntry) -> site-relative path of its page
        used: set[str] = set()
        for entry in [*data.runs, *data.superseded]:
            # The page mirrors the run folder's place under the results root.
            parts = [_safe_name(p) for p in Path(entry.path).parts if p not in ("", ".", "..")]
            rel = "runs/" + "/".join(parts or [_safe_name(entry.record.run_id)])
            base, n = rel, 2
            while rel in used:
                rel, n = f"{base}-{n}", n + 1
            used.add(rel)
            self.run_pages[id(entry)] = rel + "/index.html"

    # ------------------------------------------------------------------ page shell

    def page(self, rel_path: str, title: str, body: str) -> None:
        depth = rel_path.count("/")
        up = "../" * depth
        nav = "".join(
            f'<a href="{up}{href}">{esc(label)}</a>'
            for href, label in (("index.html", "Leaderboard"), ("benchmarks.html", "Benchmarks"),
                                ("models.html", "Models"), ("runs.html", "Runs"))
        )
        doc = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · PostTrainBench report</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{up}assets/report.css">
</head>
<body>
<header class="site"><span class="brand">PostTrainBench</span>{nav}</header>
<main>
{body}
<p class="note">Generated {esc(datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))} by ptb {esc(__version__)} from <code>{esc(self.data.root)}</code>.</p>
</main>
<script src="{up}assets/report.js"></script>
</body>
</html>
"""
        path = self.out / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc, encoding="utf-8")
        self.result.pages.append(path)

    def run_link(self, entry: RunEntry, from_rel: str, text: str) -> str:
        up = "../" * from_rel.count("/")
        return f'<a href="{esc(up + quote(self.run_pages[id(entry)]))}">{esc(text)}</a>'

    # ------------------------------------------------------------------ leaderboard

    def index(self, plots: dict[str, str]) -> None:
        d = self.data
        benches = d.benchmarks
        head = ["#", "agent", "score", "± std", "repeats", "runs", "verified", "fallback cells",
                "norm. gain", "time used / run", "tokens", "cost (USD)", *benches, "missing cells"]
        types = ["num", "text", *["num"] * (len(head) - 2)]
        ths = "".join(
            f'<th data-type="{t}"{" class=" + chr(34) + "num" + chr(34) if t == "num" else ""}>{esc(h)}</th>'
            for h, t in zip(head, types)
        )
        trs = []
        for row in d.agents:
            verified = d.verified(row.label)
            budget = f" ({row.time_pct_of_budget:.0f}%)" if row.time_pct_of_budget is not None else ""
            tokens = (None if row.input_tokens is None or row.output_tokens is None
                      else row.input_tokens + row.output_tokens)
            missing_title = "; ".join(f"repeat {r}: {m} / {b}" for r, m, b in row.missing[:20])
            cells = [
                _td_num(row.rank, str(row.rank)),
                f'<td class="agent" data-sort="{esc(row.label)}"><a href="runs.html#q={esc(quote(row.label, safe=""))}" '
                f'title="this agent\'s runs"><strong>{esc(row.agent)}</strong>{esc(row.label[len(row.agent):])}</a></td>',
                _td_num(row.score, fmt_score(row.score), "score"),
                _td_num(row.std, "—" if row.std is None else f"± {row.std:.3f}"),
                _td_num(row.n_repeats, str(row.n_repeats)),
                _td_num(row.n_runs, str(row.n_runs)),
                _td_num(verified, f"{verified} / {row.n_runs}"),
                _td_num(row.n_fallback, str(row.n_fallback), "fb" if row.n_fallback else ""),
                _td_num(row.normalised_gain, fmt_score(row.normalised_gain)),
                _td_num(row.mean_time_s, fmt_duration(row.mean_time_s) + budget),
                _td_num(tokens, "—" if tokens is None else f"{tokens:,}"),
                _td_num(row.cost_usd, "—" if row.cost_usd is None else f"{row.cost_usd:.2f}"),
                *(_td_num(row.per_benchmark.get(b), fmt_score(row.per_benchmark.get(b))) for b in benches),
                f'<td class="num" data-sort="{len(row.missing)}" title="{esc(missing_title)}">{len(row.missing)}</td>',
            ]
            trs.append(f'<tr data-agent="{esc(row.label)}">{"".join(cells)}</tr>')
        table = (f'<div class="table-wrap"><table id="leaderboard" class="sortable"><thead><tr>{ths}</tr></thead>'
                 f'<tbody>{"".join(trs)}</tbody></table></div>') if d.agents else (
            '<p class="failure">No agent could be ranked (see the problems below).</p>')
        weights = ", ".join(f"{esc(b)} {w:.3f}" for b, w in d.weights.items()) or "—"
        weights += f" ({esc(d.report.weights_source)})"
        figures = "".join(
            f'<figure><a href="plots/{stem}.svg"><img id="plot-{stem}" src="plots/{stem}.png" '
            f'alt="{esc(caption)}"></a><figcaption>{esc(caption)} (<a href="plots/{stem}.svg">SVG</a>)</figcaption></figure>'
            for stem, caption in plots.items()
        )
        body = f"""<h1>Leaderboard</h1>
<p class="note">{len(d.agents)} agents, {len(d.runs)} runs, {len(benches)} benchmarks, {len(d.models)} base models.
Agent score = Σ<sub>b</sub> w<sub>b</sub> · mean over base models of the cell score; mean ± sample std over repeats.
A cell whose run failed, or whose verification failed or did not run, gets the base model's zero-shot
score (a <em>fallback</em> cell; its raw score is kept on the run page). Normalised gain:
(score − base) / (instruct − base), 0 = base model, 1 = its official instruct model.
Only the latest run of each cell counts (superseded runs: {len(d.superseded)}, listed under Runs).
Click a column header to sort.</p>
<p class="note">Benchmark weights: {weights}</p>
{table}
<h2>Plots</h2>
{figures or '<p class="note">No plots (see problems).</p>'}
{self.problems_html()}"""
        self.page("index.html", "Leaderboard", body)

    def problems_html(self) -> str:
        if not self.problems:
            return '<h2 id="problems">Problems</h2><p class="note">None: every run folder was read.</p>'
        items = "".join(f"<li>{esc(p)}</li>" for p in self.problems)
        return (f'<h2 id="problems">Problems ({len(self.problems)})</h2>'
                f'<p class="note">These were left out of the numbers above; the rest aggregates.</p>'
                f'<ul class="problems">{items}</ul>')

    # ------------------------------------------------------------------ grouped views

    def _cell_td(self, label: str, model: str, bench: str, summary, from_rel: str) -> str:  # noqa: ANN001
        runs = [r for r in self.data.agent_runs(label)
                if r.cell is not None and r.cell.base_model == model and r.cell.benchmark == bench]
        if not runs:
            return '<td class="num" data-sort="">—</td>'
        mean = summary.mean.number(model, bench) if summary else None
        std = summary.std.number(model, bench) if summary and summary.std else None
        n_fb = sum(r.cell.fallback for r in runs)
        flags = sorted({f for r in runs for f in r.cell.flags})
        text = fmt_score(mean) + (f" ± {std:.3f}" if std is not None else "")
        links = " ".join(self.run_link(r, from_rel, f"r{r.cell.repeat}") for r in
                         sorted(runs, key=lambda r: r.cell.repeat))
        fb = f' <span class="fb" title="fallback cells">{n_fb} fb</span>' if n_fb else ""
        fl = f' <span class="fb" title="flags">{esc(" ".join(flags))}</span>' if flags else ""
        return (f'<td class="num" data-sort="{esc(_sort_attr(mean))}">{esc(text)}{fb}{fl}'
                f'<br><small>{links}</small></td>')

    def _has(self, label: str | None = None, model: str | None = None, bench: str | None = None) -> bool:
        return any((label is None or e.label == label) and (model is None or e.cell.base_model == model)
                   and (bench is None or e.cell.benchmark == bench) for e in self.data.runs if e.cell)

    def benchmarks_page(self) -> None:
        d = self.data
        parts = ["<h1>Per-benchmark view</h1>",
                 '<p class="note">Cell score per agent and base model: mean ± sample std over repeats '
                 '(fallback cells count with the base model\'s zero-shot score; <span class="fb">fb</span> '
                 'counts them, letters are flags). Links open each run.</p>']
        summaries = {label: d.cell_summary(label) for label in d.labels}
        for bench in d.benchmarks:
            models = [m for m in d.models if self._has(model=m, bench=bench)]
            ths = '<th data-type="text">agent</th>' + "".join(
                f'<th data-type="num" class="num">{esc(m)}</th>' for m in models)
            trs = []
            for label in d.labels:
                if not self._has(label=label, bench=bench):
                    continue
                tds = "".join(self._cell_td(label, m, bench, summaries[label], "benchmarks.html") for m in models)
                trs.append(f'<tr><td>{esc(label)}</td>{tds}</tr>')
            parts.append(
                f'<h2 id="bench-{esc(_safe_name(bench))}">{esc(bench)}</h2>'
                f'<p class="note">weight {esc(fmt_score(d.weights.get(bench)))}</p>'
                f'<table class="sortable bench-table"><thead><tr>{ths}</tr></thead><tbody>{"".join(trs)}</tbody></table>')
        parts.append('<figure><img id="plot-heatmap-b" src="plots/heatmap.png" alt="per-benchmark heatmap"></figure>'
                     if (self.out / "plots" / "heatmap.png").exists() else "")
        self.page("benchmarks.html", "Benchmarks", "\n".join(parts))

    def models_page(self) -> None:
        d = self.data
        parts = ["<h1>Per-model view</h1>",
                 '<p class="note">For each base model: the agent\'s weighted score on that model alone '
                 '(Σ<sub>b</sub> w<sub>b</sub> · mean over repeats), then each cell, mean ± sample std over repeats.</p>']
        per_model = {a.label: a.per_model for a in d.agents}
        summaries = {label: d.cell_summary(label) for label in d.labels}
        for model in d.models:
            benches = [b for b in d.benchmarks if self._has(model=model, bench=b)]
            ths = ('<th data-type="text">agent</th><th data-type="num" class="num">weighted score</th>'
                   + "".join(f'<th data-type="num" class="num">{esc(b)}</th>' for b in benches))
            trs = []
            for label in d.labels:
                if not self._has(label=label, model=model):
                    continue
                score = per_model.get(label, {}).get(model)
                tds = "".join(self._cell_td(label, model, b, summaries[label], "models.html") for b in benches)
                trs.append(f'<tr><td>{esc(label)}</td>{_td_num(score, fmt_score(score))}{tds}</tr>')
            parts.append(f'<h2 id="model-{esc(_safe_name(model))}">{esc(model)}</h2>'
                         f'<table class="sortable model-table"><thead><tr>{ths}</tr></thead><tbody>{"".join(trs)}</tbody></table>')
        self.page("models.html", "Models", "\n".join(parts))

    def _runs_table(self, entries: list[RunEntry], table_id: str) -> str:
        head = ["agent", "benchmark", "base model", "repeat", "status", "verdict", "raw score",
                "cell score", "norm. gain", "fallback", "flags", "time used", "tokens", "cost (USD)", "failure"]
        numeric = {"repeat", "raw score", "cell score", "norm. gain", "time used", "tokens", "cost (USD)"}
        ths = "".join(f'<th data-type="{"num" if h in numeric else "text"}"'
                      f'{" class=" + chr(34) + "num" + chr(34) if h in numeric else ""}>{esc(h)}</th>' for h in head)
        trs = []
        for e in sorted(entries, key=lambda e: (e.label, e.record.spec.benchmark, e.record.spec.base_model,
                                                e.record.spec.repeat, e.record.created_at)):
            rec, cell, spec = e.record, e.cell, e.record.spec
            tokens = rec.usage.get("input_tokens", 0) + rec.usage.get("output_tokens", 0) if rec.usage else None
            cost = rec.usage.get("cost_usd") if rec.usage else None
            status = "done" if rec.completed else "incomplete"
            verdict = rec.final_verdict.value if rec.final_verdict else "missing"
            fallback = (f'{_badge("fallback")} {esc(cell.reason or "")}' if cell and cell.fallback else "")
            trs.append("<tr>" + "".join([
                f"<td>{self.run_link(e, 'runs.html', e.label)}</td>",
                f"<td>{esc(spec.benchmark)}</td><td>{esc(spec.base_model)}</td>",
                _td_num(spec.repeat, str(spec.repeat)),
                f'<td data-sort="{esc(status)}">{_badge(status)}</td>',
                f'<td data-sort="{esc(verdict)}">{_badge(verdict)}</td>',
                _td_num(cell.raw if cell else None, fmt_score(cell.raw if cell else None)),
                _td_num(cell.score if cell else None, fmt_score(cell.score if cell else None)),
                _td_num(cell.normalised_gain if cell else None, fmt_score(cell.normalised_gain if cell else None)),
                f'<td data-sort="{int(bool(cell and cell.fallback))}">{fallback}</td>',
                f"<td>{esc(' '.join(cell.flags) if cell else '')}</td>",
                _td_num(rec.time_used_s, fmt_duration(rec.time_used_s)),
                _td_num(tokens, "—" if tokens is None else f"{int(tokens):,}"),
                _td_num(cost, "—" if cost is None else f"{cost:.2f}"),
                f"<td>{esc(rec.failure or '')}</td>",
            ]) + "</tr>")
        return (f'<div class="table-wrap"><table id="{table_id}" class="sortable"><thead><tr>{ths}</tr></thead>'
                f'<tbody>{"".join(trs)}</tbody></table></div>')

    def runs_page(self) -> None:
        body = (f"<h1>Runs ({len(self.data.runs)})</h1>"
                '<p class="trace-tools"><input type="search" id="runs-filter" data-filter="#runs tbody tr, '
                '#superseded-runs tbody tr" data-count="runs-count" placeholder="Filter runs (agent, benchmark, '
                'model, failure…)" aria-label="Filter runs"> <span id="runs-count" class="muted"></span></p>'
                + self._runs_table(self.data.runs, "runs"))
        if self.data.superseded:
            body += (f'<h2 id="superseded">Superseded runs ({len(self.data.superseded)})</h2>'
                     '<p class="note">Older runs of a cell that has a later run; the leaderboard counts '
                     'only the latest.</p>' + self._runs_table(self.data.superseded, "superseded-runs"))
        self.page("runs.html", "Runs", body + self.problems_html())

    # ------------------------------------------------------------------ one run

    def _copy_evidence(self, entry: RunEntry, page_dir: Path, ref: str) -> str:
        """Link to a copy of one evidence file (only files inside the run folder are copied)."""
        folder = entry.folder
        ref_path = Path(ref)
        candidates = [ref_path] if ref_path.is_absolute() else [folder / ref_path]
        candidates.append(folder / "evidence" / ref_path.name)  # the run folder was moved
        root = folder.resolve()
        for cand in candidates:
            try:
                real = cand.resolve()
                real.relative_to(root)
            except (OSError, ValueError):
                continue
            if not real.is_file():
                continue
            if real.stat().st_size > MAX_EVIDENCE_BYTES:
                return f"<code>{esc(real)}</code> <span class=\"muted\">(too large to copy)</span>"
            name = _safe_name(real.name)
            dest = page_dir / "evidence" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, dest)
            return f'<a class="evidence" href="evidence/{esc(quote(name))}">{esc(real.name)}</a>'
        return f"<code>{esc(ref)}</code> <span class=\"muted\">(not found in the run folder)</span>"

    def run_page(self, entry: RunEntry) -> None:
        rec, cell = entry.record, entry.cell
        rel = self.run_pages[id(entry)]
        page_dir = (self.out / rel).parent
        spec = rec.spec.model_dump(mode="json")
        spec_dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in spec.items())
        if cell is not None:
            scores = [
                ("raw score", fmt_score(cell.raw, 4)),
                ("cell score", fmt_score(cell.score, 4)
                 + (" (fallback: " + (cell.reason or "") + ")" if cell.fallback else "")),
                ("normalised gain", fmt_score(cell.normalised_gain, 4)),
                ("flags", " ".join(cell.flags) or "none"),
            ]
        else:
            scores = [("leaderboard", "superseded: a later run of the same cell counts instead")]
        outcome = [
            ("run id", rec.run_id),
            ("folder", entry.path),
            ("created", rec.created_at.isoformat(timespec="seconds")),
            ("completed", "yes" if rec.completed else "no"),
            ("final verdict", rec.final_verdict.value if rec.final_verdict else "missing"),
            *scores,
            ("time used", fmt_duration(rec.time_used_s)
             + (f" of {rec.spec.hours:g} h" if rec.time_used_s is not None else "")),
            ("exit code", "—" if rec.exit_code is None else rec.exit_code),
            ("timed out", "yes" if rec.timed_out else "no"),
            ("tokens in / out", f"{int(rec.usage.get('input_tokens', 0)):,} / {int(rec.usage.get('output_tokens', 0)):,}"
             if rec.usage else "—"),
            ("cost (USD)", f"{rec.usage.get('cost_usd', 0.0):.4f}" if rec.usage else "—"),
            ("steps / tool calls", f"{int(rec.usage.get('steps', 0))} / {int(rec.usage.get('tool_calls', 0))}"
             if rec.usage else "—"),
            *([("imported from", json.dumps(rec.imported_from, default=str))] if rec.imported_from else []),
        ]
        outcome_dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in outcome)
        failure = (f'<div class="failure" id="failure"><strong>Failure:</strong> {esc(rec.failure)}</div>'
                   if rec.failure else "")

        phase_rows = []
        for name in [*PHASES, *[p for p in rec.phases if p not in PHASES]]:
            st = rec.phases.get(name)
            if st is None:
                continue
            dur = ((st.finished_at - st.started_at).total_seconds()
                   if st.started_at and st.finished_at else None)
            details = (f"<details><summary>details</summary><pre>{esc(json.dumps(st.details, indent=2, default=str))}</pre></details>"
                       if st.details else "")
            phase_rows.append(
                f"<tr><td>{esc(name)}</td><td>{_badge(st.status)}</td>"
                f"<td>{esc(st.started_at.isoformat(timespec='seconds') if st.started_at else '—')}</td>"
                f"<td>{esc(st.finished_at.isoformat(timespec='seconds') if st.finished_at else '—')}</td>"
                f'<td class="num">{esc("—" if dur is None else f"{dur:.1f} s")}</td>'
                f"<td>{'<pre>' + esc(st.error) + '</pre>' if st.error else ''}{details}</td></tr>")
        phases = ('<table id="phases"><thead><tr><th>phase</th><th>status</th><th>started</th>'
                  '<th>finished</th><th class="num">duration</th><th>error / details</th></tr></thead>'
                  f'<tbody>{"".join(phase_rows)}</tbody></table>')

        v_rows = []
        gates_seen = set()
        for v in rec.verdicts:
            gates_seen.add(v.gate)
            links = "<br>".join(self._copy_evidence(entry, page_dir, ev) for ev in v.evidence) or "—"
            required = "yes" if v.gate in rec.required_gates else "no"
            v_rows.append(f"<tr><td>{esc(v.gate)}</td><td>{_badge(v.status.value)}</td><td>{required}</td>"
                          f"<td>{esc(v.summary)}</td><td>{links}</td></tr>")
        for gate in rec.required_gates:
            if gate not in gates_seen:  # missing is never clean: say so
                v_rows.append(f"<tr><td>{esc(gate)}</td><td>{_badge('missing')}</td><td>yes</td>"
                              f"<td>required gate has no verdict</td><td>—</td></tr>")
        verdicts = ('<table id="verdicts"><thead><tr><th>gate</th><th>status</th><th>required</th>'
                    f'<th>summary</th><th>evidence</th></tr></thead><tbody>{"".join(v_rows)}</tbody></table>'
                    if v_rows else '<p class="note">No verdicts recorded.</p>')

        metrics = self._metrics_html(rec.metrics)
        trace_html = self._trace_section(entry)
        spec_ = rec.spec
        title = f"{entry.label} · {spec_.benchmark} · {spec_.base_model} · repeat {spec_.repeat}"
        banner = ('<p class="failure" id="superseded">Superseded: the leaderboard counts a later run of '
                  'this cell.</p>' if entry.superseded else "")
        body = f"""<h1>{esc(title)}</h1>
{banner}{failure}
<h2>Outcome</h2><dl class="kv" id="outcome">{outcome_dl}</dl>
<h2>Spec</h2><dl class="kv" id="spec">{spec_dl}</dl>
<h2>Phases</h2>{phases}
<h2>Verdicts</h2>{verdicts}
<h2>Metrics</h2>{metrics}
{self._files_html(entry)}
{trace_html}"""
        self.page(rel, title, body)

    @staticmethod
    def _files_html(entry: RunEntry) -> str:
        """The run folder's small text files (prompt, judgements, stderr), escaped and clipped."""
        paths = run_paths_of(entry.folder)
        items = []
        for label, path in (("prompt", paths.prompt), ("time taken", paths.time_taken),
                            ("contamination judgement", paths.contamination_judgement),
                            ("disallowed-model judgement", paths.disallowed_model_judgement),
                            ("agent stderr", paths.solve_err)):
            if not path.is_file():
                continue
            try:
                with path.open("rb") as fh:  # read a bounded head: these files can be huge
                    raw = fh.read(MAX_TEXT + 1)
            except OSError as exc:
                items.append(f"<li>{esc(path.name)}: unreadable ({esc(exc)})</li>")
                continue
            text = raw[:MAX_TEXT].decode("utf-8", errors="replace")
            more = " (first part)" if len(raw) > MAX_TEXT else ""
            items.append(f"<details class=\"file\"><summary>{esc(label)} <code>{esc(path.name)}</code>{more}</summary>"
                         f"<pre>{esc(text)}</pre></details>")
        if not items:
            return ""
        return f'<h2>Files</h2><div id="files">{"".join(items)}</div>'

    @staticmethod
    def _metrics_html(metrics: dict[str, Any]) -> str:
        if not metrics:
            return '<p class="note">No metrics recorded.</p>'
        items = []
        for k, v in metrics.items():
            if isinstance(v, (dict, list)):
                val = f"<details><summary>{esc(type(v).__name__)} ({len(v)})</summary><pre>{esc(_clip(json.dumps(v, indent=2, default=str)))}</pre></details>"
            else:
                val = esc(v)
            items.append(f"<dt>{esc(k)}</dt><dd>{val}</dd>")
        return f'<dl class="kv" id="metrics">{"".join(items)}</dl>'

    def _trace_section(self, entry: RunEntry) -> str:
        paths = run_paths_of(entry.folder)
        path = paths.trace_json
        note = ""
        if not path.is_file():
            raw = paths.solve_out
            # Imported upstream runs (and runs whose collect phase did not finish) have only the
            # raw agent output: parse it with the agent's trace parser (plain log lines if unknown).
            if not raw.is_file():
                return '<h2>Trace</h2><p class="note">No <code>trace.json</code> or <code>solve_out.txt</code> in the run folder.</p>'
            if raw.stat().st_size > MAX_RAW_TRACE_BYTES:
                return (f'<h2>Trace</h2><p class="note">No <code>trace.json</code>; <code>solve_out.txt</code> is '
                        f'{raw.stat().st_size / 2**20:.0f} MiB, too large to render.</p>')
            try:
                trace = parse_trace(entry.record.spec.agent, raw)
            except Exception as exc:  # noqa: BLE001 - a raw output we cannot parse is reported
                self.problems.append(f"{raw}: unparseable agent output ({type(exc).__name__}: {_clip(str(exc), 300)})")
                return f'<h2>Trace</h2><p class="failure">Unparseable solve_out.txt: {esc(_clip(str(exc), 2000))}</p>'
            note = "No trace.json: parsed from the raw agent output solve_out.txt."
        else:
            try:
                trace = load_trace(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable trace is reported, not fatal
                self.problems.append(f"{path}: unreadable trace ({type(exc).__name__}: {_clip(str(exc), 300)})")
                return f'<h2>Trace</h2><p class="failure">Unreadable trace.json: {esc(_clip(str(exc), 2000))}</p>'
        return render_trace(trace, note)

    # ------------------------------------------------------------------ all

    def build(self) -> SiteResult:
        assets = self.out / "assets"
        assets.mkdir(parents=True, exist_ok=True)
        static = resources.files("posttrainbench.report") / "static"
        for name in ("report.css", "report.js"):
            (assets / name).write_text(static.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        plots, plot_problems = draw_all(self.data, self.out / "plots")
        self.problems.extend(plot_problems)
        self.result.plots = list(plots)
        for entry in [*self.data.runs, *self.data.superseded]:  # first: they may add problems
            try:
                self.run_page(entry)
            except Exception as exc:  # noqa: BLE001 - one odd run must not lose the site
                self.problems.append(f"{entry.folder}: run page failed: {type(exc).__name__}: {exc}")
        self.benchmarks_page()
        self.models_page()
        self.runs_page()
        self.index(plots)
        self.result.problems = list(self.problems)
        return self.result


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit:,} more characters not shown]"


def _input_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _preview(value: Any, limit: int = 100) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    text = " ".join((value if isinstance(value, str) else json.dumps(value, default=str)).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _step_html(step: TraceStep, call_names: dict[str, str]) -> str:
    meta = [f"#{step.index}", step.role]
    if step.timestamp:
        meta.append(step.timestamp.isoformat(timespec="seconds"))
    if step.input_tokens or step.output_tokens:
        meta.append(f"{step.input_tokens:,} in / {step.output_tokens:,} out tokens")
    if step.cost_usd:
        meta.append(f"${step.cost_usd:.4f}")
    head = (f'<div class="head"><span>{esc(meta[0])}</span><span class="role">{esc(meta[1])}</span>'
            + "".join(f"<span>{esc(m)}</span>" for m in meta[2:]) + "</div>")
    parts = [head]
    if step.text:
        parts.append(f'<pre class="text">{esc(_clip(step.text))}</pre>')
    for call in step.tool_calls:
        parts.append(
            f'<details class="tool-call"><summary>tool call <code>{esc(call.name)}</code> '
            f'<span class="muted">{esc(_preview(call.input))}</span></summary>'
            f'<pre>{esc(_clip(_input_text(call.input)))}</pre></details>')
    for res in step.tool_results:
        name = call_names.get(res.call_id or "", "tool")
        cls = "tool-result error" if res.is_error else "tool-result"
        label = "error from" if res.is_error else "result of"
        parts.append(
            f'<details class="{cls}"><summary>{label} <code>{esc(name)}</code> '
            f'<span class="muted">({len(res.output):,} chars)</span></summary>'
            f'<pre>{esc(_clip(res.output))}</pre></details>')
    role = _safe_name(step.role)
    return f'<section class="step role-{role}" data-step="{step.index}">{"".join(parts)}</section>'


def render_trace(trace: Trace, note: str = "") -> str:
    """The trace as HTML: one block per step, tool calls and results collapsed, a search box."""
    call_names = {c.id: c.name for s in trace.steps for c in s.tool_calls if c.id}
    usage = trace.usage()
    summary = (f"{usage.steps} steps, {usage.tool_calls} tool calls, "
               f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens, ${usage.cost_usd:.4f}"
               + (f", model {trace.model}" if trace.model else ""))
    errors = ""
    if trace.parse_errors:
        items = "".join(f"<li>{esc(e)}</li>" for e in trace.parse_errors[:200])
        errors = (f"<details><summary>{len(trace.parse_errors)} raw lines could not be parsed</summary>"
                  f'<ul class="problems">{items}</ul></details>')
    steps = "".join(_step_html(s, call_names) for s in trace.steps)
    return f"""<h2>Trace</h2>
<p class="note">{esc(summary)} (source: {esc(trace.source or '—')}) {esc(note)}</p>
{errors}
<div class="trace-tools">
<input type="search" id="trace-search" placeholder="Search the trace…" aria-label="Search the trace">
<span id="trace-count" class="muted">{len(trace.steps)} of {len(trace.steps)} steps</span>
<button type="button" data-details="open">Expand all</button>
<button type="button" data-details="close">Collapse all</button>
</div>
<div id="trace">{steps or '<p class="note">The trace has no steps.</p>'}</div>"""


def build_site(
    results_root: Path, out_dir: Path, weights: dict[str, float] | None = None, *, full: bool = False
) -> SiteResult:
    """Write the HTML report of ``results_root`` into ``out_dir`` (created; old pages replaced).

    ``weights`` overrides the benchmark weights (else: from recorded baselines, else equal);
    ``full`` rebuilds the results index first (as ``ptb leaderboard --reindex``).
    """
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(results_root).resolve():
        raise ValueError(f"{out_dir}: the site must not be written into the results folder itself")
    marker = out_dir / SITE_MARKER
    # Old pages are removed before writing (runs that are gone must not linger), so only ever
    # into an empty folder or one that holds an earlier report: never someone's own "runs/".
    if out_dir.is_dir() and any(out_dir.iterdir()) and not marker.is_file():
        raise ValueError(f"{out_dir}: not empty and not a ptb report site; choose an empty or new folder")
    data = load_report_data(Path(results_root), weights, full=full)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by `ptb report`; this folder is replaced on the next run\n", encoding="utf-8")
    for sub in ("runs", "plots", "assets"):
        if (out_dir / sub).is_dir():
            shutil.rmtree(out_dir / sub)
    return _Site(data, out_dir).build()
