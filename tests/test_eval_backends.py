"""Backends behind the same tasks: an OpenAI-compatible server (Inspect's openai-api provider and
the real openai SDK against a local server speaking the protocol), and vLLM (constructed here;
this machine has no GPU, so the test checks the clear failure, or a real run where vLLM works)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.bfcl import parse_call
from posttrainbench.catalog import get_base_model
from posttrainbench.evaluation import evaluate_model
from posttrainbench.evaluation.vllm_provider import vllm_available
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.testing import FakeLLMServer

CALC = get_benchmark("gsm8k-calc")
BFCL = get_benchmark("bfcl")
TINY = get_base_model("ptb/tiny-random")
ROOT = Path(__file__).parent / "fixtures" / "data"


def test_openai_compatible_server_backend(tmp_path):
    items = CALC.load_test_items()[:6]
    by_prompt = {it.input: it.target for it in items}

    def respond(body):
        prompt = body["messages"][-1]["content"]
        return by_prompt[prompt] if prompt != items[0].input else "no idea"

    with FakeLLMServer(respond) as server:
        res = evaluate_model(
            Path("served-model"), CALC, TINY, tmp_path, items=items, batch_size=3,
            backend="openai", base_url=server.base_url,
        )  # fmt: skip
    assert res.status == "ok", res.error
    assert res.score == pytest.approx(5 / 6) and res.n_scored == 6
    assert res.backend == "openai" and res.chat_template == "server"
    assert len(server.requests) == 6
    for r in server.requests:  # decoding pinned by the harness, sent to the server
        body = r["body"]
        assert body["model"] == "served-model" and body["temperature"] == 0.0
        assert (body.get("max_tokens") or body.get("max_completion_tokens")) == CALC.decoding.max_tokens


def test_openai_backend_bfcl_tools_are_sent(tmp_path):
    items = BFCL.load_test_items(root=ROOT)[:3]
    gold = {it.input: parse_call(it.target) for it in items}

    def respond(body):
        assert [t["function"]["name"] for t in body["tools"]] == [
            f["name"] for it in items if it.input == body["messages"][-1]["content"] for f in it.metadata["functions"]
        ]
        name, args = gold[body["messages"][-1]["content"]]
        return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"

    with FakeLLMServer(respond) as server:
        res = evaluate_model(
            Path("served"), BFCL, TINY, tmp_path, items=items, batch_size=3, backend="openai", base_url=server.base_url
        )
    assert res.status == "ok", res.error
    assert res.score == 1.0


def test_openai_backend_server_down_is_a_failed_evaluation(tmp_path):
    items = CALC.load_test_items()[:2]
    with FakeLLMServer(lambda body: 400) as server:  # a client error: not retried by the SDK
        res = evaluate_model(Path("m"), CALC, TINY, tmp_path, items=items, backend="openai", base_url=server.base_url)
    assert res.status == "failed" and "all 3 attempt(s)" in res.error and "400" in res.error
    assert [a.max_tokens for a in res.attempts] == list(CALC.max_tokens_ladder)


def test_vllm_backend(tmp_path):
    tiny = build_tiny_model(tmp_path / "tiny")
    items = CALC.load_test_items()[:4]
    res = evaluate_model(tiny, CALC, TINY, tmp_path / "out", items=items, backend="vllm")
    assert res.backend == "vllm" and res.batch_size == 4  # the whole set in one batch
    ok, _why = vllm_available()
    if ok:  # a CUDA machine with the [gpu] extra
        assert res.status == "ok", res.error
    else:
        assert res.status == "failed" and "vLLM is not usable" in res.error and "[gpu]" in res.error


def test_unknown_backend_and_missing_base_url(tmp_path):
    items = CALC.load_test_items()[:1]
    res = evaluate_model(Path("m"), CALC, TINY, tmp_path, items=items, backend="tgi")
    assert res.status == "failed" and "unknown backend 'tgi'" in res.error
    res = evaluate_model(Path("m"), CALC, TINY, tmp_path, items=items, backend="openai")
    assert res.status == "failed" and "needs base_url" in res.error
