"""Bubblewrap backend: the default local sandbox on Linux.

The command runs in new PID, IPC, UTS (and cgroup) namespaces, and a new network namespace
(loopback only) unless the policy is ``open``. Its filesystem is a fresh read-only root with:

- the system directories read-only (``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/etc``;
  host symlinks such as ``/bin -> usr/bin`` are reproduced as symlinks),
- a new ``/proc`` (with ``/proc/sys`` read-only), a minimal ``/dev``, a private ``/dev/shm``
  tmpfs (mode 1777: shared memory stays in RAM) and ``/tmp``: ``config.tmp_dir`` (a host folder in
  the run folder, mode 1777, observed and scanned after the run) or else a private tmpfs,
- ``ro_binds`` read-only and the workspace read-write, each at its own path; the directories
  above them are created 0755 (so the host's ``/root`` being 0700 does not matter inside),
- ``ro_overlays`` bound read-only over their targets inside the workspace, after it: a write,
  truncate, rename, unlink, chmod or hard link of such a path fails (``EROFS``/``EBUSY``/``EXDEV``),
- ``masked`` paths covered by an empty read-only tmpfs (or an empty file),
- for GPUs only, the selected ``/dev/nvidia*`` nodes and a read-only ``/sys``.

Nothing else of the host (``/root``, ``/home``, ``/work``, ...) exists inside. The environment
is exactly ``config.env`` (``--clearenv``). ``--die-with-parent`` ties the sandbox to the
harness thread that started it, ``--new-session`` stops terminal injection.

**Identity.** A non-root harness: bwrap runs unprivileged (user namespace), the command keeps
the harness's uid, all capabilities are dropped and ``no_new_privs`` is set by bwrap itself.
A root harness (see :func:`~.base.sandbox_identity`): bwrap keeps root only for its own set-up,
with every capability dropped except ``CAP_SETUID``, ``CAP_SETGID`` and ``CAP_SETPCAP``, and the
first program inside is util-linux ``setpriv``, which empties the bounding and inheritable
sets, sets ``no_new_privs``, drops every supplementary group (keeping only the groups of
GPU device nodes that are not world-accessible) and switches real, effective and saved uid/gid
to the unprivileged ids *before* anything else runs (the egress forwarder included). The
kernel clears the permitted and effective sets on that switch, so the command has no
capability at all (``CapEff``/``CapPrm``/``CapBnd`` 0), cannot switch back, cannot read
root-only host files visible inside (``/etc/shadow``), and cannot write the run's cgroup files
(owned by root, joined from outside before bwrap starts).

The wall-clock limit is enforced from outside (see :mod:`.process`): SIGTERM to every process
inside, SIGKILL after the grace period; killing the namespace's init kills everything inside,
including processes that called ``setsid``, double-forked or ignore SIGTERM. When the
command's main process exits, bwrap's init exits and the kernel kills whatever it left behind.

Not enforced by this version (recorded in ``SandboxResult.enforced``): there is no seccomp
filter; with ``network=open`` the host network (and its abstract unix sockets) is shared.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.base import (
    SANDBOXES,
    SandboxConfig,
    SandboxResult,
    limit_entries,
    output_cap_bytes,
    workspace_watchdog,
)
from posttrainbench.sandbox.isolated import IsolatingSandbox
from posttrainbench.sandbox.limits import setup_cgroups
from posttrainbench.sandbox.process import supervise
from posttrainbench.settings import Settings

#: Host system directories made visible read-only (those that exist).
SYSTEM_DIRS: tuple[str, ...] = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
)  # fmt: skip
#: Files under /proc that root could write to (bwrap only covers them for unprivileged users).
PROC_COVER: tuple[str, ...] = ("/proc/sys", "/proc/sysrq-trigger")
#: GPU control nodes passed along with the selected /dev/nvidia<N> nodes.
NVIDIA_CONTROL_NODES: tuple[str, ...] = (
    "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset",
    "/dev/nvidia-caps",
)  # fmt: skip
#: Processes of bwrap itself inside the run's pids cgroup (monitor + namespace init).
BWRAP_HELPER_PIDS = 2
HOSTNAME = "ptb-sandbox"
#: Mount points the sandbox creates itself (never re-created as plain parent directories).
OWN_MOUNTS: frozenset[str] = frozenset({"/", "/proc", "/dev", "/dev/shm", "/tmp"})
#: Capabilities bwrap keeps (as root) only so that ``setpriv`` can drop to the sandbox uid.
SWITCH_CAPS: tuple[str, ...] = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


def _depth(p: Path) -> int:
    return len(p.parts)


@SANDBOXES.register
class BwrapSandbox(IsolatingSandbox):
    """Sandbox backend built on bubblewrap (``bwrap``)."""

    name = "bwrap"

    def __init__(
        self, bwrap: str | None = None, setpriv: str | None = None, *, settings: Settings | None = None
    ) -> None:
        """``bwrap``: path of the executable (default: found on PATH, then /usr/bin/bwrap);
        ``setpriv``: util-linux ``setpriv``, used inside to drop to the sandbox uid; ``settings``:
        see :class:`~.base.Sandbox`."""
        super().__init__(settings=settings)
        self._bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"
        self._setpriv = setpriv or shutil.which("setpriv") or "/usr/bin/setpriv"
        self._available: tuple[bool, str] | None = None
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        """Whether bwrap exists and can create the namespaces we need (checked once, cached)."""
        with self._lock:
            if self._available is None:
                self._available = self._probe()
            return self._available

    def _probe(self) -> tuple[bool, str]:
        if not (os.path.isfile(self._bwrap) and os.access(self._bwrap, os.X_OK)):
            return False, f"bwrap not found ({self._bwrap}); install the 'bubblewrap' package"
        true = shutil.which("true") or "/bin/true"
        argv = [
            self._bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--proc", "/proc",
            "--", true,
        ]  # fmt: skip
        try:
            r = subprocess.run(argv, capture_output=True, timeout=30, env={})
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"bwrap probe failed: {e}"
        if r.returncode != 0:
            msg = r.stderr.decode(errors="replace").strip() or f"exit {r.returncode}"
            return False, f"bwrap cannot create namespaces here: {msg}"
        return True, "ok"

    def build_argv(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        status_fd: int | None = None,
        empty_fds: dict[Path, int] | None = None,
        extra_ro_binds: list[tuple[Path, Path]] | None = None,
        identity: tuple[int, int] | None = None,
    ) -> list[str]:
        """The full bwrap command line for ``argv`` under ``config``.

        ``status_fd``: fd for bwrap's JSON status. ``empty_fds``: for each masked *file*, a
        readable fd at EOF (e.g. /dev/null) whose (empty) content replaces it; masked files
        without one are skipped. ``extra_ro_binds``: (host, inside) pairs bound read-only last
        (the egress socket directory and forwarder). ``identity``: (uid, gid) to drop to with
        ``setpriv`` (bwrap running as root). No side effects except reading which host paths
        exist (and the GPU nodes' owners)."""
        a: list[str] = [self._bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        a.append("--unshare-cgroup-try")
        if config.network != NetworkPolicy.open:
            a.append("--unshare-net")
        a += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if identity is not None:
            for cap in SWITCH_CAPS:
                a += ["--cap-add", cap]
        a += ["--hostname", HOSTNAME]
        a.append("--clearenv")
        for k, v in sorted(config.container_env().items()):
            a += ["--setenv", k, v]
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        a += ["--proc", "/proc"]
        for proc_path in PROC_COVER:
            a += ["--ro-bind-try", proc_path, proc_path]
        a += ["--dev", "/dev"]
        if config.gpus:
            for i in config.gpus:
                a += ["--dev-bind", f"/dev/nvidia{i}", f"/dev/nvidia{i}"]
            for node in NVIDIA_CONTROL_NODES:
                a += ["--dev-bind-try", node, node]
            a += ["--ro-bind", "/sys", "/sys"]
        a += ["--perms", "1777", "--tmpfs", "/dev/shm"]
        if config.tmp_dir is not None:  # a host folder (1777, see run_isolated): observed and scanned
            a += ["--bind", str(config.tmp_dir), "/tmp"]
        else:
            a += ["--perms", "1777", "--tmpfs", "/tmp"]
        targets = [*config.ro_binds, config.workspace, *(i for _, i in extra_ro_binds or [])]
        for parent in _parent_dirs(targets):
            a += ["--perms", "0755", "--dir", str(parent)]
        # Parents before children, so a ro dir inside the workspace (or the reverse) works.
        binds = [(p, "--ro-bind") for p in config.ro_binds] + [(config.workspace, "--bind")]
        for p, flag in sorted(binds, key=lambda b: (_depth(b[0]), b[1] == "--bind")):
            a += [flag, str(p), str(p)]
        # Over the workspace (parents first): harness files the command must not change.
        for src, inside in sorted(config.ro_overlays, key=lambda o: _depth(o[1])):
            a += ["--ro-bind", str(src), str(inside)]
        for host, inside in extra_ro_binds or []:
            a += ["--ro-bind", str(host), str(inside)]
        for p in config.masked:
            if p.is_dir():
                a += ["--tmpfs", str(p), "--remount-ro", str(p)]
            elif p.exists() and empty_fds and p in empty_fds:
                a += ["--perms", "0444", "--ro-bind-data", str(empty_fds[p]), str(p)]
        a += ["--remount-ro", "/", "--chdir", str(config.workspace)]
        if status_fd is not None:
            a += ["--json-status-fd", str(status_fd)]
        a.append("--")
        if identity is not None:
            a += self.setpriv_argv(identity, config.gpus)
        a += argv
        return a

    def setpriv_argv(self, identity: tuple[int, int], gpus: list[int]) -> list[str]:
        """``setpriv ... --``: drop to ``identity`` for good before the command (see module doc)."""
        uid, gid = identity
        nodes = [f"/dev/nvidia{i}" for i in gpus] + list(NVIDIA_CONTROL_NODES) if gpus else []
        groups = device_groups(nodes, uid, gid)
        return [
            self._setpriv, f"--reuid={uid}", f"--regid={gid}",
            f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
        ]  # fmt: skip

    def enforced(self, config: SandboxConfig) -> dict[str, bool | str]:
        """What bwrap enforces for ``config`` (``uid`` and ``ro_overlays`` are added by ``run``)."""
        net: bool | str = True if config.network != NetworkPolicy.open else "not enforced: network=open (host network)"
        if config.uses_proxy:
            net = "own network namespace; egress only through the allow-list proxy"
        return {
            "time": True,
            "pid_ns": True,
            "ipc_ns": True,
            "uts_ns": True,
            "net_ns": net,
            "filesystem": True,
            "env": True,
            "capabilities": True,
            "gpus": True,
            "seccomp": "not enforced: no seccomp filter in this backend version",
            **limit_entries(config),
        }

    def command_problem(self, argv: list[str], config: SandboxConfig) -> str | None:
        """``argv[0]`` must be an executable file the sandbox sees: a path in a system directory,
        a read-only bind or the workspace, or a name found on the sandbox's ``PATH`` there."""
        return command_problem_in_view(argv[0], config)

    def preflight(self, config: SandboxConfig, identity: tuple[int, int] | None) -> str | None:
        """The GPU device nodes asked for must exist; dropping the uid needs ``setpriv`` in a
        system directory (it runs inside the sandbox)."""
        missing = [f"/dev/nvidia{i}" for i in config.gpus if not os.path.exists(f"/dev/nvidia{i}")]
        if missing:
            return f"GPU device node(s) missing: {', '.join(missing)}"
        if identity is not None:
            real = os.path.realpath(self._setpriv)
            if not os.access(real, os.X_OK) or not any(real.startswith(d + "/") for d in SYSTEM_DIRS):
                return (
                    f"setpriv (util-linux) not found in a system directory ({self._setpriv}): needed "
                    "to run the command unprivileged as root; install util-linux or set PTB_SANDBOX_UID=0"
                )
        return None

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
        """Run ``argv`` under bwrap (inside the egress session ``run`` opened)."""
        if config.tmp_dir is not None:
            config.tmp_dir.mkdir(parents=True, exist_ok=True)
            config.tmp_dir.chmod(0o1777)  # sticky and world-writable, as /tmp is, for the sandbox uid
        cgroups, limits = setup_cgroups(config.memory_mb, config.max_pids, pid_overhead=BWRAP_HELPER_PIDS)
        enforced.update(limits)
        status_r, status_w = os.pipe()
        # One fd at EOF per masked file: bwrap copies its (empty) content over the file.
        empty_fds = {p: os.open(os.devnull, os.O_RDONLY) for p in config.masked if p.is_file()}
        try:
            outcome = supervise(
                self.build_argv(
                    argv,
                    config,
                    status_fd=status_w,
                    empty_fds=empty_fds,
                    extra_ro_binds=extra_ro_binds,
                    identity=identity,
                ),
                env={},
                cwd=Path("/"),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                time_limit_s=config.time_limit_s,
                kill_grace_s=config.kill_grace_s,
                cgroups=cgroups,
                spare_leader=True,
                pass_fds=(status_w, *empty_fds.values()),
                max_output_bytes=output_cap_bytes(config),
                watchdog=workspace_watchdog(config),
            )
        finally:
            for fd in empty_fds.values():
                os.close(fd)
            os.close(status_w)
            status = _read_status(status_r)
            os.close(status_r)
            oom = cgroups.oom_kills() > 0 if cgroups is not None else False
            pids_hits = cgroups.pids_limit_hits() if cgroups is not None else 0
            if cgroups is not None:
                cgroups.remove()

        error = outcome.start_error
        exit_code = outcome.returncode
        stopped = outcome.timed_out or outcome.limit_exceeded is not None
        if error is None and not stopped and "child-pid" not in status:
            # bwrap failed while setting up the sandbox: the command never ran.
            error = f"failed to start: {_bwrap_message(stderr) or f'bwrap exit {exit_code}'}"
            exit_code = None
        elif not stopped and isinstance(code := status.get("exit-code"), int):
            # The command started (bwrap reported its pid on a channel the command cannot write):
            # its exit code is an outcome, whatever it printed (command_problem checked argv[0]).
            exit_code = int(code)
        return SandboxResult(
            exit_code=exit_code,
            timed_out=outcome.timed_out,
            duration_s=outcome.duration_s,
            error=error,
            enforced=enforced,
            oom_killed=oom,
            pids_limit_hits=pids_hits,
            limit_exceeded=outcome.limit_exceeded,
        )


def _parent_dirs(targets: list[Path]) -> list[Path]:
    """Directories above the bind targets that the sandbox must create itself (parents first):
    not the ones it mounts anyway, nor any at or under a system directory or another target."""
    covered = [Path(d) for d in SYSTEM_DIRS] + list(targets)
    out: set[Path] = set()
    for t in targets:
        for d in t.parents:
            if str(d) in OWN_MOUNTS or any(d == c or c in d.parents for c in covered):
                continue
            out.add(d)
    return sorted(out, key=lambda d: (_depth(d), str(d)))


def device_groups(nodes: list[str], uid: int, gid: int) -> list[int]:
    """Groups the command keeps so that it can still open the device nodes it is given (the
    GPUs): the group of each character device that uid/gid could not read and write otherwise
    and whose group can. Missing nodes and other files are ignored."""
    groups: set[int] = set()
    for node in nodes:
        try:
            st = os.stat(node)
        except OSError:
            continue
        if not stat.S_ISCHR(st.st_mode) or st.st_uid == uid or st.st_mode & 0o006 == 0o006:
            continue
        if st.st_gid != gid and st.st_mode & 0o060 == 0o060:
            groups.add(st.st_gid)
    return sorted(groups)


def command_problem_in_view(cmd: str, config: SandboxConfig) -> str | None:
    """Why ``cmd`` is not an executable file of the sandbox's view (see ``command_problem``)."""
    trees = [Path(d) for d in SYSTEM_DIRS if os.path.isdir(d)] + list(config.ro_binds) + [config.workspace]
    trees += [inside for _, inside in config.ro_overlays]

    def visible_exe(path: Path) -> bool:
        return (
            path.is_absolute()
            and any(path == t or path.is_relative_to(t) for t in trees)
            and path.is_file()
            and os.access(path, os.X_OK)
        )

    if "/" in cmd:
        path = Path(cmd) if cmd.startswith("/") else config.workspace / cmd
        return None if visible_exe(path) else f"{cmd}: not an executable file inside the sandbox"
    search = config.container_env().get("PATH", "")
    if any(visible_exe(Path(d) / cmd) for d in search.split(":") if d):
        return None
    return f"{cmd}: command not found on the sandbox's PATH ({search})"


def _read_status(fd: int) -> dict[str, object]:
    """Merge the JSON documents bwrap wrote to its status fd (``child-pid``, ``exit-code``)."""
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not b:
            break
        chunks.append(b)
    merged: dict[str, object] = {}
    dec = json.JSONDecoder()
    text = b"".join(chunks).decode(errors="replace")
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict):
            merged.update(obj)
    return merged


def _bwrap_message(stderr: Path, *, first_line_only: bool = False) -> str:
    """bwrap's own error line(s) from the start of the stderr file."""
    try:
        head = Path(stderr).read_bytes()[:4096].decode(errors="replace")
    except OSError:
        return ""
    lines = head.splitlines()[:1] if first_line_only else head.splitlines()
    lines = [ln for ln in lines if ln.startswith("bwrap:")]
    return " ".join(lines)[:500]
