"""BFCL exec_simple: the data of the bfcl-eval wheel (committed byte-identical copy + extraction
from a wheel), AST matching, ground-truth calls through the real Inspect task (structured tool
calls and <tool_call> text), tool rendering by ptb-hf and a tiny model end to end."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageUser, ModelOutput, ModelUsage, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.bfcl import (
    ANSWERS,
    QUESTIONS,
    WHEEL_MEMBERS,
    ensure_bfcl_files,
    extract_bfcl_files,
    match_calls,
    parse_call,
    tool_defs,
)
from posttrainbench.catalog import get_base_model
from posttrainbench.catalog.chat_templates import TOOLS_HEADER
from posttrainbench.data import DataError, Item
from posttrainbench.evaluation import build_task, check_log, evaluate_model
from posttrainbench.evaluation.hf_provider import PtbHFAPI
from posttrainbench.evaluation.tool_calls import parse_tool_calls
from posttrainbench.models.tiny import build_tiny_model

ROOT = Path(__file__).parent / "fixtures" / "data"
BFCL = get_benchmark("bfcl")
TINY = get_base_model("ptb/tiny-random")
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}
# sha256 of the two files inside bfcl_eval-2026.3.23-py3-none-any.whl
SHA256 = {
    QUESTIONS: "32ee3959e8e3f92fac1e90e55bf5fa41c759bfef4e6a2d88421af527a859d0a4",
    ANSWERS: "4584017c92ae9a2407eac25bcec2496233a32a08182301b15f65538aa575b5a7",
}


@pytest.fixture(scope="module")
def items() -> list[Item]:
    for rel, digest in SHA256.items():
        assert hashlib.sha256((ROOT / rel).read_bytes()).hexdigest() == digest, rel
    return BFCL.load_test_items(root=ROOT)


def test_loader_reads_the_100_items(items):
    assert len(items) == 100 == BFCL.full_size
    assert items[0].id == "exec_simple_0" and items[0].target == "calc_binomial_probability(n=20, k=5, p=0.6)"
    assert items[0].metadata["functions"][0]["name"] == "calc_binomial_probability"
    for it in items:  # every function doc becomes a valid Inspect tool
        assert [t.name for t in tool_defs(it.metadata["functions"])] == [f["name"] for f in it.metadata["functions"]]


def test_files_come_from_the_wheel(tmp_path, monkeypatch):
    wheel = tmp_path / "bfcl_eval-2026.3.23-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel, member in WHEEL_MEMBERS.items():
            zf.writestr(member, (ROOT / rel).read_bytes())
        zf.writestr("bfcl_eval/__init__.py", "")
    monkeypatch.setenv("PTB_BFCL_WHEEL", str(wheel))
    empty_root = tmp_path / "root"
    empty_root.mkdir()
    from_wheel = BFCL.load_test_items(root=empty_root)  # no local files: the cache, filled from the wheel
    assert [(i.id, i.target) for i in from_wheel] == [(i.id, i.target) for i in BFCL.load_test_items(root=ROOT)]

    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid wheel"):
        extract_bfcl_files(bad, tmp_path / "x")
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("something/else.json", "{}")
    with pytest.raises(DataError, match="has no bfcl_eval/data"):
        extract_bfcl_files(other, tmp_path / "y")


def _offline_pip(monkeypatch, find_links: Path) -> None:
    """pip sees no index, only ``find_links`` (nothing leaves the machine)."""
    for k, v in {
        "PIP_NO_INDEX": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": str(find_links), "PIP_RETRIES": "0", "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": "/dev/null",
    }.items():  # fmt: skip
        monkeypatch.setenv(k, v)


def test_files_are_fetched_with_pip_when_not_cached(tmp_path, monkeypatch):
    """The real ``pip download --no-deps`` path, against a local find-links folder."""
    monkeypatch.delenv("PTB_BFCL_WHEEL", raising=False)
    links = tmp_path / "links"
    links.mkdir()
    _offline_pip(monkeypatch, links)
    with pytest.raises(DataError) as err:
        ensure_bfcl_files(tmp_path / "cache-a")
    assert "pip could not download bfcl-eval==2026.3.23" in str(err.value) and "PTB_BFCL_WHEEL" in str(err.value)
    assert not (tmp_path / "cache-a" / QUESTIONS).exists()

    dist = "bfcl_eval-2026.3.23.dist-info"
    with zipfile.ZipFile(links / "bfcl_eval-2026.3.23-py3-none-any.whl", "w") as zf:
        for rel, member in WHEEL_MEMBERS.items():
            zf.writestr(member, (ROOT / rel).read_bytes())
        zf.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: bfcl-eval\nVersion: 2026.3.23\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    folder = ensure_bfcl_files(tmp_path / "cache-b")
    for rel in WHEEL_MEMBERS:
        assert (folder / rel).read_bytes() == (ROOT / rel).read_bytes()


def test_ground_truth_calls_match(items):
    for it in items:
        name, args = parse_call(it.target)
        args = json.loads(json.dumps(args))  # as they travel in a tool call (tuples become lists)
        assert match_calls([(name, args)], it.metadata) == (True, "match"), it.id


def test_wrong_calls_do_not_match(items):
    meta = items[0].metadata  # calc_binomial_probability(n=20, k=5, p=0.6)
    good = {"n": 20, "k": 5, "p": 0.6}
    assert match_calls([("calc_binomial_probability", {"n": 20, "k": 5, "p": 0.6})], meta)[0]
    assert match_calls([("calc_binomial_probability", {"n": 20.0, "k": 5, "p": 0.6})], meta) != (True, "match")
    cases: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "wrong name": [("calc_probability", good)],
        "wrong value": [("calc_binomial_probability", {**good, "k": 6})],
        "missing arg": [("calc_binomial_probability", {"n": 20, "k": 5})],
        "extra arg": [("calc_binomial_probability", {**good, "q": 1})],
        "string for int": [("calc_binomial_probability", {**good, "n": "20"})],
        "two calls": [("calc_binomial_probability", good)] * 2,
        "no call": [],
    }
    for why, calls in cases.items():
        assert not match_calls(calls, meta)[0], why
    # BFCL's string rule: case, spaces and ,./-_*^ do not matter
    s_item = next(it for it in items if isinstance(next(iter(parse_call(it.target)[1].values())), str))
    name, args = parse_call(s_item.target)
    k = next(k for k, v in args.items() if isinstance(v, str))
    assert match_calls([(name, {**args, k: args[k].upper() + " "})], s_item.metadata)[0]
    assert not match_calls([(name, {**args, k: args[k] + "zz"})], s_item.metadata)[0]


def test_tool_call_text_parser():
    content, calls, problems = parse_tool_calls(
        'Let me call it.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
        '<tool_call>{"name": "g", "arguments": "{\\"b\\": [1, 2]}"}</tool_call><tool_call>{oops</tool_call>'
        '<tool_call>{"name": "h", "arguments": {}}'  # unclosed at the end: generation stopped at the tag
    )
    assert content == "Let me call it."
    assert calls == [("f", {"a": 1}), ("g", {"b": [1, 2]}), ("h", {})]
    assert len(problems) == 1 and "not JSON" in problems[0]


def _mock(items, reply):
    by_input = {it.input: it for it in items}

    def out(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        it = by_input[input[-1].text]
        assert [t.name for t in tools] == [f["name"] for f in it.metadata["functions"]]  # tools were offered
        o = reply(it)
        o.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return o

    return get_model("mockllm/model", custom_outputs=out, memoize=False)


def test_ground_truth_scores_100_percent_through_inspect(items, tmp_path):
    def structured(it):
        name, args = parse_call(it.target)
        return ModelOutput.for_tool_call("mockllm/model", name, json.loads(json.dumps(args)))

    def as_text(it):
        name, args = parse_call(it.target)
        return ModelOutput.from_content(
            "mockllm/model", f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"
        )

    ids = [it.id for it in items]
    for label, reply in (("structured", structured), ("text", as_text)):
        elog = inspect_eval(
            build_task(BFCL, items), model=_mock(items, reply), log_dir=str(tmp_path / label), **EVAL_KW
        )[0]
        assert elog.status == "success"
        assert elog.results.scores[0].metrics["accuracy"].value == 1.0, label
        check = check_log(elog.location, BFCL, ids)
        assert check.ok and check.score == 1.0 and check.n_scored == 100, check.problems

    def wrong(it):
        name, args = parse_call(it.target)
        return ModelOutput.for_tool_call("mockllm/model", name + "_x", args)

    elog = inspect_eval(build_task(BFCL, items[:5]), model=_mock(items, wrong), log_dir=str(tmp_path / "w"), **EVAL_KW)[
        0
    ]
    check = check_log(elog.location, BFCL, ids[:5])
    assert check.ok and check.score == 0.0


def test_ptb_v1_scores_through_inspect_and_rescores_the_log_with_the_references_exact_comparison(items, tmp_path):
    """Under ptb-v1 the task's scorer and the log check (check_log re-scores) use the reference's rule: the ground
    truth with one string upper-cased is wrong there and right under strict (BFCL's checker, the control); the
    two items with a tuple in the ground truth, called exactly (a JSON array), are right under both."""
    from posttrainbench.evaluation.protocols import REF_V1, STRICT

    def upper(it):
        name, args = parse_call(it.target)
        args = {k: v.upper() if isinstance(v, str) else v for k, v in args.items()}
        return ModelOutput.from_content(
            "mockllm/model", f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"
        )

    with_strings = [
        it for it in items if any(isinstance(v, str) and v.upper() != v for v in parse_call(it.target)[1].values())
    ]
    tupled = [it for it in items if "=(" in it.target.replace(" ", "")]
    assert len(with_strings) >= 20 and [it.id for it in tupled] == ["exec_simple_40", "exec_simple_41"]
    chosen = with_strings[:10] + tupled
    ids = [it.id for it in chosen]

    def exact_or_upper(it):
        if it in tupled:
            name, args = parse_call(it.target)
            return ModelOutput.from_content(
                "mockllm/model", f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"
            )
        return upper(it)

    want = {STRICT: 1.0, REF_V1: 2 / 12}
    for protocol, score in want.items():
        task = build_task(BFCL, chosen, protocol=protocol)
        elog = inspect_eval(task, model=_mock(items, exact_or_upper), log_dir=str(tmp_path / protocol), **EVAL_KW)[0]
        assert elog.status == "success"
        assert elog.results.scores[0].metrics["accuracy"].value == score, protocol
        check = check_log(elog.location, BFCL, ids, protocol=protocol)
        assert check.ok and check.score == score and check.n_scored == 12, (protocol, check.problems)


def test_ptb_hf_offers_tools_in_the_system_turn(tmp_path, items):
    path = build_tiny_model(tmp_path / "m")
    model = get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="chatml")
    tools = [t.as_tool() for t in tool_defs(items[0].metadata["functions"])]
    import asyncio

    from inspect_ai.tool import ToolInfo
    from inspect_ai.tool._tool_def import tool_defs as inspect_tool_defs

    infos = [
        ToolInfo(name=d.name, description=d.description, parameters=d.parameters)
        for d in asyncio.run(inspect_tool_defs(tools))
    ]
    assert isinstance(model.api, PtbHFAPI)
    text = model.api.render([ChatMessageUser(content="roll dice")], infos)
    assert text.startswith("<|im_start|>system\n" + TOOLS_HEADER)
    assert '"name": "calc_binomial_probability"' in text and '"type": "number"' in text
    assert text.endswith("<|im_start|>user\nroll dice<|im_end|>\n<|im_start|>assistant\n")


def test_tiny_model_end_to_end(tmp_path, items):
    tiny = build_tiny_model(tmp_path / "tiny", max_positions=2048)
    short = sorted(items, key=lambda it: len(json.dumps(it.metadata)) + len(it.input))[:2]
    res = evaluate_model(
        tiny, BFCL, TINY, tmp_path / "out", items=short, max_tokens=8, batch_size=2, base_model_path=tiny
    )
    assert res.status == "ok", res.error
    assert (res.n_scored, res.n_expected) == (2, 2) and res.score == 0.0  # random weights call nothing


def test_ptb_hf_lets_a_reference_template_write_the_tools_itself(tmp_path, items):
    """Under ptb-v1 the functions reach the reference template (Gemma 3's tool-calling one here) instead of the
    harness's system turn: the provider's rendering is the template's, quirks included."""
    from posttrainbench.benchmarks.bfcl import reference_tool_info

    path = build_tiny_model(tmp_path / "m")
    model = get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="ptb-v1-gemma3")
    assert isinstance(model.api, PtbHFAPI)
    infos = [reference_tool_info(f) for f in items[0].metadata["functions"]]
    text = model.api.render([ChatMessageUser(content="roll dice")], infos)
    bos = model.api.tokenizer.bos_token or ""
    assert text.startswith(bos + "\n<start_of_turn>system# Tools\n\nYou may call one or more functions")
    assert '<tools>{"type": "function", "function": {"name": "calc_binomial_probability"' in text
    assert text.endswith("<end_of_turn>\n\n<start_of_turn>userroll dice<end_of_turn><start_of_turn>model")
    harness = get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="gemma3")
    assert isinstance(harness.api, PtbHFAPI)
    assert TOOLS_HEADER in harness.api.render([ChatMessageUser(content="roll dice")], infos) != text  # the control


