"""The SQLite index: rebuilt from run folders, incremental, migrated, bad folders reported."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from posttrainbench.leaderboard.from_results import leaderboard, scan_results
from posttrainbench.results import load_record
from posttrainbench.results.index import (
    DB_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    ResultsIndexError,
    open_index,
    read_index,
    refresh,
)
from posttrainbench.results.summary import select_latest, summarize
from posttrainbench.testing import write_synthetic_baseline, write_synthetic_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _two_agents(root: Path) -> None:
    for bench, base in (("gsm8k-calc", 0.1), ("gsm8k", 0.2)):
        write_synthetic_baseline(root, benchmark=bench, base_model="ptb/tiny-random", score=base)
    for r, (a, b) in enumerate([(0.6, 0.4), (0.8, 0.6)]):
        write_synthetic_run(root, agent_config="sft", repeat=r, benchmark="gsm8k-calc", score=a)
        write_synthetic_run(root, agent_config="sft", repeat=r, benchmark="gsm8k", score=b)
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k-calc", score=0.9, verdict="fail")
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k", score=0.3)


def test_index_gives_the_same_leaderboard_as_the_records(tmp_path: Path) -> None:
    _two_agents(tmp_path)
    rows, _cells, scan = leaderboard(tmp_path)
    assert (tmp_path / DB_NAME).is_file()
    assert scan.problems == []
    by = {r.agent_config: r for r in rows}
    # sft: repeats (0.6+0.4)/2=0.5 and (0.8+0.6)/2=0.7 -> mean 0.6, sample std 0.1414
    assert by["sft"].score == pytest.approx(0.6) and by["sft"].std == pytest.approx(2**0.5 / 10)
    # lora's gsm8k-calc run failed verification: falls back to the base score 0.1
    assert by["lora"].score == pytest.approx((0.1 + 0.3) / 2) and by["lora"].n_fallback == 1
    assert [r.agent_config for r in rows] == ["sft", "lora"]
    # the index holds the same summaries as reading every run.json
    direct = sorted(
        summarize(load_record(p), p.parent.relative_to(tmp_path).as_posix()).model_dump_json()
        for p in tmp_path.glob("*/*/run.json")
    )
    assert sorted(s.model_dump_json() for s in read_index(tmp_path).runs) == direct


def test_refresh_is_incremental_and_sees_changes_and_deletions(tmp_path: Path) -> None:
    _two_agents(tmp_path)
    first = refresh(tmp_path)
    assert first.parsed == 6 + 2  # 6 runs and 2 baselines
    again = refresh(tmp_path)
    assert again.parsed == 0 and again.scanned == first.scanned
    # change one run: only it is re-read, and the leaderboard follows
    run = write_synthetic_run(tmp_path, agent_config="lora", benchmark="gsm8k", score=0.7)
    st = (run / "run.json").stat()
    os.utime(run / "run.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = refresh(tmp_path)
    assert third.parsed == 1
    rows, _, _ = leaderboard(tmp_path)
    assert {r.agent_config: r.score for r in rows}["lora"] == pytest.approx((0.1 + 0.7) / 2)
    # delete a run folder: its row goes
    import shutil

    shutil.rmtree(run)
    assert refresh(tmp_path).removed == 1
    assert len(read_index(tmp_path).runs) == 5


def test_bad_folders_are_reported_with_their_path_and_the_rest_aggregates(tmp_path: Path) -> None:
    _two_agents(tmp_path)
    bad = {
        "corrupt": "{not json",
        "nonnumeric": None,
        "unknownbench": None,
    }
    g = tmp_path / "reference_sft_1h"
    (g / "corrupt_run").mkdir()
    (g / "corrupt_run" / "run.json").write_text(bad["corrupt"])
    nn = write_synthetic_run(tmp_path, agent_config="x", benchmark="gsm8k", score=0.5)
    data = json.loads((nn / "run.json").read_text())
    data["metrics"]["score"] = "0.9 (approx)"
    (nn / "run.json").write_text(json.dumps(data))
    ub = write_synthetic_run(tmp_path, agent_config="y", benchmark="gsm8k", score=0.5)
    data = json.loads((ub / "run.json").read_text())
    data["spec"]["benchmark"] = "mmlu-pro"
    (ub / "run.json").write_text(json.dumps(data))
    (g / "not-a-run-folder").mkdir()
    bl = tmp_path / "baseline_zeroshot" / "broken_full"
    bl.mkdir(parents=True)
    (bl / "baseline.json").write_text('{"benchmark": "gsm8k", "score": "high"}')

    rows, _cells, scan = leaderboard(tmp_path)
    text = "\n".join(scan.problems)
    assert len(scan.problems) == 5, text
    assert "corrupt_run/run.json: unreadable run.json" in text
    assert "not a finite number ('0.9 (approx)')" in text
    assert "mmlu-pro" in text
    assert "not-a-run-folder: no run.json" in text
    assert "broken_full/baseline.json: unreadable baseline" in text
    assert {r.agent_config for r in rows} == {"sft", "lora"}  # the rest aggregates
    # fixing a bad file clears its problem
    (g / "corrupt_run" / "run.json").unlink()
    (g / "corrupt_run").rmdir()
    assert len(scan_results(tmp_path).problems) == 4


def test_latest_run_rule_one_cell_one_run(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path, score=0.2, created_at=T0)
    base = summarize(load_record(run / "run.json"), "g/r")
    recs = [
        base.model_copy(update={"raw_score": score, "created_at": when, "run_id": f"id{i}", "path": f"g/r{i}"})
        for i, (score, when) in enumerate([(0.2, T0), (0.9, T0 + timedelta(days=1)), (0.5, T0 + timedelta(hours=3))])
    ]
    latest, superseded = select_latest(recs)
    assert [s.raw_score for s in latest] == [0.9]
    assert sorted(s.raw_score for s in superseded) == [0.2, 0.5]
    # another repeat is another cell, not a duplicate
    other = base.model_copy(update={"repeat": 1})
    assert len(select_latest([*recs, other])[0]) == 2
    # a duplicate folder on disk (a copied run, newer): both indexed, one scores, one superseded
    import shutil

    copy = run.with_name(run.name + "-copy")
    shutil.copytree(run, copy)
    data = json.loads((copy / "run.json").read_text())
    data["created_at"] = (T0 + timedelta(days=2)).isoformat()
    data["metrics"]["score"] = 0.8
    (copy / "run.json").write_text(json.dumps(data))
    scan = scan_results(tmp_path)
    assert [s.raw_score for s in scan.runs] == [0.8]
    assert [s.path for s in scan.superseded] == [run.relative_to(tmp_path).as_posix()]


def test_migrations_upgrade_an_old_index_and_refuse_a_newer_one(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO problems VALUES ('x/y', 1, 2, 'kept across the migration')")
    conn.commit()
    conn.close()
    with open_index(tmp_path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        cols = {r[1] for r in c.execute("PRAGMA table_info(runs)")}
        assert {"input_tokens", "output_tokens", "cost_usd"} <= cols
        assert c.execute("SELECT cause FROM problems").fetchone()[0] == "kept across the migration"
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        c.commit()
    with pytest.raises(ResultsIndexError, match="newer than this ptb"), open_index(tmp_path):
        pass
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultsIndexError, match="not a usable index"):
        refresh(tmp_path)
