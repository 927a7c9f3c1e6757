"""The sandbox contract: what a backend is given, what it returns, and the base class it implements.

A *sandbox backend* runs one command (the agent) with a hard wall-clock limit enforced from
outside, optional memory / process limits, an exact environment and a filesystem view in which
the workspace is the only persistent writable tree (except the read-only ``ro_overlays`` placed
over paths inside it). Backends never raise for anything the command does (crash, timeout, OOM,
a sandbox that fails to start): they return a :class:`SandboxResult` that says what happened
and which limits were really enforced. They raise only for programming errors (e.g. a workspace
that does not exist).

**Identity.** When the harness runs as root, the isolating backends run the command as an
unprivileged uid/gid (:func:`sandbox_identity`: ``config.uid``/``gid``, else the settings'
``$PTB_SANDBOX_UID``/``$PTB_SANDBOX_GID``, else 65534/65534, ``nobody``/``nogroup``, which has
a passwd entry on every common distribution, so ``getpwuid`` works inside); the workspace is
given to that uid first (:func:`give_workspace`). A non-root harness runs the command as itself:
it cannot switch, and it is not privileged. An explicit uid 0 opts out (recorded).
"""

from __future__ import annotations

import contextlib
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator

from posttrainbench.domain import NetworkPolicy
from posttrainbench.registry import Registry
from posttrainbench.sandbox.egress import parse_allow_list, parse_authority
from posttrainbench.sandbox.hub_gateway import HubGatewaySpec
from posttrainbench.settings import Settings


