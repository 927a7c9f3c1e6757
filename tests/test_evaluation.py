"""Evaluation: scorers, the ptb-hf provider end to end, retry ladder, log recomputation,
bad model folders, pinned decoding, the workspace evaluate.py. CPU, tiny model, no network."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.gsm8k import gsm8k_completion
from posttrainbench.catalog import get_base_model
from posttrainbench.data import data_root, write_dev_file
from posttrainbench.domain import Decoding
from posttrainbench.evaluation import (
    EvalResult,
    build_task,
    check_log,
    check_model_folder,
    evaluate_model,
    ladder,
    numbers_match,
    workspace_script_path,
)
from posttrainbench.evaluation.hf_provider import GenKey, PtbHFAPI
from posttrainbench.models.tiny import build_tiny_model

CALC = get_benchmark("gsm8k-calc")
GSM8K = get_benchmark("gsm8k")
TINY = get_base_model("ptb/tiny-random")  # "plain" chat template
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def calc_items():
    return CALC.load_test_items()


def _completions(log_path: str) -> dict[str, str]:
    return {str(s.id): s.output.completion for s in read_eval_log(log_path).samples}


# ---------------------------------------------------------------------------------------------
# scoring rules


def test_number_matching():
    assert numbers_match("1,000", "1000")
    assert numbers_match("18.00", "18")
    assert numbers_match("$18.", "18")
    assert numbers_match("0.5", ".5")
    assert not numbers_match("17", "18")
    assert not numbers_match(None, "18")
    assert not numbers_match("abc", "18")


def test_answer_extraction():
    # gsm8k-calc: the first number of the reply
    assert CALC.extract_answer(" 24\nCalculate 3+4") == "24"
    assert CALC.extract_answer("The result is -1,250.5 units") == "-1,250.5"
    assert CALC.extract_answer("no digits") is None
    # gsm8k: "#### N", else "The answer is N", else the last number
    assert GSM8K.extract_answer("3 apples and 4 pears\n#### 7\nthen 9") == "7"
    assert GSM8K.extract_answer("So 3+4=7. The answer is 7. Bonus 12") == "7"
    assert GSM8K.extract_answer("the answer is: $1,200.") == "1,200"
    assert GSM8K.extract_answer("3 + 4 = 7") == "7"
    assert GSM8K.extract_answer("") is None


def test_gsm8k_reference_solutions_score_perfectly():
    raw = [json.loads(line) for line in (data_root() / "gsm8k" / "test.jsonl").read_text().splitlines()]
    items = GSM8K.load_test_items()
    for rec, item in zip(raw, items, strict=True):
        assert GSM8K.score_reply(rec["answer"], item.target)[0], rec["answer"]
        assert GSM8K.score_reply(gsm8k_completion(rec["answer"]), item.target)[0]


def test_calc_targets_score_perfectly(calc_items):
    for it in calc_items:
        assert CALC.score_reply(it.target, it.target)[0]
        assert CALC.score_reply(f"{it.target}\n", it.target)[0]
        # the step recomputed in Python agrees with the annotated result
        assert math.isclose(eval(it.metadata["expr"]), float(it.target), rel_tol=1e-6, abs_tol=1e-9)


def _mock_eval(benchmark, items, answers: dict[str, str], log_dir: Path):
    """Run the real Inspect task with mockllm replying ``answers[item.input]``."""

    def reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", answers[input[-1].text])
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return out

    model = get_model("mockllm/model", custom_outputs=reply, memoize=False)
    return inspect_eval(build_task(benchmark, items), model=model, log_dir=str(log_dir), **EVAL_KW)[0]


def test_inspect_task_scores_reference_answers_fully(tmp_path):
    items = GSM8K.load_test_items()[:12]
    raw = [json.loads(line) for line in (data_root() / "gsm8k" / "test.jsonl").read_text().splitlines()[:12]]
    elog = _mock_eval(GSM8K, items, {it.input: r["answer"] for it, r in zip(items, raw)}, tmp_path)
    assert elog.status == "success"
    assert elog.results.scores[0].metrics["accuracy"].value == 1.0
    # the few-shot turns were sent before the item's own prompt
    sample = elog.samples[0]
    assert len(sample.input) == 2 * GSM8K.fewshot + 1
    check = check_log(elog.location, GSM8K, [it.id for it in items])
    assert check.ok and check.score == 1.0 and check.n_scored == 12, check.problems


def test_log_recomputation_detects_tampering_and_missing_samples(tmp_path, calc_items):
    items = calc_items[:6]
    answers = {it.input: (it.target if i % 2 == 0 else "0.123") for i, it in enumerate(items)}
    elog = _mock_eval(CALC, items, answers, tmp_path)
    ids = [it.id for it in items]
    good = check_log(elog.location, CALC, ids)
    assert good.ok and good.score == 0.5 and good.reported_score == 0.5

    # a sample's stored score flipped: per-sample disagreement and metric mismatch
    bad = read_eval_log(elog.location)
    flipped = bad.samples[1].scores["ptb_answer"]
    bad.samples[1].scores["ptb_answer"] = flipped.model_copy(update={"value": "C"})
    write_eval_log(bad, tmp_path / "flipped.eval")
    check = check_log(tmp_path / "flipped.eval", CALC, ids)
    assert not check.ok and any("disagree" in p for p in check.problems)

    # the reported metric changed
    bad = read_eval_log(elog.location)
    bad.results.scores[0].metrics["accuracy"].value = 0.9
    write_eval_log(bad, tmp_path / "metric.eval")
    check = check_log(tmp_path / "metric.eval", CALC, ids)
    assert not check.ok and any("reported accuracy 0.9" in p for p in check.problems)

    # more samples expected than scored
    check = check_log(elog.location, CALC, [*ids, "calc-999"])
    assert not check.ok and any("only 6 of 7" in p for p in check.problems)

    # unreadable log
    (tmp_path / "junk.eval").write_bytes(b"not a log")
    assert not check_log(tmp_path / "junk.eval", CALC, ids).ok


# ---------------------------------------------------------------------------------------------
# the ptb-hf provider and evaluate_model


def _hf(model: Model) -> PtbHFAPI:
    """The ptb-hf provider behind ``model``."""
    assert isinstance(model.api, PtbHFAPI)
    return model.api


def test_ptb_hf_batches_requests(tiny, tmp_path, calc_items):
    model = get_model("ptb-hf/tiny", memoize=False, model_path=str(tiny), chat_template="plain", batch_size=4)
    for n in (10, 3):
        before = _hf(model).batches_run
        elog = inspect_eval(
            build_task(CALC, calc_items[:n]),
            model=model,
            log_dir=str(tmp_path),
            max_connections=4,
            max_samples=4,
            **EVAL_KW,
        )[0]
        assert elog.status == "success"
        assert len(elog.samples) == n
        assert _hf(model).batches_run - before == math.ceil(n / 4)
    for s in elog.samples:
        assert len(s.output.completion) <= CALC.decoding.max_tokens  # character-level tokenizer
        assert s.output.usage.output_tokens <= CALC.decoding.max_tokens


def test_ptb_hf_uses_the_declared_chat_template(tmp_path):
    path = build_tiny_model(tmp_path / "m", chat_template="{{ 'SUBMITTED TEMPLATE' }}")
    model = get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="plain")
    from inspect_ai.model import ChatMessageUser

    assert _hf(model).render([ChatMessageUser(content="hi")]) == "Question: hi\nAnswer:"
    chatml = get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="chatml")
    assert (
        _hf(chatml).render([ChatMessageUser(content="hi")]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert _hf(chatml).stop_strings(GenKey(8, 0.0, 1.0, ("STOP",))) == ("STOP", "<|im_end|>", "</s>")
    with pytest.raises(ValueError, match="chat_template"):
        get_model("ptb-hf/m", memoize=False, model_path=str(path))
    with pytest.raises(ValueError, match="unknown model_args"):
        get_model("ptb-hf/m", memoize=False, model_path=str(path), chat_template="plain", bogus=1)


def test_evaluate_model_end_to_end(tiny, tmp_path, calc_items):
    res = evaluate_model(tiny, CALC, TINY, tmp_path / "out", items=calc_items, limit=5, batch_size=4)
    assert res.status == "ok", res.error
    assert (res.n_scored, res.n_expected) == (5, 5)
    assert res.max_tokens_used == CALC.max_tokens_ladder[0]
    assert [a.error for a in res.attempts] == [None]
    assert res.score is not None and 0.0 <= res.score <= 1.0 and res.score == res.reported_score
    assert Path(res.log_path).is_file() and Path(res.log_path).parent == tmp_path / "out"
    assert res.decoding == CALC.decoding and res.chat_template == "plain"
    metrics = res.to_metrics_json()
    assert metrics["accuracy"] == res.score and "stderr" in metrics and metrics["status"] == "ok"
    assert EvalResult.model_validate_json(res.model_dump_json()) == res
    # the log holds the samples asked: same ids, in the harness's own prompt wording
    elog = read_eval_log(res.log_path)
    assert {str(s.id) for s in elog.samples} == {it.id for it in calc_items[:5]}
    asked = elog.samples[0].input
    assert isinstance(asked, list) and asked[-1].text == calc_items[0].input


def test_stop_strings_cut_the_output(tiny, tmp_path, calc_items):
    items = calc_items[:4]
    free = evaluate_model(tiny, CALC, TINY, tmp_path / "a", items=items, batch_size=4)
    outs = _completions(free.log_path)
    text = max(outs.values(), key=len)
    stop = text[len(text) // 2]  # a character the model does produce
    bench = CALC.model_copy(update={"decoding": Decoding(temperature=0.0, max_tokens=16, stop=(stop,))})
    cut = evaluate_model(tiny, bench, TINY, tmp_path / "b", items=items, batch_size=4)
    for sid, full in outs.items():
        assert _completions(cut.log_path)[sid] == full.split(stop)[0]


def test_retry_ladder_goes_down_and_records_attempts(tiny, tmp_path, calc_items):
    res = evaluate_model(
        tiny, CALC, TINY, tmp_path, items=calc_items[:3], batch_size=4, model_args={"fail_above_max_tokens": 12}
    )
    assert res.status == "ok", res.error
    assert [a.max_tokens for a in res.attempts] == [16, 12]
    assert "injected failure" in res.attempts[0].error and res.attempts[1].error is None
    assert res.max_tokens_used == 12 and res.decoding.max_tokens == 12

    res = evaluate_model(
        tiny, CALC, TINY, tmp_path, items=calc_items[:3], batch_size=4, model_args={"fail_above_max_tokens": 1}
    )
    assert res.status == "failed" and res.score is None
    assert [a.max_tokens for a in res.attempts] == list(CALC.max_tokens_ladder)
    assert "all 3 attempt(s)" in res.error and "injected failure" in res.error


def test_ladder_steps_below_the_context_length(tiny, tmp_path, calc_items):
    # the tiny model has 512 positions: a 600-token budget cannot fit, 40 can
    bench = CALC.model_copy(update={"max_tokens_ladder": (600, 40, 8)})
    res = evaluate_model(tiny, bench, TINY, tmp_path, items=calc_items[:2], batch_size=2)
    assert res.status == "ok", res.error
    assert [a.max_tokens for a in res.attempts] == [600, 40]
    assert "exceeds the model's context length (512)" in res.attempts[0].error


def test_evaluate_model_inside_a_running_event_loop(tiny, tmp_path, calc_items):
    import asyncio

    async def caller():
        return evaluate_model(tiny, CALC, TINY, tmp_path, items=calc_items[:2], batch_size=2)

    assert asyncio.run(caller()).status == "ok"


def test_an_unforeseen_crash_becomes_a_failed_result(tiny, tmp_path, calc_items):
    import asyncio

    blocker = tmp_path / "out"
    blocker.write_text("a file where the log folder should go")  # out_dir.mkdir() raises
    res = evaluate_model(tiny, CALC, TINY, blocker, items=calc_items[:2], batch_size=2)
    assert res.status == "failed" and res.error.startswith("evaluation crashed: FileExistsError")
    assert res.benchmark == CALC.id and res.model_path == str(tiny) and res.chat_template == "plain"

    async def caller():  # the same inside a running loop (worker thread)
        return evaluate_model(tiny, CALC, TINY, blocker, items=calc_items[:2], batch_size=2)

    assert asyncio.run(caller()).error == res.error


def test_ladder_rungs():
    assert ladder(GSM8K) == [4000, 3000, 2000]
    assert ladder(GSM8K, 3500) == [3500, 3000, 2000]
    assert ladder(GSM8K, 9000) == [9000, 4000, 3000]
    assert ladder(GSM8K, 100) == [100]
    with pytest.raises(ValueError):
        ladder(GSM8K, 0)


def test_decoding_is_pinned_not_taken_from_the_submission(tiny, tmp_path, calc_items):
    items = calc_items[:4]
    ref = evaluate_model(tiny, CALC, TINY, tmp_path / "ref", items=items, batch_size=4)
    hot = tmp_path / "hot"
    shutil.copytree(tiny, hot)
    submitted = {
        "temperature": 1.5,
        "do_sample": True,
        "top_k": 3,
        "repetition_penalty": 5.0,
        "max_new_tokens": 2,
        "min_new_tokens": 10,
        "no_repeat_ngram_size": 1,
        "eos_token_id": 7,
    }
    (hot / "generation_config.json").write_text(json.dumps(submitted))
    res = evaluate_model(hot, CALC, TINY, tmp_path / "hot-out", items=items, batch_size=4)
    assert res.status == "ok", res.error
    assert res.submission_generation_config["temperature"] == 1.5  # recorded only
    assert _completions(res.log_path) == _completions(ref.log_path)
    assert res.score == ref.score


def _copy_without(src: Path, dst: Path, *names: str) -> Path:
    shutil.copytree(src, dst)
    for n in names:
        (dst / n).unlink()
    return dst


@pytest.mark.parametrize(
    "case, cause",
    [
        ("missing", "does not exist"),
        ("empty", "no config.json"),
        ("adapter", "PEFT adapter"),
        ("no-weights", "no weights"),
        ("garbage-weights", "safetensors header does not parse"),
        ("truncated-weights", "truncated: the header declares"),
        ("no-tokenizer", "no tokenizer"),
        ("bad-config", "config.json does not parse"),
        ("unknown-arch", "cannot load the model"),
        ("partial-weights", "lacks"),
    ],
)
def test_bad_model_folders_fail_with_their_cause(tiny, tmp_path, calc_items, case, cause):
    d = tmp_path / case
    if case == "empty":
        d.mkdir()
    elif case == "adapter":
        d.mkdir()
        (d / "adapter_config.json").write_text("{}")
        (d / "adapter_model.safetensors").write_bytes(b"")
    elif case == "no-weights":
        _copy_without(tiny, d, "model.safetensors")
    elif case == "garbage-weights":
        _copy_without(tiny, d, "model.safetensors")
        (d / "model.safetensors").write_bytes(b"\x00garbage" * 64)
    elif case == "truncated-weights":
        _copy_without(tiny, d, "model.safetensors")
        data = (tiny / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "no-tokenizer":
        _copy_without(tiny, d, "tokenizer.json")
    elif case == "bad-config":
        _copy_without(tiny, d, "config.json")
        (d / "config.json").write_text("{oops")
    elif case == "unknown-arch":
        shutil.copytree(tiny, d)
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "model_type": "not-a-model", "architectures": ["X"]}))
    elif case == "partial-weights":
        from safetensors.torch import load_file, save_file

        shutil.copytree(tiny, d)
        tensors = load_file(d / "model.safetensors")
        save_file({k: v for k, v in tensors.items() if "layers.1." not in k}, d / "model.safetensors")
    res = evaluate_model(d, CALC, TINY, tmp_path / "out", items=calc_items[:2])
    assert res.status == "failed" and res.score is None
    assert cause in res.error, res.error
    if case not in ("unknown-arch", "partial-weights"):
        assert check_model_folder(d) is not None


def test_no_items_missing_data_and_crashes_fail_cleanly(tiny, tmp_path, calc_items, monkeypatch):
    res = evaluate_model(tiny, CALC, TINY, tmp_path, items=[])
    assert res.status == "failed" and "no items" in res.error
    res = evaluate_model(tiny, CALC, TINY, tmp_path, items=[calc_items[0], calc_items[0]])
    assert res.status == "failed" and "not unique" in res.error
    # an unforeseen crash inside the evaluator is a failed result too, never an exception
    import posttrainbench.evaluation.runner as runner

    monkeypatch.setattr(runner, "check_model_folder", lambda p: 1 / 0)
    res = evaluate_model(tiny, CALC, TINY, tmp_path, items=calc_items[:1])
    assert res.status == "failed" and "ZeroDivisionError" in res.error
    missing = get_benchmark("aime2025").model_copy(update={"hub_id": None, "local_test_file": "nowhere/test.jsonl"})
    res = evaluate_model(tiny, missing, TINY, tmp_path)
    assert res.status == "failed" and res.error.startswith("data: aime2025:") and "no hub source" in res.error


# ---------------------------------------------------------------------------------------------
# the agent-facing evaluate.py


def _load_workspace_script(path: Path):
    spec = importlib.util.spec_from_file_location("ptb_workspace_evaluate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workspace_evaluate_script(tiny, tmp_path, calc_items, monkeypatch, capsys):
    ws = tmp_path / "ws"
    (ws / "task").mkdir(parents=True)
    shutil.copy(workspace_script_path(), ws / "evaluate.py")
    (ws / "task" / "task.json").write_text(json.dumps({"benchmark": "gsm8k-calc", "base_model_id": "ptb/tiny-random"}))
    write_dev_file(ws / "task" / "dev.jsonl", calc_items[:4])
    shutil.copytree(tiny, ws / "final_model")
    # the package's resources are hidden inside the sandbox: the script must not need them
    monkeypatch.setenv("PTB_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.chdir(ws)
    script = _load_workspace_script(ws / "evaluate.py")
    rc = script.main(["--limit", "3", "--max-connections", "2", "--json-output-file", "out.json"])
    assert rc == 0, capsys.readouterr()
    out = json.loads((ws / "out.json").read_text())
    assert out["status"] == "ok" and out["n_scored"] == 3 and "accuracy" in out and "stderr" in out
    assert Path(out["log_path"]).parent == ws / "eval_logs"
    assert "gsm8k-calc accuracy" in capsys.readouterr().out

    rc = script.main(["--model-path", "nope", "--json-output-file", "bad.json"])
    assert rc == 1 and json.loads((ws / "bad.json").read_text())["status"] == "failed"
    (ws / "task" / "task.json").write_text("{}")
    assert script.main([]) == 2


# ---------------------------------------------------------------------------------------------
# the harness's limits come from the base model; the held-out score


def test_the_submission_cannot_move_the_harness_limits(tiny, tmp_path, calc_items):
    """A submission that claims a longer context and another end-of-sequence token is still
    held to the base model's: 512 positions and '</s>'."""
    sub = tmp_path / "sub"
    shutil.copytree(tiny, sub)
    cfg = json.loads((sub / "config.json").read_text())
    (sub / "config.json").write_text(json.dumps({**cfg, "max_position_embeddings": 8192}))
    tc = json.loads((sub / "tokenizer_config.json").read_text())
    (sub / "tokenizer_config.json").write_text(json.dumps({**tc, "eos_token": "\n", "model_max_length": 8192}))
    bench = CALC.model_copy(update={"max_tokens_ladder": (600, 40, 8)})
    res = evaluate_model(sub, bench, TINY, tmp_path / "a", items=calc_items[:2], batch_size=2, base_model_path=tiny)
    assert res.status == "ok", res.error
    assert res.limits.context_length == 512 and res.limits.eos_token == "</s>" and res.limits.source == str(tiny)
    assert "exceeds the model's context length (512)" in res.attempts[0].error
    model = get_model(
        "ptb-hf/sub", memoize=False, model_path=str(sub), chat_template="chatml",
        context_length=res.limits.context_length, eos_token=res.limits.eos_token,
    )  # fmt: skip
    assert _hf(model).stop_strings(GenKey(8, 0.0, 1.0, ())) == ("<|im_end|>", "</s>"), "not the submission's '\\n'"
    assert _hf(model).context_length() == 512
    # without harness limits (a bare provider), the folder's own values would have applied
    bare = get_model("ptb-hf/sub", memoize=False, model_path=str(sub), chat_template="chatml")
    assert _hf(bare).context_length() == 8192 and "\n" in _hf(bare).stop_strings(GenKey(8, 0.0, 1.0, ()))


def test_heldout_score_leaves_out_the_dev_items(tiny, tmp_path, calc_items):
    items = calc_items[:6]
    dev = [it.id for it in items[:2]] + ["not-in-this-set"]
    res = evaluate_model(tiny, CALC, TINY, tmp_path, items=items, batch_size=6, heldout_exclude=dev)
    assert res.status == "ok", res.error
    elog = read_eval_log(res.log_path)
    per = {str(s.id): float(s.scores["ptb_answer"].value == "C") for s in elog.samples}
    held = [per[it.id] for it in items[2:]]
    assert (res.n_heldout, res.n_dev_excluded) == (4, 2)
    assert res.heldout_score == pytest.approx(sum(held) / len(held))
    assert res.score == pytest.approx(sum(per.values()) / 6)
    assert res.to_metrics_json()["heldout"] == {"accuracy": res.heldout_score, "n_scored": 4, "dev_excluded": 2}
    plain = evaluate_model(tiny, CALC, TINY, tmp_path / "p", items=items, batch_size=6)
    assert plain.heldout_score is None and "heldout" not in plain.to_metrics_json()
