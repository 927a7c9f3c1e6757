"""Build the leaderboard from a results folder, through its SQLite index.

The run folders are the source of truth; :func:`scan_results` refreshes the index
(``results/index.py``), applies the one latest-run rule (``results.summary.select_latest``) and
returns what the policy needs. Weights come from, in order: an explicit mapping (``--weights
FILE``), the recorded base *and* instruct baselines (``∝ 1/(instruct − base)``), or, when a suite
is given (``--suite``), its published factors, else equal weights over the benchmarks present; the
source is always said. With a suite, agents are ranked on exactly the suite's benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..results.index import Baseline, read_index, refresh
from ..results.summary import RunSummary, select_latest
from .aggregate import LeaderboardRow, leaderboard_from_cells
from .grids import Grid, GridValue
from .scoring import Cell, score_cell
from .suites import Suite, get_suite
from .weights import benchmark_weights


@dataclass
class ResultsScan:
    """What a results folder holds: latest run per cell, superseded runs, baselines, problems."""

    runs: list[RunSummary] = field(default_factory=list)
    superseded: list[RunSummary] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    weights_source: str = ""
    protocol: str = "strict"  # the protocol ranked (leaderboard)
    suite: str | None = None  # the suite ranked on, if any

    def baseline_scores(self, checkpoint: str = "base") -> dict[tuple[str, str, int | None], float]:
        """``(benchmark, base model, eval limit) -> score`` for one kind of checkpoint."""
        return {
            (b.benchmark, b.base_model, b.eval_limit): b.score
            for b in self.baselines
            if b.checkpoint == checkpoint and b.score is not None
        }


def scan_results(root: Path, *, full: bool = False, db_path: Path | None = None) -> ResultsScan:
    """Refresh the index of ``root`` (kept at ``db_path``, default ``ROOT/results.db``) and read it
    back; bad folders become problems (path + cause)."""
    refresh(root, full=full, db_path=db_path)
    contents = read_index(root, db_path=db_path)
    latest, superseded = select_latest(contents.runs)
    latest.sort(key=lambda s: s.path)
    return ResultsScan(
        runs=latest,
        superseded=superseded,
        baselines=contents.baselines,
        problems=[cause for _, cause in contents.problems],
    )


def cells_from_scan(scan: ResultsScan) -> list[Cell]:
    """Apply the per-cell fallback policy to the latest run of every cell."""
    base = scan.baseline_scores("base")
    return [score_cell(s, base.get((s.benchmark, s.base_model, s.eval_limit))) for s in scan.runs]


def pick_protocol(cells: list[Cell]) -> str:
    """The protocol to rank by default: the runs' only one, else ``strict``."""
    found = {c.protocol for c in cells}
    return found.pop() if len(found) == 1 else "strict"


def split_by_protocol(cells: list[Cell], protocol: str) -> tuple[list[Cell], dict[str, int]]:
    """The cells of ``protocol``, and how many of each other protocol were left out."""
    other: dict[str, int] = {}
    for c in cells:
        if c.protocol != protocol:
            other[c.protocol] = other.get(c.protocol, 0) + 1
    return [c for c in cells if c.protocol == protocol], other


def weights_from_baselines(scan: ResultsScan, benchmarks: list[str], models: list[str]) -> dict[str, float] | None:
    """Weights ``∝ 1/(instruct − base)`` from recorded baselines, or None if any are missing."""
    grid_cells: dict[tuple[str, str], GridValue] = {}
    for kind, scores in (("base", scan.baseline_scores("base")), ("instruct", scan.baseline_scores("instruct"))):
        for (bench, model, limit), score in scores.items():
            if limit is None:  # weights use full-set baselines only
                grid_cells[(f"{model}::{kind}", bench)] = score
    rows = [f"{m}::{k}" for m in models for k in ("base", "instruct")]
    if not models or any((r, b) not in grid_cells for r in rows for b in benchmarks):
        return None
    try:
        return benchmark_weights(
            Grid(rows, benchmarks, grid_cells),
            [f"{m}::base" for m in models],
            lambda m: m.replace("::base", "::instruct"),
        )
    except ValueError:
        return None


def resolve_weights(
    scan: ResultsScan, cells: list[Cell], weights: dict[str, float] | None = None, suite: Suite | None = None
) -> tuple[dict[str, float], str]:
    """(weights, where they came from) for the suite's benchmarks, else for those present in ``cells``."""
    benches = list(suite.benchmarks) if suite else sorted({c.benchmark for c in cells})
    if weights is not None:
        return weights, "weights file"
    models = sorted({c.base_model for c in cells})
    computed = weights_from_baselines(scan, benches, models)
    if computed is not None:
        return computed, "1/(instruct − base) from recorded baselines"
    if suite is not None:
        return suite.factors, f"published factors of suite {suite.name} ({suite.factors_file}; no complete baselines)"
    return ({b: 1 / len(benches) for b in benches} if benches else {}), "equal (no instruct baselines recorded)"


def leaderboard(
    root: Path,
    weights: dict[str, float] | None = None,
    *,
    full: bool = False,
    db_path: Path | None = None,
    protocol: str | None = None,
    suite: str | None = None,
) -> tuple[list[LeaderboardRow], list[Cell], ResultsScan]:
    """Rows ranked by score, the cells they came from, and the scan (problems included). Only runs
    evaluated under one protocol are ranked, scores of different protocols are never mixed:
    ``protocol``, else the one protocol of the runs (``strict`` when they have several; the scan's
    ``protocol`` says which). With ``suite``, runs of benchmarks outside it are left out (said in the
    problems) and every agent is scored on all of the suite's benchmarks."""
    the_suite = get_suite(suite) if suite is not None else None
    scan = scan_results(root, full=full, db_path=db_path)
    cells = cells_from_scan(scan)
    scan.protocol = protocol or pick_protocol(cells)
    cells, other = split_by_protocol(cells, scan.protocol)
    scan.problems += [
        f"{n} run(s) evaluated under protocol {p!r} left out: a ranking never mixes protocols" for p, n in other.items()
    ]
    if the_suite is not None:
        scan.suite = the_suite.name
        outside: dict[str, int] = {}
        for c in cells:
            if c.benchmark not in the_suite.benchmarks:
                outside[c.benchmark] = outside.get(c.benchmark, 0) + 1
        scan.problems += [f"{n} run(s) of {b!r} left out: not in suite {the_suite.name}" for b, n in outside.items()]
        cells = [c for c in cells if c.benchmark in the_suite.benchmarks]
    w, scan.weights_source = resolve_weights(scan, cells, weights, the_suite)
    scan.weights = w
    unweighted = sorted({c.benchmark for c in cells} - set(w))
    if unweighted:  # a weights file that lacks a benchmark: say so, rank on the rest
        scan.problems += [
            f"benchmark {b!r} has no weight in the weights file; its runs are left out" for b in unweighted
        ]
        cells = [c for c in cells if c.benchmark in w]
    # Fallback cells already carry the baseline of their own eval limit (score_cell).
    rows = leaderboard_from_cells(cells, {}, w) if cells else []
    return rows, cells, scan
