"""The report's one door to the results and the leaderboard (an adapter, nothing more).

Every number the site shows comes from here, and every number here comes from
:mod:`posttrainbench.leaderboard` (scoring policy, fallback, weights, mean ± std) or straight from
the run records. Nothing in this module decides a score: it groups what those functions return
into the shapes the pages need. When the leaderboard grows richer tables (per-benchmark,
per-model, normalised gain, flags) or the SQLite index, this is the only module to switch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..domain import RunRecord
from ..leaderboard import Cell, Grid, LeaderboardRow, RepeatsSummary, repeats_summary
from ..leaderboard.from_results import leaderboard

# A run folder's name ends with the 12-hex run id (results.layout.run_name).
_RUN_ID_SUFFIX = re.compile(r"_([0-9a-f]{12})$")


@dataclass(frozen=True)
class RunEntry:
    """One run: its record, its leaderboard cell and its folder on disk (``None`` if not found)."""

    record: RunRecord
    cell: Cell
    folder: Path | None

    @property
    def agent_key(self) -> tuple[str, str]:
        return (self.record.spec.agent, self.record.spec.agent_config)


@dataclass(frozen=True)
class AgentTotals:
    """Per-agent sums and means over its runs (what the leaderboard row does not carry)."""

    runs: int
    verified: int
    fallback: int
    time_used_s: float | None  # mean over runs that recorded a time
    budget_used: float | None  # mean fraction of the time budget used
    tokens: int  # input + output tokens, all runs
    cost_usd: float
    runs_without_usage: int


@dataclass
class ReportData:
    """Everything the site is built from."""

    root: Path
    weights: dict[str, float]
    rows: list[LeaderboardRow]
    runs: list[RunEntry]
    problems: list[str] = field(default_factory=list)

    @property
    def benchmarks(self) -> list[str]:
        """Benchmarks in weight order (those of the leaderboard), then any others seen in runs."""
        out = list(self.weights)
        out.extend(sorted({r.cell.benchmark for r in self.runs} - set(out)))
        return out

    @property
    def models(self) -> list[str]:
        return sorted({r.cell.base_model for r in self.runs})

    _by_agent: dict[tuple[str, str], list[RunEntry]] | None = field(default=None, repr=False)

    def agent_runs(self, agent: tuple[str, str]) -> list[RunEntry]:
        """The runs of one (agent, config), in record order."""
        if self._by_agent is None:
            self._by_agent = defaultdict(list)
            for r in self.runs:
                self._by_agent[r.agent_key].append(r)
        return list(self._by_agent.get(agent, ()))

    def totals(self, agent: tuple[str, str]) -> AgentTotals:
        """Counts, mean time used and usage sums of one agent's runs."""
        runs = self.agent_runs(agent)
        times = [r.record.time_used_s for r in runs if r.record.time_used_s is not None]
        fractions = [
            r.record.time_used_s / (r.record.spec.hours * 3600)
            for r in runs
            if r.record.time_used_s is not None
        ]
        return AgentTotals(
            runs=len(runs),
            verified=sum(r.record.verified for r in runs),
            fallback=sum(r.cell.fallback for r in runs),
            time_used_s=sum(times) / len(times) if times else None,
            budget_used=sum(fractions) / len(fractions) if fractions else None,
            tokens=int(sum(r.record.usage.get("input_tokens", 0) + r.record.usage.get("output_tokens", 0)
                           for r in runs)),
            cost_usd=float(sum(r.record.usage.get("cost_usd", 0.0) for r in runs)),
            runs_without_usage=sum(not r.record.usage for r in runs),
        )

    def cell_summary(self, agent: tuple[str, str]) -> RepeatsSummary | None:
        """Mean and sample std over repeats of each (model, benchmark) cell of one agent.

        Cell values are the policy's (``Cell.score``: the raw score, or the base model's
        zero-shot score for a fallback cell); the statistics are ``leaderboard.repeats_summary``.
        """
        runs = self.agent_runs(agent)
        if not runs:
            return None
        by_repeat: dict[int, dict[tuple[str, str], float]] = defaultdict(dict)
        for r in runs:
            if r.cell.score is not None:
                by_repeat[r.cell.repeat][(r.cell.base_model, r.cell.benchmark)] = r.cell.score
        models, benches = self.models, self.benchmarks
        grids = [Grid(models, benches, by_repeat.get(rep, {}))
                 for rep in sorted({r.cell.repeat for r in runs})]
        return repeats_summary(grids, models, benches)

    def fallback_count(self, agent: tuple[str, str], model: str | None, benchmark: str | None) -> int:
        """Fallback cells of one agent, optionally restricted to a model and/or benchmark."""
        return sum(
            r.cell.fallback
            for r in self.agent_runs(agent)
            if (model is None or r.cell.base_model == model)
            and (benchmark is None or r.cell.benchmark == benchmark)
        )


def _run_folders(root: Path) -> dict[str, Path]:
    """Run id -> run folder, from the folder names of the published layout."""
    out: dict[str, Path] = {}
    for path in sorted(Path(root).glob("*/*/run.json")):
        match = _RUN_ID_SUFFIX.search(path.parent.name)
        if match:
            out.setdefault(match.group(1), path.parent)
    return out


def load_report_data(root: Path, weights: dict[str, float] | None = None) -> ReportData:
    """Scan ``root`` with the leaderboard and pair every record with its cell and folder.

    Unreadable run folders, and a leaderboard that cannot be ranked (e.g. duplicate cells), become
    ``problems``: the site lists them and still shows every run it could read.
    """
    root = Path(root)
    problems: list[str] = []
    try:
        rows, cells, scan = leaderboard(root, weights)
    except ValueError as exc:
        # Ranking refused (duplicate cells, benchmark without weight): show the runs, say why.
        from ..leaderboard.from_results import cells_from_scan, scan_results

        scan = scan_results(root)
        cells = cells_from_scan(scan)
        rows = []
        problems.append(f"leaderboard not ranked: {exc}")
    problems[:0] = list(scan.problems)
    if weights is None:
        benches = sorted({c.benchmark for c in cells})
        weights = {b: 1 / len(benches) for b in benches}
    # from_results.cells_from_scan yields one cell per record, in record order.
    if len(cells) != len(scan.records):
        raise RuntimeError("leaderboard returned a different number of cells than records")
    folders = _run_folders(root)
    runs = [
        RunEntry(record=rec, cell=cell, folder=folders.get(rec.run_id))
        for rec, cell in zip(scan.records, cells)
    ]
    return ReportData(root=root, weights=dict(weights), rows=rows, runs=runs, problems=problems)
