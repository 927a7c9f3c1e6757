"""Sweeps at scale: the sweep file, planning and status, and the launchers (local pool,
Slurm through submitit, HTCondor through the htcondor bindings)."""

from .base import Launcher, LauncherError
from .driver import SweepState, make_launcher, run_sweep, sweep_state
from .plan import Ledger, Task, TaskStatus, plan_tasks, task_status
from .sweep import Fault, Sweep, SweepError, load_sweep

__all__ = [
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
