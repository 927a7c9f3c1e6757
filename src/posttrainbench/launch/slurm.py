"""The Slurm launcher, through submitit: one job array per resource shape.

Each array task runs ``<venv python> -u -m posttrainbench.launch.worker TASK.json`` as a child
of the submitit job (:func:`run_worker`; the job imports our package through ``PYTHONPATH``
set in the job script). Per job:

- ``--gres=gpu:N`` for N = ``gpus_per_run`` (none for CPU-only runs),
- ``--time`` = agent hours + ``time_margin_min`` (verification and evaluation),
- ``--mem``, ``--cpus-per-task``, ``--partition``/``--account``/``--qos`` from ``[slurm]``,
- a per-job scratch folder ``<scratch>/ptb-<jobid>`` (``PTB_SCRATCH``), made by the worker,
  its ``TMPDIR``, removed when it ends (normally or on SIGTERM).

With ``split_eval = true`` a run is three dependent arrays (``aftercorr``): agent phases with
the run's GPUs, verification on CPU only, evaluation with ``eval_gpus``.

Job state comes from ``squeue`` (submitit's own watcher needs ``sacct``, i.e. slurmdbd, which
many small clusters lack); *what happened* is read from the run folders.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..settings import LaunchSettings
from .base import (
    LAUNCHERS,
    Launcher,
    LauncherError,
    OnLaunch,
    OnTick,
    job_env_exports,
    package_root,
    time_limit_min,
    worker_argv,
)
from .plan import Task, sweep_dir
from .sweep import SlurmSettings, Sweep

#: The job's scratch folder, read by the worker (``Settings.launch.scratch``).
SCRATCH_VAR = LaunchSettings.env_name("scratch")
#: (``--until`` of the stage, resources) for split runs: agent, verification, evaluation.
SPLIT_STAGES: tuple[tuple[str | None, str], ...] = (("collect", "agent"), ("verify", "cpu"), (None, "eval"))


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise LauncherError(
            f"`{argv[0]}` not found: this machine is not a Slurm submit host "
            '(install slurm-client, or use launcher = "local")'
        )
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LauncherError(
            f"`{' '.join(argv)}` did not answer within {timeout:.0f}s: "
            "the Slurm controller is unreachable or overloaded"
        ) from None


def run_worker(argv: list[str]) -> int:
    """What the submitit job calls: the worker as a child process, SIGTERM forwarded to it.

    On ``scancel`` or the time limit Slurm sends SIGTERM to the step's task only (this process,
    whose own submitit handler ignores it), then SIGKILL to everything after ``KillWait``: the
    forwarding gives the worker its chance to clean up. A non-zero exit fails the job, which
    cancels the dependent stages of a split run."""
    proc = subprocess.Popen(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    rc = proc.wait()
    if rc != 0:
        raise subprocess.CalledProcessError(rc, argv)
    return rc


def setup_lines(settings: SlurmSettings) -> list[str]:
    """Shell lines run in the job before the worker: code path, threads, scratch, site lines."""
    exports = job_env_exports(settings.cpus_per_run)
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(exports.items())]
    lines.append(f'export PYTHONPATH={shlex.quote(str(package_root()))}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    if settings.scratch:
        # The worker makes it, uses it as TMPDIR and removes it however it ends (SIGTERM from
        # scancel or the time limit included): the batch shell itself is SIGKILLed on scancel,
        # so a shell trap would not run.
        lines.append(
            f"export {SCRATCH_VAR}={shlex.quote(settings.scratch)}/ptb-"
            '"${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}"'
        )
    return lines + list(settings.setup)


def job_parameters(sweep: Sweep, *, gpus: int, hours: float, name: str) -> dict[str, Any]:
    """submitit ``SlurmExecutor`` parameters of one array (sbatch options)."""
    s = sweep.slurm
    params: dict[str, Any] = {
        "job_name": name,
        "time": time_limit_min(hours, s.time_margin_min),
        "mem": f"{int(round(s.mem_gb * 1024))}M",
        "cpus_per_task": s.cpus_per_run,
        "ntasks_per_node": 1,
        "nodes": 1,
        "array_parallelism": s.array_parallelism,
        "setup": setup_lines(s),
        "stderr_to_stdout": True,
    }
    if gpus:
        params["gres"] = f"gpu:{gpus}"
    for key in ("partition", "account", "qos"):
        if getattr(s, key):
            params[key] = getattr(s, key)
    if s.extra:
        params["additional_parameters"] = dict(s.extra)
    return params


def stages(sweep: Sweep, task: Task) -> list[tuple[str | None, int, float]]:
    """(``--until``, GPUs, hours counted in the time limit) of each job of a task."""
    if task.kind == "baseline":
        return [(None, task.gpus, 0.0)]
    if not sweep.slurm.split_eval:
        return [(None, task.gpus, task.hours)]
    return [("collect", task.gpus, task.hours), ("verify", 0, 0.0), (None, sweep.slurm.eval_gpus, 0.0)]


@LAUNCHERS.register
class SlurmLauncher(Launcher):
    """Submits job arrays with submitit; watches them with ``squeue``."""

    name = "slurm"

    def check(self) -> None:
        proc = _run(["sinfo", "-h", "-o", "%P %a %D %T"], timeout=60)
        if proc.returncode != 0:
            raise LauncherError(
                f"cannot reach the Slurm controller (`sinfo` exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        parts = {line.split()[0].rstrip("*") for line in proc.stdout.splitlines() if line.strip()}
        want = self.sweep.slurm.partition
        if want and want not in parts:
            raise LauncherError(
                f"Slurm partition {want!r} does not exist; partitions: {', '.join(sorted(parts)) or 'none'}"
            )

    def submit(self, sweep: Sweep, tasks: list[Task], task_files: dict[str, Path], on_launch: OnLaunch) -> None:
        import submitit

        folder = sweep_dir(sweep) / "slurm"
        # one array per (stage layout, resources): arrays share their sbatch options
        groups: dict[tuple, list[Task]] = defaultdict(list)
        for t in tasks:
            groups[tuple(stages(sweep, t))].append(t)
        for layout, group in groups.items():
            ids: dict[str, list[str]] = {t.key: [] for t in group}
            previous: str | None = None
            for n, (until, gpus, hours) in enumerate(layout):
                ex = submitit.SlurmExecutor(folder=folder / "%j", python=sys.executable)
                params = job_parameters(
                    sweep, gpus=gpus, hours=hours, name=f"ptb-{sweep.name}" + (f"-s{n}" if len(layout) > 1 else "")
                )
                if previous is not None:
                    # task i of this array starts once task i of the previous one succeeded
                    params.setdefault("additional_parameters", {})
                    params["additional_parameters"] = {
                        **params["additional_parameters"],
                        "dependency": f"aftercorr:{previous}",
                        "kill-on-invalid-dep": "yes",
                    }
                ex.update_parameters(**params)
                try:
                    with ex.batch():
                        jobs = [ex.submit(run_worker, worker_argv(task_files[t.key], until)) for t in group]
                except Exception as exc:  # sbatch refused: bad partition/account, limits...
                    raise LauncherError(f"sbatch refused the job array: {exc}") from exc
                previous = jobs[0].job_id.split("_")[0]
                for t, job in zip(group, jobs):
                    ids[t.key].append(job.job_id)
            for t in group:
                on_launch(t.key, ids[t.key])

    def queue(self) -> dict[str, str]:
        """Job id (array tasks expanded, ``123_4``) -> state, for every job ``squeue`` lists."""
        proc = _run(["squeue", "-h", "-r", "-o", "%i|%T"], timeout=60)
        if proc.returncode != 0:
            raise LauncherError(f"`squeue` failed (exit {proc.returncode}): {proc.stderr.strip()}")
        out = {}
        for line in proc.stdout.splitlines():
            if "|" in line:
                jid, state = line.strip().split("|", 1)
                out[jid] = state
        return out

    def active(self, job_ids: list[str]) -> set[str]:
        if not job_ids:
            return set()
        q = self.queue()
        live = {
            j
            for j, st in q.items()
            if st
            not in (
                "COMPLETED",
                "CANCELLED",
                "FAILED",
                "TIMEOUT",
                "OUT_OF_MEMORY",
                "NODE_FAIL",
                "PREEMPTED",
                "BOOT_FAIL",
                "DEADLINE",
            )
        }
        return {j for j in job_ids if j in live}

    def wait(self, job_ids: list[str], on_tick: OnTick, poll_s: float = 5.0) -> None:
        failures = 0
        while True:
            try:
                if not self.active(job_ids):
                    return
                failures = 0
            except LauncherError:
                failures += 1  # a controller restart is survivable; a dead one is not
                if failures >= 5:
                    raise
            on_tick()
            time.sleep(poll_s)

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            _run(["scancel", *job_ids])
