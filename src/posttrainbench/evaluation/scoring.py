"""Answer extraction and comparison: pure, benchmark-agnostic rules. A benchmark picks its rule
(``posttrainbench.benchmarks``); its Inspect scorer and the recomputation of scores from a raw
Inspect log both call the same one, so they always agree."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable

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


# ---------------------------------------------------------------------------------------------
# Rules per protocol. Each rule is ``(completion, target) -> (correct, extracted answer)``; a
# protocol names one per benchmark (``protocols.BenchmarkSettings.scoring_rule``).
# ``strict`` rules are ours, made right; ``inspect-*`` and ``signed-last-number-exact`` reproduce
# the reference (docs/evaluation.md lists the sources and the bugs they keep).

ScoringRule = Callable[[str, str], tuple[bool, str | None]]

_SCI = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+"
_VALUE = re.compile(
    r"\\d?frac\{\s*(?P<fn>-?[\d.,]+)\s*\}\{\s*(?P<fd>-?[\d.,]+)\s*\}"  # \frac{a}{b}
    r"|(?P<tm>-?(?:" + _SCI + r"))\s*(?:\\times|×|\\cdot|\*)\s*10\s*\^\s*\{?\s*(?P<te>[+-]?\d+)\s*\}?"  # a × 10^b
    r"|(?P<qn>-?\d+(?:\.\d+)?)\s*/\s*(?P<qd>\d+(?:\.\d+)?)(?![\d/])"  # a/b
    r"|(?P<num>-?(?:" + _SCI + r"))"
)
_CORRECTION = re.compile(r"(?i)\b(?:sorry|correction|i mean|actually|wait|rather|oops)\b|\bno,")
_MARKER = re.compile(r"(?i)answer\s*(?:is|:|=)\s*[:=]?|\\boxed\{")
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".12g")


def _values(text: str, *, fractions: bool = True) -> list[tuple[float, str]]:
    """``(value, as written)`` of every number of ``text``: plain, with thousands separators, scientific
    (``1.5e3``, ``1.5 × 10^3``), fractions (``3/4``, ``\\frac{3}{4}``; left out unless ``fractions``)."""
    out: list[tuple[float, str]] = []
    for m in _VALUE.finditer(text):
        if not fractions and (m.group("fn") is not None or m.group("qn") is not None):
            continue
        try:
            if m.group("fn") is not None:
                den = float(m.group("fd").replace(",", ""))
                value = float(m.group("fn").replace(",", "")) / den
            elif m.group("tm") is not None:
                value = float(m.group("tm").replace(",", "")) * 10.0 ** int(m.group("te"))
            elif m.group("qn") is not None:
                value = float(m.group("qn")) / float(m.group("qd"))
            else:
                value = float(m.group("num").replace(",", ""))
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
        if math.isfinite(value):
            out.append((value, m.group("num") if m.group("num") is not None else _fmt(value)))
    return out


def _segment_value(segment: str) -> str | None:
    """The value a final-answer segment states: after its last correction cue, else after its last
    ``=`` (an expression ``3 + 4 = 7`` states 7), else its first number."""
    cues = list(_CORRECTION.finditer(segment))
    if cues:
        segment = segment[cues[-1].end() :]
    elif "=" in segment:
        segment = segment[segment.rindex("=") + 1 :]
    found = _values(segment)
    return found[0][1] if found else None


def strict_final_number(text: str) -> str | None:
    """``strict`` number answer: the last ``#### N``; else the sentence after the last "the answer
    is" / "ANSWER:" / ``\\boxed{`` (its value: see :func:`_segment_value`; the text after that
    sentence is ignored); else the last number. Numbers are read by value (scientific notation,
    fractions, thousands separators)."""
    hashes = list(re.finditer(r"####", text))
    markers = hashes or list(_MARKER.finditer(text))
    for m in reversed(markers):
        rest = text[m.end() :]
        end = _SENTENCE_END.search(rest)
        value = _segment_value(rest[: end.start()] if end else rest)
        if value is not None:
            return value
    found = _values(text, fractions=False)  # a trailing ratio is commentary, not the answer
    return found[-1][1] if found else None


def rule_final_number(completion: str, target: str) -> tuple[bool, str | None]:
    answer = strict_final_number(completion)
    return numbers_match(answer, target), answer


def rule_first_number(completion: str, target: str) -> tuple[bool, str | None]:
    answer = first_number(completion)
    return numbers_match(answer, target), answer


_UNWRAP = (
    (re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf|mathbb)\s*\{\s*([^{}]*?)\s*\}"), r"\1"),
    (re.compile(r"\$+\s*([^$\n]{1,40}?)\s*\$+"), r"\1"),
    (re.compile(r"\*\*\s*([^*\n]{1,40}?)\s*\*\*"), r"\1"),
)
_ANSWER_LINE = re.compile(r"(?im)^[ \t>#*_-]*(?:final\s+|correct\s+)?answer\s*(?:is)?\s*[:=]\s*(.*?)\s*$")
_LEAD_LETTER = re.compile(r"^[(\[]?([A-Da-d])[)\]]?(?=$|[\s.:,;)])(.*)$", re.S)
_HEDGE = re.compile(r"^\s*[.:)]?\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?[A-Da-d](?![A-Za-z])", re.I)


def _unwrap(text: str) -> str:
    for _ in range(3):  # nested wrappers: **$\boxed{B}$**
        for pattern, repl in _UNWRAP:
            text = pattern.sub(repl, text)
    return text


def answer_letter(text: str) -> str | None:
    """``strict`` multiple-choice answer: the letter of the last answer line (``ANSWER: X``, any
    case, LaTeX/markdown wrappers removed); prose after that line is commentary and never overrides
    it. A hedge (``A or B``, ``A, B``) is no answer. Without an answer line: the last "answer is
    (X)" in the text (upper-case letter)."""
    text = _unwrap(text.replace("\r\n", "\n"))
    lines = _ANSWER_LINE.findall(text)
    if lines:
        content = lines[-1].strip().strip("*_ ").strip()
        m = _LEAD_LETTER.match(content)
        if not m or _HEDGE.match(m.group(2)):
            return None
        return m.group(1).upper()
    found = list(_LETTER.finditer(text))
    if not found:
        return None
    last = found[-1]
    return None if _HEDGE.match(text[last.end() :]) else last.group(1).upper()


