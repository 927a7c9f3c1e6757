"""The report's one door to the results and the leaderboard (an adapter, nothing more).

Every number the site shows comes from :func:`posttrainbench.leaderboard.tables.build_report`
(the same :class:`LeaderboardReport` that ``ptb leaderboard`` prints and exports: scoring policy,
fallback, weights and their source, latest-run rule, normalised gain, flags, time, tokens, cost)
or straight from a run's ``run.json``. Nothing here decides a score; it only groups what the
leaderboard returns into the shapes the pages need, and loads each run's record for its page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..domain import PHASES, RunRecord
from ..leaderboard import Grid, GridValue, RankOptions, RepeatsSummary, repeats_summary
from ..leaderboard.aggregate import agent_label
from ..leaderboard.tables import AgentRow, CellRow, LeaderboardReport, build_report
from ..results import RecordError, load_record
from ..results.run_lock import run_liveness


@dataclass(frozen=True)
class RunEntry:
    """One run folder: its record, and its leaderboard cell (``None`` for a superseded run)."""

    path: str  # relative to the results root, as the index stores it
    folder: Path
    label: str  # agent label, as on the leaderboard (agent/config@Hh)
    record: RunRecord
    cell: CellRow | None

    @property
    def superseded(self) -> bool:
        return self.cell is None


@dataclass
class ReportData:
    """Everything the site is built from."""

    root: Path
    report: LeaderboardReport
    runs: list[RunEntry]  # latest run of every cell
    superseded: list[RunEntry]
    problems: list[str] = field(default_factory=list)
    _by_label: dict[str, list[RunEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_label: dict[str, list[RunEntry]] = defaultdict(list)
        for r in self.runs:
            by_label[r.label].append(r)
        self._by_label = dict(by_label)

    @property
    def agents(self) -> list[AgentRow]:
        return self.report.agents

    @property
    def weights(self) -> dict[str, float]:
        return self.report.weights

    @property
    def benchmarks(self) -> list[str]:
        return self.report.benchmarks

    @property
    def models(self) -> list[str]:
        return self.report.models

    @property
    def labels(self) -> list[str]:
        """Agent labels in leaderboard order, then any with runs but no row."""
        ranked = [a.label for a in self.agents]
        return ranked + sorted(set(self._by_label) - set(ranked))

    def agent_runs(self, label: str) -> list[RunEntry]:
        """The latest runs of one agent, in path order."""
        return list(self._by_label.get(label, ()))

    def verified(self, label: str) -> int:
        """Runs of one agent whose every required gate ran and passed."""
        return sum(r.record.verified for r in self.agent_runs(label))

    def cell_summary(self, label: str) -> RepeatsSummary | None:
        """Mean and sample std over repeats of each (model, benchmark) cell of one agent.

        Cell values are the leaderboard's (raw score, or the zero-shot baseline for a fallback
        cell); the statistics are ``leaderboard.repeats_summary``.
        """
        runs = self.agent_runs(label)
        if not runs:
            return None
        by_repeat: dict[int, dict[tuple[str, str], GridValue]] = defaultdict(dict)
        for r in runs:
            if r.cell is not None and r.cell.score is not None:
                by_repeat[r.cell.repeat][(r.cell.base_model, r.cell.benchmark)] = r.cell.score
        models, benches = self.models, self.benchmarks
        repeats = sorted({r.cell.repeat for r in runs if r.cell is not None})
        grids = [Grid(models, benches, by_repeat.get(rep, {})) for rep in repeats]
        return repeats_summary(grids, models, benches) if grids else None

    def fallback_count(self, label: str, model: str | None, benchmark: str | None) -> int:
        """Fallback cells of one agent, optionally restricted to a model and/or benchmark."""
        return sum(
            r.cell.fallback
            for r in self.agent_runs(label)
            if r.cell is not None
            and (model is None or r.cell.base_model == model)
            and (benchmark is None or r.cell.benchmark == benchmark)
        )


def run_state(record: RunRecord, folder: Path | None = None) -> str:
    """What a run is doing now, read from its phases: ``done``; ``<phase> running`` (started, not
    finished); ``<phase> died`` (the same, but ``folder``'s run lock says its process has ended
    without recording why: killed, lost with its node); ``<phase> failed`` or ``<phase>
    interrupted``; ``incomplete`` (nothing started and nothing went wrong)."""
    if record.completed:
        return "done"
    for name in PHASES:
        st = record.phases[name]
        if st.status in ("failed", "interrupted"):
            return f"{name} {st.status}"
        if st.status == "pending" and st.started_at is not None and st.finished_at is None:
            return f"{name} died" if folder is not None and run_liveness(folder) == "gone" else f"{name} running"
    return "incomplete"


def load_report_data(root: Path, options: RankOptions | None = None) -> ReportData:
    """Rank ``root`` with the leaderboard as ``options`` say (as ``ptb leaderboard``; ``RankOptions``)
    and load the record of every run it names. Unreadable run folders (from the index) and records
    that cannot be re-read become ``problems``: the site lists them and still shows everything else.
    """
    root = Path(root)
    report = build_report(root, options)
    problems = list(report.problems)

    def entry(path: str, cell: CellRow | None, label: str | None) -> RunEntry | None:
        folder = root / path
        try:
            record = load_record(folder / "run.json")
        except RecordError as exc:  # changed on disk since the index read it
            problems.append(str(exc))
            return None
        if label is None:  # the leaderboard's own label rule
            s = record.spec
            label = agent_label(s.agent, s.agent_config, s.hours)
        return RunEntry(path=path, folder=folder, label=label, record=record, cell=cell)

    runs = [e for c in report.cells if (e := entry(c.path, c, c.label)) is not None]
    superseded = [e for p in report.superseded if (e := entry(p, None, None)) is not None]
    return ReportData(root=root, report=report, runs=runs, superseded=superseded, problems=problems)
