"""Apptainer (Singularity) backend, for clusters that have it instead of unprivileged namespaces.

The command runs as ``apptainer exec --containall --pid --ipc --cleanenv --no-home --net
--network none ... <image> <argv>``:

- ``--containall``: private /tmp, /var/tmp and IPC, no home, no host environment;
- ``--pid``: a new PID namespace (the whole tree dies with it);
- ``--net --network none``: loopback only (unless the policy is ``open``); with the egress
  proxy, its socket directory is bound in at :data:`~.egress.SANDBOX_SOCKET_DIR` and the
  command runs behind the in-sandbox forwarder, exactly as with bwrap;
- the workspace bound read-write and ``ro_binds`` read-only at their own paths, ``--pwd`` the
  workspace; ``masked`` paths covered by an empty read-only directory or file;
- ``--env`` for exactly ``config.env``; ``--nv`` and ``CUDA_VISIBLE_DEVICES`` for GPUs;
- ``ro_overlays`` as ``--bind src:inside:ro`` after the workspace bind;
- identity: apptainer runs the command as the calling user; when the harness is root, ``--security
  uid:U,gid:G`` runs it as the sandbox uid/gid instead (:func:`~.base.sandbox_identity`; only
  root may use it), with ``--no-privs`` dropping every capability.

The wall-clock limit, output cap, workspace quota and cgroup limits are enforced from outside
by the same supervisor as the other backends. The image is ``$PTB_APPTAINER_IMAGE`` (a .sif
file or any URI apptainer accepts) unless given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.base import (
    SANDBOXES,
    SandboxConfig,
    SandboxResult,
    limit_entries,
)
from posttrainbench.sandbox.isolated import IsolatingSandbox
from posttrainbench.sandbox.limits import setup_cgroups
from posttrainbench.sandbox.process import supervise_in_cgroups
from posttrainbench.settings import Settings


@SANDBOXES.register
class ApptainerSandbox(IsolatingSandbox):
    """Sandbox backend built on ``apptainer exec``."""

    name = "apptainer"

    def __init__(
        self, image: str | None = None, apptainer: str | None = None, *, settings: Settings | None = None
    ) -> None:
        """``image``: default ``settings.sandbox.apptainer_image`` (``$PTB_APPTAINER_IMAGE``);
        ``settings``: see :class:`~.base.Sandbox` (read now for the image)."""
        super().__init__(settings=settings)
        self.image = image or self.current_settings().sandbox.apptainer_image or ""
        self._exe = apptainer or shutil.which("apptainer") or shutil.which("singularity") or "apptainer"

    def available(self) -> tuple[bool, str]:
        """Whether the apptainer executable exists and an image is configured."""
        if not (os.path.isfile(self._exe) and os.access(self._exe, os.X_OK)):
            return (
                False,
                f"apptainer not found ({self._exe}); it is not in Debian: install it from the project's releases",
            )
        if not self.image:
            return False, "no image: set PTB_APPTAINER_IMAGE to a .sif file or image URI"
        return True, "ok"

    def build_argv(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        extra_ro_binds: list[tuple[Path, Path]] | None = None,
        empty_dir: Path | None = None,
        empty_file: Path | None = None,
        identity: tuple[int, int] | None = None,
    ) -> list[str]:
        """The full ``apptainer exec`` command line (no side effects); ``identity``: (uid, gid)
        to run as (root harness only)."""
        a = [self._exe, "exec", "--containall", "--pid", "--ipc", "--cleanenv", "--no-home", "--no-privs"]
        if identity is not None:
            a += ["--security", f"uid:{identity[0]},gid:{identity[1]}"]
        if config.network != NetworkPolicy.open:
            a += ["--net", "--network", "none"]
        if config.gpus:
            a.append("--nv")
        for k, v in sorted(config.container_env().items()):
            a += ["--env", f"{k}={v}"]
        binds = [(p, p, "ro") for p in config.ro_binds] + [(config.workspace, config.workspace, "rw")]
        binds += [(src, inside, "ro") for src, inside in sorted(config.ro_overlays, key=lambda o: len(o[1].parts))]
        binds += [(h, i, "ro") for h, i in extra_ro_binds or []]
        for p in config.masked:
            cover = empty_dir if p.is_dir() else empty_file
            if cover is not None:
                binds.append((cover, p, "ro"))
        for host, inside, mode in binds:
            a += ["--bind", f"{host}:{inside}:{mode}"]
        a += ["--pwd", str(config.workspace), self.image, *argv]
        return a

    def enforced(self, config: SandboxConfig) -> dict[str, bool | str]:
        """What ``apptainer exec --containall`` enforces for ``config``."""
        return {
            "time": True,
            "pid_ns": True,
            "ipc_ns": True,
            "uts_ns": "not enforced: apptainer keeps the host name",
            "net_ns": True if config.network != NetworkPolicy.open else "not enforced: network=open",
            "filesystem": "image root; workspace the only writable bind (plus private /tmp)",
            "env": True,
            "capabilities": True,
            "gpus": True if config.gpus else "not requested",
            "seccomp": "not enforced: no seccomp filter in this backend version",
            **limit_entries(config),
        }

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
        """Run ``apptainer exec`` under the supervisor (inside the egress session ``run`` opened)."""
        with contextlib.ExitStack() as stack:
            empty = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ptb-empty-")))
            (empty / "dir").mkdir()
            (empty / "file").touch()
            cgroups, limits = setup_cgroups(config.memory_mb, config.max_pids, track=True)
            enforced.update(limits)
            return supervise_in_cgroups(
                self.build_argv(
                    argv,
                    config,
                    extra_ro_binds=extra_ro_binds,
                    empty_dir=empty / "dir",
                    empty_file=empty / "file",
                    identity=identity,
                ),
                config,
                enforced,
                cgroups=cgroups,
                env={"PATH": os.environ.get("PATH", os.defpath)},
                cwd=Path("/"),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
