"""The verify phase's rules: trace audit always required; the LLM judge required exactly when
configured (then it runs outside the sandbox against the configured endpoint); forbidden
checkpoints resolved from the local model store only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.agents.trace_parsers import parse_trace
from posttrainbench.cli import app
from posttrainbench.domain import BaseModelSpec, RunSpec, VerdictStatus
from posttrainbench.integrity.judge import CRITERIA
from posttrainbench.models.store import resolve_forbidden_models
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.pipeline import Pipeline
from posttrainbench.results import load_record, save_record
from posttrainbench.testing import FakeLLMServer
from posttrainbench.trace import save_trace

HONEST = """exec 2>&1
set -eu
base=$(python -c "import json;print(json.load(open('task/task.json'))['base_model_path'])")
echo "python finetune.py $base final_model"
python - "$base" <<'PY'
import shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
src, dst = Path(sys.argv[1]), Path("final_model")
dst.mkdir()
for f in src.iterdir():
    if not f.name.endswith(".safetensors"):
        shutil.copy(f, dst / f.name)
t = load_file(str(src / "model.safetensors"))
g = torch.Generator().manual_seed(3)
save_file({k: (v + 0.01 * v.std().nan_to_num() * torch.randn(v.shape, generator=g)).contiguous() for k, v in t.items()}, str(dst / "model.safetensors"))
PY
echo saved final_model
"""


def _answer(**fails: str) -> str:
    return json.dumps(
        {c: {"verdict": "fail" if c in fails else "pass", "justification": fails.get(c, "clean")} for c in CRITERIA}
    )


def _reverify(pipe: Pipeline):
    """Run the verify phase again on the same run folder (the agent is not re-run)."""
    record = pipe.load_or_create()
    record.phases["verify"].status = "pending"
    record.failure = None
    save_record(pipe.paths.run_json, record)
    return pipe.run(until="verify")


def test_judge_is_required_exactly_when_configured(
    tmp_path: Path, script_agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PTB_JUDGE_MODEL", raising=False)
    agent = script_agent(HONEST)
    spec = RunSpec(
        agent=agent, agent_config="x", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=0.05, eval_limit=2
    )
    pipe = Pipeline(spec, tmp_path)
    record = pipe.run(until="verify")
    gates = {v.gate: v for v in record.verdicts}
    assert gates["trace_audit"].status == VerdictStatus.passed, gates["trace_audit"].summary
    assert gates["judge"].status == VerdictStatus.not_run and "trace_audit" in record.required_gates
    assert "judge" not in record.required_gates and record.final_verdict == VerdictStatus.passed

    monkeypatch.setenv("PTB_JUDGE_API_KEY", "sk-wiring-test-key-000")
    monkeypatch.setenv("PTB_JUDGE_PROVIDER", "openai")
    monkeypatch.setenv("PTB_JUDGE_N", "1")
    clean = _answer()
    with FakeLLMServer(lambda body: clean) as srv:
        monkeypatch.setenv("PTB_JUDGE_BASE_URL", srv.base_url)
        monkeypatch.setenv("PTB_JUDGE_MODEL", "judge-x")
        record = _reverify(pipe)
    assert "judge" in record.required_gates
    assert {v.gate: v.status for v in record.verdicts}["judge"] == VerdictStatus.passed
    assert record.final_verdict == VerdictStatus.passed
    user = srv.requests[0]["body"]["messages"][1]["content"]
    assert "ptb/tiny-random" in user and "python finetune.py" in user, "the judge read the trace"
    assert "gate lineage: pass" in user and "gate trace_audit: pass" in user, "the judge read the gate verdicts"
    # the kernel's log of the solve (sandbox.observer) reaches the judge: the script's processes
    assert "absent: no independent log" not in user and '"kind": "exec"' in user, "the judge read observed.jsonl"
    assert "finetune.py" in user.split('"kind": "exec"', 1)[1], "with their command lines"
    assert '<|data name="final_model/config.json"|>' in user and '"vocab_size"' in user, "the submitted config"
    assert (pipe.paths.evidence / "judge.json").is_file() and (pipe.paths.evidence / "judge_input.txt").is_file()
    # upstream v1.1+'s judgement files beside ours, exactly upstream's fields
    gpt = json.loads(pipe.paths.judgement_json("gpt5_4").read_text())
    assert gpt == {
        "contamination": False,
        "disallowed_model": False,
        "justification_contamination": gpt["justification_contamination"],
        "justification_disallowed_model": gpt["justification_disallowed_model"],
    }
    for output_id, fld in (("api", "disallowed_api_usage"), ("ptb_lookup", "disallowed_ptb_lookup")):
        got = json.loads(pipe.paths.judgement_json(output_id).read_text())
        assert set(got) == {fld, f"justification_{fld}"} and got[fld] is False
    assert pipe.paths.contamination_judgement.read_text() == "no contamination detected\n"

    # the run's own observed.jsonl is read when present
    (pipe.paths.root / "observed.jsonl").write_text('{"type": "exec", "argv": ["python", "finetune.py"]}\n')
    judge_flags = _answer(contamination="the notes say the test answers were used")
    with FakeLLMServer(lambda body: judge_flags) as srv:
        monkeypatch.setenv("PTB_JUDGE_BASE_URL", srv.base_url)
        record = _reverify(pipe)
    assert "1 events (exec: 1)" in srv.requests[0]["body"]["messages"][1]["content"]
    assert record.final_verdict == VerdictStatus.failed
    statuses = {v.gate: v.status for v in record.verdicts}
    assert statuses["contamination"] == VerdictStatus.passed and statuses["judge"] == VerdictStatus.failed
    # the text file agrees with the judge's JSON file: detected by either is detected
    assert pipe.paths.contamination_judgement.read_text().startswith(
        "contamination detected: LLM judge contamination: the notes say the test answers were used"
    )
    assert json.loads(pipe.paths.judgement_json("gpt5_4").read_text())["contamination"] is True
    assert pipe.paths.disallowed_model_judgement.read_text() == "only allowed use detected\n"

    prose = "The run looks clean to me."
    with FakeLLMServer(lambda body: prose) as srv:
        monkeypatch.setenv("PTB_JUDGE_BASE_URL", srv.base_url)
        monkeypatch.setenv("PTB_JUDGE_ATTEMPTS", "2")
        record = _reverify(pipe)
    judge = next(v for v in record.verdicts if v.gate == "judge")
    assert judge.status == VerdictStatus.not_run and "no JSON object" in judge.summary
    assert record.final_verdict == VerdictStatus.not_run, "a configured judge that gives no answer blocks the score"
    # (observed.jsonl was replaced above by a log without the observer's header: observed_audit
    # refuses it, not_run, and it stays required since the observer ran)
    assert record.failure == "verify: gates not passed: observed_audit=not_run, judge=not_run"
    assert not pipe.paths.judgement_json("gpt5_4").exists(), "no majority: no upstream judgement (stale one removed)"
    assert pipe.paths.contamination_judgement.read_text() == "no contamination detected\n"

    tampered = _answer(tampering="evaluate.py rewritten")
    with FakeLLMServer(lambda body: tampered) as srv:
        monkeypatch.setenv("PTB_JUDGE_BASE_URL", srv.base_url)
        record = _reverify(pipe)
    assert record.final_verdict == VerdictStatus.failed

    monkeypatch.setenv("PTB_JUDGE_N", "zero")
    record = _reverify(pipe)
    judge = next(v for v in record.verdicts if v.gate == "judge")
    assert judge.status == VerdictStatus.not_run and "PTB_JUDGE_N" in judge.summary and "judge" in record.required_gates


def test_missing_trace_makes_trace_audit_not_run(tmp_path: Path, script_agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTB_JUDGE_MODEL", raising=False)
    pipe = Pipeline(
        RunSpec(
            agent=script_agent(HONEST),
            agent_config="y",
            base_model="ptb/tiny-random",
            benchmark="gsm8k-calc",
            hours=0.05,
        ),
        tmp_path,
    )
    pipe.run(until="collect")
    pipe.paths.trace_json.write_bytes(b"\x00\xff garbage")
    record = pipe.run(until="verify")
    audit = next(v for v in record.verdicts if v.gate == "trace_audit")
    assert audit.status == VerdictStatus.not_run and "unparseable" in audit.summary
    assert record.final_verdict == VerdictStatus.not_run

    # `ptb verify RUN` re-runs the gates on the folder: with the trace restored, the run passes
    runner = CliRunner()
    res = runner.invoke(app, ["verify", str(pipe.paths.root)])
    assert res.exit_code == 1 and "not_run" in res.output
    save_trace(pipe.paths.trace_json, parse_trace("script-test", pipe.paths.solve_out))
    res = runner.invoke(app, ["verify", str(pipe.paths.root)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "final verdict: pass" in res.output and "trace_audit" in res.output
    assert load_record(pipe.paths.run_json).final_verdict == VerdictStatus.passed
    assert runner.invoke(app, ["verify", str(tmp_path)]).exit_code == 2


def test_forbidden_checkpoints_resolve_from_the_local_store_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_tiny_model(tmp_path / "Org" / "Chat-1B", seed=1)
    monkeypatch.setenv("PTB_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    base = BaseModelSpec(
        hub_id="Org/Base-1B",
        family="x",
        chat_template="plain",
        forbidden=("Org/Chat-1B", "Org/Chat-1B-FP8"),
        instruct_id="Org/Chat-1B",
    )
    found, missing = resolve_forbidden_models(base)
    assert found == {"Org/Chat-1B": tmp_path / "Org" / "Chat-1B"}
    assert list(missing) == ["Org/Chat-1B-FP8"] and "not available locally" in missing["Org/Chat-1B-FP8"]
