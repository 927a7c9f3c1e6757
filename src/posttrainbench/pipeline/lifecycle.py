"""The phase loop: a :class:`Pipeline` validates its run spec up front, then runs (or resumes)
the phases in order, each one an explicit function of its module that returns its typed result
(:data:`PHASE_STEPS`). The phases read their settings from ``pipe.settings``: those the pipeline
was given, else the environment's, read (and validated) when it is made and again when
:meth:`Pipeline.run` or :meth:`Pipeline.reverify` is called."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from .. import interrupts
from ..agents import Agent, LaunchContext, get_agent
from ..benchmarks import get_benchmark
from ..catalog import get_base_model
from ..domain import Phase, PhaseResult, RunRecord, RunSpec
from ..results import RunPaths, load_record, run_paths, save_record
from ..results.run_lock import hold_run
from ..sandbox import Sandbox, get_sandbox
from ..settings import Settings
from . import collect, evaluate, prepare, solve, verify
from . import record as record_phase
from .common import PhaseError, ProgressFn, now

#: What each phase runs, in run order: ``(pipeline, record) -> its result``.
PHASE_STEPS: tuple[tuple[Phase, Callable[[Pipeline, RunRecord], PhaseResult]], ...] = (
    ("prepare", prepare.run),
    ("solve", solve.run),
    ("collect", collect.run),
    ("verify", verify.run),
    ("evaluate", evaluate.run),
    ("record", record_phase.run),
)


class Pipeline:
    """One run: validates its spec up front, then runs (or resumes) the phases."""

    def __init__(
        self,
        spec: RunSpec,
        results_root: Path,
        *,
        progress: ProgressFn | None = None,
        eval_batch_size: int = 16,
        gpu_ids: list[int] | None = None,
        settings: Settings | None = None,
        live: Console | None = None,
    ) -> None:
        """``settings``: what every phase reads (``PTB_*``); None: the environment's, read now
        (validated up front) and again when each :meth:`run` / :meth:`reverify` starts.
        ``live``: where to show the live progress of solve and evaluate (the agent's latest step,
        samples done; :class:`~posttrainbench.console.LiveStatus`); None: none shown."""
        # Validate every name (and the settings) before anything touches the disk.
        self.spec = spec
        self._given_settings = settings
        self.settings: Settings = settings if settings is not None else Settings.from_env()
        self.benchmark = get_benchmark(spec.benchmark)
        self.base = get_base_model(spec.base_model)
        self.agent: Agent = get_agent(spec.agent, self.settings)
        self.agent.validate_config(spec.agent_config)
        self.sandbox: Sandbox = get_sandbox(spec.sandbox, self.settings)
        # absolute: the sandbox binds these paths, and a relative --results must work from any cwd
        self.paths: RunPaths = run_paths(Path(results_root).absolute(), spec, self.base)
        self.progress: ProgressFn = progress or (lambda phase, msg: None)
        self.eval_batch_size = eval_batch_size
        self.live = live
        # Host GPU indices a launcher assigned to this run (default: the first spec.gpus).
        self.gpu_ids = list(gpu_ids)[: spec.gpus] if gpu_ids is not None else list(range(spec.gpus))

    def launch_context(self) -> LaunchContext:
        """What the agent is told about its launch (the harness environment stays outside)."""
        return LaunchContext(
            spec=self.spec,
            workspace=self.paths.workspace.resolve(),
            prompt_file=self.paths.prompt,
            python=sys.executable,
            host_env=dict(os.environ),
        )

    def preflight(self) -> None:
        """What can be checked before anything is written: the agent's own launch checks (its API
        key), unless the run's agent already ran. Raises AgentLaunchError."""
        if self.paths.run_json.exists() and load_record(self.paths.run_json).phases.solve.status == "done":
            return
        self.agent.preflight(self.launch_context())

    def load_or_create(self) -> RunRecord:
        """The run's record: read from ``run.json`` if the run exists, else a new one."""
        if self.paths.run_json.exists():
            return load_record(self.paths.run_json)
        record = RunRecord(run_id=self.spec.run_id(), spec=self.spec, versions=record_phase.versions())
        self.paths.root.mkdir(parents=True, exist_ok=True)
        save_record(self.paths.run_json, record)
        return record

    def _read_settings(self) -> None:
        """The settings of this call: the given ones, else the environment's now (a malformed
        ``PTB_*`` variable raises :class:`~posttrainbench.settings.SettingsError` before any
        phase runs); the agent and the sandbox run under them."""
        if self._given_settings is None:
            self.settings = Settings.from_env()
            self.agent = get_agent(self.spec.agent, self.settings)
            self.sandbox = get_sandbox(self.spec.sandbox, self.settings)

    def run(self, *, until: Phase | None = None) -> RunRecord:
        """Run every phase not yet done, in order; stop at the first infrastructure failure."""
        self._read_settings()
        with hold_run(self.paths.root):  # RunInUse while another live process runs this folder
            record = self.load_or_create()
            solve_state = record.phases.solve
            if solve_state.started_at is not None and solve_state.status != "done":
                # The agent was interrupted mid-run (job killed, sandbox failed): its workspace is
                # dirty, so the agent restarts from a fresh workspace.
                record.phases.prepare.status = "pending"
            for phase, step in PHASE_STEPS:
                if record.phases[phase].status != "done" and not self._run_phase(record, phase, step):
                    break
                if phase == until:
                    break
        return record

    def reverify(self) -> RunRecord:
        """Run the verify phase again on an existing run (e.g. after a gate or the judge
        configuration changed); the agent is not re-run and the other phases are kept."""
        if not self.paths.run_json.exists():
            raise FileNotFoundError(f"no run.json in {self.paths.root}")
        self._read_settings()
        with hold_run(self.paths.root):
            record = load_record(self.paths.run_json)
            if record.phases.collect.status != "done":
                raise PhaseError("the run has not been collected yet; run it (ptb run) first")
            if record.failure and record.failure.startswith("verify:"):
                record.failure = None
            self._run_phase(record, "verify", verify.run)
        return record

    def _run_phase(self, record: RunRecord, phase: Phase, step: Callable[[Pipeline, RunRecord], PhaseResult]) -> bool:
        state = record.phases[phase]
        state.status, state.error, state.details = "pending", None, None
        state.started_at, state.finished_at = now(), None
        save_record(self.paths.run_json, record)
        self.progress(phase, "started")
        try:
            state.details = step(self, record)
            state.status = "done"
        except (interrupts.Interrupted, KeyboardInterrupt) as exc:
            # Ctrl-C / SIGTERM: recorded as such (not a failure, no failure cause); resuming reruns it
            signal = exc.signal if isinstance(exc, interrupts.Interrupted) else interrupts.signal_name() or "SIGINT"
            state.status, state.error = "interrupted", f"interrupted by {signal}"
            state.finished_at = now()
            save_record(self.paths.run_json, record)
            self.progress(phase, f"interrupted by {signal}")
            raise interrupts.Interrupted(signal) from None
        except Exception as exc:  # noqa: BLE001 - recorded with its cause; the run folder keeps everything
            state.status = "failed"
            state.error = f"{type(exc).__name__}: {exc}"
            record.failure = f"{phase}: {state.error}"
        state.finished_at = now()
        save_record(self.paths.run_json, record)
        self.progress(phase, state.status if state.status == "done" else f"failed: {state.error}")
        return state.status == "done"
