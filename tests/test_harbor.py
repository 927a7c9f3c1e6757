"""Harbor: `ptb export harbor` task folders loaded by the real `harbor` package, the verifier run
on an agent's workspace without Docker, and `ptb import --harbor` on a job folder (a committed
fixture made from the trial that tests/test_harbor_trial.py runs).

The `harbor` package (Python >= 3.12) lives in `.venv-harbor`, made by scripts/setup.sh; a
missing one fails the tests with the command that makes it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.agents.prompt import render_prompt
from posttrainbench.benchmarks import get_benchmark
from posttrainbench.catalog import get_base_model
from posttrainbench.cli import app
from posttrainbench.launch.harbor import (
    HarborExportError,
    HarborExportOptions,
    check_with_harbor,
    export_tasks,
    load_cell,
    prepared_record_path,
)
from posttrainbench.launch.harbor_import import import_harbor_job
from posttrainbench.launch.harbor_verifier import verify_artifacts
from posttrainbench.results import load_record
from posttrainbench.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HARBOR_PY = ROOT / ".venv-harbor" / "bin" / "python"
JOB = Path(__file__).parent / "fixtures" / "harbor_job"
SECRET = "sk-ant-api03-harbor-export-must-not-carry-this"

# A scripted "fine-tune" for Harbor's oracle agent: nudges every weight of the base model a little.
NUDGE = """#!/bin/bash
set -e
base=$(python -c 'import json; print(json.load(open("/app/task/task.json"))["base_model_path"])')
cp -r "$base" /app/final_model
python - <<'PY'
import torch
from safetensors.torch import load_file, save_file
p = "/app/final_model/model.safetensors"
g = torch.Generator().manual_seed(0)
w = load_file(p)
save_file({k: v + 1e-2 * v.std() * torch.randn(v.shape, generator=g, dtype=v.dtype) if v.numel() > 1 else v
           for k, v in w.items()}, p, metadata={"format": "pt"})
PY
"""


def harbor_python() -> str:
    if not HARBOR_PY.exists():
        pytest.fail(f"no {HARBOR_PY}: run `bash scripts/setup.sh` (it makes .venv-harbor with harbor==0.26.0)")
    return str(HARBOR_PY)


def _opts(out: Path, **kw) -> HarborExportOptions:
    base = HarborExportOptions(
        agents=["reference"], agent_config="sft", base_models=["ptb/tiny-random"], benchmarks=["gsm8k-calc"],
        out_dir=out, hours=0.5, eval_limit=8,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """Two cells for a base image, one for the host runtime (with a solution), exported once."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("harbor-cache")
    mp.setenv("PTB_CACHE_DIR", str(cache))
    mp.setenv("ANTHROPIC_API_KEY", SECRET)
    try:
        out = tmp_path_factory.mktemp("harbor-tasks")
        settings = Settings.from_env()
        image = export_tasks(_opts(out / "image", benchmarks=["gsm8k-calc", "gsm8k"], base_image="ptb:x"), settings)
        host = export_tasks(_opts(out / "host", host_runtime=True, solution=NUDGE), settings)
        return [*image, *host], cache
    finally:
        mp.undo()


def test_every_exported_folder_loads_with_harbors_own_task_model(exported: tuple[list[Path], Path]) -> None:
    dirs, _ = exported
    seen = check_with_harbor(dirs, harbor_python())
    assert sorted(seen) == sorted(map(str, dirs))
    for d in dirs:
        got = seen[str(d)]
        assert got["valid"] is True and str(got["name"]).startswith("posttrainbench/reference--ptb--tiny-random--")
        assert got["agent_timeout_sec"] == 0.5 * 3600 and got["agent_user"] == "65534"
        # the verifier: its own container, built from tests/ (our Dockerfile with the prepared run)
        assert got["verifier_mode"] == "separate" and got["verifier_bundled_tests"] is True
        assert got["verifier_dir"] == str(d / "tests")
        assert got["artifacts"] == ["/app", "/logs/agent"] and got["network_mode"] == "public"
        assert got["has_solution"] is ("host" in d.parts)
        assert load_cell(d)["run_id"] == load_record(prepared_record_path(d)).run_id


def test_harbor_refuses_a_broken_task_folder(exported: tuple[list[Path], Path], tmp_path: Path) -> None:
    """The check is Harbor's: an honest folder passes (above), a corrupted copy is refused."""
    bad = tmp_path / "bad"
    shutil.copytree(exported[0][0], bad)
    toml = bad / "task.toml"
    toml.write_text(toml.read_text().replace("timeout_sec = 1800.0", 'timeout_sec = "half an hour"', 1))
    with pytest.raises(HarborExportError, match="Harbor refused"):
        check_with_harbor([bad], harbor_python())
    assert check_with_harbor([exported[0][0]], harbor_python())  # the untouched original still loads


