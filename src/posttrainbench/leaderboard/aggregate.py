"""From cells to agent scores: fallback, weighted score, repeats, normalised gain, leaderboard.

Policy (../shared/DESIGN.md, "Scoring policy"):

* a cell that is not a number (failed run, ``ERR``, ``not stored``...) gets the base model's
  zero-shot score (:func:`apply_fallback`), and is marked as such;
* agent score = ``Σ_b w_b · mean over base models of the cell`` (:func:`agent_score`);
* over repeats: mean ± **sample** std (ddof=1) of the per-repeat agent scores; one repeat gives
  std ``None``.

Absent cells (a model or benchmark with no cell at all) are never dropped silently: the strict
functions raise :class:`MissingCellsError` listing all of them, the lenient ones
(:func:`score_breakdown`, :func:`repeats_summary`, :func:`leaderboard_from_cells`) return them in
a ``missing`` list and give no score where one would need them.

Arithmetic is plain left-to-right float sums (mean = sum / n, sample std = sqrt(Σ(x − mean)² /
(n − 1))), the published procedure's, so published numbers are reproduced to the last bit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .grids import Grid, GridValue, is_number
from .scoring import Cell

__all__ = [
    "LeaderboardRow",
    "MissingCellsError",
    "RepeatsSummary",
    "ScoreBreakdown",
    "agent_label",
    "agent_score",
    "agent_score_over_repeats",
    "apply_fallback",
    "leaderboard_from_cells",
    "normalised_gain",
    "normalised_gain_grid",
    "repeats_summary",
    "score_breakdown",
]


def _mean(values: Sequence[float]) -> float:
    """``sum / n`` (plain float sum, like the published scripts)."""
    return sum(values) / len(values)


def _sample_std(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); needs at least two values."""
    avg = _mean(values)
    return math.sqrt(sum((x - avg) ** 2 for x in values) / (len(values) - 1))


class MissingCellsError(ValueError):
    """Cells needed for a score are absent or not numeric; ``missing`` lists every one."""

    def __init__(self, missing: Sequence[tuple], what: str = "score") -> None:
        self.missing = list(missing)
        super().__init__(f"cannot compute {what}: {len(self.missing)} missing cell(s): {self.missing}")


# --------------------------------------------------------------------------- fallback


def apply_fallback(raw_grid: Grid, baseline_grid: Grid) -> tuple[Grid, dict[tuple[str, str], bool]]:
    """Replace every non-numeric cell by the base model's zero-shot score.

    Returns ``(final_grid, fallback_mask)`` where the mask maps each (model, benchmark) of the
    raw grid's present cells to ``True`` if it was replaced. Absent cells stay absent (there was
    no run to fall back from; scoring reports them as missing). Raises
    :class:`MissingCellsError` if a cell needs a fallback the baseline grid cannot give.
    """
    cells: dict[tuple[str, str], GridValue] = {}
    mask: dict[tuple[str, str], bool] = {}
    lacking: list[tuple[str, str]] = []
    for key in raw_grid.keys():  # noqa: SIM118 - a Grid is not iterable
        if key not in raw_grid.cells:
            continue
        value = raw_grid.cells[key]
        if is_number(value):
            cells[key], mask[key] = float(value), False
            continue
        base = baseline_grid.number(*key)
        if base is None:
            lacking.append(key)
            continue
        cells[key], mask[key] = base, True
    if lacking:
        raise MissingCellsError(lacking, "fallback (no zero-shot baseline for model, benchmark)")
    final = Grid(list(raw_grid.models), list(raw_grid.benchmarks), cells, raw_grid.index_name)
    return final, mask


# --------------------------------------------------------------------------- one grid


class ScoreBreakdown(NamedTuple):
    """Agent score of one grid; ``score`` is ``None`` when any needed cell is missing."""

    score: float | None
    per_benchmark: dict[str, float | None]
    missing: list[tuple[str, str]]


def score_breakdown(grid: Grid, weights: Mapping[str, float], models: Sequence[str] | None = None) -> ScoreBreakdown:
    """``Σ_b w_b · mean over models of grid[model, b]``, with missing cells listed.

    ``models`` defaults to the grid's rows; the benchmarks are those of ``weights``. A cell is
    missing if it is absent or not numeric (apply :func:`apply_fallback` first).
    """
    models = list(grid.models if models is None else models)
    if not models:
        raise ValueError("no models to score")
    per_bench: dict[str, float | None] = {}
    means: dict[str, float] = {}
    missing: list[tuple[str, str]] = []
    for bench in weights:
        values = [grid.number(m, bench) for m in models]
        gaps = [(m, bench) for m, v in zip(models, values) if v is None]
        missing.extend(gaps)
        if gaps:
            per_bench[bench] = None
        else:
            per_bench[bench] = means[bench] = _mean([v for v in values if v is not None])
    if missing:
        return ScoreBreakdown(None, per_bench, missing)
    score = 0.0
    for bench, w in weights.items():
        score += means[bench] * w
    return ScoreBreakdown(score, per_bench, [])


