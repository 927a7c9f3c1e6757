"""Everything a reader of the leaderboard wants, as one serialisable object, and its exports.

:func:`build_report` turns a results folder into a :class:`LeaderboardReport`: the ranked agents
(score ± std over repeats, per-benchmark and per-model scores, normalised gain vs the instruct
model, time used and % of budget, tokens and cost, fallback and missing counts), every cell with
its flags, the weights and where they came from, and every problem found. The terminal table,
CSV, Markdown, JSON and the HTML report are all views of this one object.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ..console import hms, limited
from .aggregate import agent_label, normalised_gain
from .from_results import leaderboard
from .options import RankOptions
from .published import RankedRow, published_board, side_by_side
from .scoring import Cell
from .suites import get_suite

# Short flag codes for a cell, as in the published grids ("C", "M") plus ours.
FLAG_CODES = {
    "contamination": "C",
    "lineage": "M",
    "judge": "J",
    "tamper": "T",
    "trace_audit": "A",
    "observed_audit": "O",
    "transfer": "X",
    "model_format": "F",
    "judge_contamination": "C",  # imported upstream judge verdicts
    "judge_disallowed_model": "M",
    "judge_api_usage": "A",  # upstream v1.1+'s other judges (upstream's grid letter for API usage)
    "judge_ptb_lookup": "L",
    "judge_derived_contamination": "C",
    "judge_general": "G",
    "data": "D",  # evaluated on a set other than the pinned one
}


def flag_code(flag: str) -> str:
    """``gate:status`` -> short code: the gate's letter, ``?`` appended when it did not run."""
    gate, _, status = flag.partition(":")
    code = FLAG_CODES.get(gate, gate)
    return code + ("?" if status == "not_run" else "")


class CellRow(BaseModel):
    """One cell of one agent, as shown."""

    label: str
    benchmark: str
    base_model: str
    repeat: int
    score: float | None
    raw: float | None
    fallback: bool
    reason: str | None = None
    flags: list[str] = Field(default_factory=list)
    normalised_gain: float | None = None
    base: float | None = None  # the base model's zero-shot score on this benchmark (same eval limit)
    instruct: float | None = None  # its official instruct model's
    time_used_s: float | None = None
    cost_usd: float | None = None
    path: str = ""
    eval_limit: int | None = Field(None, description="Evaluated on the first N test items only (--limit).")


class AgentRow(BaseModel):
    """One ranked agent."""

    rank: int
    label: str
    agent: str
    agent_config: str
    hours: float | None
    score: float | None
    std: float | None
    n_repeats: int
    repeat_scores: dict[int, float | None]
    per_benchmark: dict[str, float | None]
    per_model: dict[str, float | None]
    normalised_gain: float | None
    n_runs: int
    n_fallback: int
    missing: list[tuple[int, str, str]]
    mean_time_s: float | None
    time_pct_of_budget: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    eval_limits: list[int] = Field(
        default_factory=list,
        description="The --limit of its runs evaluated on the first N items only (none: full sets).",
    )


class PublishedRow(BaseModel):
    """One agent of a published leaderboard, shown beside ours (``--published``)."""

    name: str
    suite: str
    score: float
    std: float | None
    n_runs: int
    per_benchmark: dict[str, float | None]


class LeaderboardReport(BaseModel):
    """The whole leaderboard of a results folder (and, with ``--published``, the published agents)."""

    generated_at: datetime
    results_root: str
    weights: dict[str, float]
    weights_source: str
    protocol: str = "strict"
    suite: str | None = None
    benchmarks: list[str]
    models: list[str]
    agents: list[AgentRow]
    cells: list[CellRow]
    problems: list[str]
    superseded: list[str]
    published: list[PublishedRow] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # caveats of the ranking (not problems of the data)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _sum_or_none(xs: list[float | None]) -> float | None:
    known = [x for x in xs if x is not None]
    return sum(known) if known and len(known) == len(xs) else None


