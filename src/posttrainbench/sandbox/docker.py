"""Docker backend (``docker`` Python SDK): the same guarantees as bwrap, from a Docker daemon.

The command runs in a container with ``--network none`` (or the host network for ``open``),
a read-only root, a private ``/tmp`` tmpfs, all capabilities dropped, ``no-new-privileges``,
Docker's default seccomp profile, ``--init`` (so orphans are reaped), ``--pids-limit``, memory
(and swap) limits, and GPUs through device requests (``--gpus device=...``).

Image: ``$PTB_DOCKER_IMAGE`` or the given one; without it, a *host-filesystem* image
``ptb-hostfs:1`` (an empty image imported locally, no registry needed) with the host system
directories bound read-only, exactly like the bwrap backend's view. ``ro_binds`` are bound
read-only and the workspace read-write at their own paths, ``ro_overlays`` read-only over their
targets inside the workspace (Docker mounts parents first); ``masked`` paths are covered by an
empty read-only directory or file.

Identity: ``--user uid:gid`` with no supplementary group: the sandbox uid/gid
(:func:`~.base.sandbox_identity`) when the harness is root, else the harness's own ids.

I/O: the prompt file is bound read-only; stdout and stderr are named pipes in a private host
directory, read by the same capped pumps as the other backends. The wall-clock limit, output
cap and workspace watchdog are enforced from outside: ``docker stop`` (SIGTERM, grace, SIGKILL)
kills the container's whole PID namespace. With the egress proxy, its socket directory is
bound in and the command runs behind the in-sandbox forwarder, as with bwrap.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.base import (
    SANDBOXES,
    SandboxConfig,
    SandboxResult,
    limit_entries,
    not_started,
    output_cap_bytes,
    workspace_watchdog,
)
from posttrainbench.sandbox.bwrap import HOSTNAME, SYSTEM_DIRS, command_problem_in_view
from posttrainbench.sandbox.isolated import IsolatingSandbox
from posttrainbench.sandbox.process import _Pump
from posttrainbench.settings import Settings

HOSTFS_IMAGE = "ptb-hostfs:1"
IO_DIR = Path("/run/ptb-io")
#: Inside the container: run the command with the bound stdin and the stdout/stderr pipes.
IO_WRAPPER = 'exec "$@" < /run/ptb-io/stdin > /run/ptb-io/stdout 2> /run/ptb-io/stderr'


@SANDBOXES.register
class DockerSandbox(IsolatingSandbox):
    """Sandbox backend on a Docker daemon (``DOCKER_HOST`` or the default socket)."""

    name = "docker"

    def __init__(
        self, image: str | None = None, base_url: str | None = None, *, settings: Settings | None = None
    ) -> None:
        """``image``: default ``settings.sandbox.docker_image`` (``$PTB_DOCKER_IMAGE``), else the
        host-filesystem image; ``settings``: see :class:`~.base.Sandbox` (read now for the image)."""
        super().__init__(settings=settings)
        self.image = image or self.current_settings().sandbox.docker_image or None
        self.base_url = base_url
        self._client: Any = None
        self._lock = threading.Lock()

    def command_problem(self, argv: list[str], config: SandboxConfig) -> str | None:
        """With the host-filesystem image (no ``image`` given) the container sees what bwrap
        sees, so ``argv[0]`` is checked the same way; a custom image's content is its own."""
        return command_problem_in_view(argv[0], config) if self.image is None else None

    def client(self) -> Any:
        """The docker SDK client (created once)."""
        with self._lock:
            if self._client is None:
                import docker

                self._client = docker.DockerClient(base_url=self.base_url) if self.base_url else docker.from_env()
            return self._client

    def available(self) -> tuple[bool, str]:
        """Whether the docker SDK is installed and a daemon answers."""
        try:
            import docker  # noqa: F401 - only: is the SDK installed?
        except ImportError:
            return False, "the docker Python SDK is not installed (pip install 'posttrainbench[cluster]')"
        try:
            self.client().ping()
        except Exception as e:  # noqa: BLE001 - the SDK raises several types for an absent daemon
            return (
                False,
                f"no Docker daemon answers ({os.environ.get('DOCKER_HOST') or self.base_url or 'default socket'}): {e}",
            )
        return True, "ok"

    def ensure_image(self) -> str:
        """The image to run (imports the empty host-filesystem image on first use)."""
        if self.image:
            return self.image
        import docker

        c = self.client()
        try:
            c.images.get(HOSTFS_IMAGE)
        except docker.errors.ImageNotFound:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w"):
                pass
            repo, tag = HOSTFS_IMAGE.split(":")
            c.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag)
        return HOSTFS_IMAGE

    def container_kwargs(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        io_dir: Path,
        extra_ro_binds: list[tuple[Path, Path]] | None = None,
        empty_dir: Path | None = None,
        empty_file: Path | None = None,
        identity: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Arguments of ``containers.create`` for ``argv`` under ``config`` (no side effects).
        ``identity``: (uid, gid) of the command (default: the harness's own)."""
        from docker.types import DeviceRequest, Mount

        def bind(src: Path, dst: Path, ro: bool) -> Any:
            return Mount(target=str(dst), source=str(src), type="bind", read_only=ro)

        mounts = []
        if self.image is None:
            # Not /sbin: Docker mounts its init at /sbin/docker-init (/usr/sbin is bound).
            mounts += [bind(Path(d), Path(d), True) for d in SYSTEM_DIRS if os.path.isdir(d) and d != "/sbin"]
        mounts += [bind(p, p, True) for p in config.ro_binds]
        mounts.append(bind(config.workspace, config.workspace, False))
        mounts += [bind(src, inside, True) for src, inside in config.ro_overlays]
        mounts += [bind(h, i, True) for h, i in extra_ro_binds or []]
        for p in config.masked:
            cover = empty_dir if p.is_dir() else empty_file
            if cover is not None:
                mounts.append(bind(cover, p, True))
        mounts.append(bind(io_dir, IO_DIR, False))
        if config.tmp_dir is not None:  # the run's host folder (1777) instead of a private tmpfs
            mounts.append(bind(config.tmp_dir, Path("/tmp"), False))
        kw: dict[str, Any] = {
            "command": ["/bin/sh", "-c", IO_WRAPPER, "ptb-io", *argv],
            "environment": config.container_env(),
            "working_dir": str(config.workspace),
            "network_mode": "host" if config.network == NetworkPolicy.open else "none",
            "hostname": None if config.network == NetworkPolicy.open else HOSTNAME,
            "mounts": mounts,
            "read_only": True,
            "tmpfs": {} if config.tmp_dir is not None else {"/tmp": "rw,nosuid,nodev"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "init": True,
            "user": "{}:{}".format(*(identity or (os.getuid(), os.getgid()))),
            "labels": {"posttrainbench": "sandbox"},
            "detach": True,
        }
        if config.memory_mb:
            kw["mem_limit"] = f"{config.memory_mb}m"
            kw["memswap_limit"] = f"{config.memory_mb}m"
        if config.max_pids:
            kw["pids_limit"] = config.max_pids + 2  # the shell wrapper and docker-init
        if config.gpus:
            kw["device_requests"] = [DeviceRequest(device_ids=[str(i) for i in config.gpus], capabilities=[["gpu"]])]
        return {k: v for k, v in kw.items() if v is not None}

    def enforced(self, config: SandboxConfig) -> dict[str, bool | str]:
        """What a container enforces for ``config``."""
        return {
            "time": True, "pid_ns": True, "ipc_ns": True, "uts_ns": True,
            "net_ns": True if config.network != NetworkPolicy.open else "not enforced: network=open (host network)",
            "filesystem": True, "env": True, "capabilities": True, "gpus": True,
            "seccomp": "docker default profile",
            "memory": True if config.memory_mb else "not requested",
            "pids": True if config.max_pids else "not requested",
            **limit_entries(config),
        }  # fmt: skip

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
        """Create, start and supervise the container (inside the egress session ``run`` opened)."""
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ptb-docker-")))
            io_dir, empty = tmp / "io", tmp / "empty"
            io_dir.mkdir()
            empty.mkdir()
            (tmp / "empty-file").touch()
            for name in ("stdout", "stderr"):
                os.mkfifo(io_dir / name)
                os.chmod(io_dir / name, 0o666)  # mkfifo's mode is cut by the umask; the command may be another uid
            stdin_copy = io_dir / "stdin"
            stdin_copy.write_bytes(Path(stdin).read_bytes() if stdin is not None else b"")
            os.chmod(io_dir, 0o777)
            try:
                image = self.ensure_image()
                kwargs = self.container_kwargs(
                    argv, config, io_dir=io_dir, extra_ro_binds=extra_ro_binds,
                    empty_dir=empty, empty_file=tmp / "empty-file", identity=identity,
                )  # fmt: skip
                container = self.client().containers.create(image, **kwargs)
            except Exception as e:  # noqa: BLE001 - any SDK error: the run did not start
                return not_started(f"failed to start: docker: {e}", enforced, stdout, stderr)
            try:
                return self._supervise(container, config, io_dir, stdout, stderr, enforced)
            finally:
                with contextlib.suppress(Exception):
                    container.remove(force=True)

    def _supervise(
        self,
        container: Any,
        config: SandboxConfig,
        io_dir: Path,
        stdout: Path,
        stderr: Path,
        enforced: dict[str, bool | str],
    ) -> SandboxResult:
        cap = output_cap_bytes(config) or 2**62
        watchdog = workspace_watchdog(config)
        with contextlib.ExitStack() as files:
            fout = files.enter_context(open(stdout, "wb"))
            ferr = (
                fout if Path(stderr).absolute() == Path(stdout).absolute() else files.enter_context(open(stderr, "wb"))
            )
            lock = threading.Lock()
            pumps, keep = [], []
            for label, dest in (("stdout", fout), ("stderr", ferr)):
                fifo = str(io_dir / label)
                r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                keep.append(os.open(fifo, os.O_WRONLY))  # so reads block until the end, not EOF
                os.set_blocking(r, True)
                pumps.append(_Pump(r, dest, cap, label, lock))
            for p in pumps:
                p.start()
            start = time.monotonic()
            timed_out, limit, status = False, None, None
            try:
                container.start()
            except Exception as e:  # noqa: BLE001 - any SDK error: the run did not start
                for fd in keep:
                    os.close(fd)
                for p in pumps:
                    p.join(timeout=5)
                return SandboxResult(
                    exit_code=None, timed_out=False, duration_s=time.monotonic() - start,
                    error=f"failed to start: docker: {e}", enforced=enforced,
                )  # fmt: skip
            next_watch = start + 2.0
            while True:
                left = start + config.time_limit_s - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                try:
                    status = container.wait(timeout=max(0.05, min(left, 0.25)))
                    break
                except Exception:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError: still running
                    pass
                over = next((p for p in pumps if p.exceeded.is_set()), None)
                if over is not None:
                    limit = f"{over.label} exceeded the output cap of {over.cap} bytes"
                    break
                if watchdog is not None and time.monotonic() >= next_watch:
                    limit = watchdog()
                    next_watch = time.monotonic() + 2.0
                    if limit:
                        break
            if timed_out or limit:
                with contextlib.suppress(Exception):
                    container.stop(timeout=max(1, int(config.kill_grace_s)))
            duration = time.monotonic() - start
            for fd in keep:
                os.close(fd)
            for p in pumps:
                p.join(timeout=10)
            oom = False
            with contextlib.suppress(Exception):
                container.reload()
                oom = bool(container.attrs["State"].get("OOMKilled"))
        code = None
        if status is not None and not (timed_out or limit):
            # Once the container runs, its exit code is an outcome, whatever it printed: a command
            # could print the wrapper's error and exit 127 to have its run retried.
            code = int(status.get("StatusCode", -1))
        return SandboxResult(
            exit_code=code, timed_out=timed_out, duration_s=duration, error=None,
            enforced=enforced, oom_killed=oom, limit_exceeded=limit,
        )  # fmt: skip


class PrivateDockerd:
    """A throw-away Docker daemon (root + Debian ``docker.io``) for tests and benchmarks on
    machines where none runs: ``dockerd --bridge=none --iptables=false`` with its state in a
    temp dir and its API on a unix socket there. Context manager; ``base_url`` once started."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.base_url = ""
        self.root: Path | None = None
        self._proc: Any = None

    @staticmethod
    def why_not() -> str | None:
        """Why a private daemon cannot be started here (None: it can be tried)."""
        import shutil

        if (shutil.which("dockerd") or (os.path.exists("/usr/sbin/dockerd") and "/usr/sbin/dockerd")) is None:
            return "dockerd is not installed (apt-get install docker.io)"
        if os.getuid() != 0:
            return "a private dockerd needs root"
        return None

    def start(self) -> PrivateDockerd:
        """Start the daemon and wait until it answers; raises RuntimeError with the cause."""
        import shutil
        import socket
        import subprocess

        why = self.why_not()
        if why:
            raise RuntimeError(why)
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        self.root = Path(tempfile.mkdtemp(prefix="ptb-dockerd-"))
        sock = self.root / "docker.sock"
        with open(self.root / "dockerd.log", "wb") as log:
            self._proc = subprocess.Popen(
                [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false",
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "dockerd.pid"), "-H", f"unix://{sock}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"private dockerd exited with {self._proc.returncode}: {tail}")
            if sock.exists():
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                    s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                    if b"OK" in s.recv(4096):
                        self.base_url = f"unix://{sock}"
                        return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"private dockerd did not answer within {self.timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and remove its state (never raises)."""
        import shutil
        import subprocess

        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PrivateDockerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
