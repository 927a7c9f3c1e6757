"""The Agent protocol: how a scaffold is set up in a workspace and launched in the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..domain import AgentSpec, RunSpec


@dataclass(frozen=True)
class LaunchContext:
    """What an agent needs to know to start inside the sandbox."""

    spec: RunSpec
    workspace: Path
    prompt_file: Path
    python: str
    host_env: dict[str, str] = field(default_factory=dict)


class AgentLaunchError(RuntimeError):
    """The agent cannot be launched (missing CLI, missing key, unknown config)."""


class Agent(Protocol):
    """One agent scaffold."""

    spec: AgentSpec

    def validate_config(self, config: str) -> None:
        """Raise AgentLaunchError for a config this agent cannot run (checked before any work)."""
        ...

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        """Copy the agent's own files into the workspace; return their relative paths."""
        ...

    def command(self, ctx: LaunchContext) -> list[str]:
        """argv run inside the sandbox, cwd = workspace. The prompt goes in via stdin."""
        ...

    def environment(self, ctx: LaunchContext) -> dict[str, str]:
        """Agent-specific environment (its own secrets only, injected by name)."""
        ...

    def version(self) -> str:
        """Version string recorded in run.json."""
        ...