def _per_model(cells: list[Cell], weights: dict[str, float], models: list[str]) -> dict[str, float | None]:
    """Σ_b w_b · (mean over repeats of the cell) for each base model; None if a cell is missing."""
    by_key: dict[tuple[str, str], list[float]] = {}
    for c in cells:
        if c.score is not None:
            by_key.setdefault((c.base_model, c.benchmark), []).append(c.score)
    out: dict[str, float | None] = {}
    for m in models:
        vals = [by_key.get((m, b)) for b in weights]
        present = [v for v in vals if v]
        out[m] = (
            None if len(present) != len(vals) else sum(w * sum(v) / len(v) for w, v in zip(weights.values(), present))
        )
    return out


def build_report(root: Path, options: RankOptions | None = None) -> LeaderboardReport:
    """Rank the agents of a results folder (see module doc) as ``options`` say (:class:`RankOptions`:
    weights, protocol, suite, a published leaderboard listed beside ours, index rebuild and place);
    an invalid combination of options raises ``ValueError``."""
    opts = (options or RankOptions()).resolved()
    published, suite = opts.published, opts.suite
    rows, cells, scan = leaderboard(
        root, opts.weights, full=opts.full, db_path=opts.db_path, protocol=opts.protocol, suite=suite
    )
    w, source = scan.weights, scan.weights_source
    if published is not None:
        source = (
            f"published factors of suite {published} ({get_suite(published).factors_file}), as the published agents"
        )
    benches = list(w) if suite is not None else sorted({c.benchmark for c in cells})
    models = sorted({c.base_model for c in cells})
    runs = {s.path: s for s in scan.runs}
    base = scan.baseline_scores("base")
    inst = scan.baseline_scores("instruct")

    def gain(c: Cell) -> float | None:
        s = runs.get(c.path)
        key = (c.benchmark, c.base_model, s.eval_limit if s else None)
        if c.score is None or key not in base or key not in inst or inst[key] == base[key]:
            return None
        return normalised_gain(c.score, base[key], inst[key])

    cell_rows: list[CellRow] = []
    by_agent: dict[tuple, list[CellRow]] = {}
    raw_by_agent: dict[tuple, list[Cell]] = {}
    for c in sorted(cells, key=lambda c: (c.agent, c.agent_config, c.hours or 0, c.benchmark, c.base_model, c.repeat)):
        s = runs.get(c.path)
        label = agent_label(c.agent, c.agent_config, c.hours)
        row = CellRow(
            label=label,
            benchmark=c.benchmark,
            base_model=c.base_model,
            repeat=c.repeat,
            score=c.score,
            raw=c.raw,
            fallback=c.fallback,
            reason=c.reason,
            flags=[flag_code(f) for f in c.flags],
            normalised_gain=gain(c),
            base=base.get((c.benchmark, c.base_model, s.eval_limit if s else None)),
            instruct=inst.get((c.benchmark, c.base_model, s.eval_limit if s else None)),
            time_used_s=s.time_used_s if s else None,
            cost_usd=s.cost_usd if s else None,
            path=c.path,
            eval_limit=s.eval_limit if s else None,
        )
        cell_rows.append(row)
        key = (c.agent, c.agent_config, c.hours)
        by_agent.setdefault(key, []).append(row)
        raw_by_agent.setdefault(key, []).append(c)

    agents: list[AgentRow] = []
    for rank, r in enumerate(rows, 1):
        key = (r.agent, r.agent_config, r.hours)
        mine = by_agent.get(key, [])
        my_runs = [runs[c.path] for c in mine if c.path in runs]
        times = [s.time_used_s for s in my_runs if s.time_used_s is not None]
        mean_time = _mean(times)
        gains = [c.normalised_gain for c in mine]
        known_gains = [g for g in gains if g is not None]
        agents.append(
            AgentRow(
                rank=rank,
                label=r.label,
                agent=r.agent,
                agent_config=r.agent_config,
                hours=r.hours,
                score=r.score,
                std=r.std,
                n_repeats=r.n_repeats,
                repeat_scores=r.repeat_scores,
                per_benchmark=r.per_benchmark,
                per_model=_per_model(raw_by_agent.get(key, []), w, models),
                normalised_gain=_mean(known_gains) if gains and len(known_gains) == len(gains) else None,
                n_runs=len(mine),
                n_fallback=r.n_fallback,
                missing=r.missing,
                mean_time_s=mean_time,
                time_pct_of_budget=100 * mean_time / (r.hours * 3600) if mean_time is not None and r.hours else None,
                input_tokens=_int_or_none(_sum_or_none([s.input_tokens for s in my_runs])),
                output_tokens=_int_or_none(_sum_or_none([s.output_tokens for s in my_runs])),
                cost_usd=_sum_or_none([s.cost_usd for s in my_runs]),
                eval_limits=sorted({c.eval_limit for c in mine if c.eval_limit is not None}),
            )
        )
    board = published_board(published) if published is not None else None
    notes = []
    if board is not None and cells and scan.protocol != get_suite(board.suite).protocol:
        notes.append(
            f"your runs were evaluated under protocol {scan.protocol!r}, the published {board.suite} agents under "
            f"{get_suite(board.suite).protocol!r}: prompts, decoding and scoring differ, the scores are not comparable"
        )
    return LeaderboardReport(
        generated_at=datetime.now(UTC),
        results_root=str(root),
        weights=w,
        weights_source=source,
        protocol=scan.protocol,
        suite=scan.suite,
        published=[
            PublishedRow(
                name=a.name,
                suite=board.suite,
                score=a.score,
                std=a.std,
                n_runs=a.n_runs,
                per_benchmark=a.per_benchmark(),
            )
            for a in board.agents
        ]
        if board
        else [],
        notes=notes,
        benchmarks=benches,
        models=models,
        agents=agents,
        cells=cell_rows,
        problems=scan.problems,
        superseded=[s.path for s in scan.superseded],
    )


