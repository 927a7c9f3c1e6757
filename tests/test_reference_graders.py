"""Arena-Hard and HealthBench under ptb-v1.2 and ptb-v1 (v1 judged alike, unseeded: docs/evaluation.md), judged as
the reference judges it (aisa-group/PostTrainBench
``tasks/arenahardwriting/evaluate_final_eval.py``): the reply post-processed (``<think>`` cut, repetitions capped),
the judge messages, the judge call (gpt-5-mini, reasoning effort, budget, no temperature), the verdict rules, the
dropped questions and the standard error. Goldens come from the reference's own code and files
(tests/build_postprocess_goldens.py, tests/build_judge_goldens.py); the judge is a local HTTP server speaking the
OpenAI protocol, so the real client sends what is asserted."""

from __future__ import annotations

import gzip
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.arenahardwriting import (
    JUDGE_SYSTEM,
    REFERENCE_JUDGE,
    REFERENCE_PATTERNS,
    games_stderr,
    judge_prompts,
    reference_games,
    reference_judge_prompts,
    reference_verdict,
)
from posttrainbench.catalog import get_base_model
from posttrainbench.evaluation import build_task, check_log, evaluate_model
from posttrainbench.evaluation.graders import Grader, GraderConfig, MalformedGrade
from posttrainbench.evaluation.protocols import REF_V1, REF_V1_2, REFERENCE_SEEDS, STRICT, get_protocol
from posttrainbench.evaluation.reference_postprocess import limit_repetitions, strip_reasoning
from posttrainbench.testing import FakeLLMServer

FIXTURES = Path(__file__).parent / "fixtures"
ARENA = get_benchmark("arenahardwriting")
KEY = "sk-test-harness-only-0123456789"
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}


def postprocess_rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in (FIXTURES / "postprocess_goldens.jsonl").read_text().splitlines()]


