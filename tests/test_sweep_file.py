"""Sweep files, planning, status and the launchers' job descriptions (fast: no model runs).

The Slurm and local launchers run for real in tests/test_sweep_slurm.py."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.domain import RunMetrics, RunRecord
from posttrainbench.launch import LauncherError, Ledger, load_sweep, plan_tasks, sweep_state, task_status
from posttrainbench.launch.base import package_root, time_limit_min
from posttrainbench.launch.htcondor import HTCondorLauncher, submit_description
from posttrainbench.launch.local import GpuPool, LocalLauncher
from posttrainbench.launch.plan import reset_failed_agent, reset_failed_evaluation
from posttrainbench.launch.slurm import SlurmLauncher, job_parameters, stages
from posttrainbench.launch.sweep import SweepError
from posttrainbench.launch.worker import assigned_gpus
from posttrainbench.results import save_record

GOOD = """\
name = "tiny"
results = "out"
hours = 0.05
repeats = 2
eval_limit = 6
base_models = ["ptb/tiny-random"]
benchmarks = ["gsm8k-calc", "gsm8k"]

[[agents]]
name = "reference"
config = "sft:steps=3,bs=4"

[slurm]
partition = "debug"
cpus_per_run = 2
mem_gb = 3
time_margin_min = 10
"""

BAD = """\
name = "bad"
results = "out"
hours = -1
repeats = 2
base_models = ["ptb/tiny-random"]
benchmarks = [
  "gsm8k-calc",
  "gsm8k",
  "gsm8k-calc",
]

[[agents]]
name = "reference"
config = "sft:steps=3"

[[agents]]
name = "gpt-agent"

[[agents]]
name = "reference"
config = "sft:steps=3"

