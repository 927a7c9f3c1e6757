"""Inspect tasks: items (from ``posttrainbench.data``) -> samples, the pinned decoding, the scorer.

Prompt wording lives in ``posttrainbench.data.formats`` only; a task adds nothing to an item's
text, so what the evaluator asks is exactly what ``load_train_examples`` trains.
"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
)

from ..catalog import get_benchmark
from ..data import Item, load_test_items
from ..domain import Benchmark
from .graders import Grader, GraderConfig, GraderError
from .scorers import SCORER_NAME, scoring_spec

__all__ = ["SCORER_NAME", "build_task", "generate_config", "item_messages", "item_to_sample"]


def item_messages(item: Item) -> list[ChatMessage]:
    """The chat an item is asked as: its few-shot turns, its own earlier turns, then its own
    prompt as the last user turn."""
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    msgs: list[ChatMessage] = [kinds[t.role](content=t.content) for t in (*item.fewshot, *item.context)]
    msgs.append(ChatMessageUser(content=item.input))
    return msgs


def item_to_sample(item: Item) -> Sample:
    return Sample(id=item.id, input=item_messages(item), target=item.target, metadata=dict(item.metadata))


def generate_config(benchmark: Benchmark, max_tokens: int | None = None) -> GenerateConfig:
    """The harness's pinned decoding for a benchmark (``max_tokens`` overrides the budget)."""
    d = benchmark.decoding
    return GenerateConfig(
        temperature=d.temperature,
        top_p=d.top_p,
        max_tokens=max_tokens if max_tokens is not None else d.max_tokens,
        stop_seqs=list(d.stop) or None,
    )


def build_task(
    benchmark: Benchmark,
    items: list[Item],
    *,
    max_tokens: int | None = None,
    grader: Grader | None = None,
    code_sandbox: str = "bwrap",
) -> Task:
    """The Inspect task evaluating ``items`` of ``benchmark`` (``grader``: for LLM-graded benchmarks;
    ``code_sandbox``: where generated code runs, ``bwrap`` unless already inside a sandbox)."""
    spec = scoring_spec(benchmark.id)
    if spec.graded and grader is None:
        raise GraderError(f"{benchmark.id} is graded by an LLM: build_task needs a grader")
    return Task(
        name=f"ptb_{benchmark.id.replace('-', '_')}",
        dataset=MemoryDataset([item_to_sample(it) for it in items], name=benchmark.id),
        solver=spec.make_solver(),
        scorer=(
            spec.make_scorer(grader=grader)
            if spec.graded
            else spec.make_scorer(sandbox=code_sandbox)
            if spec.executes_code
            else spec.make_scorer()
        ),
        config=generate_config(benchmark, max_tokens),
        metadata={"benchmark": benchmark.id},
    )


@task
def ptb_benchmark(benchmark: str = "gsm8k-calc", limit: int | None = None) -> Task:
    """Any implemented benchmark by id (``inspect eval ... -T benchmark=gsm8k``)."""
    b = get_benchmark(benchmark)
    items = load_test_items(b)
    grader = Grader(GraderConfig.from_env()) if scoring_spec(b.id).graded else None
    return build_task(b, items[:limit] if limit else items, grader=grader)


@task
def gsm8k_calc(limit: int | None = None) -> Task:
    """CPU demo: GSM8K calculator steps, zero-shot, first number compared numerically."""
    return ptb_benchmark("gsm8k-calc", limit)


@task
def gsm8k(limit: int | None = None) -> Task:
    """GSM8K test split, 10-shot from the train split, final answer compared numerically."""
    return ptb_benchmark("gsm8k", limit)


@task
def humaneval(limit: int | None = None) -> Task:
    """HumanEval, pass@1 of a greedy reply executed in the bwrap sandbox."""
    return ptb_benchmark("humaneval", limit)


@task
def aime2025(limit: int | None = None) -> Task:
    """AIME 2025, integer answer match."""
    return ptb_benchmark("aime2025", limit)


@task
def gpqamain(limit: int | None = None) -> Task:
    """GPQA main (gated hub dataset), choices shuffled with a per-record seed, letter match."""
    return ptb_benchmark("gpqamain", limit)


@task
def bfcl(limit: int | None = None) -> Task:
    """BFCL exec_simple, AST match of the tool call."""
    return ptb_benchmark("bfcl", limit)


@task
def arenahardwriting(limit: int | None = None) -> Task:
    """Arena-Hard v2 creative writing vs Qwen3-1.7B, LLM judge (grader from PTB_GRADER_* env)."""
    return ptb_benchmark("arenahardwriting", limit)


@task
def healthbench(limit: int | None = None) -> Task:
    """HealthBench-Easy, rubric LLM grader (grader from PTB_GRADER_* env)."""
    return ptb_benchmark("healthbench", limit)
