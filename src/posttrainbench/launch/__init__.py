"""Sweeps at scale: the sweep file, planning and status, and the launchers (local pool,
Slurm through submitit, HTCondor through the htcondor bindings, SkyPilot managed jobs)."""

# isort: off
from .base import LAUNCHERS, Launcher, LauncherError, make_launcher
from .driver import SweepState, run_sweep, sweep_state

# Importing a launcher registers it (registration order: local, slurm, htcondor, skypilot; so these imports
# are not sorted).
from . import local, slurm, htcondor, skypilot  # noqa: F401 - imported for the registration
from .plan import Ledger, Task, TaskStatus, plan_tasks, task_status
from .sweep import Fault, Sweep, SweepError, load_sweep
# isort: on

__all__ = [
    "LAUNCHERS",
    "Fault",
    "Launcher",
    "LauncherError",
    "Ledger",
    "Sweep",
    "SweepError",
    "SweepState",
    "Task",
    "TaskStatus",
    "load_sweep",
    "make_launcher",
    "plan_tasks",
    "run_sweep",
    "sweep_state",
    "task_status",
]