def test_tiny_model_end_to_end_under_ptb_v1(tmp_path, items):
    """BFCL evaluates under ptb-v1 (the reference's functions, as ToolInfo in the task state, go through Inspect to
    the provider) and the result records the protocol; the log's samples offered the reference's tools."""
    from inspect_ai.log import read_eval_log

    from posttrainbench.evaluation.protocols import REF_V1, get_protocol

    tiny = build_tiny_model(tmp_path / "tiny", max_positions=2048)
    short = sorted(items, key=lambda it: len(json.dumps(it.metadata)) + len(it.input))[:2]
    res = evaluate_model(
        tiny, BFCL, TINY, tmp_path / "out", items=short, max_tokens=8, batch_size=2, base_model_path=tiny,
        protocol=REF_V1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    assert (res.protocol, res.protocol_digest) == (REF_V1, get_protocol(REF_V1).digest)
    assert (res.n_scored, res.n_expected) == (2, 2)
    (log_path,) = (tmp_path / "out").rglob("*.eval")
    samples = read_eval_log(str(log_path)).samples or []
    assert len(samples) == 2
    from posttrainbench.benchmarks.bfcl import reference_tool_info

    by_id = {it.id: it for it in short}
    for s in samples:
        assert [m.role for m in s.messages][:1] == ["user"]  # no system turn of the harness's own
        (event,) = [e for e in s.events if e.event == "model"]
        want = [reference_tool_info(f).model_dump() for f in by_id[str(s.id)].metadata["functions"]]
        assert [t.model_dump() for t in event.tools] == want  # the model was offered exactly the reference's
