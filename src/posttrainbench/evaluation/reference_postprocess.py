"""What the reference does to a reply before an LLM grades it (aisa-group/PostTrainBench, Arena-Hard and HealthBench
``evaluate_final_eval.py``): the reasoning block is cut, then runaway repetition is capped.

Our implementation of the behaviour (docs/evaluation.md names the source; ``tests/fixtures/postprocess_goldens.jsonl``
holds the reference's own outputs on a corpus of replies, built by ``tests/build_postprocess_goldens.py``):

- :func:`strip_reasoning`: the reply, stripped; if it starts with ``<think>`` and has a ``</think>``, what follows
  the first ``</think>``, stripped.
- :func:`limit_repetitions`: up to 10 rounds of three passes, until a round changes nothing: (1) a run of more than
  5 equal lines is cut to 5; (2) for block sizes 2 up to 29 lines (and at most a fifth of the lines), the first block
  repeated more than 5 times in a row is cut to 5 repeats and the pass ends there (what follows the run is dropped
  too when it is only a partial repeat of the block); (3) a unit of 3-30, 30-60, 60-120, 120-250 or 250-500
  characters (shortest first) repeated 6 or more times in a row is cut to 5, in each window in turn, until a sweep
  over the windows cuts nothing.
"""

from __future__ import annotations

import itertools
import re

MAX_REPETITIONS = 5
"""The reference's ``MAX_REPETITIONS``."""
_WINDOWS = ((3, 30), (30, 60), (60, 120), (120, 250), (250, 500))
_MAX_BLOCK = 30
_ROUNDS = 10


def strip_reasoning(reply: str) -> str:
    """``reply`` stripped, without a leading ``<think>`` block closed by ``</think>`` (Arena-Hard's rule; HealthBench's
    ``split("</think>")[-1]`` gives the same: a reply with no ``</think>`` stays whole)."""
    text = reply.strip()
    if text.startswith("<think>") and "</think>" in text:
        return text.split("</think>", 1)[1].strip()
    return text


def _cap_equal_lines(lines: list[str], cap: int) -> tuple[list[str], bool]:
    out: list[str] = []
    changed = False
    for line, run in itertools.groupby(lines):
        n = sum(1 for _ in run)
        changed = changed or n > cap
        out.extend([line] * min(n, cap))
    return out, changed


def _loosely_equal(line: str, block_line: str) -> bool:
    """A trailing line that repeats the block only in part (cut short, or with more after it)."""
    if line == block_line:
        return True
    cut_short = bool(line.strip()) and block_line.startswith(line.strip())
    return cut_short or (bool(block_line.strip()) and line.startswith(block_line.strip()))


def _cap_first_repeated_block(lines: list[str], cap: int) -> tuple[list[str], bool]:
    for size in range(2, min(_MAX_BLOCK, len(lines) // 5 + 1)):
        for start in range(len(lines) - size + 1):
            block = lines[start : start + size]
            end = start + size
            repeats = 1
            while end + size <= len(lines) and lines[end : end + size] == block:
                repeats, end = repeats + 1, end + size
            if repeats <= cap:
                continue
            rest = lines[end:]
            partial = len(rest) <= size and all(_loosely_equal(x, b) for x, b in zip(rest, block, strict=False))
            return lines[:start] + block * cap + ([] if partial else rest), True
    return lines, False


def _cap_repeated_substrings(text: str, cap: int) -> tuple[str, bool]:
    changed = False
    while True:
        cut = 0
        for lo, hi in _WINDOWS:
            text, n = re.subn(rf"(.{{{lo},{hi}}}?)\1{{{cap},}}", lambda m: m.group(1) * cap, text, flags=re.DOTALL)
            cut += n
        if not cut:
            return text, changed
        changed = True


def limit_repetitions(text: str, cap: int = MAX_REPETITIONS) -> str:
    """``text`` with every runaway repetition cut to ``cap`` repeats, as the reference's ``limit_repetitions``."""
    for _ in range(_ROUNDS):
        lines, a = _cap_equal_lines(text.split("\n"), cap)
        lines, b = _cap_first_repeated_block(lines, cap)
        text, c = _cap_repeated_substrings("\n".join(lines), cap)
        if not (a or b or c):
            break
    return text
