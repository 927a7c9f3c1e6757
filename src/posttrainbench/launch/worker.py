"""What every job runs: ``python -m posttrainbench.launch.worker TASK.json [--until PHASE]``.

The same pipeline phases whatever the launcher: a run task runs (or resumes) its
:class:`~posttrainbench.pipeline.Pipeline`, a baseline task evaluates the base model zero-shot.
Exit status: 0 when the task got as far as asked, 3 on an infrastructure failure (the
launcher retries it), 2 for a task file it cannot read or invalid ``PTB_*`` settings, 128 + the
signal when interrupted (SIGTERM: scancel, a time limit, `ptb sweep cancel`, the local pool's
Ctrl-C; SIGINT): the phase running is recorded as ``interrupted`` (see
:mod:`~posttrainbench.interrupts`) and resumes on the next launch; a second signal forces the
exit. The settings are read from the job's environment once, when it starts. With
``PTB_SCRATCH`` set (Slurm jobs), that folder is made, used as ``TMPDIR`` and removed when the
worker ends, SIGTERM included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import posttrainbench

from .. import interrupts
from ..settings import Settings, SettingsError

EXIT_OK, EXIT_BAD_TASK, EXIT_INFRA = 0, 2, 3


def assigned_gpus(env: dict[str, str] | None = None) -> list[int] | None:
    """Host GPU indices this job was given: ``SLURM_JOB_GPUS`` (Slurm), else a numeric
    ``CUDA_VISIBLE_DEVICES`` (local pool); None if neither says (the run uses 0..gpus-1)."""
    env = dict(os.environ) if env is None else env
    for var in ("SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = env.get(var, "").strip()
        if value:
            parts = [p.strip() for p in value.split(",")]
            if all(p.isdigit() for p in parts):
                return [int(p) for p in parts]
    return None


def run_task(task: dict, *, until: str | None = None, settings: Settings | None = None) -> int:
    """Run one task (see :meth:`posttrainbench.launch.plan.Task.to_json`) under ``settings``
    (default: read from the environment now); return the exit status."""
    from ..benchmarks import get_benchmark
    from ..catalog import get_base_model
    from ..console import console
    from ..domain import RunSpec
    from ..evaluation.baselines import evaluate_baseline
    from ..pipeline import Pipeline
    from ..results.run_lock import RunInUse

    results = Path(task["results"]).expanduser()  # "~/ptb-results" in a SkyPilot job
    if task["kind"] == "baseline":
        base, bench = get_base_model(task["base_model"]), get_benchmark(task["benchmark"])
        result = evaluate_baseline(base, bench, results, limit=task.get("eval_limit"), settings=settings)
        print(f"baseline {task['benchmark']} {task['base_model']}: {result.status} score={result.score}", flush=True)
        return EXIT_OK if result.status == "ok" else EXIT_INFRA
    spec = RunSpec.model_validate(task["spec"])

    def progress(phase: str, msg: str) -> None:
        print(f"[{phase}] {msg}", flush=True)

    # live progress as plain timestamped lines at a low rate in the job's log (not a terminal)
    pipe = Pipeline(spec, results, progress=progress, gpu_ids=assigned_gpus(), settings=settings, live=console)
    try:
        record = pipe.run(until=until)  # type: ignore[arg-type]  # a phase name from the command line (a wrong one matches none)
    except RunInUse as exc:  # another live job runs this folder: leave it alone
        print(f"not run: {exc}", file=sys.stderr, flush=True)
        return EXIT_INFRA
    if any(s.status == "failed" for s in record.phases.values()):
        return EXIT_INFRA
    print(
        f"run {record.run_id}: {'completed' if record.completed else 'stopped after ' + str(until)}"
        f"{'; failure: ' + record.failure if record.failure else ''}",
        flush=True,
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posttrainbench.launch.worker")
    parser.add_argument("task_file", type=Path)
    parser.add_argument("--until", default=None, help="stop after this phase (split jobs)")
    args = parser.parse_args(argv)
    # Which code runs matters on a cluster: say it in the job log.
    print(
        f"posttrainbench {posttrainbench.__version__} from {Path(posttrainbench.__file__).parent} "
        f"(python {sys.executable})",
        flush=True,
    )
    with interrupts.handling():  # SIGINT / SIGTERM: the phase is recorded as interrupted
        try:
            return _main(args)
        except (interrupts.Interrupted, KeyboardInterrupt):
            name = interrupts.signal_name() or "SIGINT"
            print(f"interrupted by {name}: the run resumes on the next launch", file=sys.stderr, flush=True)
            return 128 + int(signal.Signals[name])


def _main(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return EXIT_BAD_TASK
    scratch = settings.launch.scratch
    if scratch:
        Path(scratch).mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = str(scratch)
        tempfile.tempdir = None  # re-read TMPDIR
    try:
        try:
            task = json.loads(args.task_file.read_text())
        except (OSError, ValueError) as exc:
            print(f"cannot read task file {args.task_file}: {exc}", file=sys.stderr)
            return EXIT_BAD_TASK
        return run_task(task, until=args.until, settings=settings)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
