"""Answer extraction and comparison: pure functions shared by the Inspect scorer and the
recomputation of scores from a raw Inspect log (so both always apply the same rule)."""

from __future__ import annotations

import math
import re
from typing import Literal

from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState

AnswerRule = Literal["first_number", "final_answer", "choice_letter"]

# How each benchmark's answer is read from the model's reply.
ANSWER_RULES: dict[str, AnswerRule] = {
    "gsm8k-calc": "first_number",
    "gsm8k": "final_answer",
    "aime2025": "final_answer",
    "gpqamain": "choice_letter",
}

_NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_NUMBER = re.compile(_NUM)
_HASHES = re.compile(r"####\s*\$?\s*(" + _NUM + ")")
_LETTER = re.compile(r"(?i:answer)\s*(?i:is)?\s*[:=]?\s*\**\s*\(?([ABCD])\)?(?![A-Za-z])")
_ANSWER_IS = re.compile(r"answer is\s*[:=]?\s*\**\s*\$?\s*\\?(?:boxed\{)?\s*(" + _NUM + ")", re.I)


def to_number(text: str | None) -> float | None:
    """``'1,234.50'`` -> 1234.5; anything that is not a plain number -> None."""
    if text is None:
        return None
    s = text.strip().replace(",", "").lstrip("$").rstrip(".")
    try:
        value = float(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_match(answer: str | None, target: str) -> bool:
    """Numeric equality (commas stripped, relative tolerance 1e-6)."""
    a, t = to_number(answer), to_number(target)
    if a is None or t is None:
        return False
    return abs(a - t) <= 1e-6 * max(1.0, abs(t))


def first_number(text: str) -> str | None:
    m = _NUMBER.search(text)
    return m.group(0) if m else None


def final_answer(text: str) -> str | None:
    """GSM8K-style answer: the last ``#### N``, else the last "The answer is N", else the last number."""
    for pattern in (_HASHES, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            return found[-1]
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def choice_letter(text: str) -> str | None:
    """Multiple choice: the letter of the last "ANSWER: X" (also "answer is (X)"), upper-cased."""
    found = _LETTER.findall(text)
    return found[-1].upper() if found else None


def extract_answer(benchmark_id: str, completion: str) -> str | None:
    rule = ANSWER_RULES.get(benchmark_id)
    if rule is None:
        raise KeyError(f"no answer rule for benchmark {benchmark_id!r}; known: {sorted(ANSWER_RULES)}")
    if rule == "choice_letter":
        return choice_letter(completion)
    return first_number(completion) if rule == "first_number" else final_answer(completion)


def score_completion(benchmark_id: str, completion: str, target: str) -> tuple[bool, str | None]:
    """``(correct, extracted answer)`` for one reply."""
    answer = extract_answer(benchmark_id, completion)
    if ANSWER_RULES[benchmark_id] == "choice_letter":
        return answer is not None and answer == target.strip().upper(), answer
    return numbers_match(answer, target), answer


@scorer(metrics=[accuracy(), stderr()])
def ptb_answer(benchmark_id: str) -> Scorer:
    """Inspect scorer: the benchmark's answer rule, numeric comparison with the target."""
    extract_answer(benchmark_id, "")  # unknown benchmark: fail at task construction, not per sample

    async def score(state: TaskState, target: Target) -> Score:
        completion = state.output.completion
        ok, answer = score_completion(benchmark_id, completion, target.text)
        return Score(value=CORRECT if ok else INCORRECT, answer=answer, explanation=completion)

    return score
