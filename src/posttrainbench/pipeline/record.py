"""record: the versions of everything that made the run; ``run.json`` is then complete."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from .. import __version__
from ..domain import RecordResult, RunRecord
from .common import now

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> RecordResult:
    """Record the versions (the agent's from its solve phase)."""
    solve = record.phases.solve.details
    record.versions = versions() | {"agent": solve.agent_version if solve is not None else ""}
    return RecordResult(completed_at=now())


def versions() -> dict[str, str]:
    """Versions of ptb, Python and the packages a result depends on."""
    out = {"posttrainbench": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "inspect-ai", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out
