"""Build the golden prompt fixtures (tests/fixtures/prompt_goldens/<benchmark>.jsonl.gz): what the reference
(aisa-group/PostTrainBench through inspect_evals and vLLM) renders for shipped items under each base model.

Run once, by hand, in a scratch area; the test (tests/test_reference_prompts.py) only reads the fixtures.
It needs what the test must never need:

- ``--inspect-evals DIR``: a folder where ``import inspect_evals`` works (``pip install --no-deps --target DIR
  inspect_evals==0.26.0 backoff``): the prompt wordings, ``record_to_sample`` and ``sample_to_fewshot`` are
  inspect_evals' own code, run here, not retyped;
- ``--templates DIR``: the reference's chat templates, as read from the public repositories with the search
  tool: ``qwen3.jinja`` and ``smollm.jinja`` (``src/eval/templates/`` of theFulminatedHuman/continual-posttrainbench
  at 4db98d93, a copy of the reference's folder; the reference repository's own copies are not in the index) and
  ``gemma3.jinja`` (Gemma 3's own template, which the reference's ``gemma3_tool_calling.jinja`` reproduces for
  prompts without tools; agents' notes give the reference file's sha256 as 7de1c58e..., Gemma 3's
  ``chat_template.jinja``, 1,532 bytes; the transcription used here is 1,539 bytes and was not compared byte for
  byte: presumably whitespace between tags, which every tag of it trims);
- ``gemma3_tool_calling.jinja`` in the same folder (BFCL's template for Gemma; the same repository and commit);
- the Python environment of this project (inspect_ai, datasets, transformers).

BFCL (``--only bfcl`` builds it alone): inspect_evals' ``create_tool_info_from_dict`` writes the functions, Inspect's
``openai_chat_tools`` sends them, and they reach the template in the shape vLLM's request model gives them
(:func:`vllm_tool_dicts`); Qwen3 and SmolLM3 keep their templates (``qwen3.jinja``, ``smollm.jinja``), Gemma 3 gets
``gemma3_tool_calling.jinja``, as the reference's ``tasks/bfcl/evaluate_final_eval.py`` picks them.

What runs here is the reference's machinery: Inspect's ``hf_dataset`` (the ``datasets`` shuffle with seed 42, then
the limit) on the shipped train split, Inspect's ``system_message`` / ``prompt_template`` solvers on a
``TaskState``, and ``transformers``' own chat-template renderer (``render_jinja_template``) on the original template
files. Our renderer (``posttrainbench.evaluation.reference_prompts``, ``catalog/templates/ptb_v1_*.jinja``,
``catalog.render_chat``) shares none of it: its wordings are transcribed, its shuffle is a NumPy permutation, its
templates are our own shorter transcriptions rendered by our own Jinja environment.

    python tests/build_prompt_goldens.py --inspect-evals /tmp/scratch/site --templates /tmp/scratch/ref
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import sys
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "prompt_goldens"
DATA = ROOT / "src" / "posttrainbench" / "resources"
TODAY = dt.datetime(2026, 9, 30, 12, 0)  # SmolLM3's template writes the day of evaluation: the goldens fix one

# base model -> (reference template file, the tokenizer's bos_token), as vLLM passes them to the template
BASE_MODELS = {
    "Qwen/Qwen3-1.7B-Base": ("qwen3.jinja", None),
    "Qwen/Qwen3-4B-Base": ("qwen3.jinja", None),
    "HuggingFaceTB/SmolLM3-3B-Base": ("smollm.jinja", "<|begin_of_text|>"),
    "google/gemma-3-4b-pt": ("gemma3.jinja", "<bos>"),
}


def render(
    template: str, messages: list[dict[str, str]], bos_token: str | None, tools: list[dict[str, Any]] | None = None
) -> str:
    """What vLLM's chat endpoint renders: transformers' own renderer with the tokenizer's special tokens."""
    import transformers.utils.chat_template_utils as ctu

    class FixedClock(dt.datetime):  # transformers' strftime_now reads datetime.now(): freeze it on TODAY
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> FixedClock:
            return cls.fromisoformat(TODAY.isoformat())

    setattr(ctu, "datetime", FixedClock)  # noqa: B010 - a module attribute replaced for this build only
    render_jinja_template = ctu.render_jinja_template
    kwargs: dict[str, Any] = {}
    if bos_token is not None:
        kwargs["bos_token"] = bos_token
    rendered = render_jinja_template(
        conversations=[messages], tools=cast(Any, tools), chat_template=template, add_generation_prompt=True, **kwargs
    )[0]
    return str(rendered[0])


