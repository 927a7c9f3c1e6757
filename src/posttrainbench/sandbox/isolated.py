"""The shared ``run()`` of the isolating backends (bwrap, docker, apptainer).

Each backend says what it enforces for a config (``enforced``), whether it can start here
(``available`` and ``preflight``), and how to run a command it has been handed
(``run_isolated``). Everything in between is the same for all of them and lives here: argument
checks, the not-started result, the identity (when the harness is root, the command runs as an
unprivileged uid/gid, see :func:`~.base.sandbox_identity`: every bound path must be readable by
it, and the workspace is given to it), and the egress session (the allow-list proxy with the hub
gateway, its forwarder, and the environment and read-only binds the forwarder needs inside the
sandbox).
"""

from __future__ import annotations

import sys
from abc import abstractmethod
from pathlib import Path

from posttrainbench.sandbox.base import (
    Sandbox,
    SandboxConfig,
    SandboxResult,
    check_config_paths,
    give_workspace,
    not_started,
    overlay_entry,
    sandbox_identity,
    uid_entry,
    unreadable,
)
from posttrainbench.sandbox.egress import SANDBOX_SOCKET_DIR, egress_session


class IsolatingSandbox(Sandbox):
    """Base of the backends that isolate the command: implements ``Sandbox.run``."""

    @abstractmethod
    def enforced(self, config: SandboxConfig) -> dict[str, bool | str]:
        """Each isolation property and limit: True, or a string saying how / why not."""

    def preflight(self, config: SandboxConfig, identity: tuple[int, int] | None) -> str | None:
        """A reason this config cannot start here (beyond ``available``), or None."""
        return None

    def command_problem(self, argv: list[str], config: SandboxConfig) -> str | None:
        """A reason ``argv[0]`` cannot be executed inside the sandbox, found *before* it starts.

        Once the command has started, everything it does is an outcome: what it prints or its
        exit code is never read as a start failure (a command could print a launcher's error
        and exit 127 to have a bad run retried). Backends whose view of the filesystem the harness
        can see check here; the default checks nothing."""
        return None

    @abstractmethod
    def run_isolated(
        self,
        argv: list[str],
        config: SandboxConfig,
        enforced: dict[str, bool | str],
        *,
        stdin: Path | None,
        stdout: Path,
        stderr: Path,
        extra_ro_binds: list[tuple[Path, Path]],
        identity: tuple[int, int] | None,
    ) -> SandboxResult:
        """Run ``argv`` (already wrapped for egress) with ``extra_ro_binds`` (host, inside) added,
        as ``identity`` (uid, gid) when given (else as the harness user)."""

    def run(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        stdin: Path | None = None,
        stdout: Path,
        stderr: Path,
    ) -> SandboxResult:
        """Run ``argv`` under ``config``; never raises for what the command does."""
        if not argv:
            raise ValueError("argv must not be empty")
        check_config_paths(config)
        identity = sandbox_identity(config, self.settings)
        enforced = self.enforced(config)
        enforced["uid"] = uid_entry(config, identity)
        enforced["ro_overlays"] = overlay_entry(config)
        ok, reason = self.available()
        problem = reason if not ok else self.preflight(config, identity)
        if problem is None and identity is not None:
            bad = unreadable([*config.ro_binds, *(src for src, _ in config.ro_overlays)], *identity)
            if bad:
                problem = (
                    f"not readable by the sandbox uid {identity[0]}/gid {identity[1]} (make it "
                    f"world-readable, e.g. chmod -R a+rX, or set PTB_SANDBOX_UID): {'; '.join(bad)}"
                )
        problem = problem or self.command_problem(argv, config)
        if problem:
            return not_started(f"failed to start: {problem}", enforced, stdout, stderr)
        if identity is not None:
            give_workspace(config.workspace, *identity)
        with egress_session(argv, config, python=sys.executable, socket_dir_inside=SANDBOX_SOCKET_DIR) as plan:
            enforced["egress"] = plan.enforced
            if plan.proxy is not None:  # the forwarder runs on this interpreter inside the sandbox
                extra = {Path(sys.prefix), Path(sys.base_prefix)} - set(config.ro_binds)
                config = config.model_copy(
                    update={"env": {**config.env, **plan.env}, "ro_binds": [*config.ro_binds, *sorted(extra)]}
                )
            return self.run_isolated(
                plan.argv, config, enforced, stdin=stdin, stdout=stdout, stderr=stderr,
                extra_ro_binds=plan.binds, identity=identity,
            )  # fmt: skip
