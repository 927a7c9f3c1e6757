"""The published leaderboards (v1, v1.2), shipped as package data, and ranking our agents among them.

Each suite's folder (``resources/leaderboard/<suite>/``, origin in its SOURCE.md) holds the website's files:
``single_metrics_aggregated.csv`` (``agent,avg,std,n``: the published score, the sample std over runs and the
run count) and, per agent, ``aggregated_avg_<Agent>.csv`` (rows: base models, columns: benchmarks; the mean over
runs of each cell) and ``aggregated_std_<Agent>.csv`` where published. ``<Agent>`` is the agent's name with
spaces replaced by ``_``.

A published agent's score is ``Σ_b factor_b · mean over base models of its avg grid`` (:func:`grid_score`);
:func:`published_board` checks nothing by itself, the tests check every shipped grid against its ``avg``.
:func:`side_by_side` merges our ranked agents (scored with the same suite) with the published rows into one
ranking, each row marked with where it comes from.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from .grids import Grid, GridError, parse_grid
from .suites import get_suite, suite_dir

__all__ = [
    "Entry",
    "PublishedAgent",
    "PublishedBoard",
    "RankedRow",
    "grid_score",
    "published_board",
    "side_by_side",
]


@dataclass(frozen=True)
class PublishedAgent:
    """One agent of a published leaderboard: its published score, std and run count, and its grids."""

    name: str
    score: float
    std: float | None
    n_runs: int
    avg: Grid | None = None  # per-cell mean over runs (absent for a few v1 agents, see SOURCE.md)
    std_grid: Grid | None = None

    def per_benchmark(self) -> dict[str, float | None]:
        """Mean over base models of each benchmark's cell (empty without a grid)."""
        if self.avg is None:
            return {}
        out: dict[str, float | None] = {}
        for b in self.avg.benchmarks:
            vals = [self.avg.number(m, b) for m in self.avg.models]
            known = [v for v in vals if v is not None]
            out[b] = sum(known) / len(known) if known and len(known) == len(vals) else None
        return out


@dataclass(frozen=True)
class PublishedBoard:
    """A published leaderboard: its suite, its weights, its agents (in file order)."""

    suite: str
    factors: dict[str, float]
    agents: list[PublishedAgent] = field(default_factory=list)

    def agent(self, name: str) -> PublishedAgent:
        """The agent called ``name`` (``KeyError`` otherwise)."""
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(name)


def grid_score(grid: Grid, factors: Mapping[str, float]) -> float:
    """``Σ_b factor_b · mean over the grid's models of cell[model, b]`` (plain float sums, as published).

    Raises :class:`GridError` naming a missing or non-numeric cell.
    """
    score = 0.0
    for bench, w in factors.items():
        vals = [grid.number(m, bench) for m in grid.models]
        gaps = [m for m, v in zip(grid.models, vals) if v is None]
        if gaps:
            raise GridError(f"no number for benchmark {bench!r} of model(s) {gaps}")
        score += sum(v for v in vals if v is not None) / len(vals) * w
    return score


def _number(text: str, what: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what}: not a finite number: {text!r}")
    return value


@cache
def published_board(suite: str) -> PublishedBoard:
    """The published leaderboard of ``suite`` (``v1`` or ``v1.2``), read from the package data."""
    folder = suite_dir(suite)
    factors = get_suite(suite).factors
    text = folder.joinpath("single_metrics_aggregated.csv").read_text(encoding="utf-8")
    agents = []
    for row in csv.DictReader(io.StringIO(text)):
        if not row.get("agent"):
            continue
        name = row["agent"]
        stem = name.replace(" ", "_")
        grids: list[Grid | None] = []
        for kind in ("avg", "std"):
            f = folder.joinpath(f"aggregated_{kind}_{stem}.csv")
            grids.append(parse_grid(f.read_text(encoding="utf-8"), f"{suite}/{f.name}") if f.is_file() else None)
        n = int(row["n"])
        agents.append(
            PublishedAgent(
                name=name,
                score=_number(row["avg"], f"{suite}: avg of {name}"),
                std=_number(row["std"], f"{suite}: std of {name}") if row.get("std") and n > 1 else None,
                n_runs=n,
                avg=grids[0],
                std_grid=grids[1],
            )
        )
    return PublishedBoard(suite=suite, factors=factors, agents=agents)


@dataclass(frozen=True)
class RankedRow:
    """One row of a side-by-side ranking: ours or published."""

    rank: int
    label: str
    source: str  # "ours" or "published v1.2" (...)
    score: float | None
    std: float | None
    n_runs: int
    per_benchmark: dict[str, float | None]


Entry = tuple[str, float | None, float | None, int, Mapping[str, float | None]]
"""``(label, score, std, runs, per-benchmark)`` of one agent."""


def side_by_side(ours: Sequence[Entry], published: Sequence[Entry], source: str) -> list[RankedRow]:
    """Our agents and the published ones in one ranking, highest score first (agents without a score last;
    on a tie ours first). Published rows keep their published score, std and run count; ``source`` marks them
    (e.g. ``published v1.2``)."""
    rows = [("ours", *e) for e in ours] + [(source, *e) for e in published]
    rows.sort(key=lambda r: (r[2] is None, -(r[2] or 0.0), r[0] != "ours", r[1]))
    return [RankedRow(i, label, src, s, sd, n, dict(pb)) for i, (src, label, s, sd, n, pb) in enumerate(rows, 1)]
