"""An independent log of what ran in the sandbox, fed by the kernel, not by the agent's CLI.

The agent's trace is what its CLI says about itself; a background process, a tool the CLI
summarises, or a CLI that lies never shows up there. The observer records what *happened*:

- **processes**: the Linux proc connector (netlink ``NETLINK_CONNECTOR``, ``PROC_CN_MCAST_LISTEN``)
  reports every fork, exec and exit on the machine. The observer keeps the processes descended
  from the harness process during the observation window that live in another pid namespace than
  the harness (the sandbox's), and at each exec reads ``/proc/<pid>/cmdline``, ``cwd`` and the
  uid. A process that exec'd and exited before it could be read is recorded as such.
- **files written**: fanotify (``FAN_MARK_FILESYSTEM``, ``FAN_CLOSE_WRITE``) on the filesystems
  of the watched folders (the workspace, the sandbox's ``/tmp``) gives each close of a file
  opened for writing *with an open descriptor of that file*, even when it is deleted right
  after. Writes by the sandbox's processes are recorded with path, size and sha256, and their
  content is handed to a :class:`ContentSink` (the contamination scan) while the run goes on.
- **network**: the egress proxy's log (outside the sandbox) is merged in by the pipeline.

Why the agent cannot switch it off or forge it: the observer runs in the harness process,
outside the sandbox's pid, mount and network namespaces; the events come from the kernel; the
agent runs without any capability (``CAP_NET_ADMIN``/``CAP_SYS_ADMIN`` are needed to listen or
mark) and cannot signal, ptrace or see the harness. What it *can* do is flood: lost events
(netlink ``ENOBUFS``, ``FAN_Q_OVERFLOW``) are counted and make the log ``complete: false``.

Not seen: reads (only writes are logged), writes to the sandbox's private ``/dev/shm`` tmpfs
(another superblock, not marked), memory-only work, and which process *opened* a file
written through a descriptor passed to another. Needs root (or ``CAP_SYS_ADMIN`` +
``CAP_NET_ADMIN``) and Linux >= 4.20; elsewhere :meth:`Observer.start` says why it cannot run.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import queue
import select
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000
NLMSG_DONE = 3
SO_RCVBUFFORCE = 33

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_UNLIMITED_QUEUE = 0x10
FAN_MARK_ADD = 0x1
FAN_MARK_FILESYSTEM = 0x100
FAN_CLOSE_WRITE = 0x8
FAN_Q_OVERFLOW = 0x4000
_FAN_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_AT_FDCWD = -100
_HASH_CHUNK = 1 << 20
_SPARSE_MIN = 64 << 20  # smaller sparse files are cheap to read whole
#: Largest file hashed and handed to the content sink (a larger one is recorded without them).
DEFAULT_MAX_HASH_BYTES = 16 << 30
_ERRORS_LOCK = threading.Lock()


class ContentSink(Protocol):
    """Where the content of every file the agent wrote goes while the run goes on (the
    contamination scan's incremental API: ``feed(name, stream, size)``)."""

    def feed(self, name: str, stream: IO[bytes], size: int) -> None:
        """Read ``size`` bytes of the file ``name`` from ``stream``."""


@dataclass
class ObserverStats:
    """What the observer saw and lost."""

    execs: int = 0
    execs_unread: int = 0
    writes: int = 0
    lost_proc_events: int = 0
    lost_file_events: int = 0
    errors: list[str] = field(default_factory=list)
    errors_total: int = 0

    def error(self, message: str) -> None:
        """Record an observer failure (the first 100 kept verbatim, all counted)."""
        with _ERRORS_LOCK:
            self.errors_total += 1
            if len(self.errors) < 100:
                self.errors.append(message)

    @property
    def complete(self) -> bool:
        """True when no kernel event was lost (an incomplete log cannot show a run clean)."""
        return not (self.lost_proc_events or self.lost_file_events or self.errors_total)


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    libc.fanotify_mark.restype = ctypes.c_int
    return libc


def _pid_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class Observer:
    """Kernel-fed log of the processes and file writes of the sandbox started by this process.

    ``start()`` before the sandbox starts, ``stop()`` after it ended. Records are dicts with
    ``t`` (epoch seconds) and ``kind`` (``exec``/``write``), kept in memory and written by
    :meth:`write_log`. Only one run per harness process may be observed at a time (the
    sandbox is found as this process's descendants in another pid namespace)."""

    def __init__(
        self,
        watch: Iterable[Path],
        *,
        sink: ContentSink | None = None,
        clock: Callable[[], float] = time.time,
        max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
    ) -> None:
        self.watch = [Path(p) for p in watch]
        self.sink = sink
        self.clock = clock
        self.max_hash_bytes = max_hash_bytes
        self.records: list[dict[str, Any]] = []
        self.stats = ObserverStats()
        self._root = os.getpid()
        self._own_ns = _pid_ns("self")
        self._members: set[int] = set()  # descendants of the harness forked while observing
        self._sandboxed: set[int] = set()
        self._parent: dict[int, int] = {}
        self._nl: socket.socket | None = None
        self._fan = -1
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        # (fd, pid, time) of the sandbox's writes: hashed and handed to the sink by a worker, so
        # that the reader stays free to read each exec'd process before it exits
        # (bounded: each holds an open descriptor; a full queue makes the reader wait, the kernel queues)
        self._writes: queue.Queue[tuple[int, int, float] | None] = queue.Queue(maxsize=256)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> str | None:
        """Open the kernel channels and start the reader thread; None, or why it cannot run."""
        try:
            self._nl = self._open_proc_connector()
        except OSError as e:
            return f"proc connector unavailable: {e}"
        try:
            self._fan = self._open_fanotify()
        except OSError as e:
            self._nl.close()
            self._nl = None
            return f"fanotify unavailable: {e}"
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="ptb-observer", daemon=True)
        self._worker = threading.Thread(target=self._work, name="ptb-observer-writes", daemon=True)
        self._thread.start()
        self._worker.start()
        return None

    def stop(self, settle_s: float = 0.2) -> ObserverStats:
        """Drain what the kernel still holds, stop the thread, close the channels."""
        if self._thread is None:
            return self.stats
        time.sleep(settle_s)  # the last close-write events of a just-killed sandbox
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=30)
        self._writes.put(None)
        if self._worker is not None:
            self._worker.join(timeout=600)  # hashing what was still queued
        if self._thread.is_alive() or (self._worker is not None and self._worker.is_alive()):
            self.stats.error("observer thread did not stop")
        for fd in (self._wake_r, self._wake_w, self._fan):
            if fd >= 0:
                os.close(fd)
        if self._nl is not None:
            self._nl.close()
        self._thread = None
        return self.stats

    def write_log(
        self, path: Path, *, extra: Iterable[dict[str, Any]] = (), header: dict[str, Any] | None = None
    ) -> None:
        """Write the header line, then every record (and ``extra``, e.g. network lines) by time."""
        head = {
            "kind": "observer",
            "complete": self.stats.complete,
            "mechanism": "proc connector (fork/exec) + fanotify FAN_MARK_FILESYSTEM (close-write)",
            "watched": [str(p) for p in self.watch],
            **vars(self.stats),
            **(header or {}),
        }
        rows = sorted([*self.records, *extra], key=lambda r: r.get("t", 0.0))
        with open(path, "w", encoding="utf-8") as fh:
            for row in (head, *rows):
                fh.write(json.dumps(row) + "\n")  # ASCII: no raw U+2028 for a splitlines() reader

    # -- kernel channels -----------------------------------------------------------------
    def _open_proc_connector(self) -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            try:  # a burst of execs must not overflow the socket (ENOBUFS): 32 MiB, forced as root
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
            s.bind((0, CN_IDX_PROC))
            op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
            cn = struct.pack("=IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
            s.send(struct.pack("=IHHII", 16 + len(cn), NLMSG_DONE, 0, 0, 0) + cn)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        return s

    def _open_fanotify(self) -> int:
        libc = _libc()
        flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE
        fd = libc.fanotify_init(flags, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        devs: set[int] = set()
        for p in self.watch:
            if not p.exists() or p.stat().st_dev in devs:
                continue
            devs.add(p.stat().st_dev)
            if libc.fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE, _AT_FDCWD, bytes(p)) < 0:
                e = ctypes.get_errno()
                os.close(fd)
                raise OSError(e, f"fanotify_mark({p}): {os.strerror(e)}")
        return fd

    # -- the reader thread ---------------------------------------------------------------
    def _loop(self) -> None:
        assert self._nl is not None
        nl = self._nl.fileno()
        while True:
            try:
                ready, _, _ = select.select([nl, self._fan, self._wake_r], [], [], 1.0)
            except OSError as e:  # never crash silently: an observer error makes the log incomplete
                self.stats.error(f"select: {e}")
                return
            try:
                batch = self._read_fanotify() if self._fan in ready or self._stop.is_set() else b""
                # forks happen before the writes they lead to: drain them first, so that a
                # short-lived writer is known to be the sandbox's when its write is handled
                self._drain_proc()
                if batch:
                    self._handle_fanotify(batch)
            except Exception as e:  # noqa: BLE001 - recorded, the log says it is incomplete
                self.stats.error(f"{type(e).__name__}: {e}")
            if self._stop.is_set():
                self._drain_proc()
                rest = self._read_fanotify()
                if rest:
                    self._handle_fanotify(rest)
                return

    def _drain_proc(self) -> None:
        assert self._nl is not None
        while True:
            try:
                data = self._nl.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.stats.lost_proc_events += 1
                    continue
                raise
            self._handle_proc(data)

    def _handle_proc(self, data: bytes) -> None:
        off = 0
        while off + 16 <= len(data):
            nl_len = struct.unpack_from("=I", data, off)[0]
            if nl_len < 16:
                return
            ev = off + 16 + 20  # nlmsghdr, cn_msg
            if ev + 16 <= len(data):
                what = struct.unpack_from("=I", data, ev)[0]
                body = ev + 16
                if what == PROC_EVENT_FORK:
                    _ppid, ptgid, cpid, ctgid = struct.unpack_from("=iiii", data, body)
                    if cpid == ctgid:  # a process, not a thread
                        self._on_fork(ptgid, ctgid)
                elif what == PROC_EVENT_EXEC:
                    _pid, tgid = struct.unpack_from("=ii", data, body)
                    if tgid in self._sandboxed:
                        self._on_exec(tgid)
            off += (nl_len + 3) & ~3

    def _on_fork(self, parent: int, child: int) -> None:
        if parent != self._root and parent not in self._members:
            return
        self._members.add(child)
        self._parent[child] = parent
        if parent in self._sandboxed:
            self._sandboxed.add(child)
            return
        ns = _pid_ns(child)
        if ns is None or ns != self._own_ns:  # gone already: counted as the sandbox's (conservative)
            self._sandboxed.add(child)

    def _on_exec(self, pid: int) -> None:
        rec: dict[str, Any] = {"t": self.clock(), "kind": "exec", "pid": pid, "ppid": self._parent.get(pid)}
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not raw:  # a zombie's cmdline is empty
                raise OSError("no cmdline")
            rec["argv"] = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]
            rec["cwd"] = os.readlink(f"/proc/{pid}/cwd")
            for line in Path(f"/proc/{pid}/status").read_text().split("\n"):
                if line.startswith("Uid:"):
                    rec["uid"] = int(line.split()[1])
                    break
        except (OSError, ValueError):
            rec.pop("argv", None)
            rec["unread"] = "exited (or exec'd again) before it could be read"
            self.stats.execs_unread += 1
        self.stats.execs += 1
        self.records.append(rec)

    def _read_fanotify(self) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(self._fan, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def _handle_fanotify(self, data: bytes) -> None:
        off = 0
        while off + _FAN_META.size <= len(data):
            ev_len, _v, _r, _ml, mask, fd, pid = _FAN_META.unpack_from(data, off)
            off += ev_len or _FAN_META.size
            if mask & FAN_Q_OVERFLOW:
                self.stats.lost_file_events += 1
            if fd < 0:
                continue
            if pid in self._sandboxed:
                self._writes.put((fd, pid, self.clock()))
            else:
                os.close(fd)

    def _work(self) -> None:
        while (item := self._writes.get()) is not None:
            fd, pid, t = item
            try:
                self._on_write(fd, pid, t)
            except Exception as e:  # noqa: BLE001 - one bad event must not cost the others
                self.stats.error(f"write event of pid {pid}: {type(e).__name__}: {e}")
            finally:
                os.close(fd)

    def _on_write(self, fd: int, pid: int, t: float) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        path = os.readlink(f"/proc/self/fd/{fd}")
        deleted = path.endswith(" (deleted)")
        # A sparse file costs the agent nothing to make and us its whole size to read (truncate -s
        # 100G): such files, and files above the cap, are recorded without hash or content.
        sparse = st.st_size > _SPARSE_MIN and st.st_blocks * 512 < st.st_size // 2
        if sparse or st.st_size > self.max_hash_bytes:
            self.stats.writes += 1
            self.records.append({
                "t": t, "kind": "write", "pid": pid, "path": path.removesuffix(" (deleted)"), "size": st.st_size,
                "sha256": None, "unhashed": "sparse (mostly holes)" if sparse else "larger than the hashing cap",
                "allocated": st.st_blocks * 512, **({"deleted": True} if deleted else {}),
            })  # fmt: skip
            return
        digest = hashlib.sha256()
        pos = 0
        while True:
            chunk = os.pread(fd, _HASH_CHUNK, pos)
            if not chunk:
                break
            digest.update(chunk)
            pos += len(chunk)
        rec: dict[str, Any] = {
            "t": t,
            "kind": "write",
            "pid": pid,
            "path": path.removesuffix(" (deleted)"),
            "size": pos,
            "sha256": digest.hexdigest(),
        }
        if deleted:
            rec["deleted"] = True
        self.stats.writes += 1
        self.records.append(rec)
        if self.sink is not None:
            with os.fdopen(os.dup(fd), "rb") as fh:
                fh.seek(0)
                self.sink.feed(rec["path"], fh, pos)