def inspect_messages(sample: Any, solvers: list[Any]) -> list[dict[str, str]]:
    """The chat Inspect sends for ``sample`` after ``solvers`` (as the OpenAI-style dicts vLLM receives)."""
    from inspect_ai.model import ChatMessageUser, ModelName
    from inspect_ai.solver import TaskState

    state = TaskState(
        model=ModelName("vllm/final_model"),
        sample_id=sample.id,
        epoch=1,
        input=sample.input,
        messages=[ChatMessageUser(content=sample.input)] if isinstance(sample.input, str) else list(sample.input),
        metadata=dict(sample.metadata or {}),
        choices=sample.choices,
    )

    async def run() -> TaskState:
        s = state
        for solver in solvers:
            s = await solver(s, None)
        return s

    # (a solver is called with generate=None: every solver used here only edits the messages; multiple_choice is
    # wrapped with a generate that returns the state as is)

    return [{"role": m.role, "content": m.text} for m in asyncio.run(run()).messages]


Rows = list[tuple[str, int, list[dict[str, str]], str | None]]  # item id, index, chat, target (when it moves)


def spread(n: int, k: int) -> list[int]:
    """``k`` positions spread evenly over ``0..n-1`` (all of them when ``k >= n``)."""
    return list(range(n)) if k >= n else sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def gsm8k_rows() -> Rows:
    from inspect_ai.dataset import hf_dataset
    from inspect_ai.solver import prompt_template, system_message
    from inspect_evals.gsm8k.gsm8k import MATH_PROMPT_TEMPLATE, record_to_sample, sample_to_fewshot

    train = str(DATA / "gsm8k" / "train.jsonl")
    fewshots = hf_dataset(
        "json", data_files=train, split="train", sample_fields=record_to_sample, shuffle=True, seed=42, limit=10
    )
    system = "\n\n".join(sample_to_fewshot(s) for s in fewshots)
    solvers = [system_message(system), prompt_template(MATH_PROMPT_TEMPLATE)]
    records = [json.loads(line) for line in (DATA / "gsm8k" / "test.jsonl").read_text().splitlines()]
    out: Rows = []
    for i in spread(len(records), 20):
        sample = record_to_sample(records[i])
        out.append((f"gsm8k-{i}", i, inspect_messages(sample, solvers), None))
    return out


def aime2025_rows() -> Rows:
    from inspect_ai.dataset import Sample
    from inspect_evals.utils.aime_common import aime_solver

    solvers = aime_solver()[:-1]  # everything before generate()
    records = [json.loads(line) for line in (DATA / "aime2025" / "test.jsonl").read_text().splitlines()]
    out: Rows = []
    for i, rec in enumerate(records):  # all 30
        sample = Sample(id=i, input=rec["problem"], target=str(rec["answer"]))
        out.append((f"aime2025-{rec.get('id', i)}", i, inspect_messages(sample, solvers), None))
    return out


def humaneval_rows() -> Rows:
    from inspect_evals.humaneval.humaneval import record_to_sample

    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    to_sample = record_to_sample()
    out: Rows = []
    for i in spread(len(records), 24):
        sample = to_sample(records[i])
        out.append((str(sample.id), i, inspect_messages(sample, []), None))  # solver: generate() alone
    return out


