"""A small sweep through a real single-node Slurm (munged, slurmctld, slurmd with
proctrack/cgroup, started from scripts/slurm by a session fixture), then the same sweep through
the local pool; tiny model, reference agent, 2 benchmarks × 2 repeats, in the real sandbox.

- the Slurm sweep: one job is killed with ``scancel`` while its agent runs; the partial sweep
  still aggregates; ``ptb sweep run`` then re-runs that run only (the other run folders are
  byte-identical afterwards);
- the local pool: its first attempt hits an infrastructure failure (the model cache is
  broken), the retry succeeds, and the leaderboard and the trained weights equal Slurm's;
- ``--retry-failed-evals`` re-runs the evaluation of a run, and nothing else.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.domain import RunMetrics
from posttrainbench.launch import Ledger, load_sweep, plan_tasks, run_sweep, task_status
from posttrainbench.launch.base import package_root
from posttrainbench.launch.plan import sweep_dir
from posttrainbench.leaderboard.from_results import leaderboard
from posttrainbench.results import load_record, save_record

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

SWEEP = """\
name = "ci"
results = "results"
hours = 0.05
repeats = 2
eval_limit = 6
base_models = ["ptb/tiny-random"]
benchmarks = ["gsm8k-calc", "gsm8k"]
max_retries = 2
launcher = "slurm"

[[agents]]
name = "reference"
config = "sft:steps=3,bs=4"

[local]
parallel = 2
cpus_per_run = 1

[slurm]
cpus_per_run = 1
mem_gb = 3
time_margin_min = 10
scratch = "{scratch}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A single-node Slurm from the repo's config; yields the SLURM_CONF path; stops it after."""
    d = tmp_path_factory.mktemp("slurm")
    env = dict(
        os.environ, PTB_SLURM_DIR=str(d), PTB_SLURM_CTLD_PORT=str(_free_port()), PTB_SLURMD_PORT=str(_free_port())
    )
    start = subprocess.run(
        ["bash", str(REPO / "scripts/slurm/start.sh")], env=env, capture_output=True, text=True, timeout=180
    )
    try:
        assert start.returncode == 0, f"single-node Slurm did not start:\n{start.stdout}\n{start.stderr}"
        conf = d / "etc" / "slurm.conf"
        assert f"export SLURM_CONF={conf}" in start.stdout
        shown = subprocess.run(
            ["scontrol", "show", "config"],
            env=env | {"SLURM_CONF": str(conf)},
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert "proctrack/cgroup" in shown and "DefMemPerCPU" in shown, shown
        yield conf
    finally:
        subprocess.run(["bash", str(REPO / "scripts/slurm/stop.sh")], env=env, timeout=120)


def _squeue(conf: Path) -> str:
    return subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i %T"],
        env=dict(os.environ, SLURM_CONF=str(conf)),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def _snapshot(folder: Path) -> tuple[bytes, int]:
    p = folder / "run.json"
    return p.read_bytes(), p.stat().st_mtime_ns


def _numbers(root: Path):
    rows, cells, scan = leaderboard(root)
    table = [
        (
            r.agent,
            r.agent_config,
            r.score,
            r.std,
            r.n_repeats,
            r.per_benchmark,
            r.n_fallback,
            sorted(r.missing),
            r.repeat_scores,
        )
        for r in rows
    ]
    by_cell = sorted((c.benchmark, c.repeat, c.raw, c.score, c.fallback, c.reason) for c in cells)
    baselines = sorted((b.benchmark, b.base_model, b.checkpoint, b.eval_limit, b.score) for b in scan.baselines)
    return table, by_cell, baselines


def _weights(root: Path) -> dict[tuple[str, int], dict[str, str]]:
    out = {}
    for path in root.glob("reference_*/*/run.json"):
        rec = load_record(path)
        out[(rec.spec.benchmark, rec.spec.repeat)] = rec.final_model_hashes
    return out


@pytest.fixture(scope="module")
def slurm_sweep(slurm_cluster: Path, tmp_path_factory: pytest.TempPathFactory):
    """Runs the sweep on Slurm, kills one job mid-run, checks, resumes; returns what it saw."""
    from posttrainbench.catalog import get_base_model
    from posttrainbench.models.store import resolve_base_model

    work = tmp_path_factory.mktemp("slurm-sweep")
    sweep_file = work / "sweep.toml"
    sweep_file.write_text(SWEEP.format(scratch=work / "scratch"))
    seen: dict = {"work": work, "sweep_file": sweep_file}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(slurm_cluster))
        mp.setenv("PTB_CACHE_DIR", str(work / "cache"))  # the jobs inherit it (sbatch exports the env)
        mp.delenv("PTB_DATA_DIR", raising=False)
        resolve_base_model(get_base_model("ptb/tiny-random"))  # built once, not raced by jobs
        sweep = load_sweep(sweep_file)
        runner = CliRunner()
        t0 = time.monotonic()
        first = runner.invoke(app, ["sweep", "run", str(sweep_file), "--no-wait"], env={"COLUMNS": "250"})
        assert first.exit_code == 0, first.output
        seen["first_output"] = first.output

        # kill one gsm8k-calc run while its agent is running
        calc = [t for t in plan_tasks(sweep) if t.kind == "run" and t.benchmark == "gsm8k-calc"]
        victim = None
        deadline = time.monotonic() + 420
        while victim is None and time.monotonic() < deadline:
            for t in calc:
                st = task_status(t)
                if st.state == "interrupted" and st.phase == "solve":
                    victim = t
                    break
            time.sleep(0.5)
        assert victim is not None, f"no run reached the agent phase; queue: {_squeue(slurm_cluster)}"
        job_id = Ledger(sweep).last_job(victim.key)["job_ids"][0]
        assert f"{job_id} RUNNING" in _squeue(slurm_cluster)
        killed_at = datetime.now(UTC)
        subprocess.run(["scancel", job_id], check=True, timeout=60)
        seen |= {"victim": victim, "job_id": job_id, "killed_at": killed_at}

        waited = runner.invoke(
            app, ["sweep", "status", str(sweep_file), "--wait", "--poll", "1"], env={"COLUMNS": "250"}
        )
        assert waited.exit_code == 0, waited.output
        seen["status_output"] = waited.output
        seen["partial"] = _numbers(sweep.results)
        seen["partial_cli"] = runner.invoke(
            app, ["leaderboard", "--results", str(sweep.results)], env={"COLUMNS": "250"}
        )
        others = {t.key: _snapshot(t.folder) for t in plan_tasks(sweep) if t.kind == "run" and t.key != victim.key}
        seen["victim_state_after_kill"] = task_status(victim)

        resumed = runner.invoke(app, ["sweep", "run", str(sweep_file), "--poll", "1"], env={"COLUMNS": "250"})
        seen["resume_output"], seen["resume_code"] = resumed.output, resumed.exit_code
        seen["others_before"] = others
        seen["others_after"] = {k: _snapshot(t.folder) for t in plan_tasks(sweep) if (k := t.key) in others}
        seen["elapsed_s"] = time.monotonic() - t0
        seen["sweep"] = sweep
        seen["final"] = _numbers(sweep.results)
        seen["weights"] = _weights(sweep.results)
        seen["final_status"] = runner.invoke(app, ["sweep", "status", str(sweep_file)], env={"COLUMNS": "250"}).output
    return seen


