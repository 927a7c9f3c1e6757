"""Agent scaffolds: set-up and launch inside the sandbox."""

from __future__ import annotations

from pathlib import Path

from ..catalog import get_agent
from ..domain import NetworkPolicy
from ..sandbox.egress import DEFAULT_ALLOW
from .base import Agent, AgentLaunchError, LaunchContext
from .claude_code import ClaudeCodeAgent
from .codex import CodexAgent
from .gemini import GeminiCliAgent
from .opencode import OpenCodeAgent
from .reference import ReferenceAgent

__all__ = [
    "Agent",
    "AgentLaunchError",
    "ClaudeCodeAgent",
    "CodexAgent",
    "GeminiCliAgent",
    "LaunchContext",
    "OpenCodeAgent",
    "ReferenceAgent",
    "agent_egress",
    "agent_model",
    "agent_ro_binds",
    "agent_secret_values",
    "get_agent_runner",
    "install_agent",
]

_RUNNERS: dict[str, type] = {
    "reference": ReferenceAgent,
    "claude": ClaudeCodeAgent,
    "codex": CodexAgent,
    "gemini": GeminiCliAgent,
    "opencode": OpenCodeAgent,
}


def get_agent_runner(name: str) -> Agent:
    """The runnable scaffold for agent ``name`` (raises for unknown or not-yet-runnable ones)."""
    spec = get_agent(name)  # UnknownNameError for unknown names
    if spec.id not in _RUNNERS:
        raise AgentLaunchError(
            f"agent {spec.id!r} ({spec.display_name}) is in the catalog but its scaffold is not "
            f"runnable in this version; runnable: {sorted(_RUNNERS)}"
        )
    return _RUNNERS[spec.id]()


# The hooks below are optional parts of the Agent protocol (the reference agent and test agents
# do not need them): the pipeline calls these helpers instead of the methods directly.


def install_agent(agent: Agent) -> str | None:
    """Install the agent's pinned CLI when it has one (raises AgentLaunchError); its prefix."""
    install = getattr(agent, "install", None)
    return str(install()) if install is not None else None


def agent_ro_binds(agent: Agent, ctx: LaunchContext) -> list[Path]:
    """Extra host paths the agent needs read-only in the sandbox (e.g. its CLI install)."""
    fn = getattr(agent, "ro_binds", None)
    return list(fn(ctx)) if fn is not None else []


def agent_egress(agent: Agent, ctx: LaunchContext, network: NetworkPolicy) -> tuple[list[str], dict[int, str]]:
    """(allow-list, tunnels) for the egress proxy under ``network``.

    ``none``: only the agent's own API endpoint (nothing for agents without one: no proxy);
    ``allowlist``: that plus :data:`~posttrainbench.sandbox.egress.DEFAULT_ALLOW`;
    ``open``: no proxy."""
    if network == NetworkPolicy.open:
        return [], {}
    fn = getattr(agent, "egress", None)
    allow, tunnels = [], {}
    if fn is not None:
        eg = fn(ctx)
        allow, tunnels = list(eg.allow), dict(eg.tunnels)
    if network == NetworkPolicy.allowlist:
        allow = [*DEFAULT_ALLOW, *allow]
    return allow, tunnels


def agent_secret_values(agent: Agent, ctx: LaunchContext) -> list[str]:
    """Credential values of the agent beyond its env keys (e.g. a copied login), for redaction."""
    fn = getattr(agent, "secret_values", None)
    return list(fn(ctx)) if fn is not None else []


def agent_model(agent: Agent, config: str) -> str | None:
    """The model an LLM agent config names (None for scripted agents)."""
    fn = getattr(agent, "parse_config", None)
    if fn is None:
        return None
    try:
        return fn(config).model
    except AgentLaunchError:
        return None
