"""Memory and process-count limits through cgroups (v2 if delegated and writable, else v1).

One run gets its own cgroup(s), created as a child of the cgroup the harness itself is in (so
limits that already apply to the harness keep applying), named ``ptb-<uuid>``:

- cgroup v2: one directory with ``memory.max``, ``memory.swap.max = 0`` and ``pids.max``;
  used only when the needed controllers are enabled (or can be enabled) for our subtree.
- cgroup v1: one directory per controller, ``/sys/fs/cgroup/memory/.../ptb-<uuid>``
  (``memory.limit_in_bytes`` and, with swap accounting, ``memory.memsw.limit_in_bytes``) and
  ``/sys/fs/cgroup/pids/.../ptb-<uuid>`` (``pids.max``).

The command joins the cgroups *before* it is executed (see :data:`JOIN_SCRIPT`), so nothing it
starts can escape them; the join runs outside the sandbox, as the harness user, and the cgroup
files stay owned by it (an unprivileged command inside cannot write them, nor see them unless
``/sys`` is bound). Without a writable cgroup the limit is recorded as not enforced and the run
goes on. The cgroup also tracks every process of the run, so that a tree kill can find
processes that left the process group or session. After the run, :meth:`Cgroups.oom_kills` and
:meth:`Cgroups.pids_limit_hits` say whether a limit stopped something.

**Default sizes** (:func:`resolve_limits`, used for every agent run): with ``M`` the machine's
RAM (``MemTotal``, or the harness's own cgroup memory limit when lower), ``R = max(2 GiB,
M/10)`` kept for the harness and the system, ``s`` the run's share of the machine's GPUs
(``run GPUs / GPU device nodes``; 1 for a CPU run, a machine without GPUs, or a harness already
in a memory-limited cgroup: a Slurm job or container was sized by its scheduler)::

    memory_mb = max(512, (M - R) * s)
    max_pids  = min(1024 + 64 * CPUs + 512 * run GPUs, kernel.pid_max / 2)

(CPUs: those the harness may run on; tasks count threads, and PyTorch starts one per CPU per
process.) ``PTB_SANDBOX_MEMORY_MB`` / ``PTB_SANDBOX_MAX_PIDS`` (the settings' ``sandbox`` group)
override either (an integer of at least ``MIN_MEMORY_MB`` / ``MIN_MAX_PIDS``, or ``off``); what
was used and why is recorded with the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import MIN_MEMORY_MB, SandboxSettings, Settings

log = logging.getLogger(__name__)

CGROUP_PREFIX = "ptb-"
#: Where the process's own mount table and cgroup membership are read (a test points it at a
#: fake tree to exercise the cgroup v2 path on a v1 machine).
PROC_SELF = Path("/proc/self")

#: ``sh -c`` script: cgroup.procs files up to ``--``, then the command. The shell moves itself
#: into each cgroup, then execs the command, so the command and all its descendants start
#: inside the cgroups. ``{unset}`` is filled in (dash exports a PWD of its own otherwise).
JOIN_SCRIPT = (
    'while [ "$1" != "--" ]; do '
    '{ echo $$ > "$1"; } 2>/dev/null || '
    '{ echo "ptb-sandbox: cannot join cgroup $1" >&2; exit 125; }; '
    "shift; done; shift; "
    '{unset}exec "$@"'
)
JOIN_FAILED_EXIT = 125
JOIN_FAILED_MSG = b"ptb-sandbox: cannot join cgroup"


@dataclass
class Cgroups:
    """The cgroup directories of one run (v2: one dir; v1: one per controller)."""

    version: int
    dirs: list[Path]
    memory_dir: Path | None = None
    enforced: dict[str, bool | str] = field(default_factory=dict)

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid to, to join this run's cgroups."""
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> set[int]:
        """Every pid currently in any of the run's cgroups."""
        out: set[int] = set()
        for f in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                out.update(int(x) for x in f.read_text().split())
        return out

    def oom_kills(self) -> int:
        """How many processes the memory limit killed (0 if unknown)."""
        if self.memory_dir is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.memory_dir / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids_limit_hits(self) -> int:
        """How many forks/clones the pids limit refused (``pids.events``: ``max N``; 0 if unknown)."""
        for d in self.dirs:
            try:
                for line in (d / "pids.events").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "max":
                        return int(value)
            except (OSError, ValueError):
                continue
        return 0

    def remove(self, timeout_s: float = 5.0) -> None:
        """SIGKILL whatever is left in the cgroups and remove them (never raises)."""
        deadline = time.monotonic() + timeout_s
        for d in self.dirs:
            while True:
                for pid in self.pids():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        log.warning("could not remove cgroup %s: %s", d, e)
                        break
                    time.sleep(0.02)


