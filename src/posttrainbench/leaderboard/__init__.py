"""Scoring policy and aggregation: per-cell fallback, grids, weights, agent scores, leaderboard."""

from .aggregate import (
    LeaderboardRow,
    MissingCellsError,
    RepeatsSummary,
    ScoreBreakdown,
    agent_score,
    agent_score_over_repeats,
    apply_fallback,
    leaderboard_from_cells,
    normalised_gain,
    normalised_gain_grid,
    repeats_summary,
    score_breakdown,
)
from .grids import Grid, GridError, GridValue, Sentinel, read_grid, write_grid
from .options import RankOptions
from .scoring import Cell, score_cell
from .weights import benchmark_weights, load_weights, save_weights

__all__ = [
    "Cell",
    "Grid",
    "GridError",
    "GridValue",
    "LeaderboardRow",
    "MissingCellsError",
    "RankOptions",
    "RepeatsSummary",
    "ScoreBreakdown",
    "Sentinel",
    "agent_score",
    "agent_score_over_repeats",
    "apply_fallback",
    "benchmark_weights",
    "leaderboard_from_cells",
    "load_weights",
    "normalised_gain",
    "normalised_gain_grid",
    "read_grid",
    "repeats_summary",
    "save_weights",
    "score_breakdown",
    "score_cell",
    "write_grid",
]
