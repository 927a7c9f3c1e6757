"""What the phases share: the infrastructure error, outcomes, settings read from the environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone

from ..domain import RunRecord

#: Called with (phase, message) as a run goes (the CLI logs it).
ProgressFn = Callable[[str, str], None]


class PhaseError(RuntimeError):
    """An infrastructure failure inside a phase; the phase is retried on resume."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def record_outcome(record: RunRecord, phase: str, cause: str) -> None:
    """Record the first outcome failure (the run goes on to record it)."""
    if record.failure is None:
        record.failure = f"{phase}: {cause}"


def env_int(name: str, default: int) -> int:
    """A positive integer setting from the environment (bad values: a clear error)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise PhaseError(f"{name}={raw!r} must be a positive integer")
    return int(raw)


def env_float(name: str, default: float) -> float:
    """A positive number setting from the environment (bad values: a clear error)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise PhaseError(f"{name}={raw!r} must be a positive number")
    return value


def hms(seconds: float) -> str:
    """``H:MM:SS``."""
    s = int(round(seconds))
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"
