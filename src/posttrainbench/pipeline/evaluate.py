"""evaluate: the harness's own pristine evaluator on the canonical submission (never the
workspace copy), on the full test set (or ``eval_limit`` items), decoding pinned by the harness;
the score also without the agent's dev items (held-out)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from ..console import LiveStatus
from ..domain import EvaluateResult, RunMetrics, RunRecord, VerdictStatus
from ..evaluation import evaluate_model
from ..evaluation.progress import SampleMeter
from ..fsutil import atomic_write_json
from ..integrity import check_transfer
from .common import record_outcome

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> EvaluateResult:
    """Evaluate ``final_model`` once its hashes are still those recorded at collect."""
    collect = record.phases.collect.details
    if collect is None or not collect.final_model:
        record.metrics = None
        return EvaluateResult(skipped="no final_model")
    recheck = check_transfer(pipe.paths.final_model, record.final_model_hashes, pipe.paths.evidence)
    if recheck.status != VerdictStatus.passed:
        record_outcome(record, "evaluate", f"final_model changed after collect: {recheck.summary}")
        return EvaluateResult(skipped="final_model changed after collect")
    pipe.progress("evaluate", f"{pipe.benchmark.display_name} on final_model")
    prep = record.phases.prepare.result()
    status = LiveStatus(pipe.live, "evaluate") if pipe.live is not None else None
    with status if status is not None else nullcontext():
        result = evaluate_model(
            pipe.paths.final_model,
            pipe.benchmark,
            pipe.base,
            pipe.paths.eval_dir,
            limit=pipe.spec.eval_limit,
            batch_size=pipe.eval_batch_size,
            base_model_path=Path(prep.base_model_path),
            weights_digest=(record.submission or {}).get("weights_digest"),
            heldout_exclude=prep.dev_ids,
            settings=pipe.settings,
            protocol=pipe.spec.protocol,
            on_sample=SampleMeter(status) if status is not None else None,
        )
    if result.log_path:
        pipe.progress(
            "evaluate", f"Inspect log {result.log_path} (browse: inspect view --log-dir {pipe.paths.eval_dir})"
        )
    record.metrics = RunMetrics.model_validate(result.model_dump(mode="json"))
    if result.status == "ok":
        atomic_write_json(pipe.paths.metrics_json, result.to_metrics_json())
    else:
        record_outcome(record, "evaluate", result.error or "evaluation failed")
    return EvaluateResult(status=result.status, score=result.score, heldout_score=result.heldout_score)
