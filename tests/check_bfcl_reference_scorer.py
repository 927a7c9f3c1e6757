"""Check the BFCL scorer corpus's ``ptb-v1`` column against the reference's own scorer: inspect_evals 0.4.0's
``bfcl_scorer`` and its ``record_to_sample`` target (``parse_target`` then a JSON round trip), the last release whose
``bfcl()`` defaults to the reference's 100 exec_simple items (docs/evaluation.md).

Run once, by hand, in a scratch area; nothing in the test suite depends on it (the corpus test checks our scorer
against the committed column). inspect_evals is not a dependency: unpack its wheel in a scratch folder::

    pip download --no-deps -d /tmp/w inspect_evals==0.4.0 && unzip -q /tmp/w/*.whl -d /tmp/ie04
    .venv/bin/python tests/check_bfcl_reference_scorer.py --inspect-evals /tmp/ie04

The reply's tool calls are read by our ``hermes_calls`` (vLLM, the reference's parser, is not installed here), so
this checks the comparison, not the parsing. Prints the rows where the reference's scorer and the column disagree.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "scorer_corpus" / "bfcl.jsonl"
ANSWERS = ROOT / "tests" / "fixtures" / "data" / "bfcl" / "possible_answer" / "BFCL_v4_exec_simple.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inspect-evals", type=Path, required=True, help="a folder where inspect_evals 0.4.0 imports")
    args = ap.parse_args()
    sys.path.insert(0, str(args.inspect_evals))
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelName
    from inspect_ai.scorer import CORRECT, Target
    from inspect_ai.solver import TaskState
    from inspect_ai.tool import ToolCall

    from posttrainbench.benchmarks.bfcl import hermes_calls

    ref = importlib.import_module("inspect_evals.bfcl.bfcl")  # the package exports a function of the same name
    gold = {r["id"]: r["ground_truth"][0] for r in map(json.loads, ANSWERS.read_text().splitlines())}
    score = ref.bfcl_scorer()
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    mismatches = 0
    for r in rows:
        target_obj = json.loads(json.dumps(ref.parse_target(gold[r["item_id"]])))  # as its record_to_sample
        calls = [ToolCall(id=f"c{i}", function=n, arguments=a) for i, (n, a) in enumerate(hermes_calls(r["reply"]))]
        reply = ChatMessageAssistant(content="", tool_calls=calls or None)
        state = TaskState(
            model=ModelName("mockllm/model"), sample_id=r["id"], epoch=1, input="q", messages=[ChatMessageUser(content="q"), reply],
            metadata={"target_obj": target_obj},
        )  # fmt: skip
        got = int(asyncio.run(score(state, Target(""))).value == CORRECT)
        if got != r["expected"]["ptb-v1"]:
            mismatches += 1
            print(r["id"], r["class"], "reference:", got, "column:", r["expected"]["ptb-v1"])
    print(f"{len(rows)} rows, {mismatches} disagree with the reference's scorer")
    return int(mismatches > 0)


if __name__ == "__main__":
    raise SystemExit(main())
