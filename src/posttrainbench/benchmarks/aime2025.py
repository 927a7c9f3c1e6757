"""AIME 2025: 30 competition problems, zero-shot, the final integer compared with the answer."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from inspect_ai.model import ChatMessage, ChatMessageUser

from ..data import Item, field
from ..evaluation.protocols import REF_V1, STRICT
from ..evaluation.reference_prompts import AIME_USER_PROMPT, fill, strip_prefix
from .base import BenchmarkDefinition
from .registry import register_benchmark

AIME_PROMPT = (
    "Solve the following competition math problem. Think step by step. "
    'End your reply with "The answer is N." where N is the final integer answer (0 to 999).\n\n'
    "{problem}"
)
_PREFIX = AIME_PROMPT[: AIME_PROMPT.index("{problem}")]


def aime_prompt(problem: str) -> str:
    return AIME_PROMPT.format(problem=problem.strip())


@register_benchmark(
    id="aime2025",
    display_name="AIME 2025",
    hub_id="math-ai/aime25",
    local_test_file="aime2025/test.jsonl",
    items_sha256="99b8ec6738aa6aedbde4dabf60e4d13bba9816a957baeb893a993752fe03c0e8",
    full_size=30,
    dev_size=10,
    max_tokens_ladder=(16000, 12000, 8000),
    allowed_training_data="Any data except AIME 2025 problems (e.g. older AIME, MATH, NuminaMath).",
)
class Aime2025(BenchmarkDefinition):
    """AIME 2025; answer rule: the final number (base default)."""

    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: the problem in inspect_evals' AIME prompt, one user message."""
        return [ChatMessageUser(content=fill(AIME_USER_PROMPT, strip_prefix(item.input, _PREFIX, item.id)))]

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        for i, rec in enumerate(self.records(root, "test")):
            where = f"{self.id} #{i}"
            problem = field(rec, "problem", "question", where=where)
            answer = field(rec, "answer", where=where).strip()
            item_id = f"aime2025-{rec.get('id', i)}"
            items.append(Item(id=item_id, input=aime_prompt(problem), target=answer, metadata={"index": i}))
        return items
