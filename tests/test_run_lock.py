"""The run lock: a run folder is run by one live process at a time, and a run whose process died
mid-phase reads as ``died``, not ``running`` (a real ``flock`` held by a real child process,
killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.domain import RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.report.data import run_state
from posttrainbench.results.run_lock import LOCK_NAME, RunInUse, hold_run, run_liveness

HOLDER = (
    "import sys, time\nfrom pathlib import Path\nfrom posttrainbench.results.run_lock import hold_run\n"
    "with hold_run(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(120)\n"
)


def _spec() -> RunSpec:
    return RunSpec(agent="reference", agent_config="sft:steps=1,bs=1", base_model="ptb/tiny-random",
                   benchmark="gsm8k-calc", hours=0.01, eval_limit=2)  # fmt: skip


def _hold(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_refuses_a_second_run_and_a_killed_one_reads_as_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "cache"))
    root = Pipeline(_spec(), tmp_path / "results").paths.root
    assert run_liveness(root) == "unknown"  # never run: no lock file
    proc = _hold(root)
    try:
        assert run_liveness(root) == "alive"
        with pytest.raises(RunInUse, match=f"pid {proc.pid} on {socket.gethostname()}"), hold_run(root):
            pass
        # the pipeline refuses before it writes anything: the live run's folder is left alone
        with pytest.raises(RunInUse):
            Pipeline(_spec(), tmp_path / "results").run()
        assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]
        # and `ptb run` says so in one line, exit 2
        res = CliRunner().invoke(app, ["run", "--agent", "reference", "--agent-config", "sft:steps=1,bs=1",
                                       "--model", "ptb/tiny-random", "--benchmark", "gsm8k-calc", "--hours", "0.01",
                                       "--limit", "2", "--results", str(tmp_path / "results")])  # fmt: skip
        assert res.exit_code == 2 and "cannot start the run" in res.stderr and f"pid {proc.pid}" in res.stderr, (
            res.stderr
        )
        assert "Traceback" not in res.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the process is gone (SIGKILL: nothing recorded); its record still says the phase runs
    pipe = Pipeline(_spec(), tmp_path / "results")
    record = pipe.load_or_create()
    record.phases.solve.status, record.phases.solve.started_at = "pending", record.created_at
    assert run_liveness(root) == "gone"
    assert run_state(record) == "solve running"  # what the record alone says
    assert run_state(record, root) == "solve died"
    with hold_run(root):  # free again: a resume takes it, and names itself
        assert json.loads((root / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert run_state(record, root) == "solve running"
    # a lock file written on another host (a folder synced back from a cloud job) proves nothing here
    (root / LOCK_NAME).write_text(json.dumps({"host": "node-elsewhere", "pid": 1}))
    assert run_liveness(root) == "unknown" and run_state(record, root) == "solve running"
