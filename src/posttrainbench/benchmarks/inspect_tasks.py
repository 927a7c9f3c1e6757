"""Inspect tasks for ``inspect eval``: ``posttrainbench/ptb_benchmark -T benchmark=<id>`` for any
registered benchmark, and ``posttrainbench/<id>`` (``-`` read as ``_``) for each built-in one.
LLM-graded benchmarks take their grader from the ``PTB_GRADER_*`` environment."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from inspect_ai import Task, task

from ..evaluation.graders import Grader, GraderConfig
from ..evaluation.tasks import build_task
from .base import BenchmarkDefinition
from .registry import get_benchmark


@task
def ptb_benchmark(benchmark: str = "gsm8k-calc", limit: int | None = None) -> Task:
    """Any registered benchmark by id (``inspect eval ... -T benchmark=gsm8k``)."""
    b = get_benchmark(benchmark)
    items = b.load_test_items()
    grader = Grader(GraderConfig.from_env()) if b.grader == "llm" else None
    return build_task(b, items[:limit] if limit else items, grader=grader)


def register_inspect_tasks(benchmarks: Iterable[BenchmarkDefinition]) -> None:
    """Register ``posttrainbench/<id>`` (``-`` read as ``_``) for each benchmark."""
    for b in benchmarks:
        task(_named_task(b))


def _named_task(definition: BenchmarkDefinition) -> Callable[..., Task]:
    bid = definition.id

    def run(limit: int | None = None) -> Task:
        return ptb_benchmark(bid, limit)

    run.__name__ = run.__qualname__ = bid.replace("-", "_")
    run.__doc__ = f"{definition.display_name} (``ptb_benchmark`` with ``benchmark={bid}``)."
    return run
