"""The local launcher: a pool running N tasks at once on this machine, one worker process each.

GPUs are shared out from ``[local] gpus``: a task takes ``gpus_per_run`` free indices, runs
with ``CUDA_VISIBLE_DEVICES`` set to them and gives them back when it ends. Without a GPU pool
every task runs CPU-only (``CUDA_VISIBLE_DEVICES=""``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import interrupts
from .base import LAUNCHERS, Launcher, OnLaunch, OnTick, job_env_exports, package_root, worker_argv
from .plan import Task, sweep_dir
from .sweep import Sweep


class GpuPool:
    """Free host GPU indices; ``take(n)`` blocks until ``n`` are free."""

    def __init__(self, gpus: list[int]) -> None:
        self.free = list(gpus)
        self.size = len(gpus)
        self.cond = threading.Condition()

    def take(self, n: int) -> list[int]:
        if n > self.size:
            raise ValueError(f"a task needs {n} GPU(s), the pool has {self.size}")
        with self.cond:
            self.cond.wait_for(lambda: len(self.free) >= n)
            got, self.free = self.free[:n], self.free[n:]
            return got

    def give(self, gpus: list[int]) -> None:
        with self.cond:
            self.free.extend(gpus)
            self.free.sort()
            self.cond.notify_all()


@LAUNCHERS.register
class LocalLauncher(Launcher):
    """Runs tasks as subprocesses of this process; ``submit`` returns when all have ended."""

    name = "local"

    def __init__(self, sweep: Sweep) -> None:
        self.settings = sweep.local
        self.pool = GpuPool(self.settings.gpus)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()

    def _env(self, gpus: list[int]) -> dict[str, str]:
        env = dict(os.environ)
        env |= job_env_exports(self.settings.cpus_per_run)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root()), env.get("PYTHONPATH", "")]))
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
        return env

    def _run_one(self, sweep: Sweep, task: Task, task_file: Path, on_launch: OnLaunch) -> int:
        if self._stop.is_set():
            return -1
        gpus = self.pool.take(task.gpus) if task.gpus else []
        try:
            logs = sweep_dir(sweep) / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            log = logs / f"{task.key}.{time.strftime('%Y%m%dT%H%M%S')}.log"
            with open(log, "ab") as fh:
                # its own session: a terminal's Ctrl-C reaches the pool only, which passes on one
                # signal to each worker (two would force them out before they record anything)
                proc = subprocess.Popen(
                    worker_argv(task_file),
                    env=self._env(gpus),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                with self._lock:
                    self._procs.add(proc)
                try:
                    on_launch(task.key, [f"local:{proc.pid}"])
                    return proc.wait()
                finally:
                    with self._lock:
                        self._procs.discard(proc)
        finally:
            if gpus:
                self.pool.give(gpus)

    def submit(self, sweep: Sweep, tasks: list[Task], task_files: dict[str, Path], on_launch: OnLaunch) -> None:
        workers = self.settings.parallel
        if self.settings.gpus and sweep.gpus_per_run:
            workers = min(workers, max(1, len(self.settings.gpus) // sweep.gpus_per_run))
        lock = threading.Lock()

        def launched(key: str, ids: list[str]) -> None:
            with lock:  # the ledger is not thread-safe
                on_launch(key, ids)

        ex = ThreadPoolExecutor(max_workers=workers)
        try:
            with interrupts.on_force(self._kill_all):
                try:
                    futures = [ex.submit(self._run_one, sweep, t, task_files[t.key], launched) for t in tasks]
                    for f in futures:
                        f.result()
                except BaseException:
                    # Ctrl-C, SIGTERM or an error: start nothing more and pass one SIGTERM to each
                    # running worker: it records its phase as interrupted and exits within seconds
                    # (the run resumes on the next `ptb sweep run`); a second Ctrl-C kills them.
                    self._stop.set()
                    with self._lock:
                        for proc in self._procs:
                            proc.terminate()
                    raise
                finally:
                    ex.shutdown(wait=True, cancel_futures=True)
        finally:
            self._stop.clear()

    def _kill_all(self) -> None:
        """The forced exit: every running worker's process group killed at once."""
        for proc in list(self._procs):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)

    def active(self, job_ids: list[str]) -> set[str]:
        """Local jobs still alive (a pool started by another ``ptb sweep run`` on this machine)."""
        alive = set()
        for jid in job_ids:
            if jid.startswith("local:"):
                try:
                    os.kill(int(jid.split(":", 1)[1]), 0)
                    alive.add(jid)
                except (OSError, ValueError):
                    pass
        return alive

    def wait(self, job_ids: list[str], on_tick: OnTick, poll_s: float = 5.0) -> None:
        while self.active(job_ids):
            on_tick()
            time.sleep(poll_s)

    def cancel(self, job_ids: list[str]) -> None:
        for jid in self.active(job_ids):
            os.kill(int(jid.split(":", 1)[1]), signal.SIGTERM)
