"""The HTCondor launcher, through the ``htcondor`` Python bindings (module ``htcondor2``).

One cluster per resource shape; each proc runs ``<venv python> -u -m
posttrainbench.launch.worker TASK.json`` in place (shared filesystem: no file transfer), with
``request_cpus/memory/disk/gpus``, an optional ``requirements`` expression and the run's time
limit as ``allowed_execute_duration`` (agent hours + margin).
"""

from __future__ import annotations

import shlex
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

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
from .sweep import Sweep

#: JobStatus values that mean "still in the queue": idle, running, held, transferring, suspended.
_LIVE = {1, 2, 5, 6, 7}


def _environment(cpus: int) -> str:
    """The submit ``environment`` value (new syntax: space-separated, single-quoted values)."""
    env = job_env_exports(cpus) | {"PYTHONPATH": str(package_root())}
    return '"' + " ".join(f"{k}='{v}'" for k, v in sorted(env.items())) + '"'


def submit_description(sweep: Sweep, *, gpus: int, hours: float, folder: Path) -> dict[str, str]:
    """The submit description of one cluster; ``$(task_file)`` comes from the item data."""
    h = sweep.htcondor
    argv = worker_argv(Path("$(task_file)"))
    desc: dict[str, str] = {
        "universe": "vanilla",
        "executable": argv[0],
        "arguments": '"' + " ".join(shlex.quote(a).replace("'$(task_file)'", "$(task_file)") for a in argv[1:]) + '"',
        "initialdir": str(sweep.results),
        "should_transfer_files": "NO",
        "getenv": "false",
        "environment": _environment(h.cpus_per_run),
        "request_cpus": str(h.cpus_per_run),
        "request_memory": f"{int(round(h.mem_gb * 1024))}MB",
        "request_disk": f"{int(round(h.disk_gb * 1024 * 1024))}KB",
        "allowed_execute_duration": str(time_limit_min(hours, h.time_margin_min) * 60),
        "output": str(folder / "$(ClusterId).$(ProcId).out"),
        "error": str(folder / "$(ClusterId).$(ProcId).err"),
        "log": str(folder / "condor.log"),
        "batch_name": f"ptb-{sweep.name}",
    }
    if gpus:
        desc["request_gpus"] = str(gpus)
    if h.requirements:
        desc["requirements"] = h.requirements
    if h.accounting_group:
        desc["accounting_group"] = h.accounting_group
    desc.update(h.extra)
    return desc


@LAUNCHERS.register
class HTCondorLauncher(Launcher):
    """Submits clusters to the local schedd; watches them with schedd queries."""

    name = "htcondor"

    def _schedd(self) -> Any:
        try:
            import htcondor2
        except ImportError as exc:
            raise LauncherError(
                "the HTCondor bindings are not installed: pip install 'posttrainbench[cluster]'"
            ) from exc
        try:
            return htcondor2.Schedd()
        except Exception as exc:
            raise LauncherError(
                f"cannot reach the HTCondor schedd ({type(exc).__name__}: {exc}); "
                "is this a submit node (condor_q works)?"
            ) from exc

    def check(self) -> None:
        schedd = self._schedd()
        try:
            schedd.query(constraint="false", projection=["ClusterId"])
        except Exception as exc:
            raise LauncherError(
                f"cannot reach the HTCondor schedd ({type(exc).__name__}: {exc}); "
                "is this a submit node (condor_q works)?"
            ) from exc

    def submit(self, sweep: Sweep, tasks: list[Task], task_files: dict[str, Path], on_launch: OnLaunch) -> None:
        import htcondor2

        folder = sweep_dir(sweep) / "condor"
        folder.mkdir(parents=True, exist_ok=True)
        schedd = self._schedd()
        groups: dict[tuple[int, float], list[Task]] = defaultdict(list)
        for t in tasks:
            groups[(t.gpus, t.hours)].append(t)
        for (gpus, hours), group in groups.items():
            sub = htcondor2.Submit(submit_description(sweep, gpus=gpus, hours=hours, folder=folder))
            try:
                result = schedd.submit(sub, itemdata=iter([{"task_file": str(task_files[t.key])} for t in group]))
            except Exception as exc:
                raise LauncherError(f"the schedd refused the submission: {exc}") from exc
            cluster, first = result.cluster(), result.first_proc()
            for i, t in enumerate(group):
                on_launch(t.key, [f"{cluster}.{first + i}"])

    def active(self, job_ids: list[str]) -> set[str]:
        if not job_ids:
            return set()
        clusters = sorted({j.split(".")[0] for j in job_ids})
        constraint = " || ".join(f"ClusterId == {c}" for c in clusters)
        try:
            ads = self._schedd().query(constraint=constraint, projection=["ClusterId", "ProcId", "JobStatus"])
        except Exception as exc:
            raise LauncherError(f"cannot query the HTCondor schedd: {exc}") from exc
        live = {f"{ad['ClusterId']}.{ad['ProcId']}" for ad in ads if int(ad.get("JobStatus", 0)) in _LIVE}
        return {j for j in job_ids if j in live}

    def wait(self, job_ids: list[str], on_tick: OnTick, poll_s: float = 5.0) -> None:
        while self.active(job_ids):
            on_tick()
            time.sleep(poll_s)

    def cancel(self, job_ids: list[str]) -> None:
        import htcondor2

        if job_ids:
            self._schedd().act(htcondor2.JobAction.Remove, job_ids)
