"""Start a command, enforce a wall-clock limit from outside, and kill its whole process tree.

Shared by every backend. The command is started in a new session (so it is the leader of its
own process group and session). On timeout every process of the run gets SIGTERM, then, after
the grace period, SIGKILL. "Every process of the run" is the union of

- the descendants of the leader (by parent pid, from /proc),
- the members of its process group and session,
- every pid in the run's cgroups (when there are any: this also catches processes that
  called ``setsid`` and were re-parented away from the tree),

re-scanned until nothing is left. Pid reuse is guarded against by the process start time.
With a PID namespace (bwrap) killing the namespace's init is enough on its own: the kernel then
kills every process inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from posttrainbench.sandbox.base import SandboxConfig, SandboxResult, output_cap_bytes, workspace_watchdog
from posttrainbench.sandbox.limits import JOIN_FAILED_EXIT, JOIN_FAILED_MSG, JOIN_SCRIPT, Cgroups

log = logging.getLogger(__name__)

_POLL_S = 0.05


@dataclass(frozen=True)
class ProcInfo:
    """One line of the process table."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks since boot; with pid, identifies a process uniquely
    state: str = "R"  # "Z": zombie (dead, only waiting to be reaped)


def read_proc(pid: int) -> ProcInfo | None:
    """Parse /proc/<pid>/stat; None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        rest = raw[raw.rindex(")") + 2 :].split()
        return ProcInfo(pid, int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19]), rest[0])
    except (ValueError, IndexError):
        return None


def process_table() -> dict[int, ProcInfo]:
    """Every process visible in /proc."""
    table: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = read_proc(int(name))
            if info is not None and info.state != "Z":
                table[info.pid] = info
    return table


def run_members(leader: ProcInfo, cgroups: Cgroups | None) -> dict[int, ProcInfo]:
    """Every live process of the run started by ``leader`` (see module docstring)."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: set[int] = set()
    if leader.pid in table and table[leader.pid].start == leader.start:
        stack = [leader.pid]
        while stack:
            pid = stack.pop()
            if pid not in found:
                found.add(pid)
                stack.extend(children.get(pid, []))
    for info in table.values():
        # Same group/session as the leader, started no earlier (guards against id reuse).
        if (info.pgid == leader.pid or info.sid == leader.pid) and info.start >= leader.start:
            found.add(info.pid)
    if cgroups is not None:
        found.update(p for p in cgroups.pids() if p in table)
    return {pid: table[pid] for pid in found}


def _still_alive(procs: dict[int, ProcInfo]) -> dict[int, ProcInfo]:
    out = {}
    for pid, info in procs.items():
        now = read_proc(pid)
        if now is not None and now.start == info.start and now.state != "Z":
            out[pid] = info
    return out


def _signal(procs: dict[int, ProcInfo], sig: int, spare: int | None = None) -> None:
    for pid in procs:
        if pid == spare:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def kill_all(
    proc: subprocess.Popen[bytes],
    leader: ProcInfo,
    cgroups: Cgroups | None,
    known: dict[int, ProcInfo],
    *,
    leader_last: bool = False,
) -> None:
    """SIGKILL every process of the run until none is left, then reap the leader.

    ``leader_last``: kill the others first and give the leader up to half a second to exit by
    itself (bwrap's monitor exits as soon as its namespace init dies, reaping it properly).
    """
    victims = dict(known)
    if leader_last and proc.poll() is None:
        victims.update(run_members(leader, cgroups))
        _signal(_still_alive(victims), signal.SIGKILL, spare=leader.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    for _ in range(200):
        victims = _still_alive(victims)
        if proc.poll() is None:
            victims.update(run_members(leader, cgroups))
        else:
            victims.update({p: i for p, i in run_members(leader, cgroups).items() if p != leader.pid})
        if not victims:
            break
        _signal(victims, signal.SIGKILL)
        time.sleep(0.01)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.01)
    else:
        log.warning("processes still alive after repeated SIGKILL: %s", sorted(victims))
    proc.wait()


def terminate(
    proc: subprocess.Popen[bytes],
    leader: ProcInfo,
    cgroups: Cgroups | None,
    grace_s: float,
    *,
    spare_leader: bool,
) -> None:
    """SIGTERM the run, wait up to ``grace_s`` for it to go away, then SIGKILL what is left.

    ``spare_leader``: do not SIGTERM the leader itself (bwrap's monitor process would die at
    once and take the sandbox down with SIGKILL, leaving the command no grace to clean up).
    """
    known = run_members(leader, cgroups)
    _signal(known, signal.SIGTERM, spare=leader.pid if spare_leader else None)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            rest = {p: i for p, i in run_members(leader, cgroups).items() if p != leader.pid}
            known.update(rest)
            if not _still_alive(known):
                break
        time.sleep(_POLL_S)
    kill_all(proc, leader, cgroups, known, leader_last=spare_leader)


