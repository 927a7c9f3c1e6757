"""SkyPilot task specs: one per sweep task (:func:`task_config`), checked against the JSON schemas
SkyPilot itself validates a spec with (:func:`validate_task_config`).

SkyPilot cannot be installed in the harness's venv (it pins ``click<8.2``; our
``huggingface-hub`` needs ``click>=8.4.2``), so its schemas are committed
(``resources/skypilot/schemas.json``, written from the installed package by
``scripts/skypilot_schema.py``) and applied here the way ``sky.Task.from_yaml_config`` applies
them: the task schema, the resources schema on ``resources`` and the storage schema on each
bucket mount, with jsonschema's Draft 7 plus SkyPilot's two enum keywords.

What the job does: the checkout is the ``workdir``, ``setup`` installs it in a venv, the task file
(and, to resume, the run folder as far as an earlier attempt brought it back) are file mounts,
the sync bucket is a storage mount, and ``run`` runs the same worker as every launcher, then
pushes the run folder into the bucket (:mod:`posttrainbench.launch.skypilot_sync`).
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

from ..settings import PACKAGE_ROOT_VAR
from .base import LauncherError, job_env_exports
from .plan import Task
from .sweep import Sweep

#: Where things live on the job's machine.
REMOTE_RESULTS = "~/ptb-results"
REMOTE_TASK = "~/ptb-task.json"
REMOTE_SYNC = "/ptb-sync"
REMOTE_VENV = "~/ptb-venv"


class SpecError(ValueError):
    """A generated task spec that SkyPilot's schema refuses (the message is SkyPilot's reason)."""


@functools.cache
def skypilot_schemas() -> dict[str, Any]:
    """The committed schemas: ``task``, ``resources``, ``storage`` and ``skypilot_version``."""
    text = files("posttrainbench").joinpath("resources", "skypilot", "schemas.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _enum(case_sensitive: bool) -> Any:
    def check(validator: Any, enums: list[str], instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
        value = instance if case_sensitive else str(instance).lower()
        if value not in (enums if case_sensitive else [e.lower() for e in enums]):
            yield jsonschema.ValidationError(f"{instance!r} is not one of {enums!r}")

    return check


@functools.cache
def _validator_class() -> Any:
    """Draft 7 with SkyPilot's own keywords (``sky.utils.validator.get_schema_validator``)."""
    return jsonschema.validators.extend(
        jsonschema.Draft7Validator,
        validators={"case_insensitive_enum": _enum(False), "case_sensitive_enum": _enum(True)},
    )


def _validate(obj: Any, schema_name: str, what: str) -> None:
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if v is not None}
    try:
        _validator_class()(skypilot_schemas()[schema_name]).validate(obj)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        raise SpecError(f"invalid {what}{f' at {where}' if where else ''}: {exc.message}") from None


def validate_task_config(config: dict[str, Any]) -> None:
    """Raise :class:`SpecError` where SkyPilot's ``Task.from_yaml_config`` would refuse ``config``."""
    _validate(config, "task", "task")
    _validate(config.get("resources") or {}, "resources", "resources")
    for dest, mount in (config.get("file_mounts") or {}).items():
        if isinstance(mount, dict):
            _validate(mount, "storage", f"storage mount {dest}")


def run_folder_rel(sweep: Sweep, task: Task) -> str:
    """The task's folder relative to the results folder (the same path on the job's machine)."""
    return task.folder.relative_to(sweep.results).as_posix()


def remote_task_json(task: Task) -> dict[str, Any]:
    """The worker's task JSON with the results folder the job's machine has."""
    return task.to_json() | {"results": REMOTE_RESULTS}


def checkout_root(package_root: Path) -> Path:
    """The source checkout (the folder with ``pyproject.toml``) that ``package_root`` is in."""
    for folder in (package_root, *package_root.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise LauncherError(
        f"the SkyPilot launcher installs the harness from its source checkout; none found above {package_root}"
    )


def secret_names(sweep: Sweep, task: Task) -> list[str]:
    """The variables a task's job needs as secrets: the agent's own key(s) for its config (what
    ``ptb run`` would inject into its sandbox) and ``[skypilot] secrets``."""
    from ..agents import LaunchContext, get_agent

    names = list(sweep.skypilot.secrets)
    if task.spec is not None:
        agent = get_agent(task.spec.agent)
        ctx = LaunchContext(spec=task.spec, workspace=Path(), prompt_file=Path(), python="")
        names += agent.secret_names(ctx)
    return sorted(set(names))


def task_config(sweep: Sweep, task: Task, task_file: Path, checkout: Path) -> dict[str, Any]:
    """The SkyPilot task spec (the YAML's dict) of one task. ``task_file`` is the worker's task
    JSON rewritten for the job's machine (:func:`remote_task_json`)."""
    s = sweep.skypilot
    rel = run_folder_rel(sweep, task)
    resources: dict[str, Any] = {"cpus": s.cpus, "memory": s.memory, "disk_size": s.disk_gb, "use_spot": s.use_spot}
    if task.gpus:
        resources["accelerators"] = {s.accelerator: task.gpus}
    if s.infra:
        resources["infra"] = s.infra
    resources.update(s.resources)
    mounts: dict[str, Any] = {REMOTE_TASK: str(task_file)}
    if task.folder.is_dir():  # resume from what an earlier attempt brought back
        mounts[f"{REMOTE_RESULTS}/{rel}"] = str(task.folder)
    if s.sync_bucket:
        mounts[REMOTE_SYNC] = {"source": s.sync_bucket, "mode": "MOUNT"}
    run = [f"{REMOTE_VENV}/bin/python -u -m posttrainbench.launch.worker {REMOTE_TASK}", "rc=$?"]
    if s.sync_bucket:
        # one folder per attempt (a recovered managed job keeps its task id, hence the time);
        # SYNC_DIR only moves the mount point for tests that run this script on this machine
        dest = f'"${{SYNC_DIR:-{REMOTE_SYNC}}}"/{shlex.quote(rel)}@"$SKYPILOT_TASK_ID-$(date +%s)"'
        run.append(
            f"{REMOTE_VENV}/bin/python -m posttrainbench.launch.skypilot_sync push "
            f"{REMOTE_RESULTS}/{shlex.quote(rel)} {dest} || exit 3"
        )
    run.append("exit $rc")
    setup = [f"python3 -m venv {REMOTE_VENV}", f"{REMOTE_VENV}/bin/pip install -q -e .", *s.setup]
    # the job imports the checkout installed in its venv, not this machine's package path
    envs = {k: v for k, v in job_env_exports(s.cpus_per_run).items() if k != PACKAGE_ROOT_VAR} | s.envs
    return {
        "name": f"ptb-{sweep.name}-{task.key}"[:63],
        "workdir": str(checkout),
        "resources": resources,
        "envs": envs,
        # names only: the values are filled in from the launching shell by the launch call itself
        # (never written here); SkyPilot keeps them out of its logs and dashboard
        "secrets": dict.fromkeys(secret_names(sweep, task)),
        "file_mounts": mounts,
        "setup": "\n".join(setup),
        "run": "\n".join(run),
    }
