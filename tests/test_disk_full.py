"""A full disk in the middle of a run: the phase fails with a clear cause in run.json, nothing
the agent produced is lost, and the run resumes once space is available again.

Needs root to mount a small tmpfs (CI runs as root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from posttrainbench.domain import RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.results import load_record


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_during_collect_is_recorded_and_resumable(small_disk: Path, script_agent) -> None:
    # the agent leaves a 5 MB "model": copying it out needs 5 MB more than the 8 MB disk has
    agent = script_agent("mkdir -p final_model && head -c 5000000 /dev/zero > final_model/model.safetensors\n")
    spec = RunSpec(agent=agent, agent_config="x", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=0.05, eval_limit=4)
    pipe = Pipeline(spec, small_disk)
    record = pipe.run()
    collect = record.phases["collect"]
    assert collect.status == "failed"
    assert "No space left on device" in collect.error
    assert record.failure.startswith("collect: ")
    assert load_record(pipe.paths.run_json).phases["collect"].status == "failed", "cause is on disk"
    assert (pipe.paths.workspace / "final_model" / "model.safetensors").stat().st_size == 5_000_000
    assert not pipe.paths.final_model.exists(), "no half-copied final_model that could read as done"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    solve_done_at = record.phases["solve"].finished_at
    again = Pipeline(spec, small_disk).run()
    assert again.phases["solve"].finished_at == solve_done_at, "the agent is not re-run"
    assert again.phases["collect"].status == "done" and again.completed
    assert (pipe.paths.final_model / "model.safetensors").stat().st_size == 5_000_000