def _unescape_mount(s: str) -> str:
    """Decode the octal escapes (``\\040`` for space) of /proc/self/mountinfo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fstype, super options) of every cgroup mount."""
    out: list[tuple[str, str, str, set[str]]] = []
    try:
        lines = (PROC_SELF / "mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3 or rf[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((_unescape_mount(lf[3]), _unescape_mount(lf[4]), rf[0], set(rf[2].split(","))))
    return out


def _own_cgroups() -> dict[str, str]:
    """Controller (or '' for the v2 hierarchy) -> our cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    try:
        lines = (PROC_SELF / "cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def _host_dir(mount_root: str, mount_point: str, path: str) -> Path | None:
    """Host directory of cgroup ``path`` under a mount whose root is ``mount_root``."""
    root = mount_root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        return None
    rel = path[len(root) :].lstrip("/")
    d = Path(mount_point) / rel
    return d if d.is_dir() else None


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _swap_active() -> bool:
    try:
        return len(Path("/proc/swaps").read_text().strip().splitlines()) > 1
    except OSError:
        return False


def _try_v2(memory_mb: int | None, max_pids: int | None, name: str) -> tuple[Cgroups | None, str]:
    needed = ({"memory"} if memory_mb else set()) | ({"pids"} if max_pids else set())
    mount = next((m for m in _mounts() if m[2] == "cgroup2"), None)
    own = _own_cgroups().get("")
    if mount is None or own is None:
        return None, "no cgroup2 hierarchy"
    base = _host_dir(mount[0], mount[1], own)
    if base is None:
        return None, f"own cgroup2 {own} not found under {mount[1]}"
    try:
        available = set((base / "cgroup.controllers").read_text().split())
    except OSError as e:
        return None, f"cgroup2 at {base} unreadable: {e}"
    if needed - available:
        return None, (
            f"cgroup2 at {base} lacks controller(s) {','.join(sorted(needed - available))} "
            f"(has: {','.join(sorted(available)) or 'none'})"
        )
    try:
        enabled = set((base / "cgroup.subtree_control").read_text().split())
        if needed - enabled:
            enable = " ".join(f"+{c}" for c in sorted(needed - enabled))
            _write(base / "cgroup.subtree_control", enable)
    except OSError as e:
        return None, f"cannot enable {sorted(needed)} in {base}/cgroup.subtree_control: {e}"
    d = base / name
    try:
        d.mkdir()
    except OSError as e:
        return None, f"cannot create {d}: {e}"
    cg = Cgroups(version=2, dirs=[d])
    try:
        if memory_mb:
            _write(d / "memory.max", str(memory_mb * 2**20))
            cg.memory_dir = d
            cg.enforced["memory"] = True
            try:
                _write(d / "memory.swap.max", "0")
                cg.enforced["swap"] = True
            except OSError as e:  # no memory.swap.max: swap accounting is off
                cg.enforced["swap"] = f"not enforced: memory.swap.max: {e}" if _swap_active() else True
        if max_pids:
            _write(d / "pids.max", str(max_pids))
            cg.enforced["pids"] = True
    except OSError as e:
        cg.remove()
        return None, f"cannot write limits in {d}: {e}"
    return cg, ""


def _try_v1_controller(controller: str, name: str) -> tuple[Path | None, str]:
    mount = next((m for m in _mounts() if m[2] == "cgroup" and controller in m[3]), None)
    own = _own_cgroups().get(controller)
    if mount is None or own is None:
        return None, f"no cgroup v1 {controller} hierarchy"
    base = _host_dir(mount[0], mount[1], own)
    if base is None:
        return None, f"own {controller} cgroup {own} not found under {mount[1]}"
    d = base / name
    try:
        d.mkdir()
    except OSError as e:
        return None, f"cannot create {d}: {e}"
    return d, ""


def setup_cgroups(
    memory_mb: int | None, max_pids: int | None, *, track: bool = False, pid_overhead: int = 0
) -> tuple[Cgroups | None, dict[str, bool | str]]:
    """Create this run's cgroups with the given limits.

    ``track``: create a cgroup even without limits, only to find every process of the run.
    ``pid_overhead``: helper processes of the backend itself, added to ``max_pids``.

    Returns the cgroups (``None`` when none could be made, or none was needed) and the
    ``enforced`` entries for ``memory``, ``pids`` (and ``swap``): True or a reason string.
    Never raises.
    """
    enforced: dict[str, bool | str] = {
        "memory": "not requested" if memory_mb is None else "not enforced",
        "pids": "not requested" if max_pids is None else "not enforced",
    }
    if memory_mb is None and max_pids is None and not track:
        return None, enforced
    name = f"{CGROUP_PREFIX}{uuid.uuid4().hex}"
    pids_limit = max_pids + pid_overhead if max_pids else None

    cg, reason_v2 = _try_v2(memory_mb, pids_limit, name)
    if cg is not None:
        enforced.update(cg.enforced)
        return cg, enforced

    # cgroup v1: one directory per controller.
    dirs: list[Path] = []
    cg = Cgroups(version=1, dirs=dirs)
    reasons: dict[str, str] = {}
    wanted = [("memory", memory_mb), ("pids", pids_limit)]
    for controller, limit in wanted:
        if limit is None:
            continue
        d, reason = _try_v1_controller(controller, name)
        if d is None:
            reasons[controller] = reason
            continue
        try:
            if controller == "memory":
                _write(d / "memory.limit_in_bytes", str(limit * 2**20))
                cg.memory_dir = d
                try:
                    _write(d / "memory.memsw.limit_in_bytes", str(limit * 2**20))
                    enforced["swap"] = True
                except OSError as e:
                    enforced["swap"] = (
                        f"not enforced: memory.memsw.limit_in_bytes: {e}"
                        if _swap_active()
                        else True  # no swap device: nothing to swap to
                    )
            else:
                _write(d / "pids.max", str(limit))
        except OSError as e:
            reasons[controller] = f"cannot write limit in {d}: {e}"
            Cgroups(version=1, dirs=[d]).remove()
            continue
        dirs.append(d)
        enforced[controller] = True
    for controller, reason in reasons.items():
        enforced[controller] = f"not enforced: {reason}; cgroup v2: {reason_v2}"
    if not dirs and track:
        for controller in ("pids", "memory"):
            d, _ = _try_v1_controller(controller, name)
            if d is not None:
                dirs.append(d)
                break
    if not dirs:
        return None, enforced
    return cg, enforced


# --- default sizes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What the default limits are sized from."""

    mem_mb: int  # MemTotal, or the harness's own cgroup memory limit when lower
    mem_limited_by_cgroup: bool
    cpus: int  # CPUs this process may run on
    gpus: int  # GPU device nodes (/dev/nvidia<N>)
    pid_max: int

    @classmethod
    def probe(cls) -> Machine:
        """This machine (never raises; conservative fallbacks)."""
        total = 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) // 1024
                    break
        except (OSError, ValueError, IndexError):
            pass
        cg = _harness_memory_limit_mb()
        limited = cg is not None and (total == 0 or cg < total)
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        try:
            gpus = sum(1 for n in os.listdir("/dev") if re.fullmatch(r"nvidia\d+", n))
        except OSError:
            gpus = 0
        try:
            pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        except (OSError, ValueError):
            pid_max = 32768
        return cls(
            mem_mb=(cg if limited else total) or 4096,
            mem_limited_by_cgroup=limited,
            cpus=max(1, cpus),
            gpus=gpus,
            pid_max=pid_max,
        )