def _int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)


def _limit_mark(limits: list[int]) -> str:
    """The mark of an agent whose score comes (partly) from ``--limit`` evaluations."""
    if not limits:
        return ""
    return limited(limits[0], short=True) if len(limits) == 1 else " (limit)"


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


AGENT_COLUMNS = (
    "rank",
    "agent",
    "score",
    "std",
    "repeats",
    "fallback cells",
    "missing cells",
    "normalised gain",
    "mean time",
    "% of budget",
    "tokens in",
    "tokens out",
    "cost USD",
)


def agent_table(report: LeaderboardReport) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the main table, every value already formatted (one source for all views).

    With published rows, one ranking of ours and theirs, a ``source`` column saying which is which; a
    published row has its published score, std and run count (in the repeats column) and no run details.
    """
    header = [*AGENT_COLUMNS[:5], *report.benchmarks, *AGENT_COLUMNS[5:]]
    ours = {a.label: a for a in report.agents}
    out = []
    for r in ranked_rows(report):
        a = ours.get(r.label) if r.source == "ours" else None
        if a is None:
            row = [
                str(r.rank),
                r.label,
                _fmt(r.score),
                _fmt(r.std),
                str(r.n_runs),
                *(_fmt(r.per_benchmark.get(b)) for b in report.benchmarks),
                *("—" for _ in AGENT_COLUMNS[5:]),
            ]
        else:
            row = [
                str(r.rank),
                a.label,
                _fmt(a.score) + _limit_mark(a.eval_limits),
                _fmt(a.std),
                str(a.n_repeats),
                *(_fmt(a.per_benchmark.get(b)) for b in report.benchmarks),
                str(a.n_fallback),
                str(len(a.missing)),
                _fmt(a.normalised_gain),
                "—" if a.mean_time_s is None else hms(a.mean_time_s),
                _fmt(a.time_pct_of_budget, 1),
                "—" if a.input_tokens is None else str(a.input_tokens),
                "—" if a.output_tokens is None else str(a.output_tokens),
                _fmt(a.cost_usd, 2),
            ]
        if report.published:
            row.insert(2, r.source)
        out.append(row)
    if report.published:
        header.insert(2, "source")
    return header, out


def ranked_rows(report: LeaderboardReport) -> list[RankedRow]:
    """Our agents and the published ones (if any) in one ranking (:func:`.published.side_by_side`); without
    published rows, our ranking as it is."""
    if not report.published:
        return [
            RankedRow(a.rank, a.label, "ours", a.score, a.std, a.n_repeats, dict(a.per_benchmark))
            for a in report.agents
        ]
    ours = [(a.label, a.score, a.std, a.n_repeats, a.per_benchmark) for a in report.agents]
    theirs = [(p.name, p.score, p.std, p.n_runs, p.per_benchmark) for p in report.published]
    return side_by_side(ours, theirs, f"published {report.published[0].suite}")


def model_table(report: LeaderboardReport) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each agent's weighted score per base model."""
    return ["agent", *report.models], [
        [a.label, *(_fmt(a.per_model.get(m)) for m in report.models)] for a in report.agents
    ]


