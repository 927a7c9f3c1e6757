"""Run-folder layout (the published one) and atomic run.json storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrainbench.catalog import get_base_model
from posttrainbench.domain import RunRecord, RunSpec
from posttrainbench.fsutil import atomic_write_text, hash_tree
from posttrainbench.results import RecordError, load_record, run_paths, save_record


def test_layout_matches_published(tmp_path: Path) -> None:
    spec = RunSpec(
        agent="claude", agent_config="claude-opus-4-5", base_model="Qwen/Qwen3-4B-Base", benchmark="gsm8k", hours=10
    )
    paths = run_paths(tmp_path, spec, get_base_model(spec.base_model))
    assert paths.root.parent.name == "claude_claude-opus-4-5_10h"
    assert paths.root.name == f"gsm8k_Qwen_Qwen3-4B-Base_{spec.run_id()}"
    assert paths.workspace.name == "task" and paths.final_model.name == "final_model"
    with_suffix = spec.model_copy(update={"suffix": "run2", "hours": 0.5})
    assert (
        run_paths(tmp_path, with_suffix, get_base_model("Qwen/Qwen3-4B-Base")).root.parent.name
        == "claude_claude-opus-4-5_0.5h_run2"
    )


def test_record_store_round_trip_and_errors(tmp_path: Path) -> None:
    spec = RunSpec(agent="reference", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=1)
    rec = RunRecord(run_id=spec.run_id(), spec=spec)
    path = tmp_path / "run.json"
    save_record(path, rec)
    assert load_record(path) == rec
    path.write_text("{not json")
    with pytest.raises(RecordError, match="unreadable"):
        load_record(path)
    data = json.loads(rec.model_dump_json())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="schema_version 99"):
        load_record(path)
    with pytest.raises(RecordError, match=r"no run\.json"):
        load_record(tmp_path / "missing" / "run.json")


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    class Boom(str):
        def __str__(self) -> str:  # pragma: no cover - not reached
            return "x"

    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]  # on purpose
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"], "no temp file left behind"


def test_hash_tree_sees_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "link").symlink_to("/etc/passwd")
    tree = hash_tree(tmp_path)
    assert tree["link"] == "symlink:/etc/passwd"
    assert len(tree["a.txt"]) == 64
