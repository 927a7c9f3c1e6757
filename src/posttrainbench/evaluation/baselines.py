"""Zero-shot baselines: the score of a base model (the fallback score of its cells) or of its
official instruct checkpoint (the benchmark weights need both), cached in its baseline folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, Self

from ..domain import BaseModelSpec
from ..fsutil import atomic_write_json, atomic_write_text
from ..models.store import resolve_base_model
from ..results import baseline_dir, save_baseline
from ..settings import Settings
from .contract import EvaluableBenchmark
from .progress import SampleFn
from .protocols import STRICT
from .runner import EvalResult, evaluate_model


class _Benchmark(EvaluableBenchmark, Protocol):
    """A benchmark definition (a pydantic model: copied with ``fewshot`` set to 0)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


def evaluate_baseline(
    base: BaseModelSpec,
    bench: _Benchmark,
    results_root: Path,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    instruct: bool = False,
    backend: str = "hf",
    settings: Settings | None = None,
    protocol: str = STRICT,
    on_sample: SampleFn | None = None,
) -> EvalResult:
    """Zero-shot score of a base model (the fallback score), cached in its baseline folder.

    ``instruct``: evaluate the base model's official instruct checkpoint instead (recorded under
    its own id; the benchmark weights need both). Always zero-shot (``fewshot`` set to 0) and
    with the *base* model's chat template, as every submission of that base model is evaluated.
    The caller looks the base model and the benchmark up (evaluation takes definitions, not names).
    ``settings``: the ``PTB_*`` settings (model store, data, grader); default read from the
    environment now. ``on_sample``: live progress (see :func:`evaluate_model`).
    """
    settings = settings if settings is not None else Settings.from_env()
    bench = bench.model_copy(update={"fewshot": 0})
    target = base
    if instruct:
        if not base.instruct_id:
            raise ValueError(f"{base.hub_id} has no instruct checkpoint in the catalog")
        target = base.model_copy(update={"hub_id": base.instruct_id, "instruct_id": None, "local_path": None})
    checkpoint = "instruct" if instruct else "base"
    folder = baseline_dir(results_root, bench.id, base, limit, checkpoint)
    if protocol != STRICT:  # another protocol's baseline is another score: its own folder
        folder = folder.with_name(f"{folder.name}_{protocol}")
    cached = folder / "result.json"
    if cached.is_file():
        result = EvalResult.model_validate_json(cached.read_text())
        if result.status == "ok" and result.protocol == protocol:
            return result
    result = evaluate_model(
        resolve_base_model(target, settings), bench, base, folder / "eval", limit=limit, batch_size=batch_size,
        backend=backend, settings=settings, protocol=protocol, on_sample=on_sample,
    )  # fmt: skip
    atomic_write_text(cached, result.model_dump_json(indent=2) + "\n")
    if result.status == "ok":
        atomic_write_json(folder / "metrics.json", result.to_metrics_json())
    save_baseline(
        results_root,
        benchmark=bench.id,
        base_model=base,
        score=result.score,
        status=result.status,
        checkpoint=checkpoint,
        limit=limit,
        extra={
            "evaluated": target.hub_id,
            "error": result.error,
            **({"protocol": protocol} if protocol != STRICT else {}),
        },
    )
    return result
