"""toy-parity: a whole benchmark in one module, as a new one is added under
``src/posttrainbench/benchmarks/`` (see docs/development.md, "Adding a benchmark").

Is a number even or odd? Asked zero-shot, the first "even"/"odd" of the reply compared with
the answer. Data: ``tests/fixtures/data/toy-parity/`` (a data root). Imported by
``tests/test_benchmark_units.py`` inside ``BENCHMARKS.scoped()``, so that it is registered only
while those tests run.
"""

from __future__ import annotations

import re
from pathlib import Path

from posttrainbench.benchmarks import BenchmarkDefinition, register_benchmark
from posttrainbench.data import Item, field
from posttrainbench.domain import Decoding

PROMPT = "Is {n} even or odd? Reply with one word: even or odd."
_WORD = re.compile(r"\b(even|odd)\b", re.I)


@register_benchmark(
    id="toy-parity",
    display_name="Parity of a number (toy)",
    local_test_file="toy-parity/test.jsonl",
    local_train_file="toy-parity/train.jsonl",
    items_sha256="f8f5d128572faa382ea2a4fb7b3453177fdbb1f3789ba4df1a18d70d090ef689",  # measured on the fixture
    full_size=12,
    dev_size=4,
    max_tokens_ladder=(8, 4),
    decoding=Decoding(temperature=0.0, max_tokens=8),
    allowed_training_data="Any numbers with their parity (toy-parity/train.jsonl).",
)
class ToyParity(BenchmarkDefinition):
    """Parity of a number; answer rule: the first "even"/"odd" of the reply, exact match."""

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        for i, rec in enumerate(self.records(root, "test")):
            where = f"{self.id} #{i}"
            n, answer = field(rec, "n", where=where), field(rec, "answer", where=where)
            items.append(Item(id=f"parity-{i}", input=PROMPT.format(n=n), target=answer, metadata={"n": int(n)}))
        return items

    def read_train_examples(self, root: Path) -> list[dict[str, str]]:
        return [
            {"prompt": PROMPT.format(n=field(rec, "n", where=f"{self.id} train #{i}")), "completion": rec["answer"]}
            for i, rec in enumerate(self.records(root, "train"))
        ]

    def extract_answer(self, completion: str) -> str | None:
        m = _WORD.search(completion)
        return m.group(1).lower() if m else None

    def score_reply(self, completion: str, target: str, protocol: object = "strict") -> tuple[bool, str | None]:
        answer = self.extract_answer(completion)
        return answer == target, answer
