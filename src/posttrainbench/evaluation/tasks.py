"""Inspect tasks: a benchmark's items -> samples, its pinned decoding, solver and scorer.

Benchmark-agnostic: the benchmark (a definition from ``posttrainbench.benchmarks``, passed in by
the caller) builds each item's chat for the protocol, and supplies its solver and scorer.
"""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
)

from ..data import Item
from ..domain import Decoding
from .contract import STRICT, EvaluableBenchmark
from .graders import Grader, GraderError

__all__ = ["build_task", "generate_config", "item_messages", "item_to_sample"]


def item_messages(item: Item) -> list[ChatMessage]:
    """The chat an item is asked as: its few-shot turns, its own earlier turns, then its own
    prompt as the last user turn."""
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    msgs: list[ChatMessage] = [kinds[t.role](content=t.content) for t in (*item.fewshot, *item.context)]
    msgs.append(ChatMessageUser(content=item.input))
    return msgs


def item_to_sample(item: Item, messages: list[ChatMessage], target: str | None = None) -> Sample:
    """The Inspect sample of ``item``, asked as ``messages`` (``target``: default ``item.target``)."""
    return Sample(
        id=item.id, input=messages, target=item.target if target is None else target, metadata=dict(item.metadata)
    )


def generate_config(decoding: Decoding, max_tokens: int | None = None) -> GenerateConfig:
    """The harness's pinned decoding of a benchmark (``max_tokens`` overrides the budget)."""
    d = decoding
    return GenerateConfig(
        temperature=d.temperature,
        top_p=d.top_p,
        max_tokens=max_tokens if max_tokens is not None else d.max_tokens,
        stop_seqs=list(d.stop) or None,
    )


def build_task(
    benchmark: EvaluableBenchmark,
    items: list[Item],
    *,
    max_tokens: int | None = None,
    grader: Grader | None = None,
    code_sandbox: str = "bwrap",
    protocol: str = STRICT,
) -> Task:
    """The Inspect task evaluating ``items`` of ``benchmark`` (``grader``: for LLM-graded benchmarks;
    ``code_sandbox``: where generated code runs, ``bwrap`` unless already inside a sandbox;
    ``protocol``: whose prompts the items are asked with and whose rule scores them)."""
    if benchmark.grader == "llm" and grader is None:
        raise GraderError(f"{benchmark.id} is graded by an LLM: build_task needs a grader")
    return Task(
        name=f"ptb_{benchmark.id.replace('-', '_')}",
        dataset=MemoryDataset(
            [
                item_to_sample(it, benchmark.messages(it, protocol), benchmark.sample_target(it, protocol))
                for it in items
            ],
            name=benchmark.id,
        ),
        solver=benchmark.solver(protocol),
        scorer=benchmark.scorer(grader=grader, code_sandbox=code_sandbox, protocol=protocol),
        config=generate_config(benchmark.decoding, max_tokens),
        metadata={"benchmark": benchmark.id},
    )
