"""Scoring policy and aggregation (v0: per-cell fallback; full leaderboard lands later)."""

from .scoring import Cell, score_cell

__all__ = ["Cell", "score_cell"]