GPQA_ITEMS = OUT / "gpqamain" / "gpqa_main.jsonl"  # a data root for our loader: <root>/gpqamain/gpqa_main.jsonl


def synthetic_gpqa_records() -> list[dict[str, str]]:
    """24 synthetic records in GPQA's columns (the real data is gated): plain ones, and ones whose text has what a
    renderer could get wrong (surrounding whitespace and newlines, braces, a "{question}" in a choice, unicode)."""
    out: list[dict[str, str]] = []
    for i in range(24):
        a, b = 3 + i, 7 + 2 * i
        question = f"A sample holds {a} mol of gas at {b} K. Which value of the quantity asked is right?"
        right, wrong = f"{a * b} units", [f"{a * b + k} units" for k in (1, 2, 3)]
        if i % 4 == 1:
            question = f"  {question}\n\nAssume an ideal gas.\n"
            right = f" {right} "
        if i % 4 == 2:
            question += " Use $E = mc^{2}$ and {braces} as written."
            wrong[0] = "{question} is not a value"
        if i % 4 == 3:
            question += " (µ, Å, ∑)"
        out.append(
            {
                "Question": question,
                "Correct Answer": right,
                "Incorrect Answer 1": wrong[0],
                "Incorrect Answer 2": wrong[1],
                "Incorrect Answer 3": wrong[2],
                "Record ID": f"recSYN{i:03d}",
                "Explanation": "(synthetic)",
            }
        )
    return out


def gpqamain_rows() -> Rows:
    from inspect_ai.dataset import Sample, hf_dataset
    from inspect_ai.solver import multiple_choice

    GPQA_ITEMS.parent.mkdir(parents=True, exist_ok=True)
    GPQA_ITEMS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in synthetic_gpqa_records()))

    def record_to_sample(record: dict[str, Any]) -> Sample:  # the reference's (tasks/gpqamain/evaluate_final_eval.py)
        return Sample(
            input=record["Question"],
            choices=[str(record[k]) for k in ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                               "Incorrect Answer 3")],
            target="A",
            id=record["Record ID"],
        )  # fmt: skip

    # the reference's gpqa_main(shuffle_seed=72332): the first of its final-evaluation seeds
    samples = hf_dataset("json", data_files=str(GPQA_ITEMS), split="train", sample_fields=record_to_sample,
                         shuffle_choices=72332)  # fmt: skip

    class NoGeneration:  # multiple_choice calls generate after writing the prompt: leave the state as it is
        async def __call__(self, state: Any, *args: Any, **kwargs: Any) -> Any:
            return state

    solver = multiple_choice(cot=True)
    out: Rows = []
    for i, sample in enumerate(samples):
        messages = inspect_messages(sample, [lambda s, _g: solver(s, cast(Any, NoGeneration()))])
        out.append((f"gpqa-{sample.id}", i, messages, str(sample.target)))
    return out


BFCL_TOOLS: dict[str, list[dict[str, Any]]] = {}  # item id -> the functions as the template receives them


def vllm_tool_dicts(tools: list[Any]) -> list[dict[str, Any]]:
    """What a vLLM server hands the chat template for Inspect's tools: Inspect's OpenAI client writes each ToolInfo
    (``openai_chat_tools``: parameters dumped without None fields) and vLLM parses it into
    ``ChatCompletionToolsParam`` (``type``, ``function`` = ``FunctionDefinition``: ``name``, ``description``,
    ``parameters``), whose ``model_dump()`` the template gets (vLLM is not installed here: that last step is the
    two models' field order, as read in vLLM's ``entrypoints/openai/protocol.py``)."""
    from inspect_ai.model._openai import openai_chat_tools

    out = []
    for t in openai_chat_tools(tools):
        f = cast(dict[str, Any], t["function"])
        out.append({"type": "function", "function": {k: f.get(k) for k in ("name", "description", "parameters")}})
    return out