def rule_answer_letter(completion: str, target: str) -> tuple[bool, str | None]:
    answer = answer_letter(completion)
    return answer is not None and answer == target.strip().upper(), answer


# --- the reference's rules (ptb-v1, ptb-v1.2) --------------------------------------------------


def _ref_strip_numeric_punctuation(s: str) -> str:
    """inspect_ai's ``strip_numeric_punctuation`` as the reference ran it: drops ``$ , £ € * _``
    and a ``.`` not followed by a digit."""
    s = re.sub(r"[$,£€*_]", "", s)
    return re.sub(r"\.(?=\s|$|\D)", "", s)


def _ref_is_number(word: str) -> bool:
    return word.replace(".", "").isnumeric()


def _ref_normalize(word: str) -> str:
    """inspect_ai's ``normalize_number``: a number word as 5 significant digits (ValueError: does not parse)."""
    return format(float(word), ".5g") if _ref_is_number(word) else word


def rule_inspect_match_numeric(completion: str, target: str) -> tuple[bool, str | None]:
    """inspect_ai's ``match(numeric=True)`` (location "end") as the reference v1 used it for GSM8K:
    the last whitespace-separated number word, 5 significant digits, compared with
    ``str.endswith``; a target that is not a plain non-negative integer is compared as text
    (punctuation stripped, ``endswith`` on the whole reply). A last number that does not parse is
    wrong (the reference's scorer raised and the attempt was retried)."""
    v, t = completion.strip().casefold(), target.strip().casefold()
    if not t.isnumeric():
        strip = string.whitespace + string.punctuation
        return v.strip(strip).endswith(t.strip(strip)), completion.strip()
    v = _ref_strip_numeric_punctuation(v)
    t = _ref_normalize(_ref_strip_numeric_punctuation(t))
    words = re.split(r"\s+", v)
    words.reverse()
    number = next((w for w in words if _ref_is_number(w)), words[0])
    try:
        answer = _ref_normalize(number)
    except ValueError:
        return False, number
    return answer.endswith(t), answer


