"""The ``none`` backend: a plain subprocess. NOT ISOLATED.

For debugging, and for platforms without bubblewrap (macOS, some clusters). The command sees
the whole host filesystem, network, every process and every file the harness user may
read — including API keys elsewhere on disk — and runs as the harness user (root if the
harness is root: it cannot drop privileges). ``ro_binds``, ``ro_overlays``, ``masked``,
``uid``/``gid`` and ``network`` are ignored (recorded as not enforced). What it does keep:

- the environment is exactly ``config.env`` (plus ``CUDA_VISIBLE_DEVICES`` for ``gpus``),
- the cwd is the workspace,
- the same hard wall-clock limit and tree kill as the bwrap backend (process group, session,
  descendants and — when a writable cgroup exists — every process in the run's cgroup, which
  also catches double-forked daemons); leftover background processes are killed when the
  main process exits,
- memory / pids limits through cgroups when writable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.base import (
    SANDBOXES,
    Sandbox,
    SandboxConfig,
    SandboxResult,
    check_config_paths,
    limit_entries,
    not_started,
)
from posttrainbench.sandbox.limits import setup_cgroups
from posttrainbench.sandbox.process import supervise_in_cgroups

NOT_ISOLATED = "not enforced: unsandboxed backend"


@SANDBOXES.register
class UnsandboxedSandbox(Sandbox):
    """Runs the command as a plain subprocess with the time limit and tree kill only."""

    name = "none"

    def available(self) -> tuple[bool, str]:
        """Always available (it isolates nothing)."""
        return True, "ok (NOT isolated: plain subprocess)"

    def run(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        stdin: Path | None = None,
        stdout: Path,
        stderr: Path,
    ) -> SandboxResult:
        """Run ``argv`` in the workspace with ``config.env`` and the wall-clock limit."""
        if not argv:
            raise ValueError("argv must not be empty")
        check_config_paths(config)
        env = config.container_env()
        exe = _resolve(argv[0], env.get("PATH", os.defpath), config.workspace)
        if exe is None:
            return not_started(
                f"failed to start: {argv[0]}: command not found or not executable",
                {"time": True},
                stdout,
                stderr,
            )
        enforced: dict[str, bool | str] = {
            "time": True,
            "pid_ns": NOT_ISOLATED,
            "ipc_ns": NOT_ISOLATED,
            "uts_ns": NOT_ISOLATED,
            "net_ns": NOT_ISOLATED if config.network != NetworkPolicy.open else "not enforced: network=open",
            "filesystem": NOT_ISOLATED,
            "env": True,
            "capabilities": NOT_ISOLATED,
            "gpus": "not enforced: CUDA_VISIBLE_DEVICES only" if config.gpus else NOT_ISOLATED,
            "uid": NOT_ISOLATED + f" (runs as the harness user, uid {os.geteuid()})",
            "ro_overlays": NOT_ISOLATED + " (harness files stay writable)" if config.ro_overlays else "not requested",
            "seccomp": NOT_ISOLATED,
            **limit_entries(config),
        }
        cgroups, limits = setup_cgroups(config.memory_mb, config.max_pids, track=True)
        enforced.update(limits)
        enforced["tree_kill"] = (
            True if cgroups is not None else "partial: process group, session and descendants only (no writable cgroup)"
        )
        return supervise_in_cgroups(
            [exe, *argv[1:]],
            config,
            enforced,
            cgroups=cgroups,
            env=env,
            cwd=config.workspace,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
        )


def _resolve(cmd: str, path: str, cwd: Path) -> str | None:
    """The executable ``cmd`` names (``PATH`` lookup without a slash, else relative to ``cwd``)."""
    if "/" in cmd:
        p = cmd if os.path.isabs(cmd) else str(cwd / cmd)
        return p if os.path.isfile(p) and os.access(p, os.X_OK) else None
    return shutil.which(cmd, path=path)
