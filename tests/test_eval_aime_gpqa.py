"""AIME 2025 (integer answers) and GPQA (seeded choice shuffling, hub format): loaders, reference
answers through the real Inspect task, log recomputation, a tiny model end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.gpqamain import gpqa_choices
from posttrainbench.catalog import get_base_model
from posttrainbench.data import DataError
from posttrainbench.evaluation import build_task, check_log, evaluate_model
from posttrainbench.models.tiny import build_tiny_model

ROOT = Path(__file__).parent / "fixtures" / "data"
AIME = get_benchmark("aime2025")
GPQA = get_benchmark("gpqamain")
TINY = get_base_model("ptb/tiny-random")
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}


def _mock_model(reply_for):
    def reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", reply_for(input[-1].text))
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return out

    return get_model("mockllm/model", custom_outputs=reply, memoize=False)


def _run(benchmark, items, reply_for, log_dir):
    elog = inspect_eval(build_task(benchmark, items), model=_mock_model(reply_for), log_dir=str(log_dir), **EVAL_KW)[0]
    assert elog.status == "success"
    return elog, check_log(elog.location, benchmark, [it.id for it in items])


# ---------------------------------------------------------------------------------------------
# AIME 2025


def test_aime_reference_answers_score_100_percent(tmp_path):
    raw = [json.loads(x) for x in (ROOT / "aime2025" / "test.jsonl").read_text().splitlines()]
    items = AIME.load_test_items(root=ROOT)
    assert len(items) == 30 == AIME.full_size
    assert [it.target for it in items] == [r["answer"] for r in raw]
    assert all(int(it.target) in range(1000) for it in items)
    by_input = {it.input: it.target for it in items}
    elog, check = _run(AIME, items, lambda text: f"Some work: 12 * 3 = 36.\nThe answer is {by_input[text]}.", tmp_path)
    assert elog.results.scores[0].metrics["accuracy"].value == 1.0
    assert check.ok and check.score == 1.0 and check.n_scored == 30, check.problems
    # a near miss and a non-integer are wrong
    assert not AIME.score_reply("The answer is 71.", "70")[0]
    assert not AIME.score_reply("The answer is 70.5.", "70")[0]
    assert AIME.score_reply("\\boxed{70}. The answer is 70", "70")[0]


def test_aime_wrong_answers_score_zero(tmp_path):
    items = AIME.load_test_items(root=ROOT)[:5]
    _, check = _run(AIME, items, lambda text: "The answer is 1000.", tmp_path)
    assert check.ok and check.score == 0.0


# ---------------------------------------------------------------------------------------------
# GPQA


def test_gpqa_shuffle_is_seeded_per_item():
    a = GPQA.load_test_items(root=ROOT)
    b = GPQA.load_test_items(root=ROOT)
    assert [(it.input, it.target) for it in a] == [(it.input, it.target) for it in b]
    raw = [json.loads(x) for x in (ROOT / "gpqamain" / "gpqa_main.jsonl").read_text().splitlines()]
    for it, rec in zip(a, raw, strict=True):
        letter_index = "ABCD".index(it.target)
        assert it.metadata["choices"][letter_index] == rec["Correct Answer"]
        assert f"{it.target}) {rec['Correct Answer']}" in it.input
    # the order depends on the record id only, and differs between ids
    assert gpqa_choices("x", "c", ["w1", "w2", "w3"]) == gpqa_choices("x", "c", ["w1", "w2", "w3"])
    letters = {gpqa_choices(f"rec{i}", "c", ["w1", "w2", "w3"])[1] for i in range(40)}
    assert letters == set("ABCD")


def test_gpqa_hub_format_through_datasets(monkeypatch, tmp_path):
    import datasets

    rows = [json.loads(x) for x in (ROOT / "gpqamain" / "gpqa_main.jsonl").read_text().splitlines()]
    calls = []

    def fake_hub(path, name=None, split=None, revision=None, **kw):  # the hub itself is gated
        calls.append((path, name, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    items = GPQA.load_test_items(root=tmp_path)  # no local file there: the hub path
    assert calls == [("Idavidrein/gpqa", "gpqa_main", "train")]
    assert [(it.id, it.target) for it in items] == [(it.id, it.target) for it in GPQA.load_test_items(root=ROOT)]

    def gated(*a, **k):
        raise ConnectionError("401: gated dataset, accept the terms")

    monkeypatch.setattr(datasets, "load_dataset", gated)
    with pytest.raises(DataError, match="gated dataset"):
        GPQA.load_test_items(root=tmp_path)


def test_gpqa_correct_letters_score_100_percent_and_wrong_zero(tmp_path):
    items = GPQA.load_test_items(root=ROOT)
    target = {it.input: it.target for it in items}
    _elog, check = _run(GPQA, items, lambda t: f"Reasoning...\nANSWER: {target[t]}", tmp_path / "right")
    assert check.ok and check.score == 1.0, check.problems
    wrong = {t: "ABCD"[("ABCD".index(x) + 1) % 4] for t, x in target.items()}
    _, check = _run(GPQA, items, lambda t: f"ANSWER: {wrong[t]}", tmp_path / "wrong")
    assert check.ok and check.score == 0.0
    _, check = _run(GPQA, items, lambda t: "I cannot decide.", tmp_path / "none")
    assert check.ok and check.score == 0.0


# ---------------------------------------------------------------------------------------------
# tiny model end to end


@pytest.mark.parametrize("benchmark", [AIME, GPQA], ids=lambda b: b.id)
def test_tiny_model_end_to_end(benchmark, tmp_path):
    tiny = build_tiny_model(tmp_path / "tiny")
    items = sorted(benchmark.load_test_items(root=ROOT), key=lambda it: len(it.input))[:2]
    res = evaluate_model(tiny, benchmark, TINY, tmp_path / "out", items=items, max_tokens=8, batch_size=2)
    assert res.status == "ok", res.error
    assert (res.n_scored, res.n_expected, res.max_tokens_used) == (2, 2, 8)
    assert res.score is not None and res.score == res.reported_score