def agent_score(grid: Grid, weights: Mapping[str, float], models: Sequence[str] | None = None) -> float:
    """The agent score of a (post-fallback) grid; raises :class:`MissingCellsError` on gaps."""
    result = score_breakdown(grid, weights, models)
    if result.score is None:
        raise MissingCellsError(result.missing, "agent score")
    return result.score


# --------------------------------------------------------------------------- repeats


class RepeatsSummary(NamedTuple):
    """Cell-wise mean and sample std over repeats.

    ``std`` is ``None`` for a single repeat. A cell absent or non-numeric in any repeat is left
    out of ``mean``/``std`` and listed in ``missing`` as ``(repeat index, model, benchmark)``.
    """

    mean: Grid
    std: Grid | None
    missing: list[tuple[int, str, str]]


def _union(seqs: Iterable[Sequence[str]]) -> list[str]:
    out: list[str] = []
    for seq in seqs:
        out.extend(x for x in seq if x not in out)
    return out


def repeats_summary(
    grids: Sequence[Grid],
    models: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
) -> RepeatsSummary:
    """Mean and sample std (ddof=1) per cell over repeat grids (models/benchmarks: union)."""
    if not grids:
        raise ValueError("no repeat grids given")
    models = list(models) if models is not None else _union(g.models for g in grids)
    benches = list(benchmarks) if benchmarks is not None else _union(g.benchmarks for g in grids)
    mean: dict[tuple[str, str], GridValue] = {}
    std: dict[tuple[str, str], GridValue] = {}
    missing: list[tuple[int, str, str]] = []
    for m in models:
        for b in benches:
            values = [g.number(m, b) for g in grids]
            gaps = [(i, m, b) for i, v in enumerate(values) if v is None]
            if gaps:
                missing.extend(gaps)
                continue
            known = [v for v in values if v is not None]  # all of them
            mean[(m, b)] = _mean(known)
            if len(known) > 1:
                std[(m, b)] = _sample_std(known)
    index = grids[0].index_name
    std_grid = Grid(list(models), list(benches), std, index) if len(grids) > 1 else None
    missing.sort()
    return RepeatsSummary(Grid(list(models), list(benches), mean, index), std_grid, missing)


def agent_score_over_repeats(
    grids: Sequence[Grid], weights: Mapping[str, float], models: Sequence[str] | None = None
) -> tuple[float, float | None]:
    """Mean and sample std (ddof=1; ``None`` for one repeat) of the per-repeat agent scores.

    ``models`` defaults to the union of the grids' rows, so a model one repeat lacks is missing.
    Raises :class:`MissingCellsError` listing ``(repeat index, model, benchmark)`` of every gap.
    """
    if not grids:
        raise ValueError("no repeat grids given")
    models = list(models) if models is not None else _union(g.models for g in grids)
    scores: list[float] = []
    missing: list[tuple[int, str, str]] = []
    for i, grid in enumerate(grids):
        result = score_breakdown(grid, weights, models)
        missing.extend((i, m, b) for m, b in result.missing)
        if result.score is not None:
            scores.append(result.score)
    if missing:
        raise MissingCellsError(missing, "agent score over repeats")
    return _mean(scores), (_sample_std(scores) if len(scores) > 1 else None)


# --------------------------------------------------------------------------- normalised gain


def normalised_gain(score: float, base: float, instruct: float) -> float:
    """``(score − base) / (instruct − base)``: 0 = base model, 1 = official instruct model."""
    gap = instruct - base
    if gap == 0:
        raise ZeroDivisionError(f"instruct score equals base score ({base!r}): gain undefined")
    return (score - base) / gap


def normalised_gain_grid(
    grid: Grid,
    baseline_grid: Grid,
    instruct_of: Mapping[str, str] | Callable[[str], str],
) -> tuple[Grid, list[tuple[str, str]]]:
    """Normalised gain of every cell against the zero-shot baseline grid.

    Returns ``(gain_grid, missing)``; a cell whose score, base or instruct score is absent or
    non-numeric, or whose instruct score equals its base score, is left out and listed.
    """
    cells: dict[tuple[str, str], GridValue] = {}
    missing: list[tuple[str, str]] = []
    for model, bench in grid.keys():  # noqa: SIM118 - a Grid is not iterable
        inst_model = (
            instruct_of(model)
            if callable(instruct_of) and not isinstance(instruct_of, Mapping)
            else instruct_of.get(model)
        )
        score = grid.number(model, bench)
        base = baseline_grid.number(model, bench)
        inst = baseline_grid.number(inst_model, bench) if inst_model is not None else None
        if score is None or base is None or inst is None or inst == base:
            missing.append((model, bench))
            continue
        cells[(model, bench)] = normalised_gain(score, base, inst)
    return Grid(list(grid.models), list(grid.benchmarks), cells, grid.index_name), missing


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class LeaderboardRow:
    """One agent (agent + config) on the leaderboard.

    ``score``/``std`` are the mean and sample std over repeats of the agent score (``std`` is
    ``None`` for one repeat; both ``None`` if any cell is missing). ``per_benchmark`` is the mean
    over repeats of the model-mean cell score (``None`` where a cell is missing).
    ``missing`` lists ``(repeat, model, benchmark)`` of absent cells and of fallback cells with
    no baseline.
    """

    agent: str
    agent_config: str
    score: float | None
    std: float | None
    n_repeats: int
    per_benchmark: dict[str, float | None]
    n_fallback: int
    missing: list[tuple[int, str, str]] = field(default_factory=list)
    repeat_scores: dict[int, float | None] = field(default_factory=dict)
    hours: float | None = None

    @property
    def label(self) -> str:
        return agent_label(self.agent, self.agent_config, self.hours)