def test_slurm_sweep_survives_scancel_and_resumes_only_the_killed_run(slurm_sweep: dict, slurm_cluster: Path) -> None:
    s = slurm_sweep
    sweep, victim = s["sweep"], s["victim"]
    assert "launching 6 task(s) on slurm" in s["first_output"]
    assert not (sweep_dir(sweep) / "logs").exists(), "nothing ran through the local pool"
    # the killed run was caught mid-agent and shows as interrupted, with the time it used
    st = s["victim_state_after_kill"]
    assert st.state == "interrupted" and st.phase == "solve" and st.time_used_s > 0
    line = next(ln for ln in s["status_output"].splitlines() if victim.label in ln)
    assert "interrupted" in line and "solve" in line and s["job_id"] in line
    assert "sweep" in s["status_output"] and "/6" in s["status_output"], "progress bar while waiting"

    # a partial sweep still aggregates: the killed cell falls back, the others count
    table, cells, _baselines = s["partial"]
    assert table and len(cells) == 4
    killed = [c for c in cells if c[5] == "run not completed"]
    assert len(killed) == 1 and killed[0][4] is True
    assert s["partial_cli"].exit_code == 0 and "reference/sft:steps=3,bs=4" in s["partial_cli"].output

    # the resume launched exactly the killed run, once, and touched no other run folder
    assert s["resume_code"] == 0, s["resume_output"]
    launches = [ln for ln in s["resume_output"].splitlines() if ln.startswith("launching")]
    assert launches == [f"launching 1 task(s) on slurm: {victim.label}"], launches
    assert s["others_after"] == s["others_before"], "completed runs must not be re-run or rewritten"
    ledger = Ledger(sweep)
    assert ledger.attempts(victim.key) == 2
    assert all(ledger.attempts(t.key) == 1 for t in plan_tasks(sweep) if t.key != victim.key)
    rec = load_record(victim.folder / "run.json")
    assert rec.completed and rec.phases["solve"].status == "done"
    assert rec.phases["prepare"].started_at > s["killed_at"], "the interrupted agent restarted from a fresh workspace"
    assert rec.metrics is not None and rec.metrics.status == "ok"

    # every task is accounted for; the jobs ran our code with the venv's python
    statuses = {t.key: task_status(t) for t in plan_tasks(sweep)}
    assert all(x.state == "done" for x in statuses.values()), statuses
    gsm8k_runs = [x for x in statuses.values() if x.task.kind == "run" and x.task.benchmark == "gsm8k"]
    assert all(x.failure for x in gsm8k_runs), "outcome failures are recorded with their cause"
    logs = "\n".join(p.read_text(errors="replace") for p in (sweep_dir(sweep) / "slurm").rglob("*.out"))
    import sys

    assert f"from {package_root() / 'posttrainbench'} (python {sys.executable})" in logs
    assert not list((s["work"] / "scratch").glob("ptb-*")), "per-job scratch is removed at the end"
    assert _squeue(slurm_cluster).strip() == "" or "RUNNING" not in _squeue(slurm_cluster)