[slurm]
partition = "gpu"
memory_gb = 3
"""


def _write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sweep_file_expands_to_baselines_and_deterministic_runs(tmp_path: Path) -> None:
    sweep = load_sweep(_write(tmp_path, GOOD))
    assert sweep.results == (tmp_path / "out").resolve(), "results is relative to the sweep file"
    tasks = plan_tasks(sweep)
    assert [t.kind for t in tasks] == ["baseline"] * 2 + ["run"] * 4
    runs = [t for t in tasks if t.kind == "run"]
    assert len({t.key for t in runs}) == 4
    assert {(t.spec.benchmark, t.spec.repeat) for t in runs} == {
        (b, r) for b in ("gsm8k-calc", "gsm8k") for r in (0, 1)
    }
    assert all(t.spec.agent_config == "sft:steps=3,bs=4" and t.spec.eval_limit == 6 for t in runs)
    # the same file gives the same run ids (resume relies on it); YAML gives the same sweep
    assert [t.key for t in plan_tasks(load_sweep(tmp_path / "sweep.toml"))] == [t.key for t in tasks]
    yaml_text = textwrap.dedent("""\
        name: tiny
        results: out
        hours: 0.05
        repeats: 2
        eval_limit: 6
        base_models: [ptb/tiny-random]
        benchmarks: [gsm8k-calc, gsm8k]
        agents:
          - name: reference
            config: "sft:steps=3,bs=4"
        """)
    assert [t.key for t in plan_tasks(load_sweep(_write(tmp_path, yaml_text, "s.yaml")))] == [t.key for t in tasks]
    # overrides from the command line
    other = load_sweep(tmp_path / "sweep.toml", results=tmp_path / "elsewhere", launcher="slurm")
    assert other.launcher == "slurm" and other.results == (tmp_path / "elsewhere").resolve()


def test_invalid_sweep_lists_every_fault_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(SweepError) as info:
        load_sweep(_write(tmp_path, BAD))
    got = {(f.line, f.where) for f in info.value.faults}
    assert got == {
        (3, "hours"),
        (9, "benchmarks[2]"),
        (17, "agents[1].name"),
        (19, "agents[2]"),
        (25, "slurm.memory_gb"),
    }, info.value.faults
    text = str(info.value)
    assert f"{tmp_path / 'sweep.toml'}:17: agents[1].name: unknown agent 'gpt-agent'" in text
    assert ":9: benchmarks[2]: duplicate entry 'gsm8k-calc' (also benchmarks[0])" in text
    assert ":3: hours: Input should be greater than 0" in text


def test_launchers_come_from_one_registry(tmp_path: Path) -> None:
    from posttrainbench.launch import LAUNCHERS, make_launcher

    assert LAUNCHERS.names() == ["local", "slurm", "htcondor", "skypilot"]
    path = _write(tmp_path, GOOD.replace("eval_limit = 6", 'eval_limit = 6\nlauncher = "slurn"'))
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert [(f.line, f.where) for f in info.value.faults] == [(6, "launcher")]
    assert "unknown launcher 'slurn'. Did you mean slurm?" in str(info.value)
    sweep = load_sweep(path, launcher="htcondor")
    assert isinstance(make_launcher(sweep), HTCondorLauncher)
    assert isinstance(make_launcher(sweep.model_copy(update={"launcher": "local"})), LocalLauncher)


def test_invalid_yaml_and_toml_syntax_point_at_the_line(tmp_path: Path) -> None:
    yaml_text = "name: y\nresults: out\nhours: 1\nbase_models: [ptb/tiny-random]\nbenchmarks: [gsm8k-calc]\nagents:\n  - name: reference\n    config: nope\n  - name: reference\n    config: nope\n"
    with pytest.raises(SweepError) as info:
        load_sweep(_write(tmp_path, yaml_text, "s.yml"))
    assert {(f.line, f.where) for f in info.value.faults} == {
        (8, "agents[0].config"),
        (9, "agents[1]"),
        (10, "agents[1].config"),
    }
    with pytest.raises(SweepError) as info:
        load_sweep(_write(tmp_path, 'name = "a"\nhours = 1\nhours = 2\n'))
    assert info.value.faults[0].line == 3 and "not valid TOML" in str(info.value)


def test_cli_rejects_a_bad_file_before_submitting_anything(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    for cmd in (["sweep", "plan", str(path)], ["sweep", "run", str(path), "--launcher", "slurm"]):
        result = CliRunner().invoke(app, cmd, env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert "agents[1].name: unknown agent 'gpt-agent'" in result.output
        assert re.search(r"sweep\.toml:\s*25: slurm\.memory_gb: unknown key", result.output)
    assert not (tmp_path / "out").exists(), "nothing may be written for an invalid sweep"


def test_unreachable_schedulers_give_a_clear_error_and_submit_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, GOOD)
    # a Slurm client configured for a controller that does not exist (nothing listens there)
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=gone\nSlurmctldHost=nohost(127.0.0.1)\nSlurmctldPort=9\nAuthType=auth/none\n"
        "MessageTimeout=2\nNodeName=n1 CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=n1 Default=YES\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    t0 = time.monotonic()
    result = CliRunner().invoke(app, ["sweep", "run", str(path), "--launcher", "slurm"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "cannot reach the Slurm controller" in result.output or "Slurm controller is unreachable" in result.output
    assert time.monotonic() - t0 < 120
    result = CliRunner().invoke(app, ["sweep", "run", str(path), "--launcher", "htcondor"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "cannot reach the HTCondor schedd" in result.output
    assert not (tmp_path / "out").exists(), "no ledger, no run folder: nothing was submitted"
    with pytest.raises(LauncherError, match="HTCondor schedd"):
        HTCondorLauncher(load_sweep(path)).check()
    # status still reports what the run folders say when the queue cannot be asked
    sweep = load_sweep(path, launcher="slurm")
    ledger = Ledger(sweep)
    ledger.record_launch(plan_tasks(sweep)[2].key, "slurm", ["41_0"])
    ledger.save()
    with pytest.raises(LauncherError):
        SlurmLauncher(sweep).active(["41_0"])
    result = CliRunner().invoke(app, ["sweep", "status", str(path), "--launcher", "slurm"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "job states unknown" in result.output and "6 pending" in result.output


def _record(task, **phases) -> RunRecord:
    rec = RunRecord(run_id=task.key, spec=task.spec)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (name, status) in enumerate(phases.items()):
        ps = rec.phases[name]
        ps.started_at = t0 + timedelta(minutes=i)
        if status in ("done", "failed"):
            ps.finished_at = ps.started_at + timedelta(seconds=30)
        ps.status = "pending" if status == "running" else status
        if status == "failed":
            ps.error = "PhaseError: sandbox bwrap: could not start"
    return rec


def test_status_reads_every_state_and_retries_respect_the_limit(tmp_path: Path) -> None:
    sweep = load_sweep(
        _write(
            tmp_path,
            GOOD.replace(
                'benchmarks = ["gsm8k-calc", "gsm8k"]', 'benchmarks = ["gsm8k-calc", "gsm8k"]\nmax_retries = 1'
            ),
        )
    )
    tasks = plan_tasks(sweep)
    b_ok, b_failed, r0, r1, r2, r3 = tasks
    done = ("done",) * 6
    phases = ("prepare", "solve", "collect", "verify", "evaluate", "record")
    save_record(r0.folder / "run.json", _record(r0, **dict(zip(phases, done))))
    outcome = _record(r1, **dict(zip(phases, done)))
    outcome.failure, outcome.metrics = (
        "evaluate: CUDA out of memory",
        RunMetrics(status="failed", error="CUDA out of memory"),
    )
    save_record(r1.folder / "run.json", outcome)
    save_record(r2.folder / "run.json", _record(r2, prepare="done", solve="running"))
    save_record(r3.folder / "run.json", _record(r3, prepare="failed"))
    b_ok.folder.mkdir(parents=True)
    (b_ok.folder / "result.json").write_text(
        json.dumps({"benchmark": "gsm8k-calc", "status": "ok", "metric": "accuracy", "score": 0.5, "decoding": {}})
    )

    st = {t.key: task_status(t) for t in tasks}
    assert st[b_ok.key].state == "done" and st[b_ok.key].score == 0.5
    assert st[b_failed.key].state == "pending"
    assert st[r0.key].state == "done" and st[r0.key].time_used_s == 180
    assert st[r1.key].state == "done" and st[r1.key].eval_failed and st[r1.key].failure.startswith("evaluate:")
    assert st[r2.key].state == "interrupted" and st[r2.key].phase == "solve"
    assert st[r3.key].state == "failed" and "could not start" in st[r3.key].failure

    state = sweep_state(sweep)
    assert {t.key for t in state.to_launch()} == {b_failed.key, r2.key, r3.key}, (
        "done runs (outcome failures too) are never launched"
    )
    ledger = Ledger(sweep)
    for _ in range(2):
        ledger.record_launch(r3.key, "local", ["local:1"])
    ledger.save()
    state = sweep_state(sweep)
    assert r3.key not in {t.key for t in state.to_launch()} and [t.key for t in state.gave_up()] == [r3.key]

    # --retry-failed-evals: only evaluate + record go back to pending; the agent's phases stay
    before = json.loads((r1.folder / "run.json").read_text())
    assert reset_failed_evaluation(r1) and not reset_failed_evaluation(r0)
    after = json.loads((r1.folder / "run.json").read_text())
    assert after["failure"] is None and after["metrics"] == {}
    for p in ("prepare", "solve", "collect", "verify"):
        assert after["phases"][p] == before["phases"][p]
    assert after["phases"]["evaluate"]["status"] == after["phases"]["record"]["status"] == "pending"
    assert task_status(r1).state == "partial"

    # --rerun-failed-agents (only when asked): a run whose agent failed starts over; others are kept
    agent_failed = _record(r0, **dict(zip(phases, done)))
    agent_failed.failure = "solve: agent exited with code 3"
    save_record(r0.folder / "run.json", agent_failed)
    assert task_status(r0).state == "done" and r0.key not in {t.key for t in sweep_state(sweep).to_launch()}
    assert not reset_failed_agent(r1), "an evaluation failure is not an agent failure"
    assert reset_failed_agent(r0)
    assert not (r0.folder / "run.json").exists() and len(list(r0.folder.glob("run.failed-*.json"))) == 1
    assert r0.key in {t.key for t in sweep_state(sweep).to_launch()}
    save_record(r0.folder / "run.json", _record(r0, **dict(zip(phases, done))))
    assert not reset_failed_agent(r0), "a successful run is never re-run"

    # an unreadable run.json is reported, never relaunched (it would be overwritten)
    (r0.folder / "run.json").write_text("{half")
    assert task_status(r0).state == "unreadable" and r0.key not in {t.key for t in sweep_state(sweep).to_launch()}


def test_cli_status_shows_phase_time_attempts_and_cause(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    sweep = load_sweep(path)
    r3 = plan_tasks(sweep)[5]
    save_record(r3.folder / "run.json", _record(r3, prepare="done", solve="failed"))
    result = CliRunner().invoke(app, ["sweep", "status", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "gsm8k ptb/tiny-random r1" in ln)
    assert "failed" in line and "solve" in line and "0:01:00" in line and "0/3" in line
    assert "PhaseError: sandbox bwrap: could not start" in line
    assert "1 failed" in result.output and "5 pending" in result.output
    # the same, machine-readable
    result = CliRunner().invoke(app, ["sweep", "status", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == {"failed": 1, "pending": 5}
    row = next(t for t in data["tasks"] if t["task"].endswith("gsm8k ptb/tiny-random r1"))
    assert row["state"] == "failed" and row["phase"] == "solve" and row["time_used_s"] == 60.0
    assert row["attempts"] == 0 and row["max_attempts"] == 3
    assert "PhaseError: sandbox bwrap: could not start" in row["failure"]


def test_slurm_job_description(tmp_path: Path) -> None:
    from submitit.slurm.slurm import _make_sbatch_string

    text = GOOD.replace("hours = 0.05", 'hours = 0.05\ngpus_per_run = 2\nlauncher = "slurm"')
    sweep = load_sweep(
        _write(tmp_path, text.replace("[slurm]", '[slurm]\naccount = "lab"\nqos = "high"\nscratch = "/scratch"'))
    )
    run = plan_tasks(sweep)[2]
    assert stages(sweep, run) == [(None, 2, 0.05)]
    params = job_parameters(sweep, gpus=2, hours=run.hours, name="ptb-tiny")
    assert params["time"] == time_limit_min(0.05, 10) == 13
    script = _make_sbatch_string(command="CMD", folder=tmp_path / "%j", map_count=4, **params)
    for line in (
        "#SBATCH --gres=gpu:2",
        "#SBATCH --time=13",
        "#SBATCH --mem=3072M",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --partition=debug",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --array=0-3%4",
        "export OMP_NUM_THREADS=2",
    ):
        assert line in script.splitlines(), (line, script)
    assert f"export PYTHONPATH={package_root()}" in script
    assert 'export PTB_SCRATCH=/scratch/ptb-"${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}"' in script
    assert "gres" not in job_parameters(sweep, gpus=0, hours=0, name="x")
    split = sweep.model_copy(update={"slurm": sweep.slurm.model_copy(update={"split_eval": True, "eval_gpus": 1})})
    assert stages(split, run) == [("collect", 2, 0.05), ("verify", 0, 0.0), (None, 1, 0.0)]


def test_htcondor_submit_description_parses_with_the_real_bindings(tmp_path: Path) -> None:
    import htcondor2

    text = (
        GOOD
        + '\n[htcondor]\ncpus_per_run = 2\nmem_gb = 16\ndisk_gb = 50\nrequirements = "CUDACapability >= 8.0"\naccounting_group = "group_ml.alice"\n'
    )
    sweep = load_sweep(_write(tmp_path, text.replace("hours = 0.05", "hours = 10")))
    desc = submit_description(sweep, gpus=1, hours=10, folder=tmp_path / "condor")
    sub = htcondor2.Submit(desc)
    assert sub["request_gpus"] == "1" and sub["request_cpus"] == "2"
    assert sub["request_memory"] == "16384MB" and sub["request_disk"] == f"{50 * 1024 * 1024}KB"
    assert sub["requirements"] == "CUDACapability >= 8.0" and sub["accounting_group"] == "group_ml.alice"
    assert sub["allowed_execute_duration"] == str((600 + 60) * 60)
    assert sub["should_transfer_files"] == "NO" and sub["initialdir"] == str(sweep.results)
    assert "-m posttrainbench.launch.worker $(task_file)" in sub["arguments"]
    assert f"PYTHONPATH='{package_root()}'" in sub["environment"] and "OMP_NUM_THREADS='2'" in sub["environment"]
    assert "request_gpus" not in submit_description(sweep, gpus=0, hours=10, folder=tmp_path)


def test_local_gpu_pool_hands_out_disjoint_gpus(tmp_path: Path) -> None:
    pool = GpuPool([4, 5, 6])
    seen: list[list[int]] = []
    busy: set[int] = set()
    lock = threading.Lock()
    clash: list[str] = []

    def job() -> None:
        got = pool.take(2)
        with lock:
            if busy & set(got):
                clash.append(f"{got} while {busy}")
            busy.update(got)
            seen.append(got)
        time.sleep(0.05)
        with lock:
            busy.difference_update(got)
        pool.give(got)

    threads = [threading.Thread(target=job) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not clash and len(seen) == 6 and all(len(g) == 2 and set(g) <= {4, 5, 6} for g in seen)
    with pytest.raises(ValueError):
        pool.take(4)
    sweep = load_sweep(_write(tmp_path, GOOD + "\n[local]\ngpus = [2, 3]\ncpus_per_run = 3\n"))
    env = LocalLauncher(sweep)._env([3])
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["OMP_NUM_THREADS"] == "3"
    assert env["PYTHONPATH"].split(":")[0] == str(package_root())
    assert LocalLauncher(sweep)._env([])["CUDA_VISIBLE_DEVICES"] == ""
    # the worker maps what the launcher gave it to host GPU indices for the sandbox
    assert assigned_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == [2, 3]
    assert assigned_gpus({"SLURM_JOB_GPUS": "5", "CUDA_VISIBLE_DEVICES": "0"}) == [5]
    assert assigned_gpus({"CUDA_VISIBLE_DEVICES": "GPU-1a2b"}) is None and assigned_gpus({}) is None
    with pytest.raises(SweepError, match="gpus_per_run = 3"):
        load_sweep(
            _write(
                tmp_path,
                GOOD.replace("hours = 0.05", "hours = 0.05\ngpus_per_run = 3") + "\n[local]\ngpus = [0, 1]\n",
                "y.toml",
            )
        )


def test_docs_sweep_example_is_a_valid_sweep(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "running.md").read_text()
    block = re.search(r"```toml\n# sweep\.toml\n(.*?)```", page, re.S)
    assert block, "docs/running.md has the sweep.toml example"
    sweep = load_sweep(_write(tmp_path, block.group(1)))
    assert (
        sweep.launcher == "slurm" and sweep.slurm.extra == {"constraint": "h100"} and sweep.local.gpus == [0, 1, 2, 3]
    )
    assert len(plan_tasks(sweep)) == 2 * 2 + 1 * 2 * 2 * 3
    desc = submit_description(sweep, gpus=1, hours=sweep.hours, folder=tmp_path)
    assert desc["request_memory"] == "131072MB" and desc["request_disk"] == "209715200KB"
    assert desc["allowed_execute_duration"] == str((600 + 60) * 60)


def test_worker_removes_its_scratch_however_it_ends(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    scratch = tmp_path / "scratch" / "ptb-7_0"
    env = dict(os.environ, PTB_SCRATCH=str(scratch), PYTHONPATH=str(package_root()))
    bad = subprocess.run(
        [sys.executable, "-m", "posttrainbench.launch.worker", str(tmp_path / "missing.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "cannot read task file" in bad.stderr
    assert scratch.parent.is_dir() and not scratch.exists()
    # a task that blocks (a FIFO as its task file) until SIGTERM, as under scancel
    fifo = tmp_path / "task.json"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "posttrainbench.launch.worker", str(fifo)], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scratch.is_dir(), "the worker makes its scratch folder"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not scratch.exists()


def test_slurm_job_forwards_sigterm_to_the_worker(tmp_path: Path) -> None:
    """Slurm SIGTERMs only the step's task (the submitit process) on scancel: it must pass it on."""
    import os
    import signal
    import subprocess
    import sys

    marker = tmp_path / "child-got-term"
    child = (
        f"import signal, sys, time, pathlib\n"
        f"def h(s, f):\n    pathlib.Path({str(marker)!r}).write_text(str(s)); sys.exit(143)\n"
        f"signal.signal(signal.SIGTERM, h)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    parent = (
        f"import sys, subprocess\nfrom posttrainbench.launch.slurm import run_worker\n"
        f"try:\n    run_worker([sys.executable, '-c', {child!r}])\n"
        f"except subprocess.CalledProcessError as e:\n    sys.exit(e.returncode)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", parent],
        env=dict(os.environ, PYTHONPATH=str(package_root())),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, "the worker's exit status fails the job"
    assert marker.read_text() == str(int(signal.SIGTERM))