def to_json(report: LeaderboardReport) -> str:
    """The whole report as JSON (machine-readable; every number unrounded)."""
    return report.model_dump_json(indent=2) + "\n"


def to_csv(report: LeaderboardReport) -> str:
    """One row per agent, unrounded numbers, for spreadsheets."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(
        [
            "rank",
            "agent",
            "agent_config",
            "hours",
            "score",
            "std",
            "n_repeats",
            *report.benchmarks,
            "n_fallback",
            "n_missing",
            "normalised_gain",
            "mean_time_s",
            "time_pct_of_budget",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            *(["source"] if report.published else []),
        ]
    )
    blank = lambda v: "" if v is None else v  # noqa: E731 - a one-line local helper
    ranks = {r.label: r.rank for r in ranked_rows(report) if r.source == "ours"}
    for a in report.agents:
        wr.writerow(
            [
                ranks[a.label],
                a.agent,
                a.agent_config,
                blank(a.hours),
                blank(a.score),
                blank(a.std),
                a.n_repeats,
                *(blank(a.per_benchmark.get(b)) for b in report.benchmarks),
                a.n_fallback,
                len(a.missing),
                blank(a.normalised_gain),
                blank(a.mean_time_s),
                blank(a.time_pct_of_budget),
                blank(a.input_tokens),
                blank(a.output_tokens),
                blank(a.cost_usd),
                *(["ours"] if report.published else []),
            ]
        )
    for r in ranked_rows(report) if report.published else []:
        if r.source != "ours":  # a published agent: its published score, std and run count only
            per_bench = (blank(r.per_benchmark.get(b)) for b in report.benchmarks)
            wr.writerow([r.rank, r.label, "", "", r.score, blank(r.std), r.n_runs, *per_bench, *[""] * 8, r.source])
    return buf.getvalue()


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731 - a one-line local helper
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(report: LeaderboardReport) -> str:
    """Leaderboard, per-model table, flagged cells, weights and problems, as Markdown."""
    parts = ["# Leaderboard", "", _md_table(*agent_table(report)), ""]
    parts += ["## Score per base model", "", _md_table(*model_table(report)), ""]
    flagged = [c for c in report.cells if c.fallback or c.flags]
    if flagged:
        parts += [
            "## Fallback and flagged cells",
            "",
            _md_table(
                ["agent", "benchmark", "model", "repeat", "raw", "scored", "flags", "why"],
                [
                    [
                        c.label,
                        c.benchmark,
                        c.base_model,
                        str(c.repeat),
                        _fmt(c.raw),
                        _fmt(c.score),
                        " ".join(c.flags),
                        c.reason or "",
                    ]
                    for c in flagged
                ],
            ),
            "",
        ]
    parts += [
        "## Weights",
        "",
        f"Source: {report.weights_source}.",
        "",
        _md_table(["benchmark", "weight"], [[b, f"{w:.4f}"] for b, w in sorted(report.weights.items())]),
        "",
    ]
    if report.notes:
        parts += ["## Notes", "", *[f"- {n}" for n in report.notes], ""]
    if report.problems:
        parts += ["## Problems (left out)", "", *[f"- `{p}`" for p in report.problems], ""]
    return "\n".join(parts)


FORMATS = {"json": to_json, "csv": to_csv, "markdown": to_markdown}
