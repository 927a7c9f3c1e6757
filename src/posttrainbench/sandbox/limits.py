"""Memory and process-count limits through cgroups (v2 if delegated and writable, else v1).

One run gets its own cgroup(s), created as a child of the cgroup the harness itself is in (so
limits that already apply to the harness keep applying), named ``ptb-<uuid>``:

- cgroup v2: one directory with ``memory.max``, ``memory.swap.max = 0`` and ``pids.max``;
  used only when the needed controllers are enabled (or can be enabled) for our subtree.
- cgroup v1: one directory per controller, ``/sys/fs/cgroup/memory/.../ptb-<uuid>``
  (``memory.limit_in_bytes`` and, with swap accounting, ``memory.memsw.limit_in_bytes``) and
  ``/sys/fs/cgroup/pids/.../ptb-<uuid>`` (``pids.max``).

The command joins the cgroups *before* it is executed (see :data:`JOIN_SCRIPT`), so nothing it
starts can escape them. Without a writable cgroup the limit is recorded as not enforced and
the run goes on. The cgroup also tracks every process of the run, so that a tree kill can
find processes that left the process group or session.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_PREFIX = "ptb-"

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
            try:
                out.update(int(x) for x in f.read_text().split())
            except (OSError, ValueError):
                pass
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

    def remove(self, timeout_s: float = 5.0) -> None:
        """SIGKILL whatever is left in the cgroups and remove them (never raises)."""
        deadline = time.monotonic() + timeout_s
        for d in self.dirs:
            while True:
                for pid in self.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
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
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
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
        lines = Path("/proc/self/cgroup").read_text().splitlines()
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
    rel = path[len(root):].lstrip("/")
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
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
                cg.enforced["swap"] = True
            else:
                cg.enforced["swap"] = "not enforced: no memory.swap.max (swap accounting off)"
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
