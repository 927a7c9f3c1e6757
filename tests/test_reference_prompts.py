"""The reference protocols' prompts (ptb-v1, ptb-v1.2): golden prompts rendered by the reference's own machinery
(tests/build_prompt_goldens.py: inspect_evals' code, Inspect's solvers and dataset shuffle, transformers' renderer on
the reference's template files) equal, character for character, what our renderer builds; and what happens around
them (base models without a reference template, the few-shot pin, the refusal of what is not built, the CLI)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.gsm8k import Gsm8k
from posttrainbench.catalog import REFERENCE_CHAT_TEMPLATES, get_base_model, render_chat
from posttrainbench.data import DataError, Item, data_root
from posttrainbench.evaluation.protocols import REF_V1, REF_V1_2, STRICT, get_protocol
from posttrainbench.evaluation.runner import protocol_chat_template

GOLDENS = Path(__file__).parent / "fixtures" / "prompt_goldens"
BUILT = ("gsm8k", "aime2025", "humaneval", "gpqamain", "arenahardwriting", "healthbench")
ASKED_AS_IS = ("arenahardwriting", "healthbench")  # the reference asks the item's own chat: only the template differs
PAPER_MODELS = tuple(REFERENCE_CHAT_TEMPLATES)


def golden_rows(bid: str) -> list[dict[str, Any]]:
    with gzip.open(GOLDENS / f"{bid}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@cache
def items_by_id(bid: str) -> dict[str, Item]:
    """The shipped items; GPQA's (gated) are the goldens' synthetic records, in its hub columns; BFCL's the test
    fixture (the bfcl-eval wheel's file, byte for byte)."""
    root = GOLDENS if bid == "gpqamain" else Path(__file__).parent / "fixtures" / "data" if bid == "bfcl" else None
    return {it.id: it for it in get_benchmark(bid).load_test_items(root, local_only=True)}


def ours(bid: str, item_id: str, base_model: str, protocol: str, *, bos: str | None, today: str) -> str:
    """Our rendering of one item: the benchmark's messages under ``protocol`` in the template that protocol picks."""
    bench, base = get_benchmark(bid), get_base_model(base_model)
    turns = [{"role": m.role, "content": m.text} for m in bench.messages(items_by_id(bid)[item_id], protocol)]
    template = protocol_chat_template(base, get_protocol(protocol).prompt_variant(bid))
    return render_chat(template, turns, bos_token=bos or "", now=dt.datetime.fromisoformat(today))


@pytest.mark.parametrize("bid", BUILT)
def test_every_base_model_renders_at_least_20_items_as_the_reference_does(bid: str) -> None:
    rows = golden_rows(bid)
    per_model = {m: sum(r["base_model"] == m for r in rows) for m in PAPER_MODELS}
    assert min(per_model.values()) >= 20, per_model
    covering = [p for p in (REF_V1, REF_V1_2) if bid in get_protocol(p).benchmarks]  # every built one: both
    assert covering
    for r in rows:
        for protocol in covering:  # the reference protocols ask the same prompts
            got = ours(bid, r["item_id"], r["base_model"], protocol, bos=r["bos_token"], today=r["today"])
            assert got == r["prompt"], (r["base_model"], r["item_id"], protocol)
            if "target" in r:  # the choices moved: so did the letter scored
                assert get_benchmark(bid).sample_target(items_by_id(bid)[r["item_id"]], protocol) == r["target"]


@pytest.mark.parametrize("bid", BUILT)
def test_the_goldens_can_fail_strict_prompts_and_the_harness_templates_are_not_the_reference(bid: str) -> None:
    """The control of the test above: our strict prompts, or the reference prompts in the harness's own template,
    differ from the goldens, so an equality there is not an accident of the comparison. (Gemma 3's harness template
    differs from the reference's only in where a system message goes: without one they agree.)"""
    for r in golden_rows(bid)[::7]:
        strict = ours(bid, r["item_id"], r["base_model"], STRICT, bos=r["bos_token"], today=r["today"])
        bench, base = get_benchmark(bid), get_base_model(r["base_model"])
        turns = [{"role": m.role, "content": m.text} for m in bench.messages(items_by_id(bid)[r["item_id"]], REF_V1_2)]
        harness = render_chat(base.chat_template, turns, bos_token=r["bos_token"] or "")
        same = r["base_model"] == "google/gemma-3-4b-pt" and turns[0]["role"] != "system"
        assert (harness == r["prompt"]) == same, r["base_model"]
        # Arena-Hard and HealthBench ask the item's chat as it is under strict too: only the template can differ
        assert (strict == r["prompt"]) == (same and bid in ASKED_AS_IS), r["base_model"]


def test_the_reference_templates_carry_the_quirks_the_issue_lists() -> None:
    system, user = {"role": "system", "content": "S"}, {"role": "user", "content": "U"}
    day = dt.datetime(2026, 9, 30)
    qwen = render_chat(REFERENCE_CHAT_TEMPLATES["Qwen/Qwen3-4B-Base"], [system, user], now=day)
    assert qwen == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert "<think>" not in qwen  # thinking is not forced off (our strict qwen3 template appends an empty block)
    gemma = render_chat(REFERENCE_CHAT_TEMPLATES["google/gemma-3-4b-pt"], [system, user], bos_token="<bos>")
    assert gemma == "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"  # merged, not a turn
    smol = REFERENCE_CHAT_TEMPLATES["HuggingFaceTB/SmolLM3-3B-Base"]
    with_system = render_chat(smol, [system, user], now=day)
    assert with_system.startswith("<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\n")
    assert (
        "Today Date: 30 September 2026\nReasoning Mode: /think\n\n## Custom Instructions\n\nS\n\n<|im_start|>user"
        in (with_system)
    )
    assert render_chat(smol, [system, user], now=dt.datetime(2026, 10, 1)) != with_system  # the day is in the prompt
    assert "You are a helpful AI assistant named SmolLM" in render_chat(smol, [user], now=day)  # no system: default
    no_think = render_chat(smol, [{"role": "system", "content": "S /no_think"}, user], now=day)
    assert "Reasoning Mode: /no_think" in no_think and no_think.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")
    with pytest.raises(ValueError, match="alternate"):
        render_chat(REFERENCE_CHAT_TEMPLATES["google/gemma-3-4b-pt"], [user, user])


def test_a_base_model_the_reference_never_evaluated_keeps_its_own_template_and_the_result_says_so() -> None:
    tiny, qwen = get_base_model("ptb/tiny-random"), get_base_model("Qwen/Qwen3-1.7B-Base")
    assert protocol_chat_template(tiny, REF_V1) == tiny.chat_template == "plain"
    assert protocol_chat_template(qwen, REF_V1) == "ptb-v1-qwen3" != protocol_chat_template(qwen, STRICT) == "qwen3"
    assert {protocol_chat_template(get_base_model(m), REF_V1) for m in PAPER_MODELS} == {
        "ptb-v1-qwen3",
        "ptb-v1-smollm3",
        "ptb-v1-gemma3",
    }


def test_the_reference_fewshot_examples_are_pinned(tmp_path: Path) -> None:
    gsm8k = get_benchmark("gsm8k")
    assert isinstance(gsm8k, Gsm8k)
    text = gsm8k.reference_fewshot()
    assert text.count("\n\nReasoning:\n") == 10 and text.count("ANSWER: ") == 10 and "<<" in text  # annotations kept
    lines = (data_root() / "gsm8k" / "train.jsonl").read_text().splitlines()  # the shipped split
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text("\n".join(lines[1:]) + "\n")  # one item short: another shuffle
    with pytest.raises(DataError, match="reference few-shot examples"):
        gsm8k.reference_fewshot(tmp_path)


def bfcl_prompt(item_id: str, base_model: str, protocol: str, *, bos: str | None, today: str) -> str:
    """Our rendering of one BFCL item as the evaluation builds it: the benchmark's messages, its solver's tools
    under ``protocol`` (run on a task state, as Inspect runs it), in the template the protocol picks, through the
    provider's renderer (``render_prompt``, which ``ptb-hf`` and ``ptb-vllm`` call)."""
    import asyncio

    from inspect_ai.model import ModelName
    from inspect_ai.solver import TaskState
    from inspect_ai.tool import ToolInfo
    from inspect_ai.tool._tool_util import tool_to_tool_info

    from posttrainbench.evaluation.hf_provider import render_prompt

    bench, item = get_benchmark("bfcl"), items_by_id("bfcl")[item_id]
    messages = bench.messages(item, protocol)
    state = TaskState(ModelName("ptb-hf/m"), item.id, 1, messages, list(messages), metadata=dict(item.metadata))

    async def ask(s: TaskState, **_: Any) -> TaskState:
        return s

    solved = asyncio.run(bench.solver(protocol)(state, ask))  # type: ignore[arg-type]  # a plain coroutine stands in for Generate
    tools = [t if isinstance(t, ToolInfo) else tool_to_tool_info(t) for t in solved.tools]
    template = protocol_chat_template(get_base_model(base_model), get_protocol(protocol).prompt_variant("bfcl"))
    return render_prompt(template, messages, tools, bos_token=bos or "", now=dt.datetime.fromisoformat(today))


def test_bfcl_every_base_model_renders_every_item_with_its_functions_as_the_reference_does() -> None:
    """BFCL under ptb-v1: the question as the one user turn, the functions as the reference's inspect_evals and a
    vLLM server hand them to the template, and the reference's template per base model (Gemma 3: the tool-calling
    template with its whitespace quirks: no newline after the roles, the functions run together)."""
    rows = golden_rows("bfcl")
    per_model = {m: sum(r["base_model"] == m for r in rows) for m in PAPER_MODELS}
    assert min(per_model.values()) == 100, per_model
    for r in rows:
        got = bfcl_prompt(r["item_id"], r["base_model"], REF_V1, bos=r["bos_token"], today=r["today"])
        assert got == r["prompt"], (r["base_model"], r["item_id"])
    gemma = next(r["prompt"] for r in rows if r["base_model"] == "google/gemma-3-4b-pt")
    assert gemma.startswith("<bos>\n<start_of_turn>system# Tools\n") and gemma.endswith("<start_of_turn>model")
    smol = next(r["prompt"] for r in rows if r["base_model"] == "HuggingFaceTB/SmolLM3-3B-Base")
    assert "<tools>\n{'type': 'function', 'function': {'name': " in smol  # Python's repr of the dict, as the template
    assert "'additionalProperties': False" in smol and "\n\n<|im_end|>\n<|im_start|>user\n" in smol


def test_bfcl_goldens_fail_the_strict_tools_and_the_harness_templates() -> None:
    """The control: strict's functions (a description made up where BFCL has none, on the items only) in the
    reference template, and the reference's functions in the harness's template and tools wording, both differ from
    the goldens."""
    from posttrainbench.benchmarks.bfcl import reference_tool_info, tool_defs
    from posttrainbench.evaluation.hf_provider import render_prompt

    rows = golden_rows("bfcl")
    strict_differs = 0
    for r in rows:
        item = items_by_id("bfcl")[r["item_id"]]
        ref_tools = [reference_tool_info(f) for f in item.metadata["functions"]]
        strict_tools = [_info(d) for d in tool_defs(item.metadata["functions"])]
        template = protocol_chat_template(get_base_model(r["base_model"]), REF_V1)
        messages = get_benchmark("bfcl").messages(item, REF_V1)
        kw: dict[str, Any] = {"bos_token": r["bos_token"] or "", "now": dt.datetime.fromisoformat(r["today"])}
        assert render_prompt(template, messages, ref_tools, **kw) == r["prompt"]
        strict_differs += render_prompt(template, messages, strict_tools, **kw) != r["prompt"]
        harness = render_prompt(get_base_model(r["base_model"]).chat_template, messages, ref_tools, **kw)
        assert harness != r["prompt"]
    undescribed = [  # strict makes a description up for these parameters; the reference writes none
        it
        for it in items_by_id("bfcl").values()
        if any("description" not in v for f in it.metadata["functions"] for v in f["parameters"]["properties"].values())
    ]
    assert strict_differs == 4 * len(undescribed) > 0, (strict_differs, len(undescribed))


def _info(d: Any) -> Any:
    from inspect_ai.tool import ToolInfo

    return ToolInfo(name=d.name, description=d.description, parameters=d.parameters)


def test_what_is_not_built_is_refused_with_one_line_naming_it() -> None:
    assert get_benchmark("bfcl").require_protocol(REF_V1).id == REF_V1  # built now
    for protocol in (REF_V1, REF_V1_2):  # gsm8k-calc is ours: no reference protocol covers it
        with pytest.raises(ValueError, match="does not cover benchmark 'gsm8k-calc'"):
            get_benchmark("gsm8k-calc").require_protocol(protocol)
        for bid in BUILT:  # Arena-Hard and HealthBench too: v1 judged them as v1.2 does (docs/evaluation.md)
            assert get_benchmark(bid).require_protocol(protocol).id == protocol
    with pytest.raises(ValueError, match="does not cover benchmark 'bfcl'"):  # dropped in v1.2
        get_benchmark("bfcl").require_protocol(REF_V1_2)


def ends_at_once(model: Path) -> Path:
    """Edit the tiny model's weights so that its first token is always its end-of-sequence token (one dimension
    of the residual stream is a constant 1 that no layer writes to, and only EOS reads it, with a weight that leaves
    every other token no chance when sampled either): the evaluation then costs the prompts' prefill only, and the
    reply is empty."""
    from safetensors.torch import load_file, save_file

    from posttrainbench.models.tiny import EOS, tiny_vocab

    w = load_file(str(model / "model.safetensors"))
    d = 0
    w["model.embed_tokens.weight"][:, d] = 1.0
    for name, t in w.items():
        if name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            t[d, :] = 0.0
    w["model.norm.weight"][d] = 1.0
    w["lm_head.weight"].zero_()
    w["lm_head.weight"][tiny_vocab()[EOS], d] = 1e4  # EOS by far: also when sampled (the reference protocols)
    save_file(w, str(model / "model.safetensors"), metadata={"format": "pt"})
    return model


def test_ptb_eval_under_ptb_v1_runs_end_to_end_and_records_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspect_ai.log import read_eval_log
    from typer.testing import CliRunner

    from posttrainbench.cli.main import app
    from posttrainbench.models.tiny import build_tiny_model

    # The context comes from the base model's folder: the tiny base is built with room for the 10-shot prompt
    # (about 6,000 characters, one token each) and the 4,000-token budget.
    build_tiny_model(tmp_path / "models" / "ptb" / "tiny-random", max_positions=12_000)
    monkeypatch.setenv("PTB_MODELS_DIR", str(tmp_path / "models"))
    model = ends_at_once(build_tiny_model(tmp_path / "tiny", seed=0, max_positions=12_000))
    out = tmp_path / "eval"
    argv = ["eval", str(model), "--benchmark", "gsm8k", "--base-model", "ptb/tiny-random", "--limit", "2",
            "--out", str(out), "--batch-size", "2", "--protocol", REF_V1]  # fmt: skip
    res = CliRunner().invoke(app, argv, terminal_width=400)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    proto = get_protocol(REF_V1)
    assert f"(2 items; protocol {REF_V1} {proto.digest}; chat template plain)" in text, text
    (log_path,) = out.rglob("*.eval")
    log = read_eval_log(str(log_path))
    assert log.samples is not None and len(log.samples) == 2
    gsm8k = get_benchmark("gsm8k")
    assert isinstance(gsm8k, Gsm8k)
    items = gsm8k.load_test_items(local_only=True)[:2]
    for sample, item in zip(log.samples, items, strict=True):
        asked = [(m.role, m.text) for m in sample.messages if m.role != "assistant"]
        assert asked == [(m.role, m.text) for m in gsm8k.messages(item, REF_V1)]
        assert asked[0] == ("system", gsm8k.reference_fewshot())
        assert sample.output.completion == ""  # the edited model ended at once
        assert asked[1][1].startswith("Solve the following math problem step by step. The last line")


@pytest.mark.parametrize("protocol", [STRICT, REF_V1])
def test_a_runs_workspace_gets_the_template_and_protocol_its_final_evaluation_uses(
    protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ptb-v1 the agent is handed the reference's template (and its evaluate.py asks the reference prompts),
    not the harness's: it post-trains for the prompts it will be scored with."""
    from posttrainbench.catalog import get_chat_template
    from posttrainbench.domain import RunSpec
    from posttrainbench.pipeline import prepare
    from posttrainbench.pipeline.lifecycle import Pipeline

    monkeypatch.setenv("PTB_MODELS_DIR", str(tmp_path / "models"))  # a paper base model's folder, config only
    (tmp_path / "models" / "Qwen" / "Qwen3-1.7B-Base").mkdir(parents=True)
    (tmp_path / "models" / "Qwen" / "Qwen3-1.7B-Base" / "config.json").write_text("{}")
    spec = RunSpec(
        agent="reference",
        agent_config="sft",
        base_model="Qwen/Qwen3-1.7B-Base",
        benchmark="gsm8k",
        hours=0.05,
        protocol=protocol,
    )
    pipe = Pipeline(spec, tmp_path / "results")
    prepare.run(pipe, pipe.load_or_create())
    ws = pipe.paths.workspace
    task = json.loads((ws / "task" / "task.json").read_text())
    name = "ptb-v1-qwen3" if protocol == REF_V1 else "qwen3"
    assert [p.name for p in (ws / "templates").iterdir()] == [f"{name}.jinja"]
    assert task["chat_template"] == get_chat_template(name) and task["protocol"] == protocol
