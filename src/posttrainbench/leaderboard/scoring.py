"""The per-cell scoring policy of ../shared/DESIGN.md.

A cell's score is the accuracy of ``final_model`` on the full test set. A run that failed (no
model, evaluation failed) or whose verification failed or did not run gets the base model's
zero-shot score instead (the *fallback*), marked as such; the raw score is kept.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..domain import RunRecord, VerdictStatus


class Cell(BaseModel):
    """One leaderboard cell: one run of one agent on one (benchmark, base model)."""

    agent: str
    agent_config: str
    benchmark: str
    base_model: str
    repeat: int
    raw: float | None
    score: float | None
    fallback: bool
    reason: str | None = None
    flags: list[str] = []


def score_cell(record: RunRecord, base_score: float | None) -> Cell:
    """Apply the fallback policy to one run record."""
    spec = record.spec
    raw = record.metrics.get("score") if record.metrics.get("status") == "ok" else None
    flags = [
        f"{v.gate}:{v.status.value}"
        for v in record.verdicts
        if v.status != VerdictStatus.passed and v.gate in record.required_gates
    ]
    reason: str | None = None
    if not record.completed:
        reason = "run not completed"
    elif raw is None:
        reason = record.failure or "no score"
    elif not record.verified:
        reason = "verification " + (record.final_verdict.value if record.final_verdict else "missing")
    fallback = reason is not None
    return Cell(
        agent=spec.agent,
        agent_config=spec.agent_config,
        benchmark=spec.benchmark,
        base_model=spec.base_model,
        repeat=spec.repeat,
        raw=raw,
        score=base_score if fallback else raw,
        fallback=fallback,
        reason=reason,
        flags=flags,
    )
