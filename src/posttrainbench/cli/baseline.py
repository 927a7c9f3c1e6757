"""``ptb baseline``: zero-shot evaluations of base models and their official instruct checkpoints,
recorded as baseline runs (``<results>/baseline_zeroshot/...``): the fallback scores of failed
cells and, with both roles on every benchmark, the benchmark weights."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from rich.markup import escape
from rich.table import Table

from ..domain import BaseModelSpec, EvalBackend
from . import lookup
from .common import (
    EXIT_FAILED,
    BatchSizeOpt,
    ProtocolOpt,
    ResultsOpt,
    choices,
    console,
    expected,
    load_settings,
    output_file,
    output_folder,
)

# Built from the registry at import time (typer reads it); a type checker sees a plain StrEnum.
if TYPE_CHECKING:
    Backend = StrEnum
else:
    Backend = choices("Backend", get_args(EvalBackend))


def baseline(
    base_model: Annotated[list[str], typer.Option("--base-model", help="Base model id (repeatable).")],
    benchmark: Annotated[list[str], typer.Option("--benchmark", help="Benchmark id (repeatable).")],
    results: ResultsOpt = Path("results"),
    instruct: Annotated[bool, typer.Option(help="Also evaluate each base model's instruct checkpoint.")] = True,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items (recorded as such).")] = None,
    batch_size: BatchSizeOpt = 16,
    backend: Annotated[
        Backend, typer.Option(help="Inference backend: transformers, vLLM (GPU) or an OpenAI-compatible server.")
    ] = Backend("hf"),  # noqa: B008 - a member lookup, not a call that builds anything
    weights_out: Annotated[
        Path | None,
        typer.Option(help="Write benchmark weights (factors.json format) computed from these baselines."),
    ] = None,
    protocol: ProtocolOpt = "strict",
) -> None:
    """Evaluate base (and instruct) checkpoints zero-shot and record them as baseline runs."""
    from ..console import LiveStatus, limited
    from ..console import score as fmt_score
    from ..evaluation.baselines import evaluate_baseline
    from ..evaluation.progress import SampleMeter

    settings = load_settings()
    bases = [lookup.base_model(m) for m in base_model]
    benches = [lookup.benchmark(b) for b in benchmark]
    with expected(ValueError, what="--protocol"):
        for bench in benches:  # refused before anything is evaluated
            bench.require_protocol(protocol)
    output_folder(results, "results folder")
    if weights_out is not None:
        output_file(weights_out, "weights file")
    jobs = [(b, bench, False) for b in bases for bench in benches]
    if instruct:
        jobs += [(b, bench, True) for b in bases if b.instruct_id for bench in benches]
    table = Table(title=f"zero-shot baselines ({'full sets' if limit is None else f'first {limit} items'})")
    for col in ("model", "role", "benchmark", "status", "score", "detail"):
        table.add_column(col, overflow="fold")
    scores: dict[str, dict[str, float]] = {}
    failed = 0
    with LiveStatus(console, "baseline") as live:
        for n, (base, bench, is_instruct) in enumerate(jobs, 1):
            model_id = base.instruct_id if is_instruct else base.hub_id
            meter = SampleMeter(live, prefix=f"{n}/{len(jobs)} {model_id} on {bench.id}: ")
            try:
                res = evaluate_baseline(
                    base, bench, results, limit=limit, batch_size=batch_size, instruct=is_instruct,
                    backend=backend.value, settings=settings, protocol=protocol, on_sample=meter,
                )  # fmt: skip
                status, score, detail = res.status, res.score, res.error or f"{res.n_scored} items"
            except Exception as exc:  # noqa: BLE001 - the model cannot be fetched, ...: recorded here, next job runs
                status, score, detail = "failed", None, f"{type(exc).__name__}: {exc}"
            if status == "ok" and score is not None:
                scores.setdefault(str(model_id), {})[bench.id] = score
            else:
                failed += 1
            table.add_row(
                str(model_id), "instruct" if is_instruct else "base", bench.id,
                "[green]ok[/]" if status == "ok" else "[red]failed[/]",
                "" if score is None else fmt_score(score) + limited(limit), escape(detail),
            )  # fmt: skip
    console.print(table)
    if weights_out is not None:
        _write_weights(weights_out, scores, bases, [b.id for b in benches])
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _write_weights(
    path: Path, scores: dict[str, dict[str, float]], bases: list[BaseModelSpec], benchmarks: list[str]
) -> None:
    from ..leaderboard.grids import Grid, GridError
    from ..leaderboard.weights import benchmark_weights, save_weights

    pairs = {b.hub_id: b.instruct_id for b in bases if b.instruct_id}
    with expected(GridError, ValueError, what=f"{path}: cannot compute weights", code=EXIT_FAILED):
        weights = benchmark_weights(Grid.from_mapping(scores, benchmarks), list(pairs), pairs, benchmarks)
    save_weights(path, weights)
    console.print(f"weights written to {path}: " + ", ".join(f"{b} {w:.4f}" for b, w in weights.items()))