def bfcl_rows() -> Rows:
    """Every exec_simple question (the shipped test fixture: the bfcl-eval wheel's file), as inspect_evals' BFCL asks
    it: the question as the one user turn, the functions through its own ``create_tool_info_from_dict``."""
    from inspect_evals.bfcl.utils import create_tool_info_from_dict

    path = ROOT / "tests" / "fixtures" / "data" / "bfcl" / "BFCL_v4_exec_simple.json"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    out: Rows = []
    for i, rec in enumerate(records):
        (turns,) = rec["question"]
        BFCL_TOOLS[rec["id"]] = vllm_tool_dicts([create_tool_info_from_dict(f) for f in rec["function"]])
        out.append((rec["id"], i, [{"role": t["role"], "content": t["content"]} for t in turns], None))
    return out


def arenahardwriting_rows() -> Rows:
    """24 Arena-Hard questions as the reference's ``generate_answers`` sends them to its vLLM server: the prompt as
    the one user message (no Inspect involved; the server renders it with ``--chat-template``)."""
    records = [json.loads(line) for line in (DATA / "arenahardwriting" / "question.jsonl").read_text().splitlines()]
    return [(f"arena-{records[i]['uid']}", i, [{"role": "user", "content": records[i]["prompt"]}], None)
            for i in spread(len(records), 24)]  # fmt: skip


def healthbench_rows() -> Rows:
    """24 HealthBench examples as the reference sends them to its vLLM server: the conversation as it is."""
    records = [json.loads(line) for line in (DATA / "healthbench" / "healthbench_easy.jsonl").read_text().splitlines()]
    return [(f"healthbench-{records[i]['prompt_id']}", i, [{"role": t["role"], "content": t["content"]}
             for t in records[i]["prompt"]], None) for i in spread(len(records), 24)]  # fmt: skip


BUILDERS = {
    "gsm8k": gsm8k_rows,
    "aime2025": aime2025_rows,
    "humaneval": humaneval_rows,
    "gpqamain": gpqamain_rows,
    "bfcl": bfcl_rows,
    "arenahardwriting": arenahardwriting_rows,
    "healthbench": healthbench_rows,
}
TOOL_TEMPLATE = {"gemma3.jinja": "gemma3_tool_calling.jinja"}  # BFCL's evaluate*.py pick it for Gemma


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inspect-evals", type=Path, required=True)
    ap.add_argument("--templates", type=Path, required=True)
    ap.add_argument("--only", nargs="*", choices=list(BUILDERS), help="build these benchmarks only (default: all)")
    args = ap.parse_args()
    sys.path.insert(0, str(args.inspect_evals))
    OUT.mkdir(parents=True, exist_ok=True)
    for bid, build in BUILDERS.items():
        if args.only and bid not in args.only:
            continue
        rows = build()
        lines = []
        for base_model, (file, bos) in BASE_MODELS.items():
            if bid == "bfcl":
                file = TOOL_TEMPLATE.get(file, file)
            template = (args.templates / file).read_text()
            for item_id, index, messages, target in rows:
                row = {
                    "benchmark": bid,
                    "base_model": base_model,
                    "reference_template": file,
                    "bos_token": bos,
                    "today": TODAY.isoformat(),
                    "item_id": item_id,
                    "index": index,
                    "prompt": render(template, messages, bos, BFCL_TOOLS.get(item_id) if bid == "bfcl" else None),
                    **({"target": target} if target is not None else {}),
                }
                lines.append(json.dumps(row, ensure_ascii=False))
        with gzip.GzipFile(OUT / f"{bid}.jsonl.gz", "wb", mtime=0) as f:  # mtime 0: the same bytes every build
            f.write(("\n".join(lines) + "\n").encode())
        print(f"{bid}: {len(lines)} prompts ({len(rows)} items x {len(BASE_MODELS)} base models)")


if __name__ == "__main__":
    main()
