"""Ctrl-C for real: a SIGINT sent to a running ``ptb eval`` / ``ptb run`` (as subprocesses, in
their own process group, as a terminal sends it) stops the work within seconds, records the
phase as interrupted (never failed, never the next rung of the max-tokens ladder), says how to
resume and exits 130; resuming runs the interrupted phase again; a second signal forces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from posttrainbench.interrupts import EXIT_INTERRUPTED
from posttrainbench.models.tiny import build_tiny_model

PTB = [sys.executable, "-m", "posttrainbench"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}


def _wait_for(predicate, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "the command never reached the point to interrupt"
        time.sleep(0.3)


def _interrupt(proc: subprocess.Popen) -> tuple[int, str, float]:
    """SIGINT to the process group (what Ctrl-C does); (exit code, stderr, seconds it took)."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("still running 180 s after one SIGINT") from None
    return proc.returncode, err, time.monotonic() - t0


def test_one_ctrl_c_stops_an_evaluation_and_the_ladder_does_not_go_on(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny", seed=0)
    out = tmp_path / "eval"
    proc = subprocess.Popen(
        [*PTB, "eval", str(model), "--benchmark", "gsm8k-calc", "--base-model", "ptb/tiny-random", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path), start_new_session=True,
    )  # fmt: skip
    # Inspect creates its log when the evaluation starts; then give generation time to be under way
    _wait_for(lambda: out.is_dir() and any(out.rglob("*.eval")), 300, proc)
    time.sleep(3)
    code, err, _took = _interrupt(proc)
    assert code == EXIT_INTERRUPTED, err
    assert "interrupted (SIGINT)" in err and "run the same command again to resume" in err, err
    assert "Traceback" not in err and "attempt(s) of the max-tokens ladder" not in err, err
    assert "Loading weights" not in err and "it/s]" not in err, "a third-party progress bar in ptb's output"
    assert len(list(out.rglob("*.eval"))) == 1, "a second rung of the ladder was started after the interrupt"


def test_ctrl_c_during_solve_is_recorded_as_interrupted_and_resuming_reruns_it(tmp_path: Path) -> None:
    # relative --results, from another cwd: the sandbox gets absolute paths all the same
    argv = [*PTB, "run", "--agent", "reference", "--agent-config", "sft:steps=100000", "--model", "ptb/tiny-random",
            "--benchmark", "gsm8k-calc", "--hours", "0.01", "--until", "solve", "--results", "res"]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
        start_new_session=True,
    )  # fmt: skip

    def record() -> dict:
        runs = list((tmp_path / "res").glob("*/*/run.json"))
        return json.loads(runs[0].read_text()) if runs else {}

    _wait_for(lambda: bool(record().get("phases", {}).get("solve", {}).get("started_at")), 300, proc)
    time.sleep(3)  # the agent is training in the sandbox
    code, err, _took = _interrupt(proc)
    assert code == EXIT_INTERRUPTED, err
    assert "interrupted (SIGINT)" in err and "Traceback" not in err, err
    rec = record()
    assert rec["phases"]["solve"]["status"] == "interrupted"
    assert rec["phases"]["solve"]["error"] == "interrupted by SIGINT"
    assert rec["failure"] is None, "an interruption is not a failure"
    first_start = rec["phases"]["solve"]["started_at"]

    # resuming runs the interrupted phase again (the agent's 36 s budget runs out: solve is done)
    res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr
    rec = record()
    assert rec["phases"]["solve"]["status"] == "done" and rec["failure"] is None
    assert rec["phases"]["solve"]["started_at"] > first_start


def test_a_second_signal_forces_the_exit(tmp_path: Path) -> None:
    # a command that keeps running after the first interrupt (as a stuck cleanup would)
    code = (
        "import time\nfrom posttrainbench import interrupts\n"
        "with interrupts.handling():\n"
        "    while True:\n"
        "        try:\n            print('ready', flush=True)\n            time.sleep(60)\n"
        "        except KeyboardInterrupt:\n            print('first', flush=True)\n            time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.stdout.readline() == "first\n"
    assert proc.poll() is None, "the first signal must not end it here (the command caught it)"
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "forced exit" in err, (proc.returncode, out, err)


def test_an_interrupt_swallowed_by_a_finaliser_is_not_printed_but_others_are() -> None:
    # the handler's KeyboardInterrupt can land in a weakref callback (Inspect has them), where
    # Python can only print it; the flag holds the interrupt, so that one is not printed
    code = (
        "import os, signal, time, weakref\nfrom posttrainbench import interrupts\n"
        "class T: pass\n"
        "def slow(_):\n    time.sleep(5)\n"
        "def broken(_):\n    raise ValueError('a real bug in a callback')\n"
        "with interrupts.handling():\n"
        "    t = T(); r = weakref.ref(t, slow)\n"
        "    import threading; threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "    del t\n"
        "    assert interrupts.requested()\n"
        "    u = T(); s = weakref.ref(u, broken); del u\n"
        "print('done', flush=True)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == "done\n", (res.stdout, res.stderr)
    assert "KeyboardInterrupt" not in res.stderr, res.stderr
    assert "a real bug in a callback" in res.stderr, "other unraisable errors are still printed"
