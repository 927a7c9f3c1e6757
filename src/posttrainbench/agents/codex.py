"""Codex CLI (``@openai/codex``), run headless inside the sandbox.

Launched as ``codex exec --json --skip-git-repo-check
--dangerously-bypass-approvals-and-sandbox -m <model> ... -`` with the prompt on stdin (``-``).
Codex's own command sandbox is bypassed: our sandbox is the boundary, and Codex's nested
bubblewrap could not create namespaces inside it anyway. The npm package's launcher only
locates a native binary shipped in a per-platform package; we exec that binary directly.

Configs: ``<model>[:effort=minimal|low|medium|high|xhigh][,auth=api|chatgpt][,reprompt=<min>]``.

- ``auth=api`` (default): a provider ``ptb`` speaking the Responses API with ``OPENAI_API_KEY``
  (by name) at ``$OPENAI_BASE_URL`` (tunnelled, see :mod:`.cli_agent`) or api.openai.com.
- ``auth=chatgpt``: the built-in OpenAI provider with a ChatGPT login: the harness user's
  ``$CODEX_HOME/auth.json`` (default ``~/.codex/auth.json``) is copied into the agent's
  ``CODEX_HOME`` in the workspace (its token values are redacted from stored traces).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

from ..domain import AgentSpec
from .base import AGENTS, AgentLaunchError, LaunchContext
from .cli_agent import CliAgent, CliConfig
from .npm import NpmPackage, linux_triple

#: Pinned Codex CLI release (recorded in run.json as the agent version).
CODEX_VERSION = "0.171.0"
CODEX_HOME = ".codex"


@AGENTS.register
class CodexAgent(CliAgent):
    """OpenAI Codex CLI."""

    spec = AgentSpec(
        id="codex",
        display_name="Codex CLI",
        secret_env=("OPENAI_API_KEY",),
        api_hosts=("api.openai.com",),
        default_config="gpt-5.1-codex-max",
    )
    package = NpmPackage("@openai/codex", CODEX_VERSION)
    base_url_env = "OPENAI_BASE_URL"
    OPTIONS: ClassVar[dict[str, tuple[str, ...] | None]] = {
        "effort": ("minimal", "low", "medium", "high", "xhigh"),
        "auth": ("api", "chatgpt"),
    }

    def _vendor(self) -> Path:
        arch, _ = linux_triple()
        triple = {"x64": "x86_64", "arm64": "aarch64"}.get(arch, arch) + "-unknown-linux-musl"
        return self.prefix() / "node_modules" / "@openai" / f"codex-linux-{arch}" / "vendor" / triple

    def executable(self) -> Path:
        """The native ``codex`` binary of this platform inside the install prefix."""
        return self._vendor() / "bin" / "codex"

    def _auth(self, ctx: LaunchContext) -> str:
        return self.parse_config(ctx.spec.agent_config).options.get("auth", "api")

    def secret_names(self, ctx: LaunchContext) -> list[str]:
        return [] if self._auth(ctx) == "chatgpt" else ["OPENAI_API_KEY"]

    def _host_auth_json(self, ctx: LaunchContext) -> Path:
        home = ctx.host_env.get("CODEX_HOME") or str(Path(ctx.host_env.get("HOME", "~")) / ".codex")
        return Path(home).expanduser() / "auth.json"

    def secret_values(self, ctx: LaunchContext) -> list[str]:
        """Token values of a ChatGPT login (for redaction)."""
        if self._auth(ctx) != "chatgpt":
            return [ctx.host_env[n] for n in self.secret_names(ctx) if ctx.host_env.get(n)]
        try:
            data = json.loads(self._host_auth_json(ctx).read_text())
        except (OSError, ValueError):
            return []
        out: list[str] = []

        def walk(v: object) -> None:
            if isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, str) and len(v) >= 16:
                out.append(v)

        walk(data)
        return out

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        home = workspace / CODEX_HOME
        home.mkdir(exist_ok=True)
        if self._auth(ctx) == "chatgpt":
            src = self._host_auth_json(ctx)
            if not src.is_file():
                raise AgentLaunchError(f"codex auth=chatgpt needs a ChatGPT login in {src} (run `codex login`)")
            shutil.copy2(src, home / "auth.json")
            (home / "auth.json").chmod(0o600)
        return []

    def cli_env(self, ctx: LaunchContext, cfg: CliConfig) -> dict[str, str]:
        return {"CODEX_HOME": str(ctx.workspace / CODEX_HOME)}

    def cli_argv(self, ctx: LaunchContext, cfg: CliConfig, *, resume: bool) -> list[str]:
        opts = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "-m", cfg.model]
        # Login shells re-read /etc/profile, which resets PATH and hides the harness's python.
        opts += ["-c", "allow_login_shell=false"]
        if "effort" in cfg.options:
            opts += ["-c", f"model_reasoning_effort={cfg.options['effort']}"]
        if self._auth(ctx) == "api":
            base = self.api_base_url_inside(ctx) or "https://api.openai.com/v1"
            opts += [
                "-c", "model_provider=ptb",
                "-c", "model_providers.ptb.name=ptb",
                "-c", f"model_providers.ptb.base_url={base}",
                "-c", "model_providers.ptb.env_key=OPENAI_API_KEY",
                "-c", "model_providers.ptb.wire_api=responses",
            ]  # fmt: skip
        exe = str(self.executable())
        if resume:
            return [exe, "exec", "resume", "--last", *opts, "-"]
        return [exe, "exec", *opts, "-"]