class SandboxConfig(pydantic.BaseModel):
    """What the sandboxed command may see and use.

    Paths must be absolute. Inside the sandbox every path appears at the same absolute
    path as on the host.
    """

    model_config = ConfigDict(extra="forbid")

    workspace: Path = Field(..., description="Host dir; the only writable persistent tree; same path inside; the cwd.")
    ro_binds: list[Path] = Field(
        default_factory=list,
        description="Host paths visible read-only at the same path (python prefix, venv, model...).",
    )
    ro_overlays: list[tuple[Path, Path]] = Field(
        default_factory=list,
        description="(host source, inside path) pairs: the source is bound read-only over an "
        "existing file or directory *inside the workspace* (same kind), after the workspace "
        "itself; writing, truncating, renaming, deleting, chmod-ing or hard-linking it fails "
        "inside (harness files: evaluate.py, timer.sh, task/, ...).",
    )
    uid: int | None = Field(
        None,
        ge=0,
        description="uid the command runs as when the harness is root (None: the settings' "
        "$PTB_SANDBOX_UID, else 65534). Ignored for a non-root harness, which runs the command as itself.",
    )
    gid: int | None = Field(
        None, ge=0, description="gid to go with ``uid`` (None: the settings' $PTB_SANDBOX_GID, else 65534)."
    )
    tmp_dir: Path | None = Field(
        None,
        description="Host folder bound read-write at /tmp inside (made mode 1777), so /tmp outlives the run and "
        "can be observed and scanned. None: a private tmpfs. /dev/shm stays a private tmpfs either way.",
    )
    masked: list[Path] = Field(
        default_factory=list,
        description="Paths hidden inside: a directory becomes an empty read-only tmpfs, a file "
        "becomes an empty read-only file.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="The complete environment inside; nothing of the host environment leaks.",
    )
    network: NetworkPolicy = NetworkPolicy.none
    time_limit_s: float = Field(..., gt=0, description="Hard wall-clock limit, enforced from outside.")
    kill_grace_s: float = Field(5.0, ge=0, description="Seconds between SIGTERM and SIGKILL.")
    memory_mb: int | None = Field(None, gt=0, description="Memory limit (cgroups) in MiB.")
    max_pids: int | None = Field(None, gt=0, description="Max tasks (processes + threads) of the command (cgroups).")
    gpus: list[int] = Field(
        default_factory=list,
        description="Host GPU indices; only their /dev/nvidia* nodes are exposed "
        "(and CUDA_VISIBLE_DEVICES is set). Empty: no GPU device node at all.",
    )

    max_output_mb: int | None = Field(
        None, gt=0, description="Cap on each of stdout/stderr (MiB); past it the run is stopped."
    )
    max_workspace_mb: int | None = Field(
        None,
        gt=0,
        description="Quota on the workspace (MiB, apparent size: sparse files count in full), "
        "checked by a watchdog every few seconds; past it the run is stopped.",
    )
    egress_allow: list[str] = Field(
        default_factory=list,
        description="Targets reachable through the logging egress proxy (see sandbox.egress): "
        "'host' (port 443), 'host:port', '*.domain[:port]' (strict sub-domains). Used with network "
        "none/allowlist; empty with 'none': no proxy, no network at all.",
    )
    egress_log: Path | None = Field(None, description="Host file the proxy appends one ALLOW/DENY line per request to.")
    egress_tunnels: dict[int, str] = Field(
        default_factory=dict,
        description="In-sandbox loopback port -> 'host:port' reached through the proxy (for "
        "clients configured with a base URL, e.g. http://127.0.0.1:<port>).",
    )
    egress_proxy_port: int = Field(3128, gt=0, lt=65536, description="In-sandbox loopback port of HTTP(S)_PROXY.")
    hub_gateway: HubGatewaySpec | None = Field(
        None,
        description="network=allowlist only: the hub gateway (sandbox.hub_gateway) that HF_ENDPOINT "
        "points at inside, refusing the run's forbidden repos. None: no hub access.",
    )

    @model_validator(mode="after")
    def _egress_consistent(self) -> SandboxConfig:
        if self.network == NetworkPolicy.allowlist and self.egress_log is None:
            raise ValueError("network=allowlist needs egress_log (the proxy's request log)")
        if self.egress_allow and self.network != NetworkPolicy.open and self.egress_log is None:
            raise ValueError("egress_allow needs egress_log (the proxy's request log)")
        if self.egress_tunnels and not self.uses_proxy:
            raise ValueError("egress_tunnels need the proxy (network none/allowlist + egress_allow)")
        if self.egress_proxy_port in self.egress_tunnels:
            raise ValueError("an egress tunnel uses the proxy port")
        for src, inside in self.ro_overlays:
            if not (src.is_absolute() and inside.is_absolute()):
                raise ValueError(f"ro_overlays paths must be absolute, got {src} -> {inside}")
            if inside == self.workspace or not inside.is_relative_to(self.workspace):
                raise ValueError(f"ro_overlays target {inside} is not inside the workspace")
        if len({inside for _, inside in self.ro_overlays}) != len(self.ro_overlays):
            raise ValueError("ro_overlays targets must be distinct")
        if self.hub_gateway is not None:
            if self.network != NetworkPolicy.allowlist:
                raise ValueError("hub_gateway needs network=allowlist")
            if self.hub_gateway.port in {self.egress_proxy_port, *self.egress_tunnels}:
                raise ValueError("the hub gateway port is already used by the proxy or a tunnel")
        return self

    @field_validator("egress_allow")
    @classmethod
    def _allow_entries(cls, v: list[str]) -> list[str]:
        parse_allow_list(v)  # exact syntax or a clear error now, not a silent mismatch later
        return v

    @field_validator("egress_tunnels")
    @classmethod
    def _tunnel_targets(cls, v: dict[int, str]) -> dict[int, str]:
        for port, target in v.items():
            if not 0 < port < 65536:
                raise ValueError(f"tunnel port {port} out of range")
            parse_authority(target, None)
        return v

    @property
    def uses_proxy(self) -> bool:
        """Whether the egress proxy runs for this config."""
        return self.network == NetworkPolicy.allowlist or (
            self.network == NetworkPolicy.none and bool(self.egress_allow)
        )

    @field_validator("workspace")
    @classmethod
    def _workspace_absolute(cls, v: Path) -> Path:
        if not v.is_absolute():
            raise ValueError(f"workspace must be an absolute path, got {v}")
        return v

    @field_validator("ro_binds", "masked")
    @classmethod
    def _paths_absolute(cls, v: list[Path]) -> list[Path]:
        for p in v:
            if not p.is_absolute():
                raise ValueError(f"sandbox paths must be absolute, got {p}")
        return v

    @field_validator("gpus")
    @classmethod
    def _gpus_valid(cls, v: list[int]) -> list[int]:
        if any(i < 0 for i in v) or len(set(v)) != len(v):
            raise ValueError(f"gpus must be distinct non-negative indices, got {v}")
        return v

    def container_env(self) -> dict[str, str]:
        """The environment the command gets: ``env``, plus ``PWD`` (the workspace, unless given;
        bwrap always sets it) and, when ``gpus`` is set, the GPU selection."""
        env = dict(self.env)
        env.setdefault("PWD", str(self.workspace))
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in self.gpus)
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        return env


