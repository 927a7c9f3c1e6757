"""Claude Code (``@anthropic-ai/claude-code``), run headless inside the sandbox.

Launched as ``claude --print --output-format stream-json --verbose
--dangerously-skip-permissions --model <model>`` with the prompt on stdin. The npm package is a
thin wrapper around a native binary shipped in a per-platform package; we exec that binary
directly (no Node.js process, no install script needed).

Configs: ``<model>[:auth=api|oauth][,reprompt=<min>]``. ``auth=api`` (default) passes
``ANTHROPIC_API_KEY``, ``auth=oauth`` passes ``CLAUDE_CODE_OAUTH_TOKEN`` (a subscription token
from ``claude setup-token``). ``IS_SANDBOX=1`` lets Claude Code accept
``--dangerously-skip-permissions`` when the harness runs as root (the bwrap sandbox is the
boundary); non-essential traffic (telemetry, auto-update, error reports) is switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..domain import AgentSpec
from .base import AGENTS, LaunchContext
from .cli_agent import CliAgent, CliConfig
from .npm import NpmPackage, linux_triple

#: Pinned Claude Code release (recorded in run.json as the agent version).
CLAUDE_CODE_VERSION = "2.1.332"


@AGENTS.register
class ClaudeCodeAgent(CliAgent):
    """Claude Code CLI."""

    spec = AgentSpec(
        id="claude",
        display_name="Claude Code",
        secret_env=("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
        api_hosts=("api.anthropic.com",),
        default_config="claude-opus-4-5",
    )
    package = NpmPackage("@anthropic-ai/claude-code", CLAUDE_CODE_VERSION)
    base_url_env = "ANTHROPIC_BASE_URL"
    OPTIONS: ClassVar[dict[str, tuple[str, ...] | None]] = {"auth": ("api", "oauth")}

    def executable(self) -> Path:
        """The native ``claude`` binary of this platform inside the install prefix."""
        arch, musl = linux_triple()
        nm = self.prefix() / "node_modules" / "@anthropic-ai"
        native = nm / f"claude-code-linux-{arch}{'-musl' if musl else ''}" / "claude"
        return native if native.is_file() else self.prefix() / "node_modules" / ".bin" / "claude"

    def secret_names(self, ctx: LaunchContext) -> list[str]:
        auth = self.parse_config(ctx.spec.agent_config).options.get("auth", "api")
        return ["CLAUDE_CODE_OAUTH_TOKEN" if auth == "oauth" else "ANTHROPIC_API_KEY"]

    def cli_env(self, ctx: LaunchContext, cfg: CliConfig) -> dict[str, str]:
        return {
            "IS_SANDBOX": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_TELEMETRY": "1",
        }

    def cli_argv(self, ctx: LaunchContext, cfg: CliConfig, *, resume: bool) -> list[str]:
        argv = [
            str(self.executable()), "--print", "--output-format", "stream-json", "--verbose",
            "--dangerously-skip-permissions", "--model", cfg.model,
        ]  # fmt: skip
        return [*argv, "--continue"] if resume else argv