def agent_label(agent: str, agent_config: str, hours: float | None) -> str:
    """How an agent is named on the leaderboard: ``agent/config`` plus ``@<H>h`` where known."""
    return f"{agent}/{agent_config}" + ("" if hours is None else f"@{hours:g}h")


# A leaderboard row's identity: agent, agent config, hours.
_AgentKey = tuple[str, str, float | None]


def leaderboard_from_cells(
    cells: Iterable[Cell],
    baselines: Mapping[tuple[str, str], float],
    weights: Mapping[str, float],
    *,
    models: Sequence[str] | None = None,
    n_repeats: int | None = None,
) -> list[LeaderboardRow]:
    """Group cells by (agent, config) and repeat into grids and rank the agents.

    ``baselines`` maps ``(benchmark, base model)`` to the zero-shot score used for fallback
    cells (it takes precedence over ``Cell.score``; a fallback cell with neither is missing).
    Expected models are ``models`` or, by default, every base model seen in any cell, so an
    agent lacking a model others ran is reported; expected repeats are ``0..n_repeats-1`` if
    given, else the repeats the agent has. Rows are sorted by score, highest first, agents with
    no score last. Raises ``ValueError`` on duplicate cells, benchmarks without a weight, or
    base models outside an explicit ``models``.
    """
    cells = list(cells)
    unweighted = sorted({c.benchmark for c in cells} - set(weights))
    if unweighted:
        raise ValueError(f"cells for benchmarks without a weight: {unweighted}")
    seen_models = _union([[c.base_model for c in cells]])
    expected_models = list(models) if models is not None else seen_models
    unexpected = sorted({c.base_model for c in cells} - set(expected_models))
    if unexpected:
        raise ValueError(f"cells for base models not in `models`: {unexpected}")
    benches = list(weights)

    by_agent: dict[_AgentKey, dict[int, dict[tuple[str, str], GridValue]]] = defaultdict(lambda: defaultdict(dict))
    fallbacks: dict[_AgentKey, int] = defaultdict(int)
    unresolved: dict[_AgentKey, list[tuple[int, str, str]]] = defaultdict(list)
    for c in cells:
        agent = (c.agent, c.agent_config, c.hours)
        key = (c.base_model, c.benchmark)
        grid_cells = by_agent[agent][c.repeat]
        if key in grid_cells or (c.repeat, *key) in unresolved[agent]:
            raise ValueError(f"duplicate cell: agent {agent}, repeat {c.repeat}, {key}")
        value = baselines.get((c.benchmark, c.base_model)) if c.fallback else c.score
        if value is None and c.fallback:
            value = c.score
        if value is None or not is_number(value):
            unresolved[agent].append((c.repeat, *key))
            continue
        fallbacks[agent] += c.fallback
        grid_cells[key] = float(value)

    rows: list[LeaderboardRow] = []
    for agent, repeats in by_agent.items():
        repeat_ids = sorted(set(range(n_repeats)) | set(repeats)) if n_repeats else sorted(repeats)
        grids = {r: Grid(expected_models, benches, dict(repeats.get(r, {}))) for r in repeat_ids}
        results = {r: score_breakdown(g, weights, expected_models) for r, g in grids.items()}
        missing = sorted((r, m, b) for r, res in results.items() for m, b in res.missing)
        scores = [res.score for res in results.values() if res.score is not None]
        complete = len(scores) == len(results)
        score = _mean(scores) if complete else None
        std = _sample_std(scores) if complete and len(scores) > 1 else None
        per_bench: dict[str, float | None] = {}
        for b in benches:
            vals = [res.per_benchmark[b] for res in results.values()]
            known = [v for v in vals if v is not None]
            per_bench[b] = _mean(known) if len(known) == len(vals) else None
        rows.append(
            LeaderboardRow(
                agent=agent[0],
                agent_config=agent[1],
                score=score,
                std=std,
                n_repeats=len(repeat_ids),
                per_benchmark=per_bench,
                n_fallback=fallbacks[agent],
                missing=missing,
                repeat_scores={r: res.score for r, res in results.items()},
                hours=agent[2],
            )
        )
    rows.sort(key=lambda row: (row.score is None, -(row.score or 0.0), row.agent, row.agent_config, row.hours or 0.0))
    return rows
