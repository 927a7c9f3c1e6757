"""GPQA (main): graduate-level science multiple choice. The four choices are shuffled per record
with a fixed seed, and the reply's "ANSWER: X" letter is compared with the correct one.

The dataset is gated: it loads from the hub (``Idavidrein/gpqa``), or from a local file in the
hub's columns. It is unpinned (never available to verify); its digest and hub commit are
recorded with every result.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..data import Item, field
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

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        for i, rec in enumerate(self.records(root, "test")):
            where = f"{self.id} #{i}"
            rid = field(rec, "Record ID", where=where)
            question = field(rec, "Question", where=where)
            correct = field(rec, "Correct Answer", where=where)
            wrong = [field(rec, k, where=where) for k in GPQA_WRONG]
            choices, letter = gpqa_choices(rid, correct, wrong)
            items.append(
                Item(
                    id=f"gpqa-{rid}",
                    input=gpqa_prompt(question, choices),
                    target=letter,
                    metadata={"record_id": rid, "choices": choices},
                )
            )
        return items

    def extract_answer(self, completion: str) -> str | None:
        return answer_letter(completion)
