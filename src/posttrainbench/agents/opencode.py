"""OpenCode (``opencode-ai``), run headless inside the sandbox.

Launched as ``opencode run --format json --auto -m <provider>/<model>`` with the prompt on
stdin. The provider configuration is written into the workspace as ``opencode.json`` (the
project config OpenCode reads from its working directory): the provider's base URL (tunnelled
when it is a plain-http gateway, see :mod:`.cli_agent`), the key read from the environment by
name (``{env:VAR}``, never the value), all tool permissions allowed (the sandbox is the
boundary), auto-update and sharing off. The npm package's launcher only selects a native binary
shipped in a per-platform package; we exec that binary directly.

Configs: ``<provider>/<model>[:reprompt=<min>]`` with provider ``anthropic``
(``ANTHROPIC_API_KEY``), ``openai`` (``OPENAI_API_KEY``) or ``opencode`` (OpenCode Zen,
``OPENCODE_API_KEY``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..domain import AgentSpec
from .base import AGENTS, AgentLaunchError, LaunchContext
from .cli_agent import CliAgent, CliConfig
from .npm import NpmPackage, linux_triple

#: Pinned OpenCode release (recorded in run.json as the agent version).
OPENCODE_VERSION = "1.18.33"
CONFIG_FILE = "opencode.json"

#: provider -> (key variable, base-URL variable, default API host, path the SDK expects).
PROVIDERS: dict[str, tuple[str, str, str, str]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "api.anthropic.com:443", "/v1"),
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "api.openai.com:443", "/v1"),
    "opencode": ("OPENCODE_API_KEY", "OPENCODE_BASE_URL", "opencode.ai:443", ""),
}


def _avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return True


@AGENTS.register
class OpenCodeAgent(CliAgent):
    """OpenCode CLI."""

    spec = AgentSpec(
        id="opencode",
        display_name="OpenCode",
        secret_env=("OPENCODE_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"),
        api_hosts=("opencode.ai", "api.anthropic.com", "api.openai.com"),
        default_config="anthropic/claude-opus-4-5",
    )
    package = NpmPackage("opencode-ai", OPENCODE_VERSION)

    def parse_config(self, config: str) -> CliConfig:
        cfg = super().parse_config(config)
        provider, sep, model = cfg.model.partition("/")
        if not sep or not model or provider not in PROVIDERS:
            raise AgentLaunchError(
                f"opencode config {config!r}: the model must be <provider>/<model> with provider in {sorted(PROVIDERS)}"
            )
        return cfg

    def _provider(self, ctx: LaunchContext) -> tuple[str, tuple[str, str, str, str]]:
        provider = self.parse_config(ctx.spec.agent_config).model.split("/", 1)[0]
        return provider, PROVIDERS[provider]

    def endpoint(self, ctx: LaunchContext) -> tuple[str, str]:
        _, (_, url_var, host, _) = self._provider(ctx)
        return url_var, host

    def secret_names(self, ctx: LaunchContext) -> list[str]:
        return [self._provider(ctx)[1][0]]

    def executable(self) -> Path:
        """The native ``opencode`` binary of this platform (``-baseline`` without AVX2)."""
        arch, musl = linux_triple()
        variants = [f"opencode-linux-{arch}{'' if _avx2() else '-baseline'}{'-musl' if musl else ''}"]
        variants += [f"opencode-linux-{arch}-baseline{'-musl' if musl else ''}"]
        nm = self.prefix() / "node_modules"
        for v in variants:
            exe = nm / v / "bin" / "opencode"
            if exe.is_file():
                return exe
        return nm / ".bin" / "opencode"

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        provider, (key_var, _, _, path) = self._provider(ctx)
        options: dict[str, str] = {"apiKey": f"{{env:{key_var}}}"}
        inside = self.api_base_url_inside(ctx)
        if inside is not None:
            options["baseURL"] = inside if inside.endswith(path) else inside + path
        cfg = {
            "$schema": "https://opencode.ai/config.json",
            "model": self.parse_config(ctx.spec.agent_config).model,
            "provider": {provider: {"options": options}},
            "autoupdate": False,
            "share": "disabled",
            "permission": {"edit": "allow", "bash": "allow", "webfetch": "allow", "external_directory": "allow"},
        }
        (workspace / CONFIG_FILE).write_text(json.dumps(cfg, indent=1) + "\n")
        return [CONFIG_FILE]

    def cli_env(self, ctx: LaunchContext, cfg: CliConfig) -> dict[str, str]:
        return {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1"}

    def cli_argv(self, ctx: LaunchContext, cfg: CliConfig, *, resume: bool) -> list[str]:
        argv = [str(self.executable()), "run", "--format", "json", "--auto", "--pure", "-m", cfg.model]
        return [*argv, "--continue"] if resume else argv
