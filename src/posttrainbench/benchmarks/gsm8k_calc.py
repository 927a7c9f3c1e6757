"""gsm8k-calc, the CPU demo: one calculator step of a GSM8K solution ("<<48/2=24>>"), asked
zero-shot, the first number of the reply compared numerically.

A small model can learn these within minutes on a CPU, so the demo shows a real, training-caused
change. Test items come from the test split's annotations, training data from the train split's
(minus every step that also occurs in the test split).
"""

from __future__ import annotations

import ast
import math
import random
import re
from pathlib import Path
from typing import Any

from ..data import Item, field
from ..domain import Benchmark, Decoding
from ..evaluation.scoring import first_number
from ..integrity.probe import NumberPool, renumber
from .base import BenchmarkDefinition
from .registry import get_benchmark, register_benchmark

CALC_PROMPT = "Calculate {expr}. Reply with the number only."

_CALC_STEP = re.compile(r"<<([^<>=]+)=([^<>=]+)>>")
_PLAIN_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def calc_prompt(expr: str) -> str:
    return CALC_PROMPT.format(expr=expr)


def calc_key(expr: str) -> str:
    """Identity of a calculator step for de-duplication and overlap checks (spaces ignored)."""
    return re.sub(r"\s+", "", expr)


def calc_steps(solution: str) -> list[tuple[str, str]]:
    """``(expr, result)`` of every calculator annotation whose result is a plain number."""
    out = []
    for expr, result in _CALC_STEP.findall(solution):
        expr, result = expr.strip(), result.strip()
        if expr and _PLAIN_NUMBER.fullmatch(result):
            out.append((expr, result))
    return out


def unique_steps(records: list[dict[str, Any]], where: str) -> list[tuple[str, str, int]]:
    """Unique (by expr) calculator steps in file order: ``(expr, result, record index)``."""
    seen: set[str] = set()
    out = []
    for i, rec in enumerate(records):
        for expr, result in calc_steps(field(rec, "answer", where=f"{where} #{i}")):
            key = calc_key(expr)
            if key not in seen:
                seen.add(key)
                out.append((expr, result, i))
    return out


@register_benchmark(
    id="gsm8k-calc",
    display_name="GSM8K calculator steps (CPU demo)",
    local_test_file="gsm8k/test.jsonl",
    local_train_file="gsm8k/train.jsonl",
    items_sha256="9ff5df58e0eee92e72ff1987a8343ae63200e8f1a87eedd9cafe444e1df70dae",
    full_size=200,
    dev_size=50,
    max_tokens_ladder=(16, 12, 8),
    decoding=Decoding(temperature=0.0, max_tokens=16),
    allowed_training_data="Calculator steps of the GSM8K train split.",
    demo=True,
)
class Gsm8kCalc(BenchmarkDefinition):
    """Calculator steps of GSM8K; answer rule: the first number of the reply."""

    def hub_source(self) -> Benchmark:
        return get_benchmark("gsm8k")  # the steps are read from GSM8K's own data

    def read_test_items(self, root: Path) -> list[Item]:
        steps = unique_steps(self.records(root, "test"), f"{self.id} test")
        return [
            Item(
                id=f"calc-{n}",
                input=calc_prompt(expr),
                target=result,
                metadata={"expr": expr, "gsm8k_test_index": i},
            )
            for n, (expr, result, i) in enumerate(steps[: self.full_size])
        ]

    def read_train_examples(self, root: Path) -> list[dict[str, str]]:
        # Exclude every step of the whole test split (a superset of the test items), so that
        # neither the items nor a larger --limit can ever meet an allowed training example.
        test_keys = {calc_key(e) for e, _, _ in unique_steps(self.records(root, "test"), "test")}
        return [
            {"prompt": calc_prompt(expr), "completion": result}
            for expr, result, _ in unique_steps(self.records(root, "train"), f"{self.id} train")
            if calc_key(expr) not in test_keys
        ]

    def extract_answer(self, completion: str) -> str | None:
        return first_number(completion)

    def probe_spares(self, root: Path) -> list[Item]:
        """The test split's calculator steps past the evaluated ones: same distribution, never
        evaluated, never allowed training data (the train examples exclude every test step)."""
        steps = unique_steps(self.records(root, "test"), f"{self.id} test")
        return [
            Item(id=f"spare-{n}", input=calc_prompt(expr), target=result, metadata={"expr": expr})
            for n, (expr, result, _) in enumerate(steps[self.full_size :], start=self.full_size)
        ]

    def probe_control(self, item: Item, rng: random.Random, pool: NumberPool) -> Item | None:
        """The expression with its numbers renamed (from the test items' numbers) and its value
        recomputed, of the same shape as the item's (as long, integral when it is): as correct
        and as typical as the item, so a model that learned the skill gains on both alike."""
        expr = str(item.metadata.get("expr", ""))
        for _ in range(200):
            new = renumber(expr, {}, rng, pool)
            value = arithmetic(new)
            same_shape = value is not None and len(value) == len(item.target) and ("." in value) == ("." in item.target)
            if new != expr and same_shape:
                return item.model_copy(update={"input": calc_prompt(new), "target": value})
        return None


_ARITH_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub)


def arithmetic(expr: str) -> str | None:
    """The value of a calculator step (``+ - * /`` and parentheses) as GSM8K writes results
    (``24``, ``0.5``); None for anything else, a division by zero or an unwieldy value."""
    try:
        tree = ast.parse(expr.replace(",", ""), mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(n, _ARITH_NODES) for n in ast.walk(tree)):
        return None
    try:
        value = float(eval(compile(tree, "<calc>", "eval"), {"__builtins__": {}}))
    except (ZeroDivisionError, OverflowError, TypeError):
        return None
    if not math.isfinite(value) or abs(value) > 1e9:
        return None
    return str(int(value)) if value.is_integer() else str(round(value, 4))
