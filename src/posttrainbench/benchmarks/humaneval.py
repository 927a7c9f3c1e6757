"""HumanEval pass@1: the reply's code against the problem's tests, executed in sandboxes.

Each item asks for the function described by a signature and docstring. The reply's code is the
first fenced block (```python or ```), else the whole reply. The candidate program is
``prompt + code`` (a complete function redefines the prompt's stub; an indented body continues
it); the trusted tester runs ``prompt`` (for helpers such as ``poly`` in HumanEval/32) and
``test``, then ``check(entry_point)`` with the candidate's function called across sandboxes
(:mod:`posttrainbench.evaluation.code_exec`: two bwrap sandboxes per program, plain data between
them, no network, time and memory limits). The candidate never sees the tests, and its code
cannot reach the verdict, which the tester alone writes.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState

from ..data import Item, field
from ..evaluation.code_exec import DEFAULT_TIMEOUT_S, ExecResult, Program, run_programs
from ..evaluation.graders import Grader
from .base import BenchmarkDefinition
from .registry import register_benchmark

SCORER = "ptb_humaneval"
HUMANEVAL_PROMPT = (
    "Read the following function signature and docstring, and fully implement the function "
    "described. Reply with the complete function in a single ```python code block.\n\n{prompt}"
)
_FENCED = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)```", re.S)
# Sandboxes started at once by concurrent scorer calls (Inspect scores samples concurrently).
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def humaneval_prompt(prompt: str) -> str:
    return HUMANEVAL_PROMPT.format(prompt=prompt)


def extract_code(completion: str) -> str:
    """The code of a reply: the first fenced block, else an unterminated fence's rest, else all."""
    m = _FENCED.search(completion)
    if m:
        return m.group(1)
    start = re.search(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n", completion)
    return completion[start.end() :] if start else completion


def build_program(completion: str, metadata: dict[str, Any]) -> Program:
    """The program a reply is judged by (``metadata``: the item's prompt, test, entry_point):
    the untrusted ``prompt + code`` and the trusted tests, rebuilt from the logged reply."""
    code = extract_code(completion)
    return Program(
        solution=f"{metadata['prompt']}{code}\n",
        tests=metadata["test"],
        entry_point=metadata["entry_point"],
        preamble=metadata["prompt"],
    )


def execute(
    programs: Sequence[tuple[str, Program]], *, timeout_s: float = DEFAULT_TIMEOUT_S, sandbox: str = "bwrap"
) -> dict[str, ExecResult]:
    """Run programs in the sandbox, at most one per CPU at a time across all callers."""
    out: dict[str, ExecResult] = {}
    for pid, src in programs:
        with _SLOTS:
            out.update(run_programs([(pid, src)], timeout_s=timeout_s, sandbox=sandbox, workers=1))
    return out


def rescore(samples: Sequence[Any], *, sandbox: str = "bwrap") -> dict[str, float]:
    """Per-sample pass (1.0/0.0) recomputed by executing the logged replies again."""
    programs = [(str(s.id), build_program(s.output.completion, s.metadata)) for s in samples]
    results = run_programs(programs, sandbox=sandbox)
    broken = [r for r in results.values() if r.status == "sandbox_error"]
    if broken:
        raise RuntimeError(f"sandbox could not run {len(broken)} program(s): {broken[0].stderr_tail}")
    return {pid: float(r.passed) for pid, r in results.items()}


@scorer(metrics=[accuracy(), stderr()], name=SCORER)
def humaneval_scorer(sandbox: str = "bwrap", timeout_s: float = DEFAULT_TIMEOUT_S) -> Scorer:
    """pass@1 of one greedy reply, executed in the sandbox."""

    async def score(state: TaskState, target: Target) -> Score:
        program = build_program(state.output.completion, state.metadata)
        pid = str(state.sample_id)
        res = (await asyncio.to_thread(execute, [(pid, program)], timeout_s=timeout_s, sandbox=sandbox))[pid]
        if res.status == "sandbox_error":  # not the model's fault: the evaluation must fail, not score 0
            raise RuntimeError(f"sandbox could not run the program: {res.stderr_tail}")
        return Score(
            value=CORRECT if res.passed else INCORRECT,
            answer=extract_code(state.output.completion),
            explanation=f"{res.status} (exit {res.exit_code}, {res.duration_s:.2f}s)\n{res.stderr_tail[-500:]}",
            metadata={"status": res.status},
        )

    return score


@register_benchmark(
    id="humaneval",
    display_name="HumanEval",
    hub_id="openai/openai_humaneval",
    hub_aliases=("openai_humaneval",),
    local_test_file="humaneval/HumanEval.jsonl.gz",
    items_sha256="ee309b970e70006af96c85c40c3467a6f0581d9799a40142a979b08a072e2da5",
    full_size=164,
    dev_size=30,
    max_tokens_ladder=(4000, 3000, 2000),
    allowed_training_data="Code data other than HumanEval (e.g. MBPP, CodeAlpaca).",
    metric="pass@1",
)
class HumanEval(BenchmarkDefinition):
    """HumanEval, pass@1 of a greedy reply executed in the sandbox."""

    scorer_name = SCORER

    def read_test_items(self, root: Path) -> list[Item]:
        items = []
        for i, rec in enumerate(self.records(root, "test")):
            where = f"{self.id} #{i}"
            task_id = field(rec, "task_id", where=where)
            meta = {k: field(rec, k, where=where) for k in ("prompt", "test", "entry_point")}
            items.append(
                Item(id=task_id, input=humaneval_prompt(meta["prompt"]), target=meta["entry_point"], metadata=meta)
            )
        return items

    def scorer(self, *, grader: Grader | None = None, code_sandbox: str = "bwrap") -> Scorer:
        return humaneval_scorer(sandbox=code_sandbox)

    def rescore(self, samples: Sequence[Any], *, code_sandbox: str = "bwrap") -> dict[str, float]:
        return rescore(samples, sandbox=code_sandbox)
