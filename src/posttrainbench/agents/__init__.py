"""Agent scaffolds: set-up and launch inside the sandbox.

Every agent registers itself in :data:`AGENTS` with its spec (see :mod:`.base`); importing this
package registers the built-in ones: the reference agent and the agent CLIs.
"""

from __future__ import annotations

# Registration order is the listing order (``ptb list``, ``ptb doctor``): the reference agent first
# (so these imports are not sorted).
# isort: off
from .base import AGENTS, Agent, AgentLaunchError, Egress, LaunchContext, get_agent
from .reference import ReferenceAgent
from .claude_code import ClaudeCodeAgent
from .codex import CodexAgent
from .gemini import GeminiCliAgent
from .opencode import OpenCodeAgent
# isort: on

__all__ = [
    "AGENTS",
    "Agent",
    "AgentLaunchError",
    "ClaudeCodeAgent",
    "CodexAgent",
    "Egress",
    "GeminiCliAgent",
    "LaunchContext",
    "OpenCodeAgent",
    "ReferenceAgent",
    "get_agent",
]
