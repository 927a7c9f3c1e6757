"""What the phases share: the infrastructure error, outcomes, time formatting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..console import hms
from ..domain import RunRecord

__all__ = ["PhaseError", "ProgressFn", "hms", "now", "record_outcome"]

#: Called with (phase, message) as a run goes (the CLI logs it).
ProgressFn = Callable[[str, str], None]


class PhaseError(RuntimeError):
    """An infrastructure failure inside a phase; the phase is retried on resume."""


def now() -> datetime:
    return datetime.now(UTC)


def record_outcome(record: RunRecord, phase: str, cause: str) -> None:
    """Record the first outcome failure (the run goes on to record it)."""
    if record.failure is None:
        record.failure = f"{phase}: {cause}"
