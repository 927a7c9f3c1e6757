"""The SkyPilot launcher: one SkyPilot managed job per task, on whatever clouds, Kubernetes or
Slurm SkyPilot reaches (``sky check``).

SkyPilot cannot live in the harness's venv (it pins ``click<8.2``; our ``huggingface-hub``
needs ``click>=8.4.2``), so it is used through its own interpreter (``[skypilot] python``, by
default the one the ``sky`` command runs with): a short script (:data:`_SKY_SCRIPT`) calls its
Python API (``sky.Task.from_yaml``, ``sky.jobs.launch``, ``sky.jobs.queue``,
``sky.jobs.cancel``) and answers in JSON. Specs are made and checked against SkyPilot's schema
in :mod:`~posttrainbench.launch.skypilot_spec`; run folders come back through a bucket
(:mod:`~posttrainbench.launch.skypilot_sync`), pulled whenever the launcher is asked what is
still running, so status and resume read the same run-folder states as every other launcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..results.transfer import TransferError
from .base import LAUNCHERS, Launcher, LauncherError, OnLaunch, OnTick, console_script_python
from .plan import Task, sweep_dir
from .skypilot_spec import (
    SpecError,
    checkout_root,
    remote_task_json,
    secret_names,
    task_config,
    validate_task_config,
)
from .skypilot_sync import pull_results
from .sweep import Sweep

#: Managed-job states that are not final (``sky.jobs.ManagedJobStatus`` names).
LIVE_STATES = frozenset({"PENDING", "SUBMITTED", "STARTING", "RUNNING", "RECOVERING", "CANCELLING"})

#: Run by SkyPilot's interpreter: ``OP ARG_JSON`` -> one JSON line on stdout.
_SKY_SCRIPT = """
import json, sys
import sky
op, arg = sys.argv[1], json.loads(sys.argv[2])
if op == "version":
    out = sky.__version__
elif op == "launch":
    import os, yaml
    with open(arg["yaml"]) as fh:
        config = yaml.safe_load(fh)
    # the secrets' values come from this process's environment (the launching shell), never a file
    config["secrets"] = {k: os.environ[k] for k in arg["secrets"]}
    task = sky.Task.from_yaml_config(config)
    job_ids, _ = sky.get(sky.jobs.launch(task, name=arg["name"]))
    out = [int(j) for j in job_ids or []]
elif op == "queue":
    recs = sky.get(sky.jobs.queue(refresh=False, job_ids=arg["job_ids"]))
    get = lambda r, k: r[k] if isinstance(r, dict) else getattr(r, k)
    out = [[int(get(r, "job_id")), str(getattr(get(r, "status"), "name", get(r, "status")))] for r in recs]
elif op == "cancel":
    sky.get(sky.jobs.cancel(job_ids=arg["job_ids"]))
    out = None
print(json.dumps(out))
"""


def sky_python(configured: str | None) -> str:
    """SkyPilot's interpreter: the configured one, else the one the ``sky`` command's script names."""
    if configured:
        return configured
    sky, python = console_script_python("sky")
    if sky is None:
        raise LauncherError(
            "SkyPilot is not installed: install it in its own venv (pipx install skypilot, or "
            "python3 -m venv ~/sky && ~/sky/bin/pip install skypilot) and put `sky` on PATH, or set "
            "[skypilot] python"
        )
    if python is None:
        raise LauncherError(f"cannot tell which Python {sky} runs with: set [skypilot] python")
    return python


def call_sky(python: str, op: str, arg: Any, timeout_s: float = 600) -> Any:
    """Run one SkyPilot API call in SkyPilot's interpreter; its JSON answer, or :class:`LauncherError`."""
    try:
        proc = subprocess.run(
            [python, "-c", _SKY_SCRIPT, op, json.dumps(arg)], capture_output=True, text=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LauncherError(f"SkyPilot ({python}) could not be run: {exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LauncherError(f"SkyPilot {op} failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@LAUNCHERS.register
class SkyPilotLauncher(Launcher):
    """Submits SkyPilot managed jobs; watches them with the managed-job queue."""

    name = "skypilot"

    def __init__(self, sweep: Sweep) -> None:
        super().__init__(sweep)
        self.settings = sweep.skypilot

    def check(self) -> None:
        s = self.settings
        if not s.sync_bucket:
            raise LauncherError("[skypilot] needs sync_bucket (and sync_mirror): the way run folders come back")
        if not s.sync_mirror:
            raise LauncherError("[skypilot] sync_bucket needs sync_mirror: where this machine sees the bucket")
        if not Path(s.sync_mirror).is_dir():
            raise LauncherError(f"[skypilot] sync_mirror is not a folder here: {s.sync_mirror}")
        call_sky(sky_python(s.python), "version", None, timeout_s=120)

    def specs(self, tasks: list[Task]) -> dict[str, Path]:
        """Write (and check against SkyPilot's schema) the spec of each task; task key -> YAML file."""
        folder = sweep_dir(self.sweep) / "skypilot"
        checkout = checkout_root(Path(__file__).resolve().parent)
        out = {}
        for t in tasks:
            remote = folder / f"{t.key}.task.json"
            atomic_write_text(remote, json.dumps(remote_task_json(t), indent=2) + "\n")
            config = task_config(self.sweep, t, remote, checkout)
            try:
                validate_task_config(config)
            except SpecError as exc:
                raise LauncherError(f"the SkyPilot spec of {t.label} is invalid: {exc}") from exc
            out[t.key] = folder / f"{t.key}.yaml"
            atomic_write_text(out[t.key], json.dumps(config, indent=2) + "\n")  # JSON is YAML
        return out

    def submit(self, sweep: Sweep, tasks: list[Task], task_files: dict[str, Path], on_launch: OnLaunch) -> None:
        python = sky_python(self.settings.python)
        needed = {t.key: secret_names(sweep, t) for t in tasks}
        missing = sorted({n for names in needed.values() for n in names if not os.environ.get(n)})
        if missing:  # before anything is submitted
            raise LauncherError(
                f"the jobs need {', '.join(missing)} in this shell's environment (passed to them as SkyPilot secrets)"
            )
        for t in tasks:
            yaml_file = self.specs([t])[t.key]  # each checked before anything is submitted
            arg = {"yaml": str(yaml_file), "name": f"ptb-{sweep.name}-{t.key}"[:63], "secrets": needed[t.key]}
            job_ids = call_sky(python, "launch", arg)
            on_launch(t.key, [str(j) for j in job_ids])

    def active(self, job_ids: list[str]) -> set[str]:
        if self.settings.sync_mirror:
            try:
                pull_results(self.sweep, Path(self.settings.sync_mirror))
            except TransferError as exc:
                raise LauncherError(str(exc)) from exc
        if not job_ids:
            return set()
        rows = call_sky(sky_python(self.settings.python), "queue", {"job_ids": [int(j) for j in job_ids]})
        live = {str(job_id) for job_id, status in rows if status in LIVE_STATES}
        return {j for j in job_ids if j in live}

    def wait(self, job_ids: list[str], on_tick: OnTick, poll_s: float = 5.0) -> None:
        while self.active(job_ids):
            on_tick()
            time.sleep(max(poll_s, 30.0))  # each poll asks SkyPilot's API server

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            call_sky(sky_python(self.settings.python), "cancel", {"job_ids": [int(j) for j in job_ids]})