def _wait_joined(proc: subprocess.Popen[bytes], cgroups: Cgroups, stderr: Path, timeout_s: float = 30.0) -> bool:
    """Wait until the wrapper has moved itself into every cgroup (a few ms).

    A command that already finished counts as joined unless the wrapper reported that it
    could not join (exit 125 with its message at the start of stderr)."""
    files = cgroups.procs_files()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        joined = True
        for f in files:
            try:
                if str(proc.pid) not in f.read_text().split():
                    joined = False
                    break
            except OSError:
                joined = False
                break
        if joined:
            return True
        if proc.poll() is not None:
            if proc.returncode != JOIN_FAILED_EXIT:
                return True
            try:
                with open(stderr, "rb") as fh:
                    return JOIN_FAILED_MSG not in fh.read(4096)
            except OSError:
                return False
        time.sleep(0.001)
    return False


@dataclass
class Outcome:
    """What happened to a supervised command."""

    returncode: int | None  # 128+N for death by signal N; None if it timed out or never started
    timed_out: bool
    duration_s: float
    start_error: str | None = None
    limit_exceeded: str | None = None  # why the watchdog or an output cap killed the run


TRUNCATED_MARK = b"\n[ptb-sandbox: output cap of %d bytes reached; the run was stopped]\n"


class _Pump(threading.Thread):
    """Copies a pipe into a file up to a cap, then discards (so the writer never blocks)."""

    def __init__(self, fd: int, dest: IO[bytes], cap: int, name: str, lock: threading.Lock) -> None:
        super().__init__(daemon=True, name=f"ptb-pump-{name}")
        self.fd, self.dest, self.cap, self.label, self.lock = fd, dest, cap, name, lock
        self.written = 0
        self.exceeded = threading.Event()

    def run(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except OSError:
                    break
                if not chunk:
                    break
                if self.exceeded.is_set():
                    continue
                room = self.cap - self.written
                with self.lock:
                    self.dest.write(chunk[:room])
                    self.written += min(room, len(chunk))
                    if len(chunk) > room:
                        self.dest.write(TRUNCATED_MARK % self.cap)
                        self.exceeded.set()
                    self.dest.flush()
        finally:
            os.close(self.fd)


@contextlib.contextmanager
def _open_streams(
    stdin: Path | None, stdout: Path, stderr: Path
) -> Iterator[tuple[IO[bytes] | int, IO[bytes], IO[bytes]]]:
    with contextlib.ExitStack() as stack:
        fin: IO[bytes] | int = stack.enter_context(open(stdin, "rb")) if stdin is not None else subprocess.DEVNULL
        fout = stack.enter_context(open(stdout, "wb"))
        ferr = fout if Path(stderr).absolute() == Path(stdout).absolute() else stack.enter_context(open(stderr, "wb"))
        yield fin, fout, ferr


def supervise(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
    time_limit_s: float,
    kill_grace_s: float,
    cgroups: Cgroups | None,
    spare_leader: bool,
    pass_fds: Sequence[int] = (),
    max_output_bytes: int | None = None,
    watchdog: Callable[[], str | None] | None = None,
    watch_interval_s: float = 2.0,
) -> Outcome:
    """Run ``argv`` with a hard wall-clock limit; never raises for anything the command does.

    With ``cgroups``, the command is started through a tiny ``sh`` wrapper that joins the
    cgroups and then execs it, so that it is inside them before it runs a single instruction;
    we wait until the wrapper's pid shows up in every cgroup (or it dies: start failure).
    After the leader exits (normally or not), anything of the run still alive is killed.

    ``max_output_bytes``: stdout and stderr go through pipes, copied into their files up to this
    many bytes each; past it the run is stopped (SIGTERM, grace, SIGKILL) and the file ends
    with a truncation mark. ``watchdog``: called every ``watch_interval_s``; a non-None string
    is the reason to stop the run (e.g. the workspace grew past its quota). Either way
    ``Outcome.limit_exceeded`` says why.
    """
    full = list(argv)
    if cgroups is not None:
        script = JOIN_SCRIPT.replace("{unset}", "" if "PWD" in env else "unset PWD; ")
        full = [
            "/bin/sh", "-c", script, "ptb-cgjoin",
            *(str(f) for f in cgroups.procs_files()), "--", *full,
        ]  # fmt: skip
    start = time.monotonic()
    pumps: list[_Pump] = []
    with _open_streams(stdin, stdout, stderr) as (fin, fout, ferr):
        out_target: IO[bytes] | int = fout
        err_target: IO[bytes] | int = ferr
        child_ends: list[int] = []
        if max_output_bytes is not None:
            lock = threading.Lock()
            for label, dest in (("stdout", fout), ("stderr", ferr)):
                r, w = os.pipe()
                child_ends.append(w)
                pumps.append(_Pump(r, dest, max_output_bytes, label, lock))
            out_target, err_target = child_ends
        try:
            proc = subprocess.Popen(
                full,
                stdin=fin,
                stdout=out_target,
                stderr=err_target,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
                pass_fds=tuple(pass_fds),
            )
        except OSError as e:
            for fd in child_ends:
                os.close(fd)
            for pump in pumps:
                os.close(pump.fd)
            return Outcome(None, False, time.monotonic() - start, f"failed to start: {e}")
        finally:
            for fd in child_ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for pump in pumps:
            pump.start()
        try:
            return _supervised(
                proc, start, cgroups, stderr, time_limit_s, kill_grace_s, spare_leader,
                pumps, watchdog, watch_interval_s,
            )  # fmt: skip
        finally:
            for pump in pumps:
                pump.join(timeout=10)


def supervise_in_cgroups(
    argv: Sequence[str],
    config: SandboxConfig,
    enforced: dict[str, bool | str],
    *,
    cgroups: Cgroups | None,
    env: dict[str, str],
    cwd: Path,
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
) -> SandboxResult:
    """``supervise`` with ``config``'s time limit, output cap and workspace quota, inside
    ``cgroups`` (removed afterwards; an OOM kill there is reported), as a ``SandboxResult``.
    For backends whose command is the run's leader (apptainer, none); bwrap has its own."""
    oom, pids_hits = False, 0
    try:
        outcome = supervise(
            argv,
            env=env,
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            time_limit_s=config.time_limit_s,
            kill_grace_s=config.kill_grace_s,
            cgroups=cgroups,
            spare_leader=False,
            max_output_bytes=output_cap_bytes(config),
            watchdog=workspace_watchdog(config),
        )
    finally:
        if cgroups is not None:
            with contextlib.suppress(Exception):
                oom = cgroups.oom_kills() > 0
                pids_hits = cgroups.pids_limit_hits()
            cgroups.remove()
    return SandboxResult(
        exit_code=outcome.returncode,
        timed_out=outcome.timed_out,
        duration_s=outcome.duration_s,
        error=outcome.start_error,
        enforced=enforced,
        oom_killed=oom,
        pids_limit_hits=pids_hits,
        limit_exceeded=outcome.limit_exceeded,
    )


def _supervised(
    proc: subprocess.Popen[bytes],
    start: float,
    cgroups: Cgroups | None,
    stderr: Path,
    time_limit_s: float,
    kill_grace_s: float,
    spare_leader: bool,
    pumps: list[_Pump],
    watchdog: Callable[[], str | None] | None,
    watch_interval_s: float,
) -> Outcome:
    leader = read_proc(proc.pid) or ProcInfo(proc.pid, os.getpid(), proc.pid, proc.pid, 0)
    limit: str | None = None
    try:
        if cgroups is not None and not _wait_joined(proc, cgroups, stderr):
            kill_all(proc, leader, cgroups, {})
            return Outcome(
                None,
                False,
                time.monotonic() - start,
                f"failed to start: could not join the run's cgroups (wrapper exit {proc.returncode}; see stderr)",
            )
        timed_out = False
        deadline = start + time_limit_s
        next_watch = time.monotonic() + watch_interval_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            step = deadline - now
            if pumps:
                step = min(step, 0.1)
            if watchdog is not None:
                step = min(step, max(0.0, next_watch - now))
            try:
                proc.wait(timeout=step)
                break
            except subprocess.TimeoutExpired:
                pass
            over = next((p for p in pumps if p.exceeded.is_set()), None)
            if over is not None:
                limit = f"{over.label} exceeded the output cap of {over.cap} bytes"
                break
            if watchdog is not None and time.monotonic() >= next_watch:
                limit = watchdog()
                next_watch = time.monotonic() + watch_interval_s
                if limit:
                    break
        if timed_out or limit:
            terminate(proc, leader, cgroups, kill_grace_s, spare_leader=spare_leader)
        else:
            kill_all(proc, leader, cgroups, {})  # leftovers (background processes)
    except BaseException:
        # KeyboardInterrupt or a bug of ours: never leave the command running.
        kill_all(proc, leader, cgroups, {})
        raise
    duration = time.monotonic() - start
    if timed_out:
        return Outcome(None, True, duration)
    rc = proc.returncode
    if rc is not None and rc < 0:
        rc = 128 - rc
    if limit:
        return Outcome(None, False, duration, limit_exceeded=limit)
    return Outcome(rc, False, duration)
