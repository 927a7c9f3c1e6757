"""The per-cell scoring policy of ../shared/DESIGN.md.

A cell's score is the accuracy of ``final_model`` on the full test set. A run that failed (no
model, evaluation failed) or whose verification failed or did not run gets the base model's
zero-shot score instead (the *fallback*), marked as such; the raw score is kept.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..domain import RunRecord
from ..results.summary import DATA_DIFFERS, RunSummary, summarize


class Cell(BaseModel):
    """One leaderboard cell: one run of one agent on one (benchmark, base model)."""

    agent: str
    agent_config: str
    benchmark: str
    base_model: str
    repeat: int
    hours: float | None = None
    protocol: str = "strict"
    raw: float | None
    score: float | None
    fallback: bool
    reason: str | None = None
    flags: list[str] = []
    path: str = ""


def score_cell(run: RunRecord | RunSummary, base_score: float | None) -> Cell:
    """Apply the fallback policy to one run (a record, or its summary from the index)."""
    s = summarize(run) if isinstance(run, RunRecord) else run
    raw = s.raw_score
    reason: str | None = None
    if not s.completed:
        reason = "run not completed"
    elif raw is None:
        reason = s.failure or "no score"
    elif not s.verified:
        reason = "verification " + (s.final_verdict or "missing")
    elif DATA_DIFFERS in s.flags:  # not comparable with the other cells
        reason = "evaluated on a set that is not the pinned one"
    fallback = reason is not None
    return Cell(
        agent=s.agent,
        agent_config=s.agent_config,
        benchmark=s.benchmark,
        base_model=s.base_model,
        repeat=s.repeat,
        hours=s.hours,
        protocol=s.protocol,
        path=s.path,
        raw=raw,
        score=base_score if fallback else raw,
        fallback=fallback,
        reason=reason,
        flags=s.flags,
    )
