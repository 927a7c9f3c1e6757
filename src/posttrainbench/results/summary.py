"""The flat summary of one run that the index stores and the leaderboard scores.

A :class:`RunRecord` is everything a run produced; a :class:`RunSummary` is the part the
leaderboard needs, flat enough to be one SQLite row. Both our own runs and imported upstream
runs become summaries, so the scoring policy has a single input type.

Latest-run selection (:func:`select_latest`) is defined here, once: among summaries of the same
cell key (agent, config, hours, suffix, benchmark, base model, repeat), the one created last
wins (ties broken by run id); the others are reported as superseded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

from ..domain import RunRecord, VerdictStatus

CellKey = tuple[str, str, float, str, str, str, int, str]


class RunSummary(BaseModel):
    """One run, flattened."""

    path: str = Field(..., description="Run folder, relative to the results root.")
    run_id: str
    source: str = Field("ptb", description="'ptb' for our runs, 'upstream' for imported ones.")
    agent: str
    agent_config: str
    hours: float
    suffix: str = ""
    benchmark: str
    base_model: str
    repeat: int
    eval_limit: int | None = None
    protocol: str = Field("strict", description="Evaluation protocol of the run's score.")
    created_at: datetime
    completed: bool
    final_verdict: str | None = None
    failure: str | None = None
    eval_status: str | None = None
    raw_score: float | None = Field(None, description="Score of final_model if the evaluation succeeded.")
    time_used_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    flags: list[str] = Field(default_factory=list, description="Required gates that did not pass, as 'gate:status'.")

    @property
    def verified(self) -> bool:
        return self.final_verdict == VerdictStatus.passed.value

    @property
    def cell_key(self) -> CellKey:
        # the protocol is part of the cell: a run of another protocol never supersedes one of this
        return (
            self.agent, self.agent_config, self.hours, self.suffix, self.benchmark, self.base_model, self.repeat,
            self.protocol,
        )  # fmt: skip

    @property
    def budget_s(self) -> float:
        return self.hours * 3600


#: Flag of a run evaluated on a set that is not the pinned one (only with PTB_ALLOW_UNPINNED_DATA=1).
DATA_DIFFERS = "data:differs"


def summarize(record: RunRecord, path: str = "") -> RunSummary:
    """Flatten a run record (``path`` is the run folder relative to the results root)."""
    spec, m = record.spec, record.metrics
    usage = record.usage or {}
    return RunSummary(
        path=path,
        run_id=record.run_id,
        source=str(record.imported_from.get("kind", "upstream")) if record.imported_from else "ptb",
        agent=spec.agent,
        agent_config=spec.agent_config,
        hours=spec.hours,
        suffix=spec.suffix,
        benchmark=spec.benchmark,
        base_model=spec.base_model,
        repeat=spec.repeat,
        eval_limit=spec.eval_limit,
        protocol=spec.protocol,
        created_at=record.created_at,
        completed=record.completed,
        final_verdict=record.final_verdict.value if record.final_verdict else None,
        failure=record.failure,
        eval_status=m.status if m is not None else None,
        raw_score=m.score if m is not None and m.scored else None,
        time_used_s=record.time_used_s,
        input_tokens=int(usage["input_tokens"]) if "input_tokens" in usage else None,
        output_tokens=int(usage["output_tokens"]) if "output_tokens" in usage else None,
        cost_usd=float(usage["cost_usd"]) if "cost_usd" in usage else None,
        flags=[
            f"{v.gate}:{v.status.value}"
            for v in record.verdicts
            if v.status != VerdictStatus.passed and v.gate in record.required_gates
        ]
        + ([DATA_DIFFERS] if m is not None and (m.data or {}).get("status") == "differs" else []),
    )


def select_latest(summaries: Iterable[RunSummary]) -> tuple[list[RunSummary], list[RunSummary]]:
    """(latest run per cell key, superseded runs). The one rule used everywhere."""
    best: dict[CellKey, RunSummary] = {}
    superseded: list[RunSummary] = []
    for s in summaries:
        cur = best.get(s.cell_key)
        if cur is None:
            best[s.cell_key] = s
        elif (s.created_at, s.run_id) > (cur.created_at, cur.run_id):
            superseded.append(cur)
            best[s.cell_key] = s
        else:
            superseded.append(s)
    return list(best.values()), superseded
