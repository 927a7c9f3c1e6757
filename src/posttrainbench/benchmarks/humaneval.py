"""HumanEval pass@1: the reply's code against the problem's tests, executed in sandboxes.

Each item asks for the function described by a signature and docstring. The reply's code, under
``strict``: the first Python-labelled fence (any case: ``python``, ``py``, ``python3``; CRLF
accepted) that defines the entry point, else the first Python-labelled fence, else the same among
unlabelled fences, else an unterminated fence's rest, else the whole reply (a usage-example fence
before the solution is not taken). Under the reference protocols: inspect_evals' ``find_code``
(the first labelled fence, else the first unlabelled one, cut after the first ``:\n    ``). The candidate program is
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
from typing import Any, ClassVar

from inspect_ai.model import ChatMessage, ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState

from ..data import Item, field
from ..evaluation.code_exec import DEFAULT_TIMEOUT_S, ExecResult, Program, run_programs
from ..evaluation.graders import Grader
from ..evaluation.protocols import REF_V1, STRICT, Protocol, get_protocol
from ..evaluation.reference_prompts import HUMANEVAL_INSTRUCTION
from .base import BenchmarkDefinition
from .registry import register_benchmark

SCORER = "ptb_humaneval"
HUMANEVAL_PROMPT = (
    "Read the following function signature and docstring, and fully implement the function "
    "described. Reply with the complete function in a single ```python code block.\n\n{prompt}"
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#.-]*)[^\n`]*\n(.*?)(```|\Z)", re.S)
_PYTHON_TAGS = frozenset({"python", "python3", "py"})
# Sandboxes started at once by concurrent scorer calls (Inspect scores samples concurrently).
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def humaneval_prompt(prompt: str) -> str:
    return HUMANEVAL_PROMPT.format(prompt=prompt)


def _fences(text: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """``(python-labelled, unlabelled)`` fenced blocks of ``text`` as ``(code, closed)``, in order."""
    labelled, bare = [], []
    for m in _FENCE.finditer(text):
        tag, code, closed = m.group(1).lower(), m.group(2), bool(m.group(3))
        if tag in _PYTHON_TAGS:
            labelled.append((code, closed))
        elif not tag:
            bare.append((code, closed))
    return labelled, bare


def extract_code(completion: str, entry_point: str | None = None) -> str:
    """``strict``: the code of a reply (see the module docstring); ``entry_point``: the function
    the item asks for, whose defining fence is preferred over a usage example."""
    text = completion.replace("\r\n", "\n")
    labelled, bare = _fences(text)
    defines = re.compile(rf"(?m)^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}\b") if entry_point else None
    for group in (labelled, bare):
        closed = [code for code, ok in group if ok and code.strip()]
        if defines is not None:
            for code in closed:
                if defines.search(code):
                    return code
        if closed:
            return closed[0]
    opened = [code for code, ok in labelled + bare if not ok and code.strip()]
    return opened[0] if opened else text


def reference_find_code(completion: str) -> str:
    """inspect_evals' HumanEval ``find_code`` as the reference protocols use it: the first
    Python-labelled fence (any case, CRLF accepted), else the first unlabelled one, then everything
    up to the first ``:\n    `` cut off (the signature, and any import above it); no fence: the
    whole reply."""
    text = completion.replace("\r\n", "\n")
    labelled, bare = _fences(text)
    blocks = [c for c, _ in labelled if c.strip()] or [c for c, ok in bare if ok and c.strip()]
    if not blocks:
        return completion
    code = blocks[0]
    return code[code.find(":\n    ") + 2 :]


CODE_RULES = {"code-fence": "strict", "inspect-find-code": "reference"}
"""HumanEval's code-extraction rules by id (``BenchmarkSettings.scoring_rule``)."""


def reply_code(completion: str, metadata: dict[str, Any], protocol: str | Protocol = STRICT) -> str:
    """The code of a reply under ``protocol``."""
    rule = get_protocol(protocol).settings_for("humaneval").scoring_rule
    if rule == "inspect-find-code":
        return reference_find_code(completion)
    if rule != "code-fence":
        raise ValueError(f"humaneval: unknown code rule {rule!r}; known: {', '.join(CODE_RULES)}")
    return extract_code(completion, metadata.get("entry_point"))


def code_timeout(protocol: str | Protocol = STRICT) -> float:
    """Wall-clock limit of one program under ``protocol`` (the reference's ``VERIFY_TIMEOUT``: 30 s)."""
    return get_protocol(protocol).settings_for("humaneval").code_timeout_s or DEFAULT_TIMEOUT_S


def build_program(completion: str, metadata: dict[str, Any], protocol: str | Protocol = STRICT) -> Program:
    """The program a reply is judged by (``metadata``: the item's prompt, test, entry_point):
    the untrusted ``prompt + code`` and the trusted tests, rebuilt from the logged reply."""
    code = reply_code(completion, metadata, protocol)
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


def rescore(samples: Sequence[Any], *, sandbox: str = "bwrap", protocol: str | Protocol = STRICT) -> dict[str, float]:
    """Per-sample pass (1.0/0.0) recomputed by executing the logged replies again."""
    programs = [(str(s.id), build_program(s.output.completion, s.metadata, protocol)) for s in samples]
    results = run_programs(programs, sandbox=sandbox, timeout_s=code_timeout(protocol))
    broken = [r for r in results.values() if r.status == "sandbox_error"]
    if broken:
        raise RuntimeError(f"sandbox could not run {len(broken)} program(s): {broken[0].stderr_tail}")
    return {pid: float(r.passed) for pid, r in results.items()}


@scorer(metrics=[accuracy(), stderr()], name=SCORER)
def humaneval_scorer(sandbox: str = "bwrap", protocol: str = STRICT) -> Scorer:
    """pass@1 of one reply, executed in the sandbox (code rule and time limit: ``protocol``'s)."""
    timeout_s = code_timeout(protocol)

    async def score(state: TaskState, target: Target) -> Score:
        program = build_program(state.output.completion, state.metadata, protocol)
        pid = str(state.sample_id)
        res = (await asyncio.to_thread(execute, [(pid, program)], timeout_s=timeout_s, sandbox=sandbox))[pid]
        if res.status == "sandbox_error":  # not the model's fault: the evaluation must fail, not score 0
            raise RuntimeError(f"sandbox could not run the program: {res.stderr_tail}")
        return Score(
            value=CORRECT if res.passed else INCORRECT,
            answer=reply_code(state.output.completion, state.metadata, protocol),
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
    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: inspect_evals' instruction followed by the function's prompt."""
        return [ChatMessageUser(content=HUMANEVAL_INSTRUCTION + str(item.metadata["prompt"]))]

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

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> Scorer:
        return humaneval_scorer(sandbox=code_sandbox, protocol=get_protocol(protocol).id)

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples, sandbox=code_sandbox, protocol=protocol)