def judge_rows() -> tuple[list[dict[str, Any]], list[str]]:
    with gzip.open(FIXTURES / "prompt_goldens" / "arena_judge.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[:-1], rows[-1]["regex_patterns"]


def shipped() -> dict[str, Any]:
    return {it.metadata["uid"]: it for it in ARENA.load_test_items(local_only=True)}


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PTB_TEST_GRADER_KEY", KEY)
    return "PTB_TEST_GRADER_KEY"


# --------------------------------------------------------------------------- post-processing and judge messages


def test_replies_are_post_processed_as_the_reference_does() -> None:
    rows = postprocess_rows()
    assert len(rows) >= 250 and len({r["class"] for r in rows}) == 10
    for r in rows:
        assert limit_repetitions(strip_reasoning(r["reply"])) == r["judged"], (r["class"], r["reply"][:80])
    changed = [r for r in rows if r["reply"].strip() != r["judged"]]
    assert len(changed) > len(rows) // 2  # the control: most replies are changed, so equality is not the identity
    assert strip_reasoning("  <think>x</think>\n\n answer ") == "answer"
    assert strip_reasoning("<think>never closed") == "<think>never closed"
    assert strip_reasoning("Sure. <think>x</think> y") == "Sure. <think>x</think> y"  # not leading: kept


def test_judge_messages_are_the_references_for_every_golden_question_and_reply() -> None:
    rows, patterns = judge_rows()
    assert len({r["uid"] for r in rows}) >= 20 and [p.pattern for p in REFERENCE_PATTERNS] == patterns
    items = shipped()
    for r in rows:
        item = items[r["uid"]]
        judged = limit_repetitions(strip_reasoning(r["reply"]))
        assert judged == r["judged"]
        want = [(g[0]["content"], g[1]["content"]) for g in r["games"]]
        assert all(g[0]["role"] == "system" and g[1]["role"] == "user" for g in r["games"])
        assert reference_judge_prompts(item.input, judged, item.metadata["baseline_answer"]) == want
        # the control: strict quotes both answers (and judges the raw reply): other messages wherever the reply
        # or the baseline holds a mark it breaks up
        strict = judge_prompts(item.input, r["reply"], item.metadata["baseline_answer"])
        if r["reply"].startswith("  A reply with"):
            assert strict != want
    assert rows[0]["games"][0][0]["content"] == JUDGE_SYSTEM


def test_the_references_verdict_rules() -> None:
    assert reference_verdict("I think [[A>B]] at first, but my final verdict is [[b>>a]].") == "B>>A"  # last, any case
    assert reference_verdict("Verdict: [A=B]") == "A=B"  # the second pattern, single brackets
    assert reference_verdict("[[A>B]] then [B>A]") == "A>B"  # the first pattern that matches wins
    assert reference_verdict("no verdict at all") is None
    assert reference_games(["[[B>>A]]", "[[A>>B]]"]) == [1.0] * 6  # the model much better in both games
    assert reference_games(["[[A<B]]", "[[B=A]]"]) == [1.0, 0.5]  # labels only the reference's map has
    assert reference_games(["[[A>B]]", "nothing"]) is None  # dropped, as the reference drops it
    with pytest.raises(MalformedGrade):
        reference_games(["[[A>>>B]]", "[[A>B]]"])  # outside the map: the reference raises KeyError
    with pytest.raises(MalformedGrade):
        reference_games(["[[A>B]]", None])
    games = [1.0, 1.0, 1.0, 0.5, 0.0, 1.0]
    mean = sum(games) / len(games)
    assert games_stderr(games) == pytest.approx(
        math.sqrt(sum((g - mean) ** 2 for g in games) / (len(games) - 1)) / math.sqrt(len(games))
    )
    assert games_stderr(games) == pytest.approx(statistics.stdev(games) / math.sqrt(6)) and games_stderr([1.0]) == 0


# --------------------------------------------------------------------------- through Inspect and the evaluator


def _verdicts(drop: set[str]) -> Any:
    """A judge that prefers the model in both games, except for questions in ``drop`` (no verdict)."""

    def respond(body: dict[str, Any]) -> str:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if any(q in user for q in drop):
            return "I cannot decide."
        model_is_a = "MODEL-ANSWER" in user.split("<|The End of Assistant A's Answer|>")[0]
        return "My final verdict: [[A>>B]]" if model_is_a else "My final verdict is [B>A]"

    return respond


@pytest.mark.slow
def test_arena_through_inspect_sends_the_references_messages_and_scores_its_way(tmp_path: Path, key_env: str) -> None:
    rows, _ = judge_rows()
    reply = next(r for r in rows if r["reply"].startswith("<think>\nPlan"))["reply"]  # cut, then capped
    uids = list(dict.fromkeys(r["uid"] for r in rows))[:3]
    items = [shipped()[u] for u in uids]
    marked = reply.replace("Here is the poem.", "Here is the poem. MODEL-ANSWER")

    def model_reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", marked)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    drop = {items[2].input[:40]}
    with FakeLLMServer(_verdicts(drop)) as server:
        config = GraderConfig(model="x", base_url=server.base_url, api_key_env=key_env, backoff_s=0.0)
        grader = Grader(config.model_copy(update=ARENA.grader_settings(REF_V1_2)))
        task = build_task(ARENA, items, grader=grader, protocol=REF_V1_2)
        model = get_model("mockllm/model", custom_outputs=model_reply, memoize=False)
        elog = inspect_eval(task, model=model, log_dir=str(tmp_path), **EVAL_KW)[0]
    assert elog.status == "success" and len(server.requests) == 6
    judged = limit_repetitions(strip_reasoning(marked))
    assert "<think>" not in judged and judged.count("La la la.") == 5
    for item in items:
        want = reference_judge_prompts(item.input, judged, item.metadata["baseline_answer"])
        sent = [
            (r["body"]["messages"][0]["content"], r["body"]["messages"][1]["content"])
            for r in server.requests
            if item.input in r["body"]["messages"][1]["content"]
        ]
        assert sorted(sent) == sorted(want)
    for r in server.requests:  # the reference's judge call
        body = r["body"]
        assert (body["model"], body["reasoning_effort"], body["max_completion_tokens"]) == (
            "gpt-5-mini",
            "medium",
            49152,
        )
        assert "temperature" not in body and [m["role"] for m in body["messages"]] == ["system", "user"]
    metrics = elog.results.scores[0].metrics
    assert metrics["win_rate"].value == 1.0  # two questions, all 12 games won; the third dropped
    assert metrics["win_rate_stderr"].value == 0.0
    check = check_log(elog.location, ARENA, [it.id for it in items], protocol=REF_V1_2)
    assert check.ok and check.score == 1.0 and check.n_scored == 2, check.problems
    # under strict the same replies without a verdict are a failure, not a dropped question (the control)
    with FakeLLMServer(_verdicts(drop)) as server:
        grader = Grader(GraderConfig(model="x", base_url=server.base_url, api_key_env=key_env, backoff_s=0.0))
        task = build_task(ARENA, items, grader=grader, protocol=STRICT)
        strict = inspect_eval(task, model=model, log_dir=str(tmp_path / "s"), **EVAL_KW)[0]
    assert all(r["body"]["model"] == "x" and r["body"]["temperature"] == 0.0 for r in server.requests)
    bad = check_log(strict.location, ARENA, [it.id for it in items], protocol=STRICT)
    assert not bad.ok and any("could not be graded" in p for p in bad.problems)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [REF_V1_2, REF_V1])
