"""Driving a sweep: what to launch, retries up to the limit, waiting, status.

``run_sweep`` is what ``ptb sweep run`` does:

1. plan the tasks and check the scheduler (an unreachable one fails here, nothing submitted);
2. with ``retry_failed_evals``, put completed runs whose evaluation failed back to
   "evaluate" (their agent phases are kept); with ``rerun_failed_agents`` (only when asked),
   completed runs whose agent failed start over from a fresh workspace;
3. launch every task that is not done, not queued already, and has attempts left
   (``1 + max_retries``): never started, interrupted (job killed, node lost), or failed for
   infrastructure reasons. Completed runs, outcome failures included, are never launched. A
   Ctrl-C or SIGTERM at the local pool interrupts its runs (each recorded as interrupted) and
   costs them no attempt: the next ``ptb sweep run`` resumes them;
4. with ``wait``, wait for the jobs and go back to 3 (the retries), until nothing is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import interrupts
from .base import Launcher, LauncherError, OnTick, make_launcher
from .plan import (
    RETRYABLE,
    Ledger,
    Task,
    TaskStatus,
    plan_tasks,
    reset_failed_agent,
    reset_failed_evaluation,
    task_status,
    write_task_file,
)
from .sweep import Sweep


@dataclass
class SweepState:
    """Every task's status, the ledger, and which tasks have a live job."""

    tasks: list[Task]
    statuses: dict[str, TaskStatus]
    ledger: Ledger
    running: set[str] = field(default_factory=set)
    max_attempts: int = 1

    def to_launch(self) -> list[Task]:
        return [
            t
            for t in self.tasks
            if self.statuses[t.key].state in RETRYABLE
            and t.key not in self.running
            and self.ledger.attempts(t.key) < self.max_attempts
        ]

    def gave_up(self) -> list[Task]:
        return [
            t
            for t in self.tasks
            if self.statuses[t.key].state in RETRYABLE
            and t.key not in self.running
            and self.ledger.attempts(t.key) >= self.max_attempts
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            s = "running" if t.key in self.running else self.statuses[t.key].state
            out[s] = out.get(s, 0) + 1
        return out

    @property
    def n_done(self) -> int:
        return sum(1 for t in self.tasks if self.statuses[t.key].state == "done")


def live_jobs(launcher: Launcher, ledger: Ledger, tasks: list[Task]) -> tuple[set[str], list[str]]:
    """(keys of tasks with a queued/running job, those job ids), per the scheduler.

    Jobs recorded by another launcher kind are not asked about (their scheduler may be gone)."""
    by_job: dict[str, str] = {}
    for t in tasks:
        last = ledger.last_job(t.key)
        if last and last.get("launcher") == launcher.name:
            for jid in last.get("job_ids", []):
                by_job[jid] = t.key
    alive = launcher.active(list(by_job)) if by_job else set()
    return {by_job[j] for j in alive}, sorted(alive)


def sweep_state(sweep: Sweep, launcher: Launcher | None = None) -> SweepState:
    """Read where every task of the sweep stands (folders + ledger + scheduler queue)."""
    tasks = plan_tasks(sweep)
    ledger = Ledger(sweep)
    running: set[str] = set()
    if launcher is not None:
        running, _ = live_jobs(launcher, ledger, tasks)
    return SweepState(
        tasks=tasks,
        statuses={t.key: task_status(t) for t in tasks},
        ledger=ledger,
        running=running,
        max_attempts=1 + sweep.max_retries,
    )


def run_sweep(
    sweep: Sweep,
    launcher: Launcher | None = None,
    *,
    wait: bool = True,
    retry_failed_evals: bool = False,
    rerun_failed_agents: bool = False,
    reset_attempts: bool = False,
    on_tick: Callable[[SweepState], None] | None = None,
    on_launch: Callable[[list[Task]], None] | None = None,
    poll_s: float = 5.0,
) -> SweepState:
    """Launch what is left of ``sweep`` (see the module doc); return the final state."""
    launcher = launcher or make_launcher(sweep)
    launcher.check()  # LauncherError before anything is written or submitted
    tasks = plan_tasks(sweep)
    ledger = Ledger(sweep)
    if retry_failed_evals:
        for t in tasks:
            if reset_failed_evaluation(t):
                ledger.reset_attempts(t.key)
    if rerun_failed_agents:
        for t in tasks:
            if reset_failed_agent(t):
                ledger.reset_attempts(t.key)
    if reset_attempts:
        for t in tasks:
            ledger.reset_attempts(t.key)
    ledger.save()

    started: set[str] = set()

    def launched(key: str, job_ids: list[str]) -> None:
        ledger.record_launch(key, launcher.name, job_ids)
        ledger.save()
        started.add(key)

    while True:
        state = sweep_state(sweep, launcher)
        state.ledger = ledger
        todo = state.to_launch()
        if todo:
            files: dict[str, Path] = {t.key: write_task_file(sweep, t) for t in todo}
            if on_launch:
                on_launch(todo)
            try:
                launcher.submit(sweep, todo, files, launched)
            except (interrupts.Interrupted, KeyboardInterrupt):
                _uncount_interrupted([t for t in todo if t.key in started], ledger)
                raise
        if not wait:
            return sweep_state(sweep, launcher)
        _, job_ids = live_jobs(launcher, ledger, tasks)
        if not todo and not job_ids:
            return sweep_state(sweep, launcher)
        tick: OnTick = (lambda: on_tick(sweep_state(sweep, launcher))) if on_tick else (lambda: None)
        try:
            launcher.wait(job_ids, tick, poll_s=poll_s)
        except (interrupts.Interrupted, KeyboardInterrupt) as exc:
            # only the waiting stops: the scheduler's jobs run on, and say so (not "recorded as interrupted")
            sig = exc.signal if isinstance(exc, interrupts.Interrupted) else None
            raise interrupts.Interrupted(sig, detail=waiting_stopped(launcher.name, job_ids)) from None


def waiting_stopped(launcher: str, job_ids: list[str]) -> str:
    """What Ctrl-C while waiting for a scheduler's jobs leaves: the jobs, still running."""
    ids = ", ".join(job_ids[:5]) + (f" and {len(job_ids) - 5} more" if len(job_ids) > 5 else "")
    return (
        f"stopped waiting; the {len(job_ids)} {launcher} job(s) ({ids}) keep running: "
        "`ptb sweep status SWEEP_FILE` follows them, `ptb sweep run SWEEP_FILE` waits again, "
        "`ptb sweep cancel SWEEP_FILE` stops them (their runs resume on the next `ptb sweep run`)"
    )


def _uncount_interrupted(tasks: list[Task], ledger: Ledger) -> None:
    """After Ctrl-C / SIGTERM at the pool: a launch that the interrupt stopped (its run recorded
    as interrupted, or not started yet) costs no attempt, so the next ``ptb sweep run`` resumes
    it whatever ``max_retries`` is; one that failed or finished first keeps its count."""
    for t in tasks:
        if task_status(t).state in ("interrupted", "pending", "partial"):
            ledger.record_interrupted(t.key)
    ledger.save()


__all__ = ["LauncherError", "SweepState", "live_jobs", "make_launcher", "run_sweep", "sweep_state"]