def test_launcher_vocabulary_matches_the_registry() -> None:
    """``domain.LauncherKind`` (the CLI's choices, importable without the launchers) names exactly
    the registered launchers."""
    from typing import get_args

    from posttrainbench.domain import LauncherKind
    from posttrainbench.launch import LAUNCHERS

    assert sorted(LAUNCHERS.names()) == sorted(get_args(LauncherKind))


# --- suites in sweep files (issue 14, part "published") ---------------------------------------------------------


def test_a_suite_gives_the_benchmarks_or_checks_them(tmp_path: Path) -> None:
    no_benchmarks = GOOD.replace('benchmarks = ["gsm8k-calc", "gsm8k"]', 'suite = "v1.2"')
    sweep = load_sweep(_write(tmp_path, no_benchmarks))
    assert sweep.suite == "v1.2"
    assert sweep.benchmarks == ["aime2025", "arenahardwriting", "gpqamain", "gsm8k", "healthbench", "humaneval"]
    assert {s.benchmark for s in sweep.run_specs()} == set(sweep.benchmarks)
    subset = GOOD.replace('benchmarks = ["gsm8k-calc", "gsm8k"]', 'suite = "v1"\nbenchmarks = ["gsm8k", "bfcl"]')
    assert load_sweep(_write(tmp_path, subset)).benchmarks == ["gsm8k", "bfcl"]
    outside = GOOD.replace('benchmarks = ["gsm8k-calc", "gsm8k"]', 'suite = "v1.2"\nbenchmarks = ["gsm8k", "bfcl"]')
    with pytest.raises(SweepError) as info:
        load_sweep(_write(tmp_path, outside))
    assert ":8: benchmarks[1]: 'bfcl' is not in suite v1.2" in str(info.value)
    unknown = GOOD.replace('benchmarks = ["gsm8k-calc", "gsm8k"]', 'suite = "v3"')
    with pytest.raises(SweepError) as info:
        load_sweep(_write(tmp_path, unknown))
    assert ":7: suite: unknown suite 'v3' (known: v1, v1.2)" in str(info.value)
