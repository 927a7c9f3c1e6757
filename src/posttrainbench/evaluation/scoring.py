"""Answer extraction and comparison: pure, benchmark-agnostic rules. A benchmark picks its rule
(``posttrainbench.benchmarks``); its Inspect scorer and the recomputation of scores from a raw
Inspect log both call the same one, so they always agree."""

from __future__ import annotations

import math
import re

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
    """The first number of the reply (e.g. " 24\nCalculate 3+4" -> "24")."""
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
