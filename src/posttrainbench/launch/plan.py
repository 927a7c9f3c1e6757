"""What a sweep consists of (tasks), where each task stands (read from its folder), and the
sweep's ledger (attempts and job ids per task).

The run folders are the source of truth: a task's state is read from its ``run.json`` (or its
baseline's ``result.json``), never from the scheduler. The ledger only remembers what the
scheduler cannot: how often a task was launched (the retry limit) and its job ids (to see
whether it is still queued, and to cancel it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..catalog import get_base_model
from ..domain import PHASES, RunSpec
from ..evaluation import EvalResult
from ..fsutil import atomic_write_json, atomic_write_text
from ..results import RecordError, baseline_dir, load_record, run_paths, save_record
from .sweep import Sweep

TaskKind = Literal["run", "baseline"]
#: done: nothing left to do (an outcome failure is done too); pending: never started;
#: interrupted: a phase started and never finished (job killed, node lost); failed: a phase
#: failed for infrastructure reasons; partial: stopped between phases (split jobs);
#: unreadable: the run.json cannot be read (never overwritten by the launcher).
TaskState = Literal["done", "pending", "interrupted", "failed", "partial", "unreadable"]
RETRYABLE: frozenset[str] = frozenset({"pending", "interrupted", "failed", "partial"})


@dataclass(frozen=True)
class Task:
    """One unit of work a job runs: a run of the sweep, or a zero-shot baseline."""

    kind: TaskKind
    key: str
    folder: Path
    results: Path
    spec: RunSpec | None = None
    base_model: str = ""
    benchmark: str = ""
    eval_limit: int | None = None
    gpus: int = 0
    hours: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "baseline":
            return f"baseline {self.benchmark} {self.base_model}"
        s = self.spec
        assert s is not None
        return f"{s.agent}/{s.agent_config} {s.benchmark} {s.base_model} r{s.repeat}"

    def to_json(self) -> dict[str, Any]:
        """What the worker needs to run this task (``launch.worker``)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "results": str(self.results),
            "spec": self.spec.model_dump(mode="json") if self.spec else None,
            "base_model": self.base_model,
            "benchmark": self.benchmark,
            "eval_limit": self.eval_limit,
        }


def plan_tasks(sweep: Sweep) -> list[Task]:
    """Baselines first (one per base model × benchmark, if enabled), then every run."""
    tasks: list[Task] = []
    root = sweep.results
    if sweep.baselines:
        for m in sweep.base_models:
            base = get_base_model(m)
            for b in sweep.benchmarks:
                tasks.append(
                    Task(
                        kind="baseline",
                        key=f"baseline-{baseline_dir(root, b, base, sweep.eval_limit).name}",
                        folder=baseline_dir(root, b, base, sweep.eval_limit),
                        results=root,
                        base_model=base.hub_id,
                        benchmark=b,
                        eval_limit=sweep.eval_limit,
                        gpus=min(sweep.gpus_per_run, 1),
                        hours=0.0,
                    )
                )
    for spec in sweep.run_specs():
        tasks.append(
            Task(
                kind="run",
                key=spec.run_id(),
                folder=run_paths(root, spec, get_base_model(spec.base_model)).root,
                results=root,
                spec=spec,
                base_model=spec.base_model,
                benchmark=spec.benchmark,
                eval_limit=spec.eval_limit,
                gpus=spec.gpus,
                hours=spec.hours,
            )
        )
    return tasks


@dataclass
class TaskStatus:
    """Where one task stands, read from its folder."""

    task: Task
    state: TaskState
    phase: str = ""
    time_used_s: float = 0.0
    agent_time_s: float | None = None
    failure: str | None = None
    eval_failed: bool = False
    score: float | None = None
    updated_at: datetime | None = None
    phases: dict[str, str] = field(default_factory=dict)


def _duration(start: datetime | None, end: datetime | None, now: datetime) -> float:
    if start is None:
        return 0.0
    return max(0.0, ((end or now) - start).total_seconds())


def task_status(task: Task, now: datetime | None = None) -> TaskStatus:
    """Read a task's state from disk (``run.json`` / baseline ``result.json``)."""
    now = now or datetime.now(UTC)
    if task.kind == "baseline":
        res = task.folder / "result.json"
        if not res.is_file():
            return TaskStatus(task, "pending", phase="evaluate")
        try:
            result = EvalResult.model_validate_json(res.read_text())
        except (OSError, ValueError) as exc:
            return TaskStatus(task, "failed", phase="evaluate", failure=f"unreadable result.json: {exc}")
        mtime = datetime.fromtimestamp(res.stat().st_mtime, UTC)
        if result.status == "ok":
            return TaskStatus(
                task, "done", phase="done", time_used_s=result.wall_time_s or 0.0, score=result.score, updated_at=mtime
            )
        # The evaluator ran and could not score the base model: an outcome, like a run's failed
        # evaluation (re-done only with --retry-failed-evals); a crash leaves no result.json.
        return TaskStatus(
            task, "done", phase="done", failure=f"evaluate: {result.error}", eval_failed=True, updated_at=mtime
        )

    run_json = task.folder / "run.json"
    if not run_json.is_file():
        return TaskStatus(task, "pending", phase="prepare")
    try:
        rec = load_record(run_json)
    except RecordError as exc:
        return TaskStatus(task, "unreadable", failure=str(exc))
    phases: dict[str, str] = {p: rec.phases[p].status for p in PHASES}
    used = sum(_duration(rec.phases[p].started_at, rec.phases[p].finished_at, now) for p in PHASES)
    stamps = [t for p in PHASES for t in (rec.phases[p].started_at, rec.phases[p].finished_at) if t]
    st = TaskStatus(
        task,
        "done",
        time_used_s=used,
        agent_time_s=rec.time_used_s,
        failure=rec.failure,
        eval_failed=rec.metrics is not None and rec.metrics.status == "failed",
        score=rec.metrics.score if rec.metrics is not None and rec.metrics.status == "ok" else None,
        updated_at=max(stamps) if stamps else rec.created_at,
        phases=phases,
    )
    if rec.completed:
        st.phase = "done"
        return st
    current = next(p for p in PHASES if rec.phases[p].status != "done")
    ps = rec.phases[current]
    st.phase = current
    if ps.status == "failed":
        st.state = "failed"
        st.failure = f"{current}: {ps.error}"
    elif ps.status == "interrupted" or (ps.started_at is not None and ps.finished_at is None):
        st.state = "interrupted"  # recorded (Ctrl-C, SIGTERM), or running: the launcher knows from the scheduler
    elif all(v == "pending" for v in phases.values()):
        st.state = "pending"
    else:
        st.state = "partial"
    return st


