"""Domain model and catalog: validation, deterministic ids, clear errors for unknown names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from posttrainbench.agents import get_agent
from posttrainbench.benchmarks import BENCHMARKS, get_benchmark
from posttrainbench.catalog import (
    BASE_MODELS,
    UnknownNameError,
    get_base_model,
    get_chat_template,
)
from posttrainbench.domain import Benchmark, RunRecord, RunSpec, Verdict, VerdictStatus

PAPER_BENCHMARKS = {"aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval"}
PAPER_MODELS = {"Qwen/Qwen3-1.7B-Base", "Qwen/Qwen3-4B-Base", "HuggingFaceTB/SmolLM3-3B-Base", "google/gemma-3-4b-pt"}


def test_catalog_has_the_papers_entries() -> None:
    assert set(BENCHMARKS) >= PAPER_BENCHMARKS
    assert set(BASE_MODELS) >= PAPER_MODELS
    for hub_id in PAPER_MODELS:
        m = get_base_model(hub_id)
        assert m.instruct_id in m.forbidden, "the official instruct checkpoint must be forbidden"
        assert get_chat_template(m.chat_template)
    assert get_benchmark("gsm8k").max_tokens_ladder == (4000, 3000, 2000)
    assert get_benchmark("aime2025").max_tokens_ladder == (16000, 12000, 8000)


def test_bare_model_name_resolves() -> None:
    assert get_base_model("Qwen3-4B-Base").hub_id == "Qwen/Qwen3-4B-Base"


@pytest.mark.parametrize(
    ("lookup", "name", "suggestion"),
    [
        (get_benchmark, "gsm8", "gsm8k"),
        (get_base_model, "Qwen/Qwen3-4B-Bas", "Qwen/Qwen3-4B-Base"),
        (get_agent, "claud", "claude"),
    ],
)
def test_unknown_names_are_clear(lookup, name: str, suggestion: str) -> None:
    with pytest.raises(UnknownNameError) as err:
        lookup(name)
    msg = str(err.value)
    assert name in msg and f"Did you mean {suggestion}" in msg


def test_run_id_is_deterministic_and_depends_on_repeat() -> None:
    a = RunSpec(agent="reference", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=1)
    b = RunSpec(agent="reference", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=1)
    c = a.model_copy(update={"repeat": 1})
    assert a.run_id() == b.run_id() and len(a.run_id()) == 12
    assert c.run_id() != a.run_id()


def test_spec_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        RunSpec(agent="reference", base_model="x", benchmark="y", hours=-1)
    with pytest.raises(ValidationError):
        RunSpec(agent="reference", base_model="x", benchmark="y", hours=1, unknown_field=3)  # type: ignore[call-arg]  # on purpose
    with pytest.raises(ValidationError, match="strictly decreasing"):
        Benchmark(id="b", display_name="B", full_size=1, dev_size=1, max_tokens_ladder=(10, 20))


def test_record_round_trips_and_missing_verdicts_are_not_clean() -> None:
    spec = RunSpec(agent="reference", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=1)
    rec = RunRecord(run_id=spec.run_id(), spec=spec)
    assert not rec.verified and not rec.completed
    rec.verdicts = [Verdict(gate="tamper", status=VerdictStatus.passed)]
    assert not rec.verified, "verdicts alone (no final verdict) must not count as verified"
    again = RunRecord.model_validate_json(rec.model_dump_json())
    assert again == rec
