"""GSM8K: grade-school math word problems, 10-shot from the train split, the final number
compared numerically with the reference answer (the text after ``####``).

The evaluator's prompts and the training examples handed to agents are built by the same
functions (:func:`gsm8k_prompt`, :func:`gsm8k_completion`), so they cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from inspect_ai.model import ChatMessage, ChatMessageSystem, ChatMessageUser

from ..data import ChatTurn, DataError, Item, data_root, field
from ..domain import Decoding
from ..evaluation.protocols import REF_V1, STRICT
from ..evaluation.reference_prompts import GSM8K_MATH_PROMPT, fill, gsm8k_fewshot_system, strip_prefix
from .base import BenchmarkDefinition
from .registry import register_benchmark

GSM8K_PROMPT = (
    "Solve the following math problem step by step. "
    'End your reply with "The answer is N." where N is the final number.\n\n{question}'
)

_PREFIX = GSM8K_PROMPT[: GSM8K_PROMPT.index("{question}")]
_REFERENCE_FEWSHOT: dict[str, str] = {}  # data root -> the reference's few-shot system message
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def gsm8k_prompt(question: str) -> str:
    return GSM8K_PROMPT.format(question=question.strip())


def gsm8k_reference_answer(solution: str) -> str:
    """The final answer of a GSM8K reference solution (the text after ``####``, commas removed)."""
    m = _FINAL.search(solution)
    if not m:
        raise ValueError(f"GSM8K solution has no '#### N' line: {solution[-80:]!r}")
    return m.group(1).replace(",", "").strip()


def gsm8k_completion(solution: str) -> str:
    """A train solution as the answer we ask for: annotations removed, ends 'The answer is N.'."""
    answer = gsm8k_reference_answer(solution)
    body = solution[: solution.rindex("####")]
    body = _ANNOTATION.sub("", body).strip()
    return f"{body}\nThe answer is {answer}." if body else f"The answer is {answer}."


@register_benchmark(
    id="gsm8k",
    display_name="GSM8K",
    hub_id="openai/gsm8k",
    hub_aliases=("gsm8k",),
    hub_config="main",
    local_test_file="gsm8k/test.jsonl",
    local_train_file="gsm8k/train.jsonl",
    items_sha256="89c58267fd95da8fafaef7de8c5e81ca84f284fab109d9ed1df5539836f3cb31",
    fewshot_sha256="8f904e5679b5df6bf9ff67da7ea96d06cd1250b406c6c5db3e598040cad9dc74",
    full_size=1319,
    dev_size=100,
    max_tokens_ladder=(4000, 3000, 2000),
    decoding=Decoding(temperature=0.0, max_tokens=4000),
    fewshot=10,
    allowed_training_data="The GSM8K train split and any other math data except the GSM8K test split.",
)
class Gsm8k(BenchmarkDefinition):
    """GSM8K test split; answer rule: the final number (base default)."""

    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: the 10 seeded few-shot examples as one system message, then the
        question in ``MATH_PROMPT_TEMPLATE`` (:mod:`posttrainbench.evaluation.reference_prompts`)."""
        return [
            ChatMessageSystem(content=self.reference_fewshot()),
            ChatMessageUser(content=fill(GSM8K_MATH_PROMPT, strip_prefix(item.input, _PREFIX, item.id))),
        ]

    def reference_fewshot(self, root: Path | None = None) -> str:
        """The reference's few-shot system message, from the train split under ``root`` (default:
        the data root), checked against its pinned digest."""
        key = str(Path(root) if root is not None else data_root())
        if key not in _REFERENCE_FEWSHOT:
            _REFERENCE_FEWSHOT[key] = gsm8k_fewshot_system(self.records(Path(key), "train"))
        return _REFERENCE_FEWSHOT[key]

    def read_train_examples(self, root: Path) -> list[dict[str, str]]:
        out = []
        for i, rec in enumerate(self.records(root, "train")):
            q = field(rec, "question", where=f"{self.id} train #{i}")
            a = field(rec, "answer", where=f"{self.id} train #{i}")
            out.append({"prompt": gsm8k_prompt(q), "completion": gsm8k_completion(a)})
        return out

    def fewshot_turns(self, root: Path | None = None) -> tuple[ChatTurn, ...]:
        """The few-shot turns: the first ``fewshot`` train examples (none when ``fewshot`` is 0)."""
        if self.fewshot <= 0:
            return ()
        examples = self.read_train_examples(Path(root) if root is not None else data_root())
        turns: list[ChatTurn] = []
        for ex in examples[: self.fewshot]:
            turns += [ChatTurn(role="user", content=ex["prompt"]), ChatTurn(role="assistant", content=ex["completion"])]
        return tuple(turns)

    def read_test_items(self, root: Path) -> list[Item]:
        records = self.records(root, "test")
        fewshot = self.fewshot_turns(root)
        items = []
        for i, rec in enumerate(records):
            where = f"{self.id} test #{i}"
            q, a = field(rec, "question", where=where), field(rec, "answer", where=where)
            try:
                target = gsm8k_reference_answer(a)
            except ValueError as exc:
                raise DataError(f"{where}: {exc}") from exc
            items.append(
                Item(id=f"gsm8k-{i}", input=gsm8k_prompt(q), target=target, metadata={"index": i}, fewshot=fewshot)
            )
        return items
