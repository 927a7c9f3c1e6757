"""``ptb baseline``: base and instruct checkpoints evaluated zero-shot, recorded as baseline runs
that the leaderboard reads, and benchmark weights computed from them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from posttrainbench import catalog
from posttrainbench.benchmarks import get_benchmark
from posttrainbench.cli import app
from posttrainbench.domain import BaseModelSpec
from posttrainbench.leaderboard.from_results import scan_results
from posttrainbench.leaderboard.weights import load_weights
from posttrainbench.testing import FakeLLMServer

runner = CliRunner()


def test_baseline_of_the_tiny_model_is_recorded(tmp_path):
    res = runner.invoke(
        app, ["baseline", "--base-model", "ptb/tiny-random", "--benchmark", "gsm8k-calc", "--limit", "3",
              "--results", str(tmp_path), "--batch-size", "3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    folder = tmp_path / "baseline_zeroshot" / "gsm8k-calc_ptb_tiny-random_limit3"
    rec = json.loads((folder / "baseline.json").read_text())
    assert rec["checkpoint"] == "base" and rec["status"] == "ok" and rec["limit"] == 3
    assert (folder / "metrics.json").is_file() and list((folder / "eval").glob("*.eval"))
    scan = scan_results(tmp_path)
    assert scan.baseline_scores("base") == {("gsm8k-calc", "ptb/tiny-random", 3): rec["score"]} and not scan.problems


def test_base_and_instruct_baselines_give_weights(tmp_path, monkeypatch):
    # A base/instruct pair served by an OpenAI-compatible server: the "instruct" model answers
    # every item, the "base" model none of calc and half of gsm8k -> gaps 1.0 and 0.5 -> weights 1/3, 2/3.
    base_dir, models_dir = tmp_path / "base-ckpt", tmp_path / "models"
    for d in (base_dir, models_dir / "ptb" / "pair-instruct"):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    pair = BaseModelSpec(hub_id="ptb/pair", family="tiny", chat_template="plain", instruct_id="ptb/pair-instruct",
                     local_path=str(base_dir), demo=True)  # fmt: skip
    monkeypatch.setitem(catalog.BASE_MODELS, "ptb/pair", pair)
    monkeypatch.setenv("PTB_MODELS_DIR", str(models_dir))
    targets = {}
    for bid in ("gsm8k-calc", "gsm8k"):
        bench = get_benchmark(bid).model_copy(update={"fewshot": 0})
        for n, it in enumerate(bench.load_test_items()[:2]):
            targets[it.input] = (it.target, bid, n)

    def respond(body):
        assert len(body["messages"]) == 1  # zero-shot: no few-shot turns even for gsm8k
        target, bid, n = targets[body["messages"][-1]["content"]]
        right = body["model"] == "pair-instruct" or (bid == "gsm8k" and n == 0)
        return f"The answer is {target if right else '-1'}."

    with FakeLLMServer(respond) as server:
        monkeypatch.setenv("PTB_OPENAI_BASE_URL", server.base_url)
        res = runner.invoke(
            app, ["baseline", "--base-model", "ptb/pair", "--benchmark", "gsm8k-calc", "--benchmark", "gsm8k",
                  "--limit", "2", "--results", str(tmp_path / "r"), "--backend", "openai",
                  "--weights-out", str(tmp_path / "w.json")],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    scan = scan_results(tmp_path / "r")
    assert scan.baseline_scores("base") == {("gsm8k-calc", "ptb/pair", 2): 0.0, ("gsm8k", "ptb/pair", 2): 0.5}
    # the instruct scores are recorded under the base model they belong to (for the weights)
    assert scan.baseline_scores("instruct") == {("gsm8k-calc", "ptb/pair", 2): 1.0, ("gsm8k", "ptb/pair", 2): 1.0}
    weights = load_weights(tmp_path / "w.json")
    assert abs(weights["gsm8k-calc"] - 1 / 3) < 1e-12 and abs(weights["gsm8k"] - 2 / 3) < 1e-12


def test_failed_baseline_is_recorded_with_its_cause(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")  # no weights, no tokenizer
    broken = BaseModelSpec(hub_id="ptb/broken", family="tiny", chat_template="plain", local_path=str(empty), demo=True)
    monkeypatch.setitem(catalog.BASE_MODELS, "ptb/broken", broken)
    res = runner.invoke(
        app, ["baseline", "--base-model", "ptb/broken", "--benchmark", "gsm8k-calc", "--limit", "2",
              "--results", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 1
    rec = json.loads(next((tmp_path / "r" / "baseline_zeroshot").glob("*/baseline.json")).read_text())
    assert rec["status"] == "failed" and rec["score"] is None and rec["error"]
    res = runner.invoke(app, ["baseline", "--base-model", "nope/x", "--benchmark", "gsm8k"])
    assert res.exit_code == 2 and "unknown base model" in res.output
