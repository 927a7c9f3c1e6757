"""Build tests/fixtures/postprocess_goldens.jsonl: replies and what the reference's post-processing makes of them
(aisa-group/PostTrainBench ``tasks/arenahardwriting/evaluate_final_eval.py``: the ``<think>`` cut, then
``limit_repetitions``), for tests/test_reference_graders.py.

Run once, by hand, in a scratch area; the test only reads the fixture. It needs ``--reference FILE``: a Python file
defining the reference's ``limit_repetitions`` as read from that repository with the search tool (its text, not
ours: the point is to run the reference's own code). The corpus is generated here from a fixed seed: plain prose,
runs of equal lines, repeated blocks (with partial trailing repeats), repeated substrings of every window size, their
mixtures, and replies with a ``<think>`` block.

    python tests/build_postprocess_goldens.py --reference /tmp/scratch/ref_limit.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "fixtures" / "postprocess_goldens.jsonl"
WORDS = [
    "the",
    "model",
    "wrote",
    "a",
    "story",
    "about",
    "rain",
    "and",
    "light",
    "over",
    "old",
    "harbour",
    "walls",
    "while",
    "gulls",
    "cried",
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def corpus(seed: int = 20261130) -> list[tuple[str, str]]:
    """(class, reply) pairs: 40 per class, 16 per substring window."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []

    def add(kind: str, text: str) -> None:
        out.append((kind, text))

    for _ in range(40):
        add("prose", "\n".join(sentence(rng, rng.randint(3, 12)) for _ in range(rng.randint(1, 8))))
    for _ in range(40):  # runs of equal lines around the cap
        line = sentence(rng, rng.randint(1, 6))
        lines = [sentence(rng, 4)] + [line] * rng.randint(3, 12) + [sentence(rng, 4)] * rng.randint(0, 2)
        add("equal-lines", "\n".join(lines))
    for _ in range(40):  # repeated blocks of 2-6 lines, sometimes with a partial repeat after them
        block = [sentence(rng, rng.randint(1, 5)) for _ in range(rng.randint(2, 6))]
        body = [sentence(rng, 5)] + block * rng.randint(4, 9)
        tail = rng.choice([[], block[:1], [block[0][: len(block[0]) // 2]], [sentence(rng, 3)], [*block[:2], "x"]])
        add("blocks", "\n".join(body + tail))
    for lo, hi in ((3, 30), (30, 60), (60, 120), (120, 250), (250, 500)):
        for _ in range(16):  # a substring of about that length repeated 4-10 times within one line
            unit = ""
            while len(unit) < rng.randint(lo, hi):
                unit += rng.choice(WORDS) + " "
            unit = unit[: rng.randint(lo, min(hi, max(lo, len(unit))))]
            add(f"substrings-{lo}-{hi}", sentence(rng, 3) + " " + unit * rng.randint(4, 10) + sentence(rng, 3))
    for _ in range(40):  # mixtures: every kind at once, and repeats that only appear once others are cut
        parts = [sentence(rng, 6), ("ha" * rng.randint(5, 40)), "\n".join([sentence(rng, 2)] * rng.randint(5, 9))]
        block = [sentence(rng, 3), sentence(rng, 2)]
        parts.append("\n".join(block * rng.randint(5, 8)))
        rng.shuffle(parts)
        add("mixed", "\n".join(parts))
    for _ in range(40):  # reasoning blocks: closed, unclosed, not leading, surrounded by whitespace
        think = "<think>" + sentence(rng, 8) + ("</think>" if rng.random() < 0.7 else "")
        answer = sentence(rng, 6) + ("\n" + "\n".join([sentence(rng, 2)] * 8) if rng.random() < 0.5 else "")
        lead = rng.choice(["", "  \n", "Sure. "])
        add("think", lead + think + rng.choice(["", "\n\n", " "]) + answer + rng.choice(["", "\n "]))
    return out


def reference_postprocess(limit_repetitions, reply: str) -> str:
    """What the reference's Arena-Hard ``generate_answers`` does to ``message["content"]`` before judging."""
    answer_text = reply.strip()
    if answer_text.startswith("<think>") and ("</think>" in answer_text):
        answer_text = answer_text.split("</think>", maxsplit=1)[1]
        answer_text = answer_text.strip()
    return limit_repetitions(answer_text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("reference_limit", args.reference)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [
        {"class": kind, "reply": reply, "judged": reference_postprocess(module.limit_repetitions, reply)}
        for kind, reply in corpus()
    ]
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    changed = sum(r["reply"].strip() != r["judged"] for r in rows)
    print(f"{len(rows)} replies, {changed} changed by the reference")


if __name__ == "__main__":
    main()
