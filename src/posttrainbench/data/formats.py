"""The one place where each benchmark's prompt and reference-answer wording is defined.

The evaluator's prompts (``load_test_items``) and the training examples handed to agents
(``load_train_examples``) are both built from these functions, so they cannot drift apart.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------------
# gsm8k-calc (CPU demo): one calculator step of a GSM8K solution, e.g. "<<48/2=24>>".

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


# ---------------------------------------------------------------------------------------------
# GSM8K: zero-shot prompt wording (the evaluator adds few-shot turns in the same wording).

GSM8K_PROMPT = (
    "Solve the following math problem step by step. "
    'End your reply with "The answer is N." where N is the final number.\n\n{question}'
)

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


# ---------------------------------------------------------------------------------------------
# AIME 2025: zero-shot, integer answer.

AIME_PROMPT = (
    "Solve the following competition math problem. Think step by step. "
    'End your reply with "The answer is N." where N is the final integer answer (0 to 999).\n\n'
    "{problem}"
)


def aime_prompt(problem: str) -> str:
    return AIME_PROMPT.format(problem=problem.strip())


# ---------------------------------------------------------------------------------------------
# HumanEval: the function signature + docstring; the reply is code (a fenced block or plain).

HUMANEVAL_PROMPT = (
    "Read the following function signature and docstring, and fully implement the function "
    "described. Reply with the complete function in a single ```python code block.\n\n{prompt}"
)


def humaneval_prompt(prompt: str) -> str:
    return HUMANEVAL_PROMPT.format(prompt=prompt)


# ---------------------------------------------------------------------------------------------
# GPQA: four choices (shuffled per item with a fixed seed), answer as a letter.

GPQA_PROMPT = (
    "Answer the following multiple choice question. Think step by step, then end your reply "
    'with a line of the form "ANSWER: X" where X is one of A, B, C, D.\n\n{question}\n\n{choices}'
)
CHOICE_LETTERS = "ABCD"


def gpqa_prompt(question: str, choices: list[str]) -> str:
    lines = "\n".join(f"{CHOICE_LETTERS[i]}) {c.strip()}" for i, c in enumerate(choices))
    return GPQA_PROMPT.format(question=question.strip(), choices=lines)
