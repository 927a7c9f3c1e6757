"""The prompts of the reference protocols (``ptb-v1``, ``ptb-v1.2``): what aisa-group/PostTrainBench
asks through inspect_evals (the commit its container pins, 06001a83; wordings as in inspect_evals
0.26.0, which has the same ones), rebuilt here from the shipped data.

The wordings are data (they must be the reference's, character for character); the code that
places them is ours. The chat template around these messages is the base model's reference
template (``catalog.reference_chat_template``). docs/evaluation.md lists the source of each.

- GSM8K: 10 train items chosen as the reference's ``hf_dataset(shuffle=True, seed=42, limit=10)``
  does (the Hugging Face ``datasets`` shuffle: a NumPy ``default_rng(42)`` permutation of the train
  split, its first 10), each written ``question / Reasoning: / solution (calculator annotations
  kept) / ANSWER: N``, joined by blank lines into ONE system message; the question in
  ``MATH_PROMPT_TEMPLATE`` as the user message.
- AIME 2025: the problem in inspect_evals' ``aime_common.USER_PROMPT_TEMPLATE``, one user message.
- HumanEval: inspect_evals' ``INSTRUCTION`` followed by the function's prompt, one user message.
- GPQA (main): Inspect's ``multiple_choice(cot=True)`` prompt; the choices in the order Inspect's
  ``shuffle_choices(seed)`` gives them: one ``random.Random(seed)`` shuffles the positions of each
  record's four choices in turn, in file order. The seed is each final-evaluation seed in turn
  (``ptb-v1.2``), or the first one (``ptb-v1``; see :func:`gpqa_reference_orders`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from ..data import DataError

GSM8K_FEWSHOT_SEED = 42
"""inspect_evals ``DEFAULT_FEWSHOT_SEED``: the seed of the GSM8K few-shot shuffle."""
GSM8K_FEWSHOT = 10
"""inspect_evals ``gsm8k(fewshot=10)``."""

GSM8K_MATH_PROMPT = (
    'Solve the following math problem step by step. The last line of your response should be of the form "ANSWER: '
    '$ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n{prompt}\n\nRemember to put your '
    'answer on its own line at the end in the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to '
    "the problem, and you do not need to use a \\boxed command.\n\nReasoning:"
)
"""inspect_evals ``gsm8k.MATH_PROMPT_TEMPLATE`` (the text after ``.strip()``)."""

AIME_USER_PROMPT = (
    "Solve the following math problem step by step.\nThe last line of your response should be of the form "
    '"ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n{prompt}\n\nRemember to put '
    'your answer on its own line at the end in the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the '
    "answer to the problem, and you do not need to use a \\boxed command."
)
"""inspect_evals ``utils.aime_common.USER_PROMPT_TEMPLATE`` (after ``.strip()``)."""

HUMANEVAL_INSTRUCTION = (
    "\nRead the following function signature and docstring, and fully implement\nthe function described. Your "
    "response should only contain the code for\nthis function.\n\n"
)
"""inspect_evals ``humaneval.INSTRUCTION`` (prepended to the item's prompt as is, leading newline included)."""

GPQA_COT_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n{question}\n\n{choices}"
)
"""Inspect's ``SINGLE_ANSWER_TEMPLATE_COT`` (``multiple_choice(cot=True)``), after ``.strip()``."""

GSM8K_REFERENCE_FEWSHOT_SHA256 = "588566f0f639c921fe0fb2d15b08cf81323ff9edd2a54b888aa69949b597e2e2"
"""sha256 of the reference GSM8K system message built from the published train split (pinned like the few-shot)."""


def fill(template: str, prompt: str) -> str:
    """``template`` with ``{prompt}`` replaced by ``prompt`` (Inspect's ``prompt_template``: the
    prompt's own braces are text, never placeholders)."""
    return template.replace("{prompt}", prompt)


def fewshot_indices(n_train: int, seed: int = GSM8K_FEWSHOT_SEED, k: int = GSM8K_FEWSHOT) -> list[int]:
    """Positions in the train split of the few-shot examples, in the order they are written: the
    first ``k`` of the permutation ``datasets.Dataset.shuffle(seed=seed)`` applies."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(n_train)[:k]]


def gsm8k_fewshot_example(question: str, solution: str) -> str:
    """One few-shot example as inspect_evals writes it: the question, its worked solution (the text
    before ``####``, stripped, calculator annotations kept) and ``ANSWER: N`` (N as written in the
    data, thousands separators kept)."""
    *steps, answer = solution.split("####")
    return f"{question}\n\nReasoning:\n{'####'.join(steps).strip()}\n\nANSWER: {answer.strip()}"


def gsm8k_fewshot_system(train: Sequence[dict[str, Any]]) -> str:
    """The one system message of the reference's GSM8K prompt, from the train records in file order
    (the Hugging Face split's order); its digest must be :data:`GSM8K_REFERENCE_FEWSHOT_SHA256`."""
    chosen = [train[i] for i in fewshot_indices(len(train))]
    text = "\n\n".join(gsm8k_fewshot_example(str(r["question"]), str(r["answer"])) for r in chosen)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != GSM8K_REFERENCE_FEWSHOT_SHA256:
        raise DataError(
            f"gsm8k: the reference few-shot examples built from this train split (sha256 {digest[:12]}) are not "
            f"the reference's ({GSM8K_REFERENCE_FEWSHOT_SHA256[:12]}): the split is not GSM8K's 7,473 train items "
            "in their published order"
        )
    return text


def strip_prefix(text: str, prefix: str, where: str) -> str:
    """``text`` without the ``strict`` wording ``prefix`` it was built with (the raw test content)."""
    if not text.startswith(prefix):
        raise ValueError(f"{where}: the item's prompt does not start with the strict wording it is built with")
    return text[len(prefix) :]


def gpqa_reference_orders(n_records: int, seed: int) -> list[list[int]]:
    """For each record, in file order, the original positions of its four choices in the order they are shown
    (Inspect's ``Dataset.shuffle_choices(seed)``: one ``random.Random(seed)`` shuffles every record's positions
    in turn, so a record's order depends on its place in the file)."""
    import random

    rng = random.Random(seed)
    orders = []
    for _ in range(n_records):
        positions = list(range(4))
        rng.shuffle(positions)
        orders.append(positions)
    return orders


def gpqa_reference_prompt(question: str, choices: Sequence[str]) -> str:
    """Inspect's ``multiple_choice(cot=True)`` prompt of ``question`` with ``choices`` in the order shown."""
    values = {
        "letters": ",".join(chr(ord("A") + i) for i in range(len(choices))),
        "choices": "\n".join(f"{chr(ord('A') + i)}) {c}" for i, c in enumerate(choices)),
        "question": question,
    }
    # one pass, as str.format: a placeholder inside a substituted value stays text
    return re.sub(r"\{(letters|choices|question)\}", lambda m: values[m.group(1)], GPQA_COT_PROMPT)