def test_the_evaluator_judges_arena_with_the_references_judge(tmp_path: Path, key_env: str, protocol: str) -> None:
    """ptb eval's path (evaluate_model): the protocol's judge replaces the configured model on the configured
    endpoint; under ptb-v1.2 one seed runs (the reference grades Arena-Hard with the first seed only), under ptb-v1
    one unseeded run (v1 had no seeds); the result records it."""
    from posttrainbench.models.tiny import build_tiny_model
    from test_reference_prompts import ends_at_once

    rows, _ = judge_rows()
    empty = {r["uid"]: r for r in rows if r["reply"] == ""}
    items = [shipped()[u] for u in list(empty)[:2]]
    base = build_tiny_model(tmp_path / "base", seed=0, max_positions=20_000)
    model = ends_at_once(build_tiny_model(tmp_path / "tiny", seed=0, max_positions=20_000))
    with FakeLLMServer(lambda body: "[[A=B]]") as server:
        config = GraderConfig(model="configured", base_url=server.base_url, api_key_env=key_env, backoff_s=0.0)
        r = evaluate_model(model, ARENA, get_base_model("ptb/tiny-random"), tmp_path / "out", items=items,
                           grader=config, protocol=protocol, base_model_path=base, batch_size=2)  # fmt: skip
    assert r.ok, r.error
    if protocol == REF_V1_2:
        assert r.num_seeds == 1 and [s.seed for s in r.seeds] == [REFERENCE_SEEDS[0]]
    else:
        assert not r.num_seeds and r.seeds == []
    assert r.score == 0.5
    assert r.grader is not None and r.grader["model"] == "gpt-5-mini" and r.grader["reasoning_effort"] == "medium"
    assert (r.protocol, r.protocol_digest) == (protocol, get_protocol(protocol).digest)
    sent = sorted((q["body"]["messages"][0]["content"], q["body"]["messages"][1]["content"]) for q in server.requests)
    want = sorted((g[0]["content"], g[1]["content"]) for u in list(empty)[:2] for g in empty[u]["games"])
    assert sent == want  # the empty reply's judge messages, as the reference builds them
    assert REFERENCE_JUDGE["model"] == "gpt-5-mini"


# --------------------------------------------------------------------------- HealthBench under ptb-v1.2

HEALTH = get_benchmark("healthbench")


