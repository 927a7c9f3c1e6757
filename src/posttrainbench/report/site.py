"""Build the static HTML report: leaderboard, plots, per-benchmark/per-model views, run pages.

The site is self-contained (open ``index.html`` from disk, or serve the folder anywhere): one CSS
and one JS file of our own, PNG/SVG plots, copied evidence files. No CDN, no server, no inline
script. Pages are Jinja2 templates (``report/templates/*.html.j2``: a base layout with the
Content-Security-Policy and the navigation, one template per page kind, shared macros). This
module only prepares plain values (text and numbers, formatted for display) and never writes
HTML: the templates are rendered with autoescape on, so every value they print (names, errors,
traces, metrics, file names; agent traces are hostile input) is HTML-escaped there, once.
Nothing is marked safe: the only markup is the templates' own.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from .. import __version__
from ..agents.trace_parsers import parse_trace
from ..console import duration, limited, score, utc
from ..domain import PHASES
from ..leaderboard import RankOptions, RepeatsSummary
from ..leaderboard.tables import ranked_rows
from ..results.layout import RunPaths
from ..trace import Trace, TraceStep, load_trace
from .data import ReportData, RunEntry, load_report_data, run_state
from .evallogs import eval_logs
from .plots import draw_all
from .training import find_loss_curve, loss_curve_view

MAX_TEXT = 20_000  # characters of one trace field shown before it is cut (the rest is noted)
MAX_EVIDENCE_BYTES = 5_000_000  # evidence files larger than this are linked by path, not copied
MAX_RAW_TRACE_BYTES = 50 * 2**20  # raw agent output parsed on the fly when there is no trace.json
SITE_MARKER = ".ptb-report"  # marks a folder as ours, so a rebuild may clear its old pages
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# A strict policy: our own script and style files only; nothing inline can run even if some
# text escaped escaping. ``file:`` is listed for browsers that give every local file its own
# origin (so that ``'self'`` alone would block the site's own files when opened from disk).
# ``connect-src 'self'``: ``ptb view``'s pages of runs in progress poll their own server for a
# change (the static site never fetches anything).
CSP = (
    "default-src 'none'; script-src 'self' file:; style-src 'self' file:; "
    "img-src 'self' file: data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)


def _safe_name(text: str) -> str:
    """``text`` as a file, URL or CSS-class name: runs of other characters become ``-``."""
    return _SAFE.sub("-", text).strip("-.") or "x"


def _none_as_blank(value: Any) -> Any:
    return "" if value is None else value


@cache
def environment() -> Environment:
    """The Jinja2 environment of the report's templates (autoescape on, undefined is an error).

    Every template is HTML, so autoescape is on for all of them: every ``{{ value }}`` is escaped
    (quotes too, so it is safe inside attributes) and ``None`` prints as nothing. The one filter,
    ``slug``, makes a value fit for a CSS class or an id (it is escaped all the same).
    """
    env = Environment(
        loader=PackageLoader("posttrainbench.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_none_as_blank,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["slug"] = _safe_name
    env.globals.update(csp=CSP, version=__version__)
    return env


# One format everywhere (console.py): scores to 3 decimals, durations H:MM:SS, times UTC to the minute.
fmt_score = score
fmt_duration = duration


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit:,} more characters not shown]"


# ---------------------------------------------------------------------- what the templates get
# Plain values only (str, int, lists, the tuples below): the templates decide the markup.


class Num(NamedTuple):
    """A numeric table cell: the key the script sorts by (``""`` sorts last) and the text shown."""

    sort: str
    text: str
    cls: str = "num"


def _sort_key(value: float | int | None) -> str:
    return "" if value is None else repr(float(value))


def _num(value: float | int | None, text: str, extra: str = "") -> Num:
    return Num(_sort_key(value), text, "num" + (f" {extra}" if extra else ""))


class Column(NamedTuple):
    """A sortable table column."""

    label: str
    numeric: bool


class Link(NamedTuple):
    href: str
    text: str


class AgentRow(NamedTuple):
    """A leaderboard row: the agent link, then the numeric cells (rank first)."""

    label: str
    agent: str
    config: str  # the label after the agent name
    runs_href: str
    rank: Num
    cells: list[Num]
    n_missing: int | None  # None: not known (a published agent)
    missing_title: str
    source: str = ""  # "" for ours; "published v1.2" (...) for an agent of a published leaderboard


class GroupCell(NamedTuple):
    """One (agent, model, benchmark) cell of a grouped view: mean ± std over repeats, its runs."""

    sort: str
    text: str
    n_fallback: int
    flags: str
    runs: list[Link]


class GroupRow(NamedTuple):
    label: str
    score: Num | None  # the weighted score on one model (per-model view only)
    cells: list[GroupCell | None]  # None: the agent has no run of that cell


class GroupTable(NamedTuple):
    title: str  # the benchmark or base model
    weight: str | None  # the benchmark's weight (per-benchmark view only)
    columns: list[Column]
    rows: list[GroupRow]


class RunRow(NamedTuple):
    """A row of the runs page."""

    href: str
    label: str
    benchmark: str
    base_model: str
    repeat: Num
    status: str
    verdict: str
    raw: Num
    score: Num
    gain: Num
    fallback: bool
    reason: str
    flags: str
    time: Num
    tokens: Num
    cost: Num
    failure: str
    base: Num  # the base model's zero-shot score on the cell's benchmark
    instruct: Num  # its instruct model's


class PhaseRow(NamedTuple):
    name: str
    status: str
    started: str
    finished: str
    duration: str
    error: str | None
    details: str | None  # JSON


class Evidence(NamedTuple):
    """An evidence file: a link to its copy (``href``), or its path and why it was not copied."""

    name: str
    href: str | None = None
    note: str = ""


class VerdictRow(NamedTuple):
    gate: str
    status: str
    required: bool
    summary: str
    evidence: list[Evidence]


class MetricItem(NamedTuple):
    key: str
    value: Any
    nested: str | None = None  # "dict (3)": the value is JSON shown collapsed


class FileItem(NamedTuple):
    """A small text file of the run folder: its (clipped) text, or why it could not be read."""

    label: str
    name: str
    text: str = ""
    clipped: bool = False
    error: str | None = None


class ToolCallView(NamedTuple):
    name: str
    preview: str
    body: str


class ToolResultView(NamedTuple):
    name: str
    error: bool
    size: str
    body: str


class StepView(NamedTuple):
    index: int  # type: ignore[assignment]  # shadows tuple.index; the templates read step.index
    role: str
    meta: list[str]  # timestamp, tokens, cost: whichever the step has
    text: str
    calls: list[ToolCallView]
    results: list[ToolResultView]


class TraceView(NamedTuple):
    summary: str
    source: str
    parse_errors: list[str]  # the first 200
    n_parse_errors: int
    steps: list[StepView]


class TraceSection(NamedTuple):
    """The trace section of a run page: the trace, or why there is none (``detail`` says more)."""

    status: Literal["trace", "missing", "too_large", "unparseable", "unreadable"]
    detail: str = ""  # for a trace: a note on where it came from
    trace: TraceView | None = None


# ---------------------------------------------------------------------- the trace


def _input_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _preview(value: Any, limit: int = 100) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    text = " ".join((value if isinstance(value, str) else json.dumps(value, default=str)).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _step_view(step: TraceStep, call_names: dict[str, str]) -> StepView:
    meta = []
    if step.timestamp:
        meta.append(step.timestamp.isoformat(timespec="seconds"))
    if step.input_tokens or step.output_tokens:
        meta.append(f"{step.input_tokens:,} in / {step.output_tokens:,} out tokens")
    if step.cost_usd:
        meta.append(f"${step.cost_usd:.4f}")
    return StepView(
        index=step.index,
        role=step.role,
        meta=meta,
        text=_clip(step.text) if step.text else "",
        calls=[ToolCallView(c.name, _preview(c.input), _clip(_input_text(c.input))) for c in step.tool_calls],
        results=[
            ToolResultView(call_names.get(r.call_id or "", "tool"), r.is_error, f"{len(r.output):,}", _clip(r.output))
            for r in step.tool_results
        ],
    )


def trace_view(trace: Trace) -> TraceView:
    """What the trace template shows of ``trace``: its usage summary and every step, clipped."""
    call_names = {c.id: c.name for s in trace.steps for c in s.tool_calls if c.id}
    usage = trace.usage()
    summary = (
        f"{usage.steps} steps, {usage.tool_calls} tool calls, "
        f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens, ${usage.cost_usd:.4f}"
        + (f", model {trace.model}" if trace.model else "")
    )
    return TraceView(
        summary=summary,
        source=trace.source or "—",
        parse_errors=list(trace.parse_errors[:200]),
        n_parse_errors=len(trace.parse_errors),
        steps=[_step_view(s, call_names) for s in trace.steps],
    )


def render_trace(trace: Trace, note: str = "") -> str:
    """The trace as HTML: one block per step, tool calls and results collapsed, a search box."""
    section = TraceSection("trace", note, trace_view(trace))
    return environment().get_template("trace.html.j2").render(section=section)


# ---------------------------------------------------------------------- the site


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


RUN_COLUMNS = [
    Column(
        h,
        h
        in {
            "repeat",
            "raw score",
            "cell score",
            "norm. gain",
            "time used",
            "tokens",
            "cost (USD)",
            "base zero-shot",
            "instruct zero-shot",
        },
    )
    for h in (
        "agent",
        "benchmark",
        "base model",
        "repeat",
        "status",
        "verdict",
        "raw score",
        "cell score",
        "norm. gain",
        "fallback",
        "flags",
        "time used",
        "tokens",
        "cost (USD)",
        "failure",
        "base zero-shot",
        "instruct zero-shot",
    )
]


class _Site:
    def __init__(self, data: ReportData, out: Path) -> None:
        self.data = data
        self.out = out
        self.result = SiteResult(out_dir=out, n_runs=len(data.runs), n_agents=len(data.agents))
        self.problems: list[str] = list(data.problems)
        self.env = environment()
        # What every page's footer says.
        self.page_globals = {
            "generated": utc(datetime.now(UTC)),
            "results_root": str(data.root),
        }
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

    def render(self, template: str, rel_path: str, title: str, **context: Any) -> str:
        """One page as HTML, for its place ``rel_path`` under the site root (its links are relative)."""
        return self.env.get_template(template).render(
            title=title, up="../" * rel_path.count("/"), **self.page_globals, **context
        )

    def page(self, template: str, rel_path: str, title: str, **context: Any) -> None:
        """Render one page and write it at ``rel_path`` under the site root."""
        html = self.render(template, rel_path, title, **context)
        path = self.out / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        self.result.pages.append(path)

    def run_link(self, entry: RunEntry, text: str) -> Link:
        """A link to a run's page from a page at the site root."""
        return Link(quote(self.run_pages[id(entry)]), text)

    # ------------------------------------------------------------------ leaderboard

    def index(self, plots: dict[str, str]) -> None:
        d = self.data
        benches = d.benchmarks
        head = [
            "#",
            "agent",
            "score",
            "± std",
            "repeats",
            "runs",
            "verified",
            "fallback cells",
            "norm. gain",
            "time used / run",
            "tokens",
            "cost (USD)",
            *benches,
            "missing cells",
        ]
        rows = []
        ranked = ranked_rows(d.report)  # ours, and the published agents beside them (``--published``)
        ours = {a.label: a for a in d.agents}
        for r in ranked:
            if r.source != "ours":  # a published agent: its published score, std, run count and grid
                dash = [_num(None, "—") for _ in head[5:12]]
                rows.append(
                    AgentRow(
                        label=r.label, agent=r.label, config="", runs_href="", rank=_num(r.rank, str(r.rank)),
                        cells=[
                            _num(r.score, fmt_score(r.score), "score"),
                            _num(r.std, "—" if r.std is None else f"± {r.std:.3f}"),
                            _num(r.n_runs, str(r.n_runs)),
                            *dash,
                            *(_num(r.per_benchmark.get(b), fmt_score(r.per_benchmark.get(b))) for b in benches),
                        ],
                        n_missing=None, missing_title="", source=r.source,
                    )
                )  # fmt: skip
                continue
            row = ours[r.label]
            verified = d.verified(row.label)
            budget = f" ({row.time_pct_of_budget:.0f}%)" if row.time_pct_of_budget is not None else ""
            tokens = (
                None if row.input_tokens is None or row.output_tokens is None else row.input_tokens + row.output_tokens
            )
            rows.append(
                AgentRow(
                    label=row.label,
                    agent=row.agent,
                    config=row.label[len(row.agent) :],
                    runs_href="runs.html#q=" + quote(row.label, safe=""),
                    rank=_num(r.rank, str(r.rank)),
                    cells=[
                        _num(row.score, fmt_score(row.score), "score"),
                        _num(row.std, "—" if row.std is None else f"± {row.std:.3f}"),
                        _num(row.n_repeats, str(row.n_repeats)),
                        _num(row.n_runs, str(row.n_runs)),
                        _num(verified, f"{verified} / {row.n_runs}"),
                        _num(row.n_fallback, str(row.n_fallback), "fb" if row.n_fallback else ""),
                        _num(row.normalised_gain, fmt_score(row.normalised_gain)),
                        _num(row.mean_time_s, fmt_duration(row.mean_time_s) + budget),
                        _num(tokens, "—" if tokens is None else f"{tokens:,}"),
                        _num(row.cost_usd, "—" if row.cost_usd is None else f"{row.cost_usd:.2f}"),
                        *(_num(row.per_benchmark.get(b), fmt_score(row.per_benchmark.get(b))) for b in benches),
                    ],
                    n_missing=len(row.missing),
                    missing_title="; ".join(f"repeat {r}: {m} / {b}" for r, m, b in row.missing[:20]),
                )
            )
        self.page(
            "index.html.j2",
            "index.html",
            "Leaderboard",
            n_agents=len(d.agents),
            n_runs=len(d.runs),
            n_benchmarks=len(benches),
            n_models=len(d.models),
            n_superseded=len(d.superseded),
            weights=[(b, f"{w:.3f}") for b, w in d.weights.items()],
            weights_source=d.report.weights_source,
            suite=d.report.suite,
            protocol=d.report.protocol,
            published=(d.report.published[0].suite if d.report.published else None),
            n_published=len(d.report.published),
            notes=d.report.notes,
            columns=[Column(h, i != 1) for i, h in enumerate(head)],
            rows=rows,
            figures=list(plots.items()),
            problems=self.problems,
        )

    # ------------------------------------------------------------------ grouped views

    def _cell(self, label: str, model: str, bench: str, summary: RepeatsSummary | None) -> GroupCell | None:
        runs = [
            (r, r.cell)
            for r in self.data.agent_runs(label)
            if r.cell is not None and r.cell.base_model == model and r.cell.benchmark == bench
        ]
        if not runs:
            return None
        mean = summary.mean.number(model, bench) if summary else None
        std = summary.std.number(model, bench) if summary and summary.std else None
        return GroupCell(
            sort=_sort_key(mean),
            text=fmt_score(mean)
            + (f" ± {std:.3f}" if std is not None else "")
            + (" (limit)" if any(r.record.spec.eval_limit is not None for r, _ in runs) else ""),
            n_fallback=sum(c.fallback for _, c in runs),
            flags=" ".join(sorted({f for _, c in runs for f in c.flags})),
            runs=[self.run_link(r, f"r{c.repeat}") for r, c in sorted(runs, key=lambda rc: rc[1].repeat)],
        )

    def _has(self, label: str | None = None, model: str | None = None, bench: str | None = None) -> bool:
        return any(
            (label is None or e.label == label)
            and (model is None or e.cell.base_model == model)
            and (bench is None or e.cell.benchmark == bench)
            for e in self.data.runs
            if e.cell
        )

    def benchmarks_page(self) -> None:
        d = self.data
        summaries = {label: d.cell_summary(label) for label in d.labels}
        tables = []
        for bench in d.benchmarks:
            models = [m for m in d.models if self._has(model=m, bench=bench)]
            rows = [
                GroupRow(label, None, [self._cell(label, m, bench, summaries[label]) for m in models])
                for label in d.labels
                if self._has(label=label, bench=bench)
            ]
            tables.append(
                GroupTable(
                    bench,
                    fmt_score(d.weights.get(bench)),
                    [Column("agent", False), *(Column(m, True) for m in models)],
                    rows,
                )
            )
        self.page(
            "benchmarks.html.j2",
            "benchmarks.html",
            "Benchmarks",
            tables=tables,
            heatmap="heatmap" in self.result.plots,
        )

    def models_page(self) -> None:
        d = self.data
        per_model = {a.label: a.per_model for a in d.agents}
        summaries = {label: d.cell_summary(label) for label in d.labels}
        tables = []
        for model in d.models:
            benches = [b for b in d.benchmarks if self._has(model=model, bench=b)]
            rows = []
            for label in d.labels:
                if not self._has(label=label, model=model):
                    continue
                score = per_model.get(label, {}).get(model)
                rows.append(
                    GroupRow(
                        label,
                        _num(score, fmt_score(score)),
                        [self._cell(label, model, b, summaries[label]) for b in benches],
                    )
                )
            tables.append(
                GroupTable(
                    model,
                    None,
                    [Column("agent", False), Column("weighted score", True), *(Column(b, True) for b in benches)],
                    rows,
                )
            )
        self.page("models.html.j2", "models.html", "Models", tables=tables)

    def _run_rows(self, entries: list[RunEntry]) -> list[RunRow]:
        rows = []
        for e in sorted(
            entries,
            key=lambda e: (
                e.label,
                e.record.spec.benchmark,
                e.record.spec.base_model,
                e.record.spec.repeat,
                e.record.created_at,
            ),
        ):
            rec, cell, spec = e.record, e.cell, e.record.spec
            tokens = rec.usage.get("input_tokens", 0) + rec.usage.get("output_tokens", 0) if rec.usage else None
            cost = rec.usage.get("cost_usd") if rec.usage else None
            raw, score, gain = (cell.raw, cell.score, cell.normalised_gain) if cell else (None, None, None)
            rows.append(
                RunRow(
                    href=self.run_link(e, e.label).href,
                    label=e.label,
                    benchmark=spec.benchmark,
                    base_model=spec.base_model,
                    repeat=_num(spec.repeat, str(spec.repeat)),
                    status=run_state(rec, e.folder),
                    verdict=rec.final_verdict.value if rec.final_verdict else "missing",
                    raw=_num(raw, fmt_score(raw)),
                    score=_num(score, fmt_score(score) + limited(spec.eval_limit, short=True)),
                    gain=_num(gain, fmt_score(gain)),
                    fallback=bool(cell and cell.fallback),
                    reason=(cell.reason or "") if cell else "",
                    flags=" ".join(cell.flags) if cell else "",
                    time=_num(rec.time_used_s, fmt_duration(rec.time_used_s)),
                    tokens=_num(tokens, "—" if tokens is None else f"{int(tokens):,}"),
                    cost=_num(cost, "—" if cost is None else f"{cost:.2f}"),
                    failure=rec.failure or "",
                    base=_num(cell.base if cell else None, fmt_score(cell.base if cell else None)),
                    instruct=_num(cell.instruct if cell else None, fmt_score(cell.instruct if cell else None)),
                )
            )
        return rows

    def runs_page(self) -> None:
        self.page(
            "runs.html.j2",
            "runs.html",
            "Runs",
            columns=RUN_COLUMNS,
            runs=self._run_rows(self.data.runs),
            superseded=self._run_rows(self.data.superseded),
            problems=self.problems,
        )

    # ------------------------------------------------------------------ one run

    @staticmethod
    def evidence_file(entry: RunEntry, ref: str) -> Path | Evidence:
        """The real path of one evidence file, only inside the run folder (symlinks resolved), or
        the :class:`Evidence` that says why it is not shown (missing, outside, too large)."""
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
                return Evidence(str(real), note="too large to copy")
            return real
        return Evidence(ref, note="not found in the run folder")

    def _copy_evidence(self, entry: RunEntry, page_dir: Path, ref: str) -> Evidence:
        """A copy of one evidence file next to the run page (only files inside the run folder)."""
        found = self.evidence_file(entry, ref)
        if isinstance(found, Evidence):
            return found
        name = _safe_name(found.name)
        dest = page_dir / "evidence" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, dest)
        return Evidence(found.name, href="evidence/" + quote(name))

    def run_page(self, entry: RunEntry) -> None:
        rec, cell, spec = entry.record, entry.cell, entry.record.spec
        rel = self.run_pages[id(entry)]
        page_dir = (self.out / rel).parent
        if cell is not None:
            scores = [
                ("raw score", fmt_score(cell.raw) + limited(spec.eval_limit)),
                (
                    "cell score",
                    fmt_score(cell.score)
                    + limited(spec.eval_limit)
                    + (" (fallback: " + (cell.reason or "") + ")" if cell.fallback else ""),
                ),
                ("normalised gain", fmt_score(cell.normalised_gain)),
                ("base model zero-shot", fmt_score(cell.base) + limited(spec.eval_limit)),
                ("instruct model zero-shot", fmt_score(cell.instruct) + limited(spec.eval_limit)),
                ("flags", " ".join(cell.flags) or "none"),
            ]
        else:
            scores = [("leaderboard", "superseded: a later run of the same cell counts instead")]
        outcome = [
            ("run id", rec.run_id),
            ("folder", entry.path),
            ("created", utc(rec.created_at)),
            ("completed", "yes" if rec.completed else "no"),
            ("state", run_state(rec, entry.folder)),
            ("final verdict", rec.final_verdict.value if rec.final_verdict else "missing"),
            *scores,
            (
                "time used",
                fmt_duration(rec.time_used_s) + (f" of {spec.hours:g} h" if rec.time_used_s is not None else ""),
            ),
            ("exit code", "—" if rec.exit_code is None else rec.exit_code),
            ("timed out", "yes" if rec.timed_out else "no"),
            (
                "tokens in / out",
                f"{int(rec.usage.get('input_tokens', 0)):,} / {int(rec.usage.get('output_tokens', 0)):,}"
                if rec.usage
                else "—",
            ),
            ("cost (USD)", f"{rec.usage.get('cost_usd', 0.0):.4f}" if rec.usage else "—"),
            (
                "steps / tool calls",
                f"{int(rec.usage.get('steps', 0))} / {int(rec.usage.get('tool_calls', 0))}" if rec.usage else "—",
            ),
            *([("imported from", json.dumps(rec.imported_from, default=str))] if rec.imported_from else []),
        ]
        phases = []
        for name in [*PHASES, *[p for p in rec.phases if p not in PHASES]]:
            st = rec.phases.get(name)
            if st is None:
                continue
            dur = (st.finished_at - st.started_at).total_seconds() if st.started_at and st.finished_at else None
            phases.append(
                PhaseRow(
                    name=name,
                    status=st.status,
                    started=utc(st.started_at),
                    finished=utc(st.finished_at),
                    duration=duration(dur),
                    error=st.error or None,
                    details=json.dumps(st.details.model_dump(mode="json"), indent=2, default=str)
                    if st.details
                    else None,
                )
            )
        verdicts = [
            VerdictRow(
                v.gate,
                v.status.value,
                v.gate in rec.required_gates,
                v.summary,
                [self._copy_evidence(entry, page_dir, ev) for ev in v.evidence],
            )
            for v in rec.verdicts
        ]
        gates_seen = {v.gate for v in rec.verdicts}
        verdicts += [
            VerdictRow(gate, "missing", True, "required gate has no verdict", [])  # never clean
            for gate in rec.required_gates
            if gate not in gates_seen
        ]
        metrics = [
            MetricItem(k, _clip(json.dumps(v, indent=2, default=str)), f"{type(v).__name__} ({len(v)})")
            if isinstance(v, (dict, list))
            else MetricItem(k, v)
            for k, v in (rec.metrics.model_dump(mode="json") if rec.metrics else {}).items()
        ]
        self.page(
            "run.html.j2",
            rel,
            f"{entry.label} · {spec.benchmark} · {spec.base_model} · repeat {spec.repeat}",
            superseded=entry.superseded,
            failure=rec.failure,
            outcome=outcome,
            spec=list(spec.model_dump(mode="json").items()),
            phases=phases,
            verdicts=verdicts,
            metrics=metrics,
            files=self._files(entry),
            section=self._trace_section(entry),
            **self.run_extras(entry),
        )

    def run_extras(self, entry: RunEntry) -> dict[str, Any]:
        """The run page's evaluation logs and training-loss curve (``ptb view`` adds its live state)."""
        return {"eval_logs": eval_logs(entry.folder), "loss": loss_curve_view(find_loss_curve(entry.folder))}

    @staticmethod
    def _files(entry: RunEntry) -> list[FileItem]:
        """The run folder's small text files (prompt, judgements, stderr), clipped."""
        paths = RunPaths(entry.folder)
        items = []
        for label, path in (
            ("prompt", paths.prompt),
            ("time taken", paths.time_taken),
            ("contamination judgement", paths.contamination_judgement),
            ("disallowed-model judgement", paths.disallowed_model_judgement),
            ("agent stderr", paths.solve_err),
        ):
            if not path.is_file():
                continue
            try:
                with path.open("rb") as fh:  # read a bounded head: these files can be huge
                    raw = fh.read(MAX_TEXT + 1)
            except OSError as exc:
                items.append(FileItem(label, path.name, error=str(exc)))
                continue
            items.append(
                FileItem(
                    label, path.name, raw[:MAX_TEXT].decode("utf-8", errors="replace"), clipped=len(raw) > MAX_TEXT
                )
            )
        return items

    def _trace_section(self, entry: RunEntry) -> TraceSection:
        paths = RunPaths(entry.folder)
        path = paths.trace_json
        note = ""
        if not path.is_file():
            raw = paths.solve_out
            # Imported upstream runs (and runs whose collect phase did not finish) have only the
            # raw agent output: parse it with the agent's trace parser (plain log lines if unknown).
            if not raw.is_file():
                return TraceSection("missing")
            if raw.stat().st_size > MAX_RAW_TRACE_BYTES:
                return TraceSection("too_large", f"{raw.stat().st_size / 2**20:.0f}")
            try:
                trace = parse_trace(entry.record.spec.agent, raw)
            except Exception as exc:  # noqa: BLE001 - a raw output we cannot parse is reported
                self.problems.append(f"{raw}: unparseable agent output ({type(exc).__name__}: {_clip(str(exc), 300)})")
                return TraceSection("unparseable", _clip(str(exc), 2000))
            note = "No trace.json: parsed from the raw agent output solve_out.txt."
        else:
            try:
                trace = load_trace(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable trace is reported, not fatal
                self.problems.append(f"{path}: unreadable trace ({type(exc).__name__}: {_clip(str(exc), 300)})")
                return TraceSection("unreadable", _clip(str(exc), 2000))
        return TraceSection("trace", note, trace_view(trace))

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


def build_site(results_root: Path, out_dir: Path, options: RankOptions | None = None) -> SiteResult:
    """Write the HTML report of ``results_root`` into ``out_dir`` (created; old pages replaced), ranked
    as ``options`` say (``RankOptions``, as ``ptb leaderboard``: the leaderboard page ranks on the
    suite's benchmarks, and with ``published`` lists that published leaderboard's agents beside ours,
    marked).
    """
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(results_root).resolve():
        raise ValueError(f"{out_dir}: the site must not be written into the results folder itself")
    marker = out_dir / SITE_MARKER
    # Old pages are removed before writing (runs that are gone must not linger), so only ever
    # into an empty folder or one that holds an earlier report: never someone's own "runs/".
    if out_dir.is_dir() and any(out_dir.iterdir()) and not marker.is_file():
        raise ValueError(f"{out_dir}: not empty and not a ptb report site; choose an empty or new folder")
    data = load_report_data(Path(results_root), options)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by `ptb report`; this folder is replaced on the next run\n", encoding="utf-8")
    for sub in ("runs", "plots", "assets"):
        if (out_dir / sub).is_dir():
            shutil.rmtree(out_dir / sub)
    return _Site(data, out_dir).build()
