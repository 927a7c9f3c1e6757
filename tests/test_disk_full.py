"""A full disk in the middle of a run: the phase fails with a clear cause in run.json, nothing
the agent produced is lost, and the run resumes once space is available again.

Needs root to mount a small tmpfs (CI runs as root)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from posttrainbench.domain import RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.results import load_record


@pytest.fixture
def small_disk(tmpfs) -> Path:
    return tmpfs("8m")


def test_disk_full_during_collect_is_recorded_and_resumable(small_disk: Path, script_agent) -> None:
    # the agent leaves a real (untrained) model; then the disk fills up to 60 kB (from the host,
    # after solve: the sandbox's own clean-up frees space when the agent exits, so a filler the
    # agent wrote would not leave a known margin): writing the canonical submission (its
    # ~100 kB of weights) runs out of space in the middle of collect
    agent = script_agent(
        "base=$(python -c \"import json;print(json.load(open('task/task.json'))['base_model_path'])\")\n"
        'cp -r "$base" final_model\n'
    )
    spec = RunSpec(
        agent=agent, agent_config="x", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=0.05, eval_limit=4
    )
    pipe = Pipeline(spec, small_disk)
    assert pipe.run(until="solve").phases["solve"].status == "done"
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - 60_000))
    record = pipe.run()
    collect = record.phases["collect"]
    assert collect.status == "failed"
    assert "No space left on device" in collect.error
    assert record.failure.startswith("collect: ")
    assert load_record(pipe.paths.run_json).phases["collect"].status == "failed", "cause is on disk"
    submitted = (pipe.paths.workspace / "final_model" / "model.safetensors").stat().st_size
    assert submitted > 60_000, "the agent's model is intact"
    assert not pipe.paths.final_model.exists(), "no half-written final_model that could read as done"
    assert not list(pipe.paths.root.glob(".final_model.partial-*")), "the partial copy is removed"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    solve_done_at = record.phases["solve"].finished_at
    again = Pipeline(spec, small_disk).run()
    assert again.phases["solve"].finished_at == solve_done_at, "the agent is not re-run"
    assert again.phases["collect"].status == "done" and again.completed
    assert again.submission is not None and (pipe.paths.final_model / "model.safetensors").is_file()
