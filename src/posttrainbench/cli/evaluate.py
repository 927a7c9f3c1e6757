"""``ptb eval``: evaluate a model folder with the harness's pinned evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import lookup
from .common import (
    EXIT_FAILED,
    BatchSizeOpt,
    LimitOpt,
    ProtocolOpt,
    console,
    expected,
    fail,
    load_settings,
    output_folder,
)


def eval_cmd(
    model_path: Annotated[Path, typer.Argument(help="Model folder (config + safetensors + tokenizer).")],
    benchmark: Annotated[str, typer.Option(help="Benchmark id.")],
    base_model: Annotated[str, typer.Option(help="Declared base model (picks the chat template).")],
    limit: LimitOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for the Inspect log.")] = Path("results/eval"),
    batch_size: BatchSizeOpt = 16,
    protocol: ProtocolOpt = "strict",
) -> None:
    """Evaluate a model folder with the harness's pinned evaluator."""
    from ..console import LiveStatus, limited
    from ..console import score as fmt_score
    from ..evaluation import evaluate_model
    from ..evaluation.progress import SampleMeter

    settings = load_settings()
    bench, base = lookup.benchmark(benchmark), lookup.base_model(base_model)
    if not model_path.is_dir():
        fail(str(model_path), "no such folder" if not model_path.exists() else "not a folder (the model folder)")
    with expected(ValueError, what="--protocol"):
        proto = bench.require_protocol(protocol)
    output_folder(out, "folder for the Inspect log")
    n = f"first {limit}" if limit else "all"
    what = f"{n} items, batch {batch_size}, protocol {proto.id}"
    console.print(f"evaluating {model_path} on {bench.id} ({what}); Inspect log in {out}", soft_wrap=True)
    with LiveStatus(console, "eval") as status:
        result = evaluate_model(
            model_path, bench, base, out, limit=limit, batch_size=batch_size, settings=settings, protocol=proto.id,
            on_sample=SampleMeter(status),
        )  # fmt: skip
    if result.log_path:
        console.print(f"log: {result.log_path} (browse it: inspect view --log-dir {out})", soft_wrap=True)
    if result.status != "ok":
        fail(str(model_path), f"evaluation failed: {result.error}", code=EXIT_FAILED)
    scored = f"{result.n_scored} items; protocol {proto.id} {proto.digest}; chat template {result.chat_template}"
    console.print(f"{bench.id}: {result.metric} = {fmt_score(result.score)}{limited(limit)} ({scored})")
    if result.num_seeds is not None:  # a seeded protocol: the mean of these
        per_seed = ", ".join(
            f"{s.seed} {fmt_score(s.score) if s.status == 'ok' else 'failed'}{' (resumed)' if s.resumed else ''}"
            for s in result.seeds
        )
        console.print(f"seeds ({len(result.seeds)} of {result.num_seeds} run, mean of those ok): {per_seed}")
    if result.sampling is not None:
        s = result.sampling
        top_p = "unset" if s.top_p is None else s.top_p
        extras = "".join(f", {k} {v}" for k, v in s.extras().items())
        console.print(f"sampling: temperature {s.temperature}, top_p {top_p}{extras} (the model's, from {s.source})")
    if result.data is not None:
        console.print(f"data: {result.data.status}, sha256 {result.data.items_sha256[:16]}")