class SandboxResult(pydantic.BaseModel):
    """Outcome of one sandboxed command."""

    model_config = ConfigDict(extra="forbid")

    exit_code: int | None = Field(
        ...,
        description="Exit status of the command; 128+N when it died of signal N; "
        "None when it timed out (and was killed) or never started.",
    )
    timed_out: bool
    duration_s: float
    error: str | None = Field(None, description='e.g. "failed to start: bwrap not found".')
    enforced: dict[str, bool | str] = Field(
        ...,
        description="Which isolation properties / limits were really enforced: True, or a string "
        "that says why not (e.g. 'not enforced: no writable cgroup', 'not requested').",
    )
    oom_killed: bool = Field(False, description="The cgroup memory limit killed a process.")
    pids_limit_hits: int = Field(0, ge=0, description="How many process/thread creations the pids limit refused.")
    limit_exceeded: str | None = Field(
        None, description="Why the run was stopped early: output cap or workspace quota exceeded."
    )


class Sandbox(ABC):
    """A backend that runs one command in isolation with limits. Each backend registers its
    class in :data:`SANDBOXES` under its ``name`` (a :class:`~posttrainbench.domain.SandboxKind`)."""

    name: ClassVar[str]

    def __init__(self, *, settings: Settings | None = None) -> None:
        """``settings``: what the backend runs under (the sandbox uid/gid, images); None: read
        from the environment when needed."""
        self.settings = settings

    def current_settings(self) -> Settings:
        """The backend's settings, else those of the environment now."""
        return self.settings if self.settings is not None else Settings.from_env()

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether the backend works on this machine, and why not."""

    @abstractmethod
    def run(
        self,
        argv: list[str],
        config: SandboxConfig,
        *,
        stdin: Path | None,
        stdout: Path,
        stderr: Path,
    ) -> SandboxResult:
        """Run ``argv`` under ``config``; stdout/stderr go to the given host files (truncated)."""


#: Every sandbox backend, by ``name``.
SANDBOXES: Registry[type[Sandbox]] = Registry("sandbox", key=lambda cls: cls.name)


def check_config_paths(config: SandboxConfig) -> None:
    """Raise ``ValueError`` for a config naming host paths that do not exist (a harness bug)."""
    if not config.workspace.is_dir():
        raise ValueError(f"workspace {config.workspace} is not a directory")
    for p in config.ro_binds:
        if not p.exists():
            raise ValueError(f"ro_bind {p} does not exist")
    for src, inside in config.ro_overlays:
        if not src.exists() or src.is_symlink():
            raise ValueError(f"ro_overlay source {src} does not exist (or is a symlink)")
        if inside.is_symlink() or not inside.exists() or inside.is_dir() != src.is_dir():
            # bwrap/docker would create a missing target themselves, as root, in the workspace
            raise ValueError(f"ro_overlay target {inside} must exist in the workspace, of the same kind as {src}")


def sandbox_identity(config: SandboxConfig, settings: Settings | None = None) -> tuple[int, int] | None:
    """(uid, gid) the command must be switched to, or None when it runs as the harness user:
    a non-root harness (it cannot switch), or uid 0 asked for explicitly. Without ``config.uid``
    / ``gid``: ``settings.sandbox`` (default: read from the environment now, which raises
    :class:`~posttrainbench.settings.SettingsError` for a malformed ``PTB_SANDBOX_UID``/``GID``)."""
    if os.geteuid() != 0:
        return None
    uid, gid = config.uid, config.gid
    if uid is None or gid is None:
        sandbox = (settings if settings is not None else Settings.from_env()).sandbox
        uid = sandbox.uid if uid is None else uid
        gid = sandbox.gid if gid is None else gid
    return None if uid == 0 else (uid, gid)


def uid_entry(config: SandboxConfig, identity: tuple[int, int] | None) -> bool | str:
    """The ``enforced["uid"]`` entry for an isolating backend."""
    if identity is not None:
        return f"uid {identity[0]}, gid {identity[1]}, no supplementary groups (harness is root)"
    if os.geteuid() != 0:
        return True  # the harness's own unprivileged uid
    return "not enforced: uid 0 configured (PTB_SANDBOX_UID=0): runs as host root without capabilities"


def overlay_entry(config: SandboxConfig) -> bool | str:
    """The ``enforced["ro_overlays"]`` entry for a backend that binds them read-only."""
    return True if config.ro_overlays else "not requested"


def give_workspace(root: Path, uid: int, gid: int) -> None:
    """``chown -R uid:gid root`` without following symlinks (the command must own its workspace;
    the harness, root, still reads and rewrites everything afterwards). Files with several hard
    links are skipped: one of them could be a host file outside the workspace."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
                if st.st_nlink > 1 and not os.path.isdir(p):
                    continue
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.lchown(p, uid, gid)
            except OSError:
                continue