def health_rows() -> list[dict[str, Any]]:
    with gzip.open(FIXTURES / "prompt_goldens" / "healthbench_grader.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_healthbench_grader_prompts_are_the_references() -> None:
    from posttrainbench.benchmarks.healthbench import grader_prompt, reference_grader_prompt

    rows = health_rows()
    items = {it.id.removeprefix("healthbench-"): it for it in HEALTH.load_test_items(local_only=True)}
    assert len({r["prompt_id"] for r in rows}) >= 10 and sum(len(r["prompts"]) for r in rows) >= 300
    quoted_differs = 0
    for r in rows:
        item = items[r["prompt_id"]]
        judged = limit_repetitions(strip_reasoning(r["reply"]))
        assert judged == r["judged"]
        rubrics = item.metadata["rubrics"]
        ours = [reference_grader_prompt(item.metadata["conversation"], judged, rb) for rb in rubrics]
        assert ours == r["prompts"], r["prompt_id"]
        # the control: strict quotes the reply (and grades it raw), which shows where it holds a marker
        conversation = [*item.metadata["conversation"], {"role": "assistant", "content": r["reply"]}]
        quoted_differs += [grader_prompt(conversation, rb) for rb in rubrics] != r["prompts"]
    assert quoted_differs >= len(rows) // 2


def test_healthbench_reference_reading_of_grades_and_its_stderr() -> None:
    import numpy as np

    from posttrainbench.benchmarks.healthbench import (
        reference_bootstrap_stderr,
        reference_label,
        reference_met,
        reference_value,
    )

    assert reference_label('```json\n{"explanation": "x", "criteria_met": true}\n```') is True
    assert reference_label('{"criteria_met": false}') is False
    for unreadable in ('{"criteria_met": 1}', "not json", "[true]", 'Sure: ```json\n{"criteria_met": true}\n```'):
        assert reference_label(unreadable) is None  # asked again; the last one: only an outer fence is removed
    assert reference_met(["garbage", None, '{"criteria_met": true}']) is True
    assert reference_met(["garbage", "garbage", "garbage"]) is False  # the reference's failure: not met
    rubrics = [{"points": 5}, {"points": 3}, {"points": -4}]
    assert reference_value(rubrics, [True, False, True]) == pytest.approx(1 / 8)  # not clipped per example
    assert reference_value([{"points": -2}], [True]) == 0.0
    values = [0.1, 0.9, -0.3, 0.5, 1.0]
    se = reference_bootstrap_stderr(values)
    assert se == reference_bootstrap_stderr(values) and 0 < se < 0.5 and reference_bootstrap_stderr([0.4]) == 0.0
    rng = np.random.default_rng(7)  # another seed gives another figure: the seed is part of the rule
    other = float(np.std([np.clip(np.mean(rng.choice(values, size=5)), 0, 1) for _ in range(1000)]))
    assert other != se


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [REF_V1_2, REF_V1])
def test_healthbench_through_inspect_grades_as_the_reference(tmp_path: Path, key_env: str, protocol: str) -> None:
    from posttrainbench.benchmarks.healthbench import reference_grader_prompt

    rows = health_rows()
    items = {it.id.removeprefix("healthbench-"): it for it in HEALTH.load_test_items(local_only=True)}
    golden = next(r for r in rows if r["reply"].startswith("<think>\nPlan"))
    item = items[golden["prompt_id"]]
    rubrics = item.metadata["rubrics"]
    stubborn = rubrics[0]["criterion"]  # never answered readably: not met after 3 tries

    def respond(body: dict[str, Any]) -> str:
        prompt = body["messages"][0]["content"]
        rubric = prompt.split("# Rubric item\n")[1].split("\n\n# Instructions")[0]
        if stubborn in rubric:
            return "I refuse to answer in JSON."
        met = not rubric.startswith("[-")
        return f'```json\n{{"explanation": "fake", "criteria_met": {"true" if met else "false"}}}\n```'

    def model_reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", golden["reply"])
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    with FakeLLMServer(respond) as server:
        config = GraderConfig(model="x", base_url=server.base_url, api_key_env=key_env, backoff_s=0.0)
        grader = Grader(config.model_copy(update=HEALTH.grader_settings(protocol)))
        task = build_task(HEALTH, [item], grader=grader, protocol=protocol)
        model = get_model("mockllm/model", custom_outputs=model_reply, memoize=False)
        elog = inspect_eval(task, model=model, log_dir=str(tmp_path), **EVAL_KW)[0]
    assert elog.status == "success"
    assert len(server.requests) == len(rubrics) + 2  # the stubborn criterion asked 3 times
    sent = [r["body"]["messages"] for r in server.requests]
    assert all(len(m) == 1 and m[0]["role"] == "user" for m in sent)  # no system turn
    assert sorted({m[0]["content"] for m in sent}) == sorted(golden["prompts"])
    conv = item.metadata["conversation"]
    assert golden["prompts"] == [reference_grader_prompt(conv, golden["judged"], rb) for rb in rubrics]
    for r in server.requests:
        body = r["body"]
        assert (body["model"], body["max_completion_tokens"]) == ("gpt-5-mini", 49152)
        assert "temperature" not in body and "reasoning_effort" not in body
    positive = sum(rb["points"] for rb in rubrics if rb["points"] > 0)
    met = [rb["points"] > 0 and rb["criterion"] != stubborn for rb in rubrics]
    want = sum(rb["points"] for rb, m in zip(rubrics, met, strict=True) if m) / positive
    assert elog.results.scores[0].metrics["rubric_score"].value == pytest.approx(min(1.0, max(0.0, want)))
    check = check_log(elog.location, HEALTH, [item.id], protocol=protocol)
    assert check.ok and check.score == pytest.approx(min(1.0, max(0.0, want))), check.problems


def test_ptb_v1_grades_arena_and_healthbench_with_the_v12_judge_call_and_strict_with_the_configured_one() -> None:
    """v1 judged these two as v1.2 does (the evidence is in docs/evaluation.md): the same call settings replace the
    configured grader's under both reference protocols, and none under strict (the control)."""
    from posttrainbench.benchmarks.healthbench import REFERENCE_GRADER

    for bench, call in ((ARENA, REFERENCE_JUDGE), (HEALTH, REFERENCE_GRADER)):
        assert bench.grader_settings(REF_V1) == bench.grader_settings(REF_V1_2) == dict(call)
        assert call["model"] == "gpt-5-mini" and bench.grader_settings(STRICT) == {}
        assert get_protocol(REF_V1).settings_for(bench.id).seeds == ()  # v1: one unseeded run