def test_local_pool_retries_infra_failures_and_matches_slurm(
    slurm_sweep: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posttrainbench.models.tiny import build_tiny_model

    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    blocker = cache / "models" / "tiny-random"
    blocker.write_text("not a model folder")  # attempt 1: every task fails for infrastructure reasons
    monkeypatch.setenv("PTB_CACHE_DIR", str(cache))
    sweep = load_sweep(slurm_sweep["sweep_file"], results=tmp_path / "results", launcher="local")
    waves: list[list[str]] = []

    def on_launch(tasks) -> None:
        waves.append([t.key for t in tasks])
        if len(waves) == 2:  # the site is repaired before the retry
            blocker.unlink()
            build_tiny_model(blocker)

    state = run_sweep(sweep, on_launch=on_launch, poll_s=0.5)
    assert len(waves) == 2 and len(waves[0]) == 6 and sorted(waves[1]) == sorted(waves[0])
    assert state.n_done == 6
    ledger = Ledger(sweep)
    assert all(ledger.attempts(t.key) == 2 for t in state.tasks)
    assert len(list((sweep_dir(sweep) / "logs").glob("*.log"))) == 12, "one log per attempt"
    rec = load_record(state.tasks[2].folder / "run.json")
    assert rec.completed and rec.phases["prepare"].status == "done"

    # the same sweep, another launcher: the same numbers and the same trained weights
    assert _numbers(sweep.results) == slurm_sweep["final"]
    assert _weights(sweep.results) == slurm_sweep["weights"]
    assert len([h for h in slurm_sweep["weights"].values() if h]) == 2, "the gsm8k-calc runs trained a model"

    # --retry-failed-evals: a run whose evaluation failed (an OOM, say) is evaluated again, only that
    target = next(t for t in state.tasks if t.kind == "run" and t.benchmark == "gsm8k-calc")
    good = load_record(target.folder / "run.json")
    broken = good.model_copy(deep=True)
    broken.metrics = RunMetrics(status="failed", error="CUDA out of memory")
    broken.failure = "evaluate: CUDA out of memory"
    save_record(target.folder / "run.json", broken)
    relaunched: list[list[str]] = []
    run_sweep(sweep, retry_failed_evals=True, on_launch=lambda ts: relaunched.append([t.key for t in ts]), poll_s=0.5)
    gsm8k_baseline = next(t.key for t in state.tasks if t.kind == "baseline" and t.benchmark == "gsm8k")
    assert sorted(relaunched[0]) == sorted([target.key, gsm8k_baseline])  # both had a failed evaluation
    again = load_record(target.folder / "run.json")
    for p in ("prepare", "solve", "collect", "verify"):
        assert again.phases[p].finished_at == good.phases[p].finished_at, p
    assert again.phases["evaluate"].finished_at > good.phases["evaluate"].finished_at
    assert again.metrics.status == "ok" and again.metrics.score == good.metrics.score
    assert again.failure is None


def test_split_eval_runs_agent_verification_and_evaluation_as_dependent_jobs(
    slurm_cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        SWEEP.format(scratch=tmp_path / "scratch")
        .replace("repeats = 2", "repeats = 1")
        .replace('benchmarks = ["gsm8k-calc", "gsm8k"]', 'benchmarks = ["gsm8k-calc"]\nbaselines = false')
        + "split_eval = true\neval_gpus = 0\n"
    )
    (tmp_path / "split.toml").write_text(text)
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster))
    sweep = load_sweep(tmp_path / "split.toml")
    state = run_sweep(sweep, poll_s=1)
    (task,) = state.tasks
    assert state.statuses[task.key].state == "done"
    jobs = Ledger(sweep).last_job(task.key)["job_ids"]
    assert len(jobs) == 3, jobs
    logs = [next((sweep_dir(sweep) / "slurm" / j).glob("*.out")).read_text() for j in jobs]
    assert "[solve] done" in logs[0] and "stopped after collect" in logs[0] and "[verify]" not in logs[0]
    assert "[verify] done" in logs[1] and "stopped after verify" in logs[1] and "[solve]" not in logs[1]
    assert "[evaluate] done" in logs[2] and "completed" in logs[2] and "[verify]" not in logs[2]
    rec = load_record(task.folder / "run.json")
    assert rec.completed and rec.metrics.status == "ok"
    assert rec.phases["verify"].started_at >= rec.phases["collect"].finished_at