def _may(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """Whether uid/gid (no supplementary groups) has every permission in ``bits`` (r=4, w=2, x=1)."""
    if st.st_uid == uid:
        mode = st.st_mode >> 6
    elif st.st_gid == gid:
        mode = st.st_mode >> 3
    else:
        mode = st.st_mode
    return mode & bits == bits


#: Paths found fully readable, by (path, uid, gid, the path's own mtime and ctime): a sandbox per
#: program (HumanEval) would otherwise walk the same interpreter tree every time.
_READABLE: set[tuple[str, int, int, int, int]] = set()


def unreadable(paths: list[Path], uid: int, gid: int, *, max_entries: int = 1000) -> list[str]:
    """Those of ``paths`` (and of what lies below them, up to ``max_entries`` per path; symlinks
    not followed) that uid/gid could not read: directories need r+x, files r. Parent
    directories do not matter: inside the sandbox they are created by the backend,
    world-traversable. At most 5 are named, then a count.

    A convenience (a clear start failure instead of an agent that cannot read its model), not a
    security control: a path found readable is not walked again in this process while its own
    mtime and ctime stay the same."""
    bad: list[str] = []
    for root in paths:
        try:
            rst = os.stat(root)
        except OSError:
            continue
        key = (str(root), uid, gid, rst.st_mtime_ns, rst.st_ctime_ns)
        if key in _READABLE:
            continue
        before = len(bad)
        seen = 0
        stack = [str(root)]
        while stack and seen < max_entries:
            p = stack.pop()
            try:
                st = os.lstat(p)
            except OSError:
                continue
            seen += 1
            is_dir = stat.S_ISDIR(st.st_mode)
            if not (is_dir or stat.S_ISREG(st.st_mode)) or not st.st_mode & 0o444:
                continue  # special and write-only files (cgroupfs, sysfs) are nobody's to read
            if not _may(st, uid, gid, 5 if is_dir else 4):
                bad.append(f"{p} (mode {st.st_mode & 0o7777:o}, owner {st.st_uid}:{st.st_gid})")
                continue
            if is_dir:
                try:
                    stack.extend(e.path for e in os.scandir(p))
                except OSError:
                    continue
        if len(bad) == before:
            _READABLE.add(key)
    if len(bad) > 5:
        return [*bad[:5], f"... {len(bad) - 5} more"]
    return bad


def not_started(error: str, enforced: dict[str, bool | str], stdout: Path, stderr: Path) -> SandboxResult:
    """Result for a command that never started; the output files still exist (empty)."""
    for p in {Path(stdout), Path(stderr)}:
        with contextlib.suppress(OSError):
            p.write_bytes(b"")
    return SandboxResult(exit_code=None, timed_out=False, duration_s=0.0, error=error, enforced=enforced)


def tree_size(root: Path, stop_above: int | None = None) -> int:
    """Apparent size in bytes of every file under ``root`` (symlinks not followed; a sparse
    file counts with its full length). Stops counting once above ``stop_above``."""
    total = 0
    stack = [str(root)]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    else:
                        st = e.stat(follow_symlinks=False)
                        total += max(st.st_size, st.st_blocks * 512)
                except OSError:
                    continue
                if stop_above is not None and total > stop_above:
                    return total
    return total


def workspace_watchdog(config: SandboxConfig) -> Callable[[], str | None] | None:
    """The watchdog enforcing ``max_workspace_mb`` (None when no quota is set)."""
    if config.max_workspace_mb is None:
        return None
    cap = config.max_workspace_mb * 2**20

    def check() -> str | None:
        size = tree_size(config.workspace, stop_above=cap)
        if config.tmp_dir is not None and size <= cap:  # a host /tmp counts against the same quota
            size += tree_size(config.tmp_dir, stop_above=cap - size)
        if size > cap:
            return f"workspace exceeded its quota of {config.max_workspace_mb} MiB"
        return None

    return check


def output_cap_bytes(config: SandboxConfig) -> int | None:
    """``max_output_mb`` in bytes."""
    return config.max_output_mb * 2**20 if config.max_output_mb is not None else None


def limit_entries(config: SandboxConfig) -> dict[str, bool | str]:
    """``enforced`` entries for the output cap and the workspace quota."""
    return {
        "output_cap": True if config.max_output_mb is not None else "not requested",
        "workspace_quota": "watchdog (polled every 2 s)" if config.max_workspace_mb is not None else "not requested",
    }
