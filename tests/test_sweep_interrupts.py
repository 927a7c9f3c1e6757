"""Ctrl-C for real at ``ptb sweep run`` on the local pool (a subprocess in its own process group,
as a terminal sends it): one SIGINT stops the pool's running runs within seconds, each recorded
as interrupted, costs them no attempt, says how to resume and exits 130; the sweep then plans to
re-run exactly those. A second SIGINT forces the exit and takes the workers with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from posttrainbench.interrupts import EXIT_INTERRUPTED

PTB = [sys.executable, "-m", "posttrainbench"]

SWEEP = """\
name = "intr"
results = "out"
hours = 0.05
repeats = 2
max_retries = 0
baselines = false
base_models = ["ptb/tiny-random"]
benchmarks = ["gsm8k-calc"]

[[agents]]
name = "reference"
config = "sft:steps=100000"

[local]
parallel = 2
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP)
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*PTB, "sweep", "run", str(sweep), "--launcher", "local", "--poll", "0.5"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    return proc, sweep


def _records(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*/*/run.json"))]


def _wait_until_both_solve(tmp_path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while True:
        recs = _records(tmp_path)
        if len(recs) == 2 and all(r["phases"]["solve"].get("started_at") for r in recs):
            break
        assert proc.poll() is None, f"the sweep ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "the runs never reached solve"
        time.sleep(0.5)
    time.sleep(3)  # the agents are training in their sandboxes


def _ledger(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / ".sweeps" / "intr" / "ledger.json").read_text())


def _worker_pids(tmp_path: Path) -> list[int]:
    return [
        int(jid.split(":", 1)[1])
        for t in _ledger(tmp_path)["tasks"].values()
        for j in t["jobs"]
        for jid in j["job_ids"]
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie no one reaps is gone for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_one_ctrl_c_interrupts_the_pools_runs_and_the_sweep_resumes_them(tmp_path: Path) -> None:
    proc, sweep = _start(tmp_path)
    _wait_until_both_solve(tmp_path, proc)
    pids = _worker_pids(tmp_path)
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does (the workers are in sessions of their own)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the sweep still ran 120 s after one SIGINT") from None
    took = time.monotonic() - t0
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted (SIGINT)" in err and "run the same command again to resume" in err, err
    assert "Traceback" not in err, err
    assert took < 60, f"took {took:.0f} s to stop"
    assert not any(_alive(p) for p in pids), "a worker outlived the sweep"
    recs = _records(tmp_path)
    assert [r["phases"]["solve"]["status"] for r in recs] == ["interrupted", "interrupted"], recs
    assert all(r["failure"] is None for r in recs), "an interruption is not a failure"
    for entry in _ledger(tmp_path)["tasks"].values():
        assert entry["attempts"] == 0 and entry["jobs"][-1].get("interrupted_at"), entry
    # resuming re-runs exactly the interrupted runs, although max_retries is 0
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    plan = subprocess.run([*PTB, "sweep", "plan", str(sweep)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "0 done, 2 to launch, 0 out of attempts" in plan.stdout, plan.stdout


def test_a_second_ctrl_c_forces_the_sweep_out_and_its_workers_with_it(tmp_path: Path) -> None:
    proc, _ = _start(tmp_path)
    _wait_until_both_solve(tmp_path, proc)
    pids = _worker_pids(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT and "forced exit" in err, err
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "a worker outlived the forced exit"


def test_ctrl_c_while_waiting_for_jobs_says_they_keep_running(tmp_path: Path) -> None:
    """A second ``ptb sweep run`` finds the first one's jobs alive and waits for them; Ctrl-C there
    stops the waiting only, and says so (not "recorded as interrupted"): the jobs run on."""
    first, sweep = _start(tmp_path)
    try:
        _wait_until_both_solve(tmp_path, first)
        pids = _worker_pids(tmp_path)
        env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "400"}
        waiter = subprocess.Popen(
            [*PTB, "sweep", "run", str(sweep), "--launcher", "local", "--poll", "0.5"], cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        )  # fmt: skip
        time.sleep(8)  # it plans, finds both runs' jobs alive, and waits
        assert waiter.poll() is None, waiter.communicate()
        os.killpg(waiter.pid, signal.SIGINT)
        _, err = waiter.communicate(timeout=60)
        assert waiter.returncode == EXIT_INTERRUPTED, err
        assert "stopped waiting; the 2 local job(s)" in err and "keep running" in err, err
        assert all(f"local:{p}" in err for p in pids), err
        assert "recorded as interrupted" not in err and "Traceback" not in err, err
        assert all(_alive(p) for p in pids), "the waiter's Ctrl-C reached the jobs"
        assert all(r["phases"]["solve"]["status"] == "pending" for r in _records(tmp_path))
    finally:
        os.killpg(first.pid, signal.SIGINT)
        try:
            first.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
