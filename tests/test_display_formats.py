"""One format for times, durations and scores everywhere (``console``), and a score from a
``--limit`` evaluation marked wherever it is shown: ``ptb show``, the leaderboard, the report."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from posttrainbench.cli.main import app
from posttrainbench.console import duration, hms, limited, score, utc
from posttrainbench.results import load_record, save_record
from posttrainbench.testing import write_synthetic_run

runner = CliRunner()


def test_the_one_format_of_times_durations_and_scores() -> None:
    assert hms(3725.4) == "1:02:05" and hms(-3) == "0:00:00"
    assert duration(None) == "—" and duration(59.6) == "0:01:00"
    # UTC to the minute, whatever the zone of the moment (a naive one is UTC)
    east = datetime(2026, 11, 30, 4, 21, 59, tzinfo=timezone(timedelta(hours=2)))
    assert utc(east) == "2026-11-30 02:21Z" and utc(datetime(2026, 1, 2, 3, 4)) == "2026-01-02 03:04Z"
    assert utc(None) == "—"
    assert score(0.46549) == "0.465" and score(None) == "—" and score(1.0) == "1.000"
    assert limited(None) == "" and limited(20, short=True) == " (limit 20)"
    assert "--limit 20" in limited(20) and "first 20 items" in limited(20)


def _phases_timed(folder: Path) -> None:
    rec = load_record(folder / "run.json")
    t0 = datetime(2026, 11, 30, 2, 21, 30, tzinfo=UTC)
    for i, name in enumerate(rec.phases):
        state = rec.phases[name]
        state.started_at = t0 + timedelta(minutes=10 * i)
        state.finished_at = t0 + timedelta(minutes=10 * i, seconds=62)
    save_record(folder / "run.json", rec)


def test_show_marks_a_limited_score_and_shows_times_in_the_one_format(tmp_path: Path) -> None:
    limited_run = write_synthetic_run(tmp_path, score=0.46549, eval_limit=20)
    _phases_timed(limited_run)
    res = runner.invoke(app, ["show", str(limited_run)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "score: 0.465 (--limit 20: first 20 items only)  (ok)" in res.output
    assert re.search(r"prepare\s+│\s+done\s+│\s+2026-11-30 02:21Z\s+│\s+0:01:02", res.output), res.output
    full = write_synthetic_run(tmp_path, score=0.46549, repeat=1)
    res = runner.invoke(app, ["show", str(full)], terminal_width=200)
    assert "score: 0.465  (ok)" in res.output and "--limit" not in res.output


def test_a_narrow_show_keeps_its_key_columns_whole(tmp_path: Path) -> None:
    folder = write_synthetic_run(tmp_path, score=0.5, failure="evaluate: " + "a long cause " * 20)
    _phases_timed(folder)
    res = runner.invoke(app, ["show", str(folder)], terminal_width=80)
    assert res.exit_code == 0
    assert "2026-11-30 02:21Z" in res.output and "0:01:02" in res.output and "…" not in res.output


def test_the_leaderboard_marks_agents_scored_with_limit(tmp_path: Path) -> None:
    write_synthetic_run(tmp_path, agent="reference", agent_config="sft", score=0.5, eval_limit=20)
    write_synthetic_run(tmp_path, agent="claude", agent_config="claude-opus-4-5-20251101", score=0.25)
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    rows = {
        line.split("|")[2].strip(): line.split("|")[3].strip()
        for line in res.output.splitlines()
        if "| 1 " in line or "| 2 " in line
    }
    assert rows[next(k for k in rows if k.startswith("reference"))] == "0.500 (limit 20)", rows
    assert rows[next(k for k in rows if k.startswith("claude"))] == "0.250", rows
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--format", "csv"])
    assert "limit" not in res.output.splitlines()[1] + res.output.splitlines()[2], "CSV keeps plain numbers"


def test_a_narrow_sweep_status_keeps_task_state_phase_and_score(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "sweep.toml").write_text(
        'name = "narrow"\nresults = "out"\nhours = 1.0\nrepeats = 1\nbase_models = ["ptb/tiny-random"]\n'
        'benchmarks = ["gsm8k-calc"]\nbaselines = false\n\n[[agents]]\nname = "reference"\nconfig = "sft"\n'
    )
    write_synthetic_run(tmp_path / "out", score=0.46549, failure="evaluate: " + "a long cause " * 12)
    argv = [sys.executable, "-m", "posttrainbench", "sweep", "status", str(tmp_path / "sweep.toml")]
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "64", "PTB_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout)
    head = next(ln for ln in text.splitlines() if "task" in ln and "state" in ln)
    assert [c.strip() for c in head.strip("┃").split("┃")][:4] == ["task", "state", "phase", "score"], head
    row = next(ln for ln in text.splitlines() if "0.465" in ln)
    assert "done" in row and "…" not in text
    assert "not shown at this width" in " ".join(text.split()) and "failure / cause" in " ".join(text.split())
    # piped: every column
    res = subprocess.run(argv, capture_output=True, text=True, env={**env, "FORCE_COLOR": ""}, check=True)
    assert "a long cause" in res.stdout and "not shown" not in res.stdout