def test_instruction_is_the_prompt_ptb_run_renders(exported: tuple[list[Path], Path]) -> None:
    for d in exported[0]:
        rec = load_record(prepared_record_path(d))
        prep = rec.phases.prepare.result()
        expect = render_prompt(
            rec.spec,
            get_benchmark(rec.spec.benchmark),
            get_base_model(rec.spec.base_model),
            base_model_path=prep.base_model_path,
            train_files=prep.train_files,
            gpu_name=Settings.from_env().run.gpu_name,
        )
        assert (d / "instruction.md").read_text() == expect and rec.spec.benchmark in expect


def test_the_agents_image_holds_the_dev_split_only_and_no_key(exported: tuple[list[Path], Path]) -> None:
    dirs, _ = exported
    d = dirs[0]  # gsm8k-calc, base image
    env = d / "environment"
    texts = {p: p.read_text(errors="replace") for p in env.rglob("*") if p.is_file()}
    assert not [p for p, t in texts.items() if SECRET in t]
    assert not [p for p in d.rglob("*") if p.is_file() and SECRET in p.read_text(errors="replace")]
    bench = get_benchmark("gsm8k-calc")
    items, _ = bench.load_test_set(settings=Settings.from_env().model_copy())
    dev = {it.id for it in bench.dev_items(items)}
    dev_lines = (env / "workspace" / "task" / "dev.jsonl").read_text().splitlines()
    assert len(dev_lines) == len(dev) == bench.dev_size
    blob = "\n".join(texts.values())
    leaked = [it.id for it in items if it.id not in dev and str(it.input) in blob]
    assert leaked == [] and any(str(it.input) in blob for it in items if it.id in dev)  # the dev items are there
    # the package's bundled test sets: removed from the base image's copy, hidden under a tmpfs on the host runtime
    assert "shutil.rmtree" in (env / "Dockerfile").read_text() and "resources" in (env / "Dockerfile").read_text()
    host = dirs[-1]
    agent_compose, verifier_compose = (
        (host / "environment" / "docker-compose.yaml").read_text(),
        (host / "tests" / "docker-compose.yaml").read_text(),
    )
    assert "tmpfs:" in agent_compose and "posttrainbench/resources:ro" in agent_compose
    assert "tmpfs:" not in verifier_compose  # the verifier needs the test sets
    # the verifier's image carries the prepared run (manifest, pristine harness copies), not the workspace
    run = prepared_record_path(host).parent
    assert (run / "harness" / "evaluate.py").is_file() and not (run / "task").exists()
    assert load_record(run / "run.json").manifest


def _agent_workspace(task: Path, dest: Path, *, nudge: bool) -> Path:
    """What an agent leaves in /app: the workspace, and final_model/ (nudged weights, or the base copied)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(task / "environment" / "workspace", dest)
    base = json.loads((dest / "task" / "task.json").read_text())["base_model_path"]
    shutil.copytree(base, dest / "final_model")
    if nudge:
        p = dest / "final_model" / "model.safetensors"
        g = torch.Generator().manual_seed(0)
        w = load_file(p)
        save_file({k: v + 1e-2 * v.std() * torch.randn(v.shape, generator=g) if v.numel() > 1 else v
                   for k, v in w.items()}, p, metadata={"format": "pt"})  # fmt: skip
    return dest


def test_the_verifier_runs_our_gates_and_evaluator_on_the_agents_workspace(
    exported: tuple[list[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Docker: the verifier's entry point on an honest workspace, an untouched copy of the
    base model (lineage fails) and a tampered evaluate.py (tamper fails)."""
    dirs, cache = exported
    monkeypatch.setenv("PTB_CACHE_DIR", str(cache))
    task = dirs[-1]
    prepared = prepared_record_path(task).parent
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "oracle.txt").write_text("copied the base model\n")
    results = {}
    for case in ("honest", "untouched", "tampered"):
        ws = _agent_workspace(task, tmp_path / case / "app", nudge=case != "untouched")
        if case == "tampered":
            (ws / "evaluate.py").write_text("print('accuracy: 1.0')\n")
        out = tmp_path / case / "verifier"
        rewards = verify_artifacts(prepared, ws, logs, out, Settings.from_env())
        assert json.loads((out / "reward.json").read_text()) == rewards
        rec = load_record(out / "ptb-run" / "run.json")
        assert not (out / "ptb-run" / "final_model").exists() and not (out / "ptb-run" / "task").exists()
        results[case] = (rewards, {v.gate: v.status.value for v in rec.verdicts}, rec)
    honest, untouched, tampered = results["honest"], results["untouched"], results["tampered"]
    assert honest[0]["verified"] == 1.0 and honest[2].completed and honest[2].metrics is not None
    assert honest[0]["reward"] == honest[0]["score"] == honest[2].metrics.score
    assert honest[1]["lineage"] == honest[1]["tamper"] == honest[1]["trace_audit"] == "pass"
    assert untouched[0] == {"reward": 0.0, "verified": 0.0, "score": untouched[0]["score"]}
    assert untouched[1]["lineage"] == "fail" and untouched[1]["tamper"] == "pass"
    assert tampered[0]["verified"] == 0.0 and tampered[0]["reward"] == 0.0 and tampered[1]["tamper"] == "fail"
    assert honest[2].phases.solve.result().enforced == {"runner": "harbor"}  # Harbor ran the agent, not our sandbox


