"""What every launcher shares: the worker command, the job environment, the Launcher base class
and the registry of launchers (a sweep names one in ``launcher = "..."``)."""

from __future__ import annotations

import math
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import posttrainbench

from ..registry import Registry
from ..settings import PACKAGE_ROOT_VAR
from .plan import Task
from .sweep import Sweep

#: Called with (task key, job ids) as soon as a task is handed to the scheduler.
OnLaunch = Callable[[str, list[str]], None]
#: Called while waiting (the CLI redraws its progress bar).
OnTick = Callable[[], None]


class LauncherError(RuntimeError):
    """The scheduler cannot be used (not installed, unreachable, refused the job): nothing
    was submitted by the call that raised it; the message says what to check."""


def package_root() -> Path:
    """The folder that holds the ``posttrainbench`` package the front end imported.

    Jobs put it first on ``PYTHONPATH`` so that they import the very same code (a source
    checkout on a shared filesystem, or the venv's site-packages)."""
    return Path(posttrainbench.__file__).resolve().parent.parent


def worker_argv(task_file: Path, until: str | None = None) -> list[str]:
    """``<this python> -u -m posttrainbench.launch.worker TASK [--until PHASE]``."""
    argv = [sys.executable, "-u", "-m", "posttrainbench.launch.worker", str(task_file)]
    return [*argv, "--until", until] if until else argv


def console_script_python(command: str) -> tuple[str | None, str | None]:
    """Where ``command`` is on PATH and the interpreter its ``#!`` line names (None for either that
    cannot be told): how a tool installed in a venv of its own (SkyPilot, Harbor) is called through
    that venv's Python."""
    path = shutil.which(command)
    if path is None:
        return None, None
    first = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    if not first or not first[0].startswith("#!"):
        return path, None
    return path, first[0][2:].strip().split()[0]


def job_env_exports(cpus: int | None) -> dict[str, str]:
    """Variables every job sets: the package path, and thread counts matching its CPUs."""
    out = {PACKAGE_ROOT_VAR: str(package_root())}
    if cpus:
        out |= {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus)}
    return out


def time_limit_min(hours: float, margin_min: int) -> int:
    """A job's wall-clock limit: the agent's hours plus the verification/evaluation margin."""
    return int(math.ceil(hours * 60)) + int(margin_min)


class Launcher(ABC):
    """A way to run tasks: a local pool, Slurm, HTCondor. Each launcher registers its class in
    :data:`LAUNCHERS` under its ``name`` and is made from the sweep it runs."""

    name: ClassVar[str]

    def __init__(self, sweep: Sweep) -> None:
        """Take the sweep's settings for this launcher (nothing is contacted yet); by default keep
        the sweep as ``self.sweep``."""
        self.sweep = sweep

    def check(self) -> None:  # noqa: B027 - optional hook: nothing to check by default
        """Raise :class:`LauncherError` if tasks cannot be submitted (before submitting any);
        default: nothing to check."""

    @abstractmethod
    def submit(self, sweep: Sweep, tasks: list[Task], task_files: dict[str, Path], on_launch: OnLaunch) -> None:
        """Hand ``tasks`` to the scheduler (the local pool runs them before returning)."""

    @abstractmethod
    def active(self, job_ids: list[str]) -> set[str]:
        """Those of ``job_ids`` that are still queued or running."""

    @abstractmethod
    def wait(self, job_ids: list[str], on_tick: OnTick, poll_s: float = 5.0) -> None:
        """Return once none of ``job_ids`` is queued or running."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel jobs (a cancelled run resumes on the next ``ptb sweep run``)."""


#: Every launcher, by ``name``.
LAUNCHERS: Registry[type[Launcher]] = Registry("launcher", key=lambda cls: cls.name)


def make_launcher(sweep: Sweep) -> Launcher:
    """The launcher named by ``sweep.launcher``, made for ``sweep``."""
    return LAUNCHERS.get(sweep.launcher)(sweep)
