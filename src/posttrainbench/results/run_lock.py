"""Who is running a run folder: an exclusive ``flock`` on ``<run>/.running``, held by the process
that runs the pipeline for as long as it runs.

The kernel drops the lock when that process ends, however it ends (SIGKILL, OOM killer, a node
lost with its job), so the lock tells a run in progress from one whose process died mid-phase
(``run.json`` says "running" for both), and a second process asked to run the same folder (a
sweep resumed while its first job still runs) is refused instead of racing the first. The file
keeps the last holder (host, pid, start time) for the message. On a filesystem without locks
the pipeline runs unlocked and the state reads as unknown.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

LOCK_NAME = ".running"


class RunInUse(RuntimeError):
    """Another live process holds the run folder."""


def _owner(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        raw = os.pread(fd, 4096, 0)
        who = json.loads(raw or b"{}")
        return f"pid {who.get('pid')} on {who.get('host')} since {who.get('since')}"
    return "another process"


@contextlib.contextmanager
def hold_run(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s run lock for the block; :class:`RunInUse` if a live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInUse(f"{folder} is being run by {_owner(fd)}; wait for it or stop it first") from None
        except OSError:  # no locks on this filesystem: run unlocked
            yield
            return
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (its content names the last holder)


def run_liveness(folder: Path) -> Literal["alive", "gone", "unknown"]:
    """``alive`` while a process holds ``folder``'s run lock, ``gone`` when the lock file is there
    and free (its process ended), ``unknown`` without a lock file (a folder from before the lock),
    when its last holder ran on another host (a folder synced back from a cloud job, or on a
    shared filesystem whose locks may not span hosts) or on a filesystem without locks."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return "unknown"
    try:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(os.pread(fd, 4096, 0) or b"{}").get("host") != socket.gethostname():
                return "unknown"
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return "alive"
    except OSError:
        return "unknown"
    else:
        return "gone"
    finally:
        os.close(fd)