def _trial_without_verifier(job: Path, name: str, task: Path, exception: str | None) -> None:
    src = next(p for p in sorted(job.iterdir()) if p.is_dir() and (p / "verifier").is_dir())
    dest = job / name
    shutil.copytree(src, dest)
    shutil.rmtree(dest / "verifier")
    cfg = json.loads((dest / "config.json").read_text())
    cfg["task"]["path"] = str(task)
    (dest / "config.json").write_text(json.dumps(cfg))
    res = json.loads((dest / "result.json").read_text())
    res["verifier_result"], res["trial_name"] = None, name
    res["exception_info"] = {"exception_type": exception, "exception_message": "agent ran past its limit"}
    (dest / "result.json").write_text(json.dumps(res))


def test_import_brings_a_harbor_job_into_the_records_and_the_leaderboard(
    exported: tuple[list[Path], Path], tmp_path: Path
) -> None:
    job = tmp_path / "job"
    shutil.copytree(JOB, job)
    res = tmp_path / "results"
    rep = import_harbor_job(job, res)
    assert len(rep.imported) == 1 and rep.problems == []
    rec = load_record(rep.imported[0] / "run.json")
    trial = json.loads(next(job.glob("*/result.json")).read_text())
    assert rec.imported_from is not None and rec.imported_from["kind"] == "harbor"
    assert rec.imported_from["trial"] == trial["trial_name"] and rec.imported_from["rewards"]["verified"] == 1.0
    assert rec.verified and rec.completed and rec.spec.repeat == 0 and rec.time_used_s is not None
    # idempotent: the same trial again rewrites its own folder
    assert import_harbor_job(job, res).imported == rep.imported
    # a second attempt of the same cell is the next repeat; a trial whose verifier never ran is
    # recorded from its task's prepared run as failed (its cell falls back), or, with its task
    # folder gone, reported and not imported
    src = next(p for p in job.iterdir() if p.is_dir())
    shutil.copytree(src, job / "second__attempt")
    _trial_without_verifier(job, "crashed__trial", exported[0][-1], "AgentTimeoutError")
    _trial_without_verifier(job, "orphan__trial", tmp_path / "gone", "RuntimeError")
    rep2 = import_harbor_job(job, res)
    assert len(rep2.imported) == 3 and len(rep2.problems) == 1 and "orphan__trial" in rep2.problems[0]
    recs = [load_record(p / "run.json") for p in rep2.imported]
    crashed = next(r for r in recs if r.imported_from and r.imported_from["trial"] == "crashed__trial")
    assert sorted(r.spec.repeat for r in recs if r is not crashed) == [0, 1]
    assert not crashed.verified and crashed.failure == "harbor: AgentTimeoutError: agent ran past its limit"
    assert crashed.spec == load_record(prepared_record_path(exported[0][-1])).spec  # that task's cell, repeat 0
    out = CliRunner().invoke(app, ["leaderboard", "--results", str(res), "--format", "json"])
    assert out.exit_code == 0, out.output
    agents = {a["hours"]: a for a in json.loads(out.output)["agents"]}
    assert agents[0.1]["agent"] == "reference" and agents[0.1]["n_repeats"] == 2 and agents[0.1]["n_fallback"] == 0
    # the crashed trial's cell needs the fallback; with no baseline recorded here it has none: missing, no score
    assert agents[0.5]["score"] is None and agents[0.5]["missing"] and agents[0.5]["n_fallback"] == 0


def test_cli_import_needs_exactly_one_source(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(app, ["import", str(tmp_path), "--harbor", str(JOB), "--results", str(tmp_path / "r")])
    neither = runner.invoke(app, ["import", "--results", str(tmp_path / "r")])
    assert both.exit_code == neither.exit_code == 2 and "either" in both.output
    ok = runner.invoke(app, ["import", "--harbor", str(JOB), "--results", str(tmp_path / "r")])
    assert ok.exit_code == 0 and "imported 1 Harbor trials" in ok.output


def test_cli_export_writes_checked_folders_and_refuses_a_missing_image(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["export", "harbor", "--agent", "reference", "--agent-config", "sft", "--model", "ptb/tiny-random",
            "--benchmark", "gsm8k-calc", "--hours", "0.5", "--out", str(tmp_path / "t")]  # fmt: skip
    no_image = runner.invoke(app, args)
    assert no_image.exit_code == 2 and "--base-image" in no_image.output and not list((tmp_path / "t").iterdir())
    ok = runner.invoke(app, [*args, "--host-runtime", "--harbor-python", harbor_python()])
    assert ok.exit_code == 0, ok.output
    assert "(loaded by harbor)" in ok.output and "exported 1 Harbor tasks" in ok.output
    assert (tmp_path / "t" / "reference--ptb--tiny-random--gsm8k-calc--strict" / "task.toml").is_file()
