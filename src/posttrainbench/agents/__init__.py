"""Agent scaffolds: set-up and launch inside the sandbox."""

from __future__ import annotations

from ..catalog import get_agent
from .base import Agent, AgentLaunchError, LaunchContext
from .reference import ReferenceAgent

__all__ = ["Agent", "AgentLaunchError", "LaunchContext", "ReferenceAgent", "get_agent_runner"]

_RUNNERS: dict[str, type] = {"reference": ReferenceAgent}


def get_agent_runner(name: str) -> Agent:
    """The runnable scaffold for agent ``name`` (raises for unknown or not-yet-runnable ones)."""
    spec = get_agent(name)  # UnknownNameError for unknown names
    if spec.id not in _RUNNERS:
        raise AgentLaunchError(
            f"agent {spec.id!r} ({spec.display_name}) is in the catalog but its scaffold is not "
            f"runnable in this version; runnable: {sorted(_RUNNERS)}"
        )
    return _RUNNERS[spec.id]()
