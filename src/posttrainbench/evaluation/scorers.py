"""Which Inspect scorer each benchmark uses, and how its score is recomputed from a raw log.

One :class:`ScoringSpec` per benchmark: the scorer (run by Inspect during the evaluation), the
name of the Inspect metric holding the headline number, ``rescore`` (per-sample values
recomputed from what the log holds: the reply, the tool calls, the executed program or the
grader's raw verdict) and ``aggregate`` (per-sample values -> the headline number).
``runner.check_log`` uses the last two to refuse a log that disagrees with itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspect_ai.scorer import Scorer
from inspect_ai.solver import Solver, generate

from . import arena, bfcl, healthbench, humaneval
from .scoring import ANSWER_RULES, ptb_answer, score_completion

SCORER_NAME = "ptb_answer"


def _mean(samples: list[Any], values: dict[str, float]) -> float:
    return sum(values[str(s.id)] for s in samples) / len(samples)


@dataclass(frozen=True)
class ScoringSpec:
    """How a benchmark is asked (solver), scored, and re-scored from its log."""

    scorer_name: str
    metric_name: str
    make_scorer: Callable[..., Scorer]
    rescore: Callable[[list[Any]], dict[str, float]]
    aggregate: Callable[[list[Any], dict[str, float]], float] = _mean
    make_solver: Callable[[], Solver] = generate
    stderr_name: str = "stderr"
    """The Inspect metric holding the standard error of ``metric_name``."""
    graded: bool = False
    """The scorer needs an LLM grader (``make_scorer(grader=...)``)."""
    executes_code: bool = False
    """The scorer runs generated code (``make_scorer(sandbox=...)``, ``rescore(samples, sandbox=...)``)."""


def _target_text(sample: Any) -> str:
    t = sample.target
    return t if isinstance(t, str) else "".join(t[:1])


def _answer_spec(benchmark_id: str) -> ScoringSpec:
    def rescore(samples: list[Any]) -> dict[str, float]:
        return {
            str(s.id): float(score_completion(benchmark_id, s.output.completion, _target_text(s))[0])
            for s in samples
        }

    return ScoringSpec(SCORER_NAME, "accuracy", lambda: ptb_answer(benchmark_id), rescore)


def scoring_spec(benchmark_id: str) -> ScoringSpec:
    """The scoring of ``benchmark_id``; ``KeyError`` (naming the known ids) if it has none."""
    if benchmark_id in ANSWER_RULES:
        return _answer_spec(benchmark_id)
    if benchmark_id == "humaneval":
        return ScoringSpec(
            humaneval.SCORER, "accuracy", humaneval.humaneval_scorer, humaneval.rescore, executes_code=True
        )
    if benchmark_id == "bfcl":
        return ScoringSpec(bfcl.SCORER, "accuracy", bfcl.bfcl_scorer, bfcl.rescore, make_solver=bfcl.bfcl_solver)
    if benchmark_id == "arenahardwriting":
        return ScoringSpec(
            arena.SCORER, arena.METRIC, arena.arena_scorer, arena.rescore, arena.aggregate,
            graded=True, stderr_name="win_rate_stderr",
        )  # fmt: skip
    if benchmark_id == "healthbench":
        return ScoringSpec(
            healthbench.SCORER, healthbench.METRIC, healthbench.healthbench_scorer, healthbench.rescore,
            healthbench.aggregate, graded=True, stderr_name="rubric_stderr",
        )  # fmt: skip
    raise KeyError(f"no scorer for benchmark {benchmark_id!r}; known: {sorted(SCORED)}")


SCORED: tuple[str, ...] = (*ANSWER_RULES, "humaneval", "bfcl", "arenahardwriting", "healthbench")
"""Benchmarks with a scorer."""