def rule_signed_last_number_exact(completion: str, target: str) -> tuple[bool, str | None]:
    """The reference v1.2's GSM8K rule (``src/eval/exact_numeric_match.py``): the same last number
    word plus a leading minus, compared by value."""
    t = _ref_strip_numeric_punctuation(target.strip())
    words = re.split(r"\s+", _ref_strip_numeric_punctuation(completion.strip().casefold()))
    words.reverse()
    for word in words:
        digits = word[1:] if word.startswith("-") else word
        if _ref_is_number(digits):
            try:
                value = -float(digits) if word.startswith("-") else float(digits)
            except ValueError:
                return False, word
            try:
                return abs(value - float(t)) < 1e-9, format(value, ".12g")
            except ValueError:
                return False, format(value, ".12g")
    return False, words[0]


def rule_inspect_aime(completion: str, target: str) -> tuple[bool, str | None]:
    """inspect_evals' AIME scorer as pinned by the reference: ``\\boxed{...}`` removed, then
    :func:`rule_inspect_match_numeric` on the reply."""
    return rule_inspect_match_numeric(re.sub(r"\\boxed\{(.+)\}", r"\1", completion), target)


_REF_UNWRAP = (
    (re.compile(r"\$\s*([A-Za-z\d][A-Za-z\d ,]*?)\s*\$"), r"\1"),
    (re.compile(r"\*\*\s*([A-Za-z\d][A-Za-z\d ,]*?)\s*\*\*"), r"\1"),
    (re.compile(r"(?i)(^|[:,])(\s*)\(([A-Za-z\d])\)(?=\s*(?:,|\.|\n|\Z))", re.M), r"\1\2\3"),
)


def reference_choice(completion: str, choices: str = "ABCD") -> str | None:
    """inspect_ai's ``multiple_choice`` answer parsing (single answer) as the reference used it:
    ``$X$``/``**X**``/``(X)`` unwrapped, the last line ``ANSWER: ...`` (else the last ``ANSWER:``
    anywhere), which must hold exactly one allowed letter."""
    for pattern, repl in _REF_UNWRAP:
        completion = pattern.sub(repl, completion)
    matches = re.findall(r"(?i)^ANSWER\s*:\s*([A-Za-z\d ,]+)\s*(?:$|\n|\.)", completion, flags=re.M)
    if not matches:
        matches = re.findall(r"(?i)ANSWER\s*:\s*([A-Za-z\d ,]+)(?:[^\w]|\n|$|\.)", completion)
    if not matches:
        return None
    tokens = [t for t in matches[-1].strip().rstrip(".").upper().split(",") if t]
    return tokens[0] if len(tokens) == 1 and len(tokens[0]) == 1 and tokens[0] in choices else None


def rule_inspect_choice(completion: str, target: str) -> tuple[bool, str | None]:
    answer = reference_choice(completion)
    return answer is not None and answer == target.strip().upper(), answer


SCORING_RULES: dict[str, ScoringRule] = {
    "final-number": rule_final_number,
    "first-number": rule_first_number,
    "answer-letter": rule_answer_letter,
    "inspect-match-numeric": rule_inspect_match_numeric,
    "signed-last-number-exact": rule_signed_last_number_exact,
    "inspect-aime": rule_inspect_aime,
    "inspect-choice": rule_inspect_choice,
}
"""Answer rules by id (code execution rules live with HumanEval; LLM-graded ones with their benchmark)."""


def scoring_rule(rule_id: str) -> ScoringRule:
    """The answer rule ``rule_id`` (``KeyError`` naming the known ones)."""
    try:
        return SCORING_RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown scoring rule {rule_id!r}; known: {', '.join(SCORING_RULES)}") from None