def _harness_memory_limit_mb() -> int | None:
    """The lowest memory limit on the harness's own cgroup or its ancestors (MiB), if any."""
    own = _own_cgroups()
    lowest: int | None = None
    for root, point, fstype, opts in _mounts():
        if fstype == "cgroup2":
            path, name = own.get(""), "memory.max"
        elif "memory" in opts:
            path, name = own.get("memory"), "memory.limit_in_bytes"
        else:
            continue
        if path is None:
            continue
        d = _host_dir(root, point, path)
        top = Path(point)
        while d is not None and (d == top or top in d.parents):
            try:
                raw = (d / name).read_text().strip()
                if raw.isdigit() and int(raw) < 2**60:
                    mb = int(raw) // 2**20
                    lowest = mb if lowest is None else min(lowest, mb)
            except OSError:
                pass
            d = d.parent if d != top else None
    return lowest


def default_limits(run_gpus: int, machine: Machine) -> tuple[int, int]:
    """(memory_mb, max_pids) for a run with ``run_gpus`` GPUs (formula in the module docstring)."""
    reserve = max(2048, machine.mem_mb // 10)
    share = 1.0
    if run_gpus > 0 and machine.gpus > 0 and not machine.mem_limited_by_cgroup:
        share = min(1.0, run_gpus / machine.gpus)
    memory = max(MIN_MEMORY_MB, int((machine.mem_mb - reserve) * share))
    pids = min(1024 + 64 * machine.cpus + 512 * run_gpus, max(256, machine.pid_max // 2))
    return memory, pids


@dataclass(frozen=True)
class LimitPlan:
    """The limits one run asks for, and where each came from (recorded in ``run.json``)."""

    memory_mb: int | None
    max_pids: int | None
    memory_source: str
    pids_source: str
    machine: Machine

    def record(self) -> dict[str, object]:
        """JSON-ready: the requested limits, their sources and the machine they were sized from."""
        m = self.machine
        return {
            "memory_mb": self.memory_mb,
            "max_pids": self.max_pids,
            "memory_source": self.memory_source,
            "pids_source": self.pids_source,
            "machine": {
                "mem_mb": m.mem_mb, "mem_limited_by_cgroup": m.mem_limited_by_cgroup,
                "cpus": m.cpus, "gpus": m.gpus, "pid_max": m.pid_max,
            },
        }  # fmt: skip


def resolve_limits(run_gpus: int, settings: Settings | None = None, *, machine: Machine | None = None) -> LimitPlan:
    """The memory and pids limits of an agent run: the defaults sized from ``machine`` and the
    run's GPUs, unless ``settings.sandbox`` says otherwise (``PTB_SANDBOX_MEMORY_MB`` /
    ``PTB_SANDBOX_MAX_PIDS``; ``settings``: default read from the environment now)."""
    sandbox = (settings if settings is not None else Settings.from_env()).sandbox
    m = machine or Machine.probe()
    memory: int | None
    pids: int | None
    memory, pids = default_limits(run_gpus, m)
    msrc = psrc = "default"
    if sandbox.memory_mb is not None:
        var = SandboxSettings.env_name("memory_mb")
        memory, msrc = (None, f"{var}=off") if sandbox.memory_mb == "off" else (sandbox.memory_mb, var)
    if sandbox.max_pids is not None:
        var = SandboxSettings.env_name("max_pids")
        pids, psrc = (None, f"{var}=off") if sandbox.max_pids == "off" else (sandbox.max_pids, var)
    return LimitPlan(memory, pids, msrc, psrc, m)
