"""GPQA (main): graduate-level science multiple choice. The four choices are shuffled per record
with a fixed seed, and the reply's "ANSWER: X" letter is compared with the correct one.

The dataset is gated: it loads from the hub (``Idavidrein/gpqa``), or from a local file in the
hub's columns. It is unpinned (never available to verify); its digest and hub commit are
recorded with every result.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import ClassVar

from inspect_ai.model import ChatMessage, ChatMessageUser

from ..data import Item, field
from ..evaluation.protocols import REF_V1, REFERENCE_SEEDS, STRICT
from ..evaluation.reference_prompts import gpqa_reference_orders, gpqa_reference_prompt
from ..evaluation.scoring import answer_letter
from .base import BenchmarkDefinition
from .registry import register_benchmark

GPQA_PROMPT = (
    "Answer the following multiple choice question. Think step by step, then end your reply "
    'with a line of the form "ANSWER: X" where X is one of A, B, C, D.\n\n{question}\n\n{choices}'
)
CHOICE_LETTERS = "ABCD"
GPQA_SHUFFLE_SEED = "posttrainbench-gpqa-v1"
GPQA_WRONG = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
GPQA_REFERENCE_SEED = REFERENCE_SEEDS[0]
"""The choice-order seed of the reference prompts as loaded: the reference's first final-evaluation seed (v1
shuffled unseeded: its evaluation asks this order; v1.2 shuffles with each seed in turn, ``items_for_seed``)."""


@functools.lru_cache(maxsize=8)
def _reference_orders(n_records: int, seed: int) -> list[list[int]]:
    return gpqa_reference_orders(n_records, seed)


def gpqa_prompt(question: str, choices: list[str]) -> str:
    lines = "\n".join(f"{CHOICE_LETTERS[i]}) {c.strip()}" for i, c in enumerate(choices))
    return GPQA_PROMPT.format(question=question.strip(), choices=lines)


def gpqa_choices(record_id: str, correct: str, wrong: list[str]) -> tuple[list[str], str]:
    """The four choices in their evaluation order and the correct letter. The order depends only
    on the record id (a seeded shuffle), so every evaluation of every model asks the same thing."""
    choices = [correct, *wrong]
    order = list(range(len(choices)))
    random.Random(f"{GPQA_SHUFFLE_SEED}:{record_id}").shuffle(order)
    shuffled = [choices[i] for i in order]
    return shuffled, CHOICE_LETTERS[order.index(0)]


@register_benchmark(
    id="gpqamain",
    display_name="GPQA (main)",
    hub_id="Idavidrein/gpqa",
    hub_config="gpqa_main",
    test_split="train",
    local_test_file="gpqamain/gpqa_main.jsonl",  # optional: records in the hub's columns
    full_size=448,
    dev_size=40,
    max_tokens_ladder=(16000, 12000, 8000),
    allowed_training_data="Science QA data other than GPQA (e.g. SciQ, MMLU auxiliary train).",
)
class GpqaMain(BenchmarkDefinition):
    """GPQA main; answer rule: the letter of the last "ANSWER: X", equal to the correct letter."""

    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        records = self.records(root, "test")
        orders = gpqa_reference_orders(len(records), GPQA_REFERENCE_SEED)
        for i, rec in enumerate(records):
            where = f"{self.id} #{i}"
            rid = field(rec, "Record ID", where=where)
            question = field(rec, "Question", where=where)
            correct = field(rec, "Correct Answer", where=where)
            wrong = [field(rec, k, where=where) for k in GPQA_WRONG]
            choices, letter = gpqa_choices(rid, correct, wrong)
            raw = [str(rec[k]) for k in ("Correct Answer", *GPQA_WRONG)]  # the reference's, unstripped
            meta = {
                "record_id": rid,
                "choices": choices,
                # the reference protocols' question: its text as is, its choices in the order the reference's
                # seeded shuffle gives this record at this place in the file, and the letter of the correct one
                "question": str(rec["Question"]),
                "reference_choices": [raw[j] for j in orders[i]],
                "reference_target": "ABCD"[orders[i].index(0)],
                # what another seed's order is built from (ptb-v1.2 reshuffles with each seed: items_for_seed)
                "reference_raw": raw,
                "reference_position": i,
                "reference_records": len(records),
            }
            items.append(Item(id=f"gpqa-{rid}", input=gpqa_prompt(question, choices), target=letter, metadata=meta))
        return items

    def items_for_seed(self, items: list[Item], seed: int) -> list[Item]:
        """``items`` with the reference's choice order of ``seed`` (Inspect's ``shuffle_choices(seed)`` over the
        whole file, so each record's order depends on its place in it) and the letter of the correct choice."""
        out = []
        for it in items:
            m = it.metadata
            order = _reference_orders(int(m["reference_records"]), seed)[int(m["reference_position"])]
            raw = list(m["reference_raw"])
            meta = {**m, "reference_choices": [raw[j] for j in order], "reference_target": "ABCD"[order.index(0)]}
            out.append(it.model_copy(update={"metadata": meta}))
        return out

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: Inspect's ``multiple_choice(cot=True)`` prompt, choices in the reference order."""
        m = item.metadata
        return [ChatMessageUser(content=gpqa_reference_prompt(str(m["question"]), list(m["reference_choices"])))]

    def sample_target(self, item: Item, protocol: str = STRICT) -> str:
        """The correct letter in the order ``protocol`` asks the choices in."""
        return str(item.metadata["reference_target"]) if self.prompt_variant(protocol) == REF_V1 else item.target

    def extract_answer(self, completion: str) -> str | None:
        return answer_letter(completion)
