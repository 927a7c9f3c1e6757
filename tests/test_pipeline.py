"""The whole lifecycle, end to end, inside the real bubblewrap sandbox with a tiny model,
plus the bad-input cases: each must leave a run.json that records the cause and phase."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from posttrainbench.catalog import UnknownNameError
from posttrainbench.domain import CollectResult, EvaluateResult, RunSpec, VerdictStatus
from posttrainbench.leaderboard import score_cell
from posttrainbench.pipeline import Pipeline
from posttrainbench.results import load_record

BASE = "ptb/tiny-random"
BENCH = "gsm8k-calc"


def _spec(agent: str = "reference", config: str = "sft:steps=3,bs=4", hours: float = 0.05, **kw) -> RunSpec:
    return RunSpec(agent=agent, agent_config=config, base_model=BASE, benchmark=BENCH, hours=hours, eval_limit=6, **kw)


def _verdicts(record) -> dict[str, VerdictStatus]:
    return {v.gate: v.status for v in record.verdicts}


def test_reference_agent_full_lifecycle_then_resume_is_a_no_op(tmp_path: Path) -> None:
    pipe = Pipeline(_spec(), tmp_path)
    record = pipe.run()
    p = pipe.paths
    assert record.failure is None, record.failure
    assert all(s.status == "done" for s in record.phases.values())
    assert record.exit_code == 0 and not record.timed_out
    # the published layout
    for f in (
        p.run_json,
        p.metrics_json,
        p.time_taken,
        p.prompt,
        p.solve_out,
        p.contamination_judgement,
        p.disallowed_model_judgement,
    ):
        assert f.is_file(), f
    assert (p.final_model / "config.json").is_file()
    assert {"evaluate.py", "timer.sh", "task/task.json", "task/dev.jsonl"} <= set(record.manifest)
    gates = _verdicts(record)
    for gate in ("tamper", "transfer", "model_format", "lineage", "contamination"):
        assert gates[gate] == VerdictStatus.passed, (gate, record.verdicts)
    assert gates["judge"] == VerdictStatus.not_run
    assert record.verified
    assert record.metrics.status == "ok" and record.metrics.n_scored == 6
    metrics = json.loads(p.metrics_json.read_text())
    assert metrics["accuracy"] == record.metrics.score
    # the dev items the agent was given are recorded, and the held-out score leaves them out
    dev_ids = record.phases.prepare.result().dev_ids
    assert dev_ids == [json.loads(line)["id"] for line in (p.workspace / "task" / "dev.jsonl").read_text().splitlines()]
    evaluated = {str(s.id) for s in read_eval_log(record.metrics.log_path).samples}
    overlap = len(set(dev_ids) & evaluated)
    assert record.metrics.n_dev_excluded == overlap and record.metrics.n_heldout == (6 - overlap if overlap else 0)
    # what was evaluated is what was verified: the recorded weights digest, checked after loading
    extra = record.metrics.model_extra or {}  # EvalResult's fields beyond RunMetrics' own
    assert extra["weights_check"]["digest"] == record.submission["weights_digest"]
    assert extra["limits"]["context_length"] is not None
    assert "loss" in p.solve_out.read_text().lower()
    assert p.contamination_judgement.read_text() == "no contamination detected\n"
    cell = score_cell(record, base_score=0.0)
    assert not cell.fallback and cell.score == record.metrics.score

    stamps = {k: v.finished_at for k, v in record.phases.items()}
    again = Pipeline(_spec(), tmp_path).run()
    assert {k: v.finished_at for k, v in again.phases.items()} == stamps, "a finished run must not redo any phase"


def test_agent_that_exits_at_once_is_recorded_and_falls_back(tmp_path: Path, script_agent) -> None:
    agent = script_agent("echo giving up; exit 3\n")
    pipe = Pipeline(_spec(agent=agent, config="x"), tmp_path)
    record = pipe.run()
    assert record.completed
    assert record.exit_code == 3
    assert record.failure == "solve: agent exited with code 3"
    assert record.phases.collect.details == CollectResult(final_model=False)
    assert _verdicts(record)["model_format"] == VerdictStatus.not_run
    assert record.final_verdict != VerdictStatus.passed
    assert record.phases.evaluate.details == EvaluateResult(skipped="no final_model")
    assert "giving up" in pipe.paths.solve_out.read_text()
    cell = score_cell(load_record(pipe.paths.run_json), base_score=0.25)
    assert cell.fallback and cell.score == 0.25 and cell.raw is None


def test_agent_hanging_past_its_limit_is_killed(tmp_path: Path, script_agent) -> None:
    agent = script_agent("trap '' TERM\n(setsid sleep 1000 &)\nsleep 1000\n")
    record = Pipeline(_spec(agent=agent, config="x", hours=3 / 3600), tmp_path).run()
    assert record.timed_out and record.completed
    assert record.time_used_s is not None and record.time_used_s < 30
    assert record.failure.startswith("solve: agent hit the 0:00:03 limit")


def test_malformed_final_model_fails_verification_and_evaluation(tmp_path: Path, script_agent) -> None:
    agent = script_agent(
        "mkdir -p final_model && echo '{' > final_model/config.json && head -c 100 /dev/urandom > final_model/model.safetensors\n"
    )
    pipe = Pipeline(_spec(agent=agent, config="x"), tmp_path)
    record = pipe.run()
    assert record.completed
    assert _verdicts(record)["model_format"] == VerdictStatus.failed
    fmt = next(v for v in record.verdicts if v.gate == "model_format")
    assert "config.json does not parse" in fmt.summary
    # Refused when the canonical submission is made (collect): nothing is evaluated.
    assert record.failure.startswith("collect: final_model/ rejected: config.json does not parse")
    assert record.metrics is None and record.phases.evaluate.details == EvaluateResult(skipped="no final_model")
    assert not pipe.paths.metrics_json.exists() and not pipe.paths.final_model.exists()
    assert (pipe.paths.workspace / "final_model" / "model.safetensors").stat().st_size == 100, "the evidence is kept"


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_tampering_and_untouched_base_are_caught(tmp_path: Path, script_agent, sandbox: str) -> None:
    """bwrap: evaluate.py is read-only inside, the write fails and nothing is left to catch;
    ``none`` (no read-only overlay): the write succeeds and the tamper gate catches it."""
    agent = script_agent(
        "echo 'print(1.0)' > evaluate.py || echo 'write refused'\n"
        "base=$(python -c \"import json;print(json.load(open('task/task.json'))['base_model_path'])\")\n"
        'cp -r "$base" final_model\n'
    )
    pipe = Pipeline(_spec(agent=agent, config="x", sandbox=sandbox), tmp_path)
    record = pipe.run()
    gates = _verdicts(record)
    out = pipe.paths.solve_out.read_text() + pipe.paths.solve_err.read_text()
    if sandbox == "bwrap":
        assert "write refused" in out and "Read-only file system" in out, out
        assert gates["tamper"] == VerdictStatus.passed
        assert record.phases.solve.result().enforced["ro_overlays"] is True
    else:
        assert "write refused" not in out
        assert gates["tamper"] == VerdictStatus.failed
        assert "not enforced" in str(record.phases.solve.result().enforced["ro_overlays"])
    assert gates["lineage"] == VerdictStatus.failed
    assert record.final_verdict == VerdictStatus.failed
    assert score_cell(record, base_score=0.1).fallback


def test_interrupted_solve_restarts_from_a_fresh_workspace(tmp_path: Path) -> None:
    pipe = Pipeline(_spec(), tmp_path)
    record = pipe.run(until="prepare")
    assert record.phases["prepare"].status == "done" and record.phases["solve"].status == "pending"
    # simulate a job killed while the agent was running: solve started, never finished, junk left
    (pipe.paths.workspace / "junk.txt").write_text("half-done work")
    record.phases["solve"].started_at = record.phases["prepare"].finished_at
    from posttrainbench.results import save_record

    save_record(pipe.paths.run_json, record)
    done = Pipeline(_spec(), tmp_path).run()
    assert done.completed and done.failure is None
    assert not (pipe.paths.workspace / "junk.txt").exists()


def test_unknown_names_fail_before_touching_disk(tmp_path: Path) -> None:
    for kw in ({"base_model": "nope/model"}, {"benchmark": "gsm9k"}, {"agent": "nobody"}):
        spec = _spec().model_copy(update=kw)
        with pytest.raises(UnknownNameError):
            Pipeline(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_training_on_another_benchmarks_test_set_is_contamination(tmp_path: Path, script_agent) -> None:
    """The index covers every benchmark's test items, not only the run's own (gsm8k-calc here):
    an agent that saves HumanEval's test problems as training data is caught."""
    from posttrainbench.benchmarks import get_benchmark

    problems = get_benchmark("humaneval").load_test_items()[:40]
    data = tmp_path / "stolen.jsonl"
    data.write_text("".join(json.dumps({"text": it.input}) + "\n" for it in problems))
    agent = script_agent(f"mkdir -p data && cat > data/train.jsonl <<'EOF_DATA'\n{data.read_text()}EOF_DATA\nexit 1\n")
    record = Pipeline(_spec(agent=agent, config="x"), tmp_path / "res").run()
    cont = next(v for v in record.verdicts if v.gate == "contamination")
    assert cont.status == VerdictStatus.failed, cont.summary
    assert "humaneval" in cont.summary and "test sets indexed: gsm8k-calc" in cont.summary
    evidence = (
        Pipeline(_spec(agent=agent, config="x"), tmp_path / "res").paths.evidence / "contamination.json"
    ).read_text()
    assert "humaneval/HumanEval/" in evidence
