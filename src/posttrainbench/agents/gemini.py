"""Gemini CLI (``@google/gemini-cli``), run headless inside the sandbox.

Launched as ``node gemini.js --output-format stream-json --yolo -m <model>`` with the prompt
on stdin (with stdin not a terminal and no ``-p``, the CLI runs non-interactively on it). The
package is JavaScript: it runs on the host's Node.js (>= 20), visible read-only in the
sandbox under ``/usr``. Its settings are written into the agent's home (the workspace) as
``.gemini/settings.json``: API-key auth, folder trust off (the sandbox is the boundary, and
an untrusted folder would silently turn ``--yolo`` back into prompting), telemetry, usage
statistics and auto-update off.

Configs: ``<model>[:reprompt=<min>]``; the key is ``GEMINI_API_KEY`` and a custom endpoint
``GOOGLE_GEMINI_BASE_URL`` (tunnelled when plain http, see :mod:`.cli_agent`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..domain import AgentSpec
from .base import AGENTS, AgentLaunchError, LaunchContext
from .cli_agent import CliAgent, CliConfig
from .npm import NpmPackage

#: Pinned Gemini CLI release (recorded in run.json as the agent version).
GEMINI_CLI_VERSION = "0.61.0"
SETTINGS = ".gemini/settings.json"


@AGENTS.register
class GeminiCliAgent(CliAgent):
    """Google Gemini CLI."""

    spec = AgentSpec(
        id="gemini",
        display_name="Gemini CLI",
        secret_env=("GEMINI_API_KEY",),
        api_hosts=("generativelanguage.googleapis.com",),
        default_config="gemini-3-pro-preview",
    )
    package = NpmPackage("@google/gemini-cli", GEMINI_CLI_VERSION)
    base_url_env = "GOOGLE_GEMINI_BASE_URL"

    def script(self) -> Path:
        """The CLI's bundled entry point inside the install prefix."""
        return self.prefix() / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"

    def node(self) -> str:
        node = shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
        if node is None:
            raise AgentLaunchError("the Gemini CLI needs Node.js >= 20 (`node` in /usr/local/bin or /usr/bin)")
        return node

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        settings = {
            "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        path = workspace / SETTINGS
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1) + "\n")
        return [SETTINGS]

    def cli_env(self, ctx: LaunchContext, cfg: CliConfig) -> dict[str, str]:
        # No self-relaunch (it would re-exec node with a bigger heap: one process less to kill).
        return {"GEMINI_CLI_NO_RELAUNCH": "true", "NO_COLOR": "1"}

    def cli_argv(self, ctx: LaunchContext, cfg: CliConfig, *, resume: bool) -> list[str]:
        argv = [self.node(), str(self.script()), "--output-format", "stream-json", "--yolo", "-m", cfg.model]
        return [*argv, "--resume", "latest"] if resume else argv
