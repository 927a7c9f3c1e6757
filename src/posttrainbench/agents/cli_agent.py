"""Common machinery of the real agent CLIs (Claude Code, Codex CLI, ...) run inside the sandbox.

An agent config is ``<model>[:key=value,...]``, e.g. ``claude-opus-4-5``,
``gpt-5.1-codex-max:effort=high`` or ``claude-sonnet-4-5:reprompt=30``; ``default`` means the
agent spec's default model. Keys depend on the agent (see each subclass's ``OPTIONS``);
``reprompt=<minutes>`` is common to all (see :mod:`.reprompt`).

Secrets: the agent gets exactly its own key, copied *by name* from the harness environment
(``LaunchContext.host_env``) — nothing else of the host environment enters the sandbox.

API endpoint: by default the vendor's HTTPS host, reached through the egress proxy
(``HTTPS_PROXY`` inside). When the harness environment sets the agent's base-URL variable
(``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ...) to a plain ``http://host:port`` URL (a local
gateway, or the test server), the sandbox gets a *tunnel*: inside, the base URL is
``http://127.0.0.1:<TUNNEL_PORT>`` and every connection is CONNECTed through the proxy to
``host:port`` (allowed and logged like any other request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from ..domain import NetworkPolicy
from .base import Agent, AgentLaunchError, Egress, LaunchContext
from .npm import NpmPackage, ensure_installed, install_prefix, is_installed

#: In-sandbox loopback port of the tunnel to the agent's API endpoint.
TUNNEL_PORT = 18080
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@-]{0,127}$")


@dataclass(frozen=True)
class CliConfig:
    """A parsed agent config."""

    model: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def reprompt_minutes(self) -> float | None:
        v = self.options.get("reprompt")
        return float(v) if v is not None else None


class CliAgent(Agent):
    """Base class of the npm-installed agent CLIs. Subclasses set the class attributes (``spec``
    among them) and implement :meth:`cli_argv` (and may extend :meth:`cli_env` /
    :meth:`setup_workspace`)."""

    installable = True
    package: NpmPackage
    #: Host env var with a custom API base URL; the same name is set inside when tunnelled.
    base_url_env: str = ""
    #: option key -> allowed values (None: any positive number).
    OPTIONS: ClassVar[dict[str, tuple[str, ...] | None]] = {}

    # ------------------------------------------------------------------ config
    def parse_config(self, config: str) -> CliConfig:
        """``model[:k=v,...]`` -> :class:`CliConfig`; raises AgentLaunchError when invalid."""
        if config in ("", "default"):
            config = self.spec.default_config
        model, _, rest = config.partition(":")
        if not _MODEL_RE.match(model):
            raise AgentLaunchError(f"{self.spec.id} config {config!r}: bad model name {model!r}")
        allowed = {"reprompt": None, **self.OPTIONS}
        options: dict[str, str] = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep or key not in allowed or not value:
                raise AgentLaunchError(
                    f"{self.spec.id} config {config!r}: bad option {item!r}; "
                    f"use key=value with key in {sorted(allowed)}"
                )
            choices = allowed[key]
            if choices is None:
                try:
                    ok = float(value) > 0
                except ValueError:
                    ok = False
                if not ok:
                    raise AgentLaunchError(f"{self.spec.id} config {config!r}: {key} must be a positive number")
            elif value not in choices:
                raise AgentLaunchError(f"{self.spec.id} config {config!r}: {key} must be one of {list(choices)}")
            options[key] = value
        return CliConfig(model=model, options=options)

    def validate_config(self, config: str) -> None:
        """Raise AgentLaunchError for a config this agent cannot run."""
        self.parse_config(config)

    def model(self, config: str) -> str | None:
        """The model ``config`` names (None when the config is invalid)."""
        try:
            return self.parse_config(config).model
        except AgentLaunchError:
            return None

    # ----------------------------------------------------------------- install
    def install(self) -> Path | None:
        """Install the pinned CLI (no-op when present) under the settings' ``agents_dir``; its
        prefix. Raises AgentLaunchError."""
        return ensure_installed(self.package, root=self.current_settings().paths.agents_dir)

    def installed(self) -> bool:
        return is_installed(self.package, self.current_settings().paths.agents_dir)

    def prefix(self) -> Path:
        return install_prefix(self.package, self.current_settings().paths.agents_dir)

    def ro_binds(self, ctx: LaunchContext) -> list[Path]:
        """Host paths the agent needs read-only inside (its install prefix)."""
        return [self.prefix()]

    def version(self) -> str:
        return self.package.spec

    # ---------------------------------------------------------------- network
    def endpoint(self, ctx: LaunchContext) -> tuple[str, str]:
        """(base-URL variable, default API host:port) of this config's API."""
        return self.base_url_env, self.api_host

    @property
    def api_host(self) -> str:
        """The vendor API endpoint allowed by default: the spec's first API host, port 443
        (the spec's list is also what the trace audit accepts as this agent's own API)."""
        return f"{self.spec.api_hosts[0]}:443" if self.spec.api_hosts else ""

    def _custom_base_url(self, ctx: LaunchContext) -> str | None:
        var = self.endpoint(ctx)[0]
        url = ctx.host_env.get(var, "").strip() if var else ""
        return url or None

    def egress(self, ctx: LaunchContext) -> Egress:
        """The agent's API endpoint as an allow-list entry, tunnelled when it is plain http."""
        var, host = self.endpoint(ctx)
        url = self._custom_base_url(ctx)
        if url is None:
            return Egress(allow=[host])
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AgentLaunchError(f"{var}={url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = f"{parts.hostname}:{port}"
        if parts.scheme == "http":
            return Egress(allow=[target], tunnels={TUNNEL_PORT: target})
        return Egress(allow=[target])

    def api_base_url_inside(self, ctx: LaunchContext) -> str | None:
        """The base URL the CLI is given inside the sandbox (None: the vendor default)."""
        url = self._custom_base_url(ctx)
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme == "http" and ctx.spec.network != NetworkPolicy.open:
            return f"http://127.0.0.1:{TUNNEL_PORT}{parts.path}".rstrip("/")
        return url.rstrip("/")

    # ----------------------------------------------------------------- launch
    def secret(self, ctx: LaunchContext, name: str) -> str:
        """The value of the agent's own secret ``name`` from the harness env (by name only)."""
        value = ctx.host_env.get(name, "")
        if not value:
            raise AgentLaunchError(
                f"{self.spec.display_name} needs {name} in the environment of the harness "
                f"(only this variable is passed into the sandbox)"
            )
        return value

    def preflight(self, ctx: LaunchContext) -> None:
        """Every secret this config needs is in the harness's environment."""
        for name in self.secret_names(ctx):
            self.secret(ctx, name)

    def secret_names(self, ctx: LaunchContext) -> list[str]:
        """Names of the secrets this config injects (default: the spec's first)."""
        return list(self.spec.secret_env[:1])

    def environment(self, ctx: LaunchContext) -> dict[str, str]:
        """Its own secret(s) by name, the in-sandbox base URL, and agent-specific settings."""
        env = {name: self.secret(ctx, name) for name in self.secret_names(ctx)}
        inside = self.api_base_url_inside(ctx)
        if inside is not None:
            env[self.endpoint(ctx)[0]] = inside
        env.update(self.cli_env(ctx, self.parse_config(ctx.spec.agent_config)))
        return env

    def cli_env(self, ctx: LaunchContext, cfg: CliConfig) -> dict[str, str]:
        """Extra environment of the CLI (telemetry off, config home, ...)."""
        return {}

    def cli_argv(self, ctx: LaunchContext, cfg: CliConfig, *, resume: bool) -> list[str]:
        """argv of one CLI invocation (prompt on stdin); ``resume``: continue the session."""
        raise NotImplementedError

    def command(self, ctx: LaunchContext) -> list[str]:
        """argv inside the sandbox; with ``reprompt`` the CLI runs under the re-prompt driver."""
        if not self.installed():
            raise AgentLaunchError(
                f"{self.package.spec} is not installed in {self.prefix()}; run "
                f"`ptb agents install {self.spec.id}` or scripts/setup.sh"
            )
        cfg = self.parse_config(ctx.spec.agent_config)
        first = self.cli_argv(ctx, cfg, resume=False)
        if cfg.reprompt_minutes is None:
            return first
        from .reprompt import driver_argv

        return driver_argv(
            ctx.python, first, self.cli_argv(ctx, cfg, resume=True), min_left_minutes=cfg.reprompt_minutes
        )