AGENT_PHASES = ("solve:", "collect:")


def reset_failed_agent(task: Task) -> bool:
    """Asked for explicitly (``--rerun-failed-agents``): run again, from a fresh workspace, a
    completed run whose *agent* failed (exit code, time limit, no or rejected final_model).

    The old ``run.json`` is kept beside it as ``run.failed-<UTC time>.json``; every phase goes back
    to pending, so the next launch prepares a new workspace and starts the agent again. Runs that
    succeeded, or failed later (verification, evaluation), are not touched. Returns True if reset.
    """
    if task.kind != "run":
        return False
    path = task.folder / "run.json"
    try:
        rec = load_record(path)
    except RecordError:
        return False
    if not rec.completed or not (rec.failure or "").startswith(AGENT_PHASES):
        return False
    path.rename(path.with_name(f"run.failed-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"))
    return True


def reset_failed_evaluation(task: Task) -> bool:
    """Make a completed run (or baseline) whose evaluation failed evaluate again (and only that).

    The agent's phases stay done; ``evaluate`` and ``record`` go back to pending, and a
    failure recorded by the evaluation is cleared. Returns True if the run was reset.
    """
    if task.kind == "baseline":
        res = task.folder / "result.json"
        if task_status(task).eval_failed:
            # kept for the record; evaluate_baseline re-evaluates when result.json is absent
            res.rename(res.with_name(f"result.failed-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"))
            return True
        return False
    path = task.folder / "run.json"
    try:
        rec = load_record(path)
    except RecordError:
        return False
    if not rec.completed or rec.metrics is None or rec.metrics.status != "failed":
        return False
    for p in ("evaluate", "record"):
        rec.phases[p].status = "pending"
        rec.phases[p].started_at = rec.phases[p].finished_at = None
        rec.phases[p].details, rec.phases[p].error = None, None
    if rec.failure and rec.failure.startswith("evaluate:"):
        rec.failure = None
    rec.metrics = None
    save_record(path, rec)
    return True


# ------------------------------------------------------------------------- ledger


def sweep_dir(sweep: Sweep) -> Path:
    """Folder of the sweep's own files: ledger, task files, job logs (hidden from the leaderboard)."""
    return sweep.results / ".sweeps" / sweep.name


class Ledger:
    """Attempts and job ids per task key, in ``<results>/.sweeps/<name>/ledger.json``.

    Written only by the front end (``ptb sweep run``), atomically."""

    def __init__(self, sweep: Sweep) -> None:
        self.path = sweep_dir(sweep) / "ledger.json"
        self.data: dict[str, Any] = {"tasks": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    def entry(self, key: str) -> dict[str, Any]:
        return self.data["tasks"].setdefault(key, {"attempts": 0, "jobs": []})

    def attempts(self, key: str) -> int:
        return int(self.data["tasks"].get(key, {}).get("attempts", 0))

    def jobs(self, key: str) -> list[dict[str, Any]]:
        return list(self.data["tasks"].get(key, {}).get("jobs", []))

    def last_job(self, key: str) -> dict[str, Any] | None:
        jobs = self.jobs(key)
        return jobs[-1] if jobs else None

    def record_launch(self, key: str, launcher: str, job_ids: list[str]) -> None:
        e = self.entry(key)
        e["attempts"] = int(e["attempts"]) + 1
        e["jobs"].append({"launcher": launcher, "job_ids": job_ids, "submitted_at": datetime.now(UTC).isoformat()})

    def record_interrupted(self, key: str) -> None:
        """The last launch of ``key`` was interrupted (Ctrl-C, SIGTERM at the pool): it does not
        count as an attempt, and its job entry says so."""
        e = self.entry(key)
        e["attempts"] = max(0, int(e["attempts"]) - 1)
        if e["jobs"]:
            e["jobs"][-1]["interrupted_at"] = datetime.now(UTC).isoformat()

    def reset_attempts(self, key: str) -> None:
        self.entry(key)["attempts"] = 0

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def write_task_file(sweep: Sweep, task: Task) -> Path:
    """The JSON a worker reads (``python -m posttrainbench.launch.worker FILE``)."""
    path = sweep_dir(sweep) / "tasks" / f"{task.key}.json"
    atomic_write_text(path, json.dumps(task.to_json(), indent=2) + "\n")
    return path
