"""Inspect tasks for ``inspect eval``: ``posttrainbench/ptb_benchmark -T benchmark=<id>`` for any
registered benchmark, and ``posttrainbench/<id>`` (``-`` read as ``_``) for each built-in one.
The settings (data root, the graders of LLM-graded benchmarks: ``PTB_GRADER_*``) are read from
the environment when a task is made."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from inspect_ai import Task, task

from ..evaluation.graders import Grader, GraderConfig
from ..evaluation.tasks import build_task
from ..settings import Settings
from .base import BenchmarkDefinition
from .registry import get_benchmark


@task
def ptb_benchmark(benchmark: str = "gsm8k-calc", limit: int | None = None) -> Task:
    """Any registered benchmark by id (``inspect eval ... -T benchmark=gsm8k``)."""
    b = get_benchmark(benchmark)
    settings = Settings.from_env()
    items = b.load_test_items(settings=settings)
    grader = Grader(GraderConfig.from_settings(settings.grader)) if b.grader == "llm" else None
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
