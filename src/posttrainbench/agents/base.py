"""The Agent base class: how a scaffold is set up in a workspace and launched in the sandbox,
and the one registry of agents.

An agent is a subclass of :class:`Agent` that declares its :class:`~posttrainbench.domain.AgentSpec`
as the class attribute ``spec`` and registers with ``@AGENTS.register``: its id, display name,
keys and API hosts live there and nowhere else. The hooks a scaffold may not need (installing a
CLI, read-only binds, network egress, extra secret values, the model its config names) have
defaults here, so the pipeline calls every hook of every agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..domain import AgentSpec, RunSpec
from ..registry import Registry
from ..settings import Settings


@dataclass(frozen=True)
class LaunchContext:
    """What an agent needs to know to start inside the sandbox."""

    spec: RunSpec
    workspace: Path
    prompt_file: Path
    python: str
    host_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Egress:
    """What the agent needs from the network: allowed targets and in-sandbox tunnels."""

    allow: list[str]
    tunnels: dict[int, str] = field(default_factory=dict)


class AgentLaunchError(RuntimeError):
    """The agent cannot be launched (missing CLI, missing key, unknown config)."""


class Agent(ABC):
    """One agent scaffold. Subclasses set ``spec`` and implement :meth:`command` and
    :meth:`version`; every other hook has a default."""

    spec: ClassVar[AgentSpec]
    #: Whether :meth:`install` installs something (``ptb agents install`` lists these agents).
    installable: ClassVar[bool] = False

    def __init__(self, *, settings: Settings | None = None) -> None:
        """``settings``: where its CLI is installed (``paths.agents_dir``); None: read from the
        environment when needed."""
        self.settings = settings

    def current_settings(self) -> Settings:
        """The agent's settings, else those of the environment now."""
        return self.settings if self.settings is not None else Settings.from_env()

    def validate_config(self, config: str) -> None:  # noqa: B027 - optional hook: any config by default
        """Raise AgentLaunchError for a config this agent cannot run (checked before any work)."""

    def preflight(self, ctx: LaunchContext) -> None:  # noqa: B027 - optional hook: nothing to check by default
        """Raise AgentLaunchError if this launch cannot start (e.g. a missing API key); ``ptb run``
        calls it before anything is written, so the error comes before a run folder exists."""

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        """Copy the agent's own files into the workspace; return their relative paths."""
        return []

    @abstractmethod
    def command(self, ctx: LaunchContext) -> list[str]:
        """argv run inside the sandbox, cwd = workspace. The prompt goes in via stdin."""

    def environment(self, ctx: LaunchContext) -> dict[str, str]:
        """Agent-specific environment (its own secrets only, injected by name)."""
        return {}

    @abstractmethod
    def version(self) -> str:
        """Version string recorded in run.json."""

    def install(self) -> Path | None:
        """Install what the agent runs (a pinned CLI) outside every workspace; its prefix, or
        None when there is nothing to install. Raises AgentLaunchError."""
        return None

    def installed(self) -> bool:
        """Whether what :meth:`install` installs is there (True when there is nothing to install)."""
        return True

    def ro_binds(self, ctx: LaunchContext) -> list[Path]:
        """Extra host paths the agent needs read-only in the sandbox (e.g. its CLI install)."""
        return []

    def egress(self, ctx: LaunchContext) -> Egress:
        """The agent's own network needs (its API endpoint); default none."""
        return Egress(allow=[])

    def secret_names(self, ctx: LaunchContext) -> list[str]:
        """Names of the host variables this config injects into the sandbox (its API keys); none by default."""
        return []

    def secret_values(self, ctx: LaunchContext) -> list[str]:
        """Credential values of the agent beyond its env keys (e.g. a copied login), for redaction."""
        return []

    def model(self, config: str) -> str | None:
        """The model an LLM agent config names (None for scripted agents or a bad config)."""
        return None


#: Every runnable agent, by ``spec.id``.
AGENTS: Registry[type[Agent]] = Registry("agent", key=lambda cls: cls.spec.id)


def get_agent(name: str, settings: Settings | None = None) -> Agent:
    """A fresh instance of agent ``name`` under ``settings`` (None: read from the environment
    when needed); UnknownNameError lists the known ones."""
    return AGENTS.get(name)(settings=settings)
