"""Bad input to a command is one line ``error: <what>: <why>[; <fix>]`` on stderr, exit code 2,
no traceback, and nothing is created: a corrupt trace, a missing or malformed weights file, a
file where a folder is expected, a missing baselines grid, a read-only output folder (a real
read-only bind mount)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from test_cli_read_only import _ro_mount_argv, _tree

runner = CliRunner()


def _one_line_error(res, needle: str) -> None:  # res: click's Result
    assert res.exit_code == 2, res.output
    assert res.stdout == "", res.stdout
    assert res.stderr.startswith("error: ") and needle in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_bad_input_is_one_line_and_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "r" / "g" / "run1"
    run.mkdir(parents=True)
    (run / "trace.json").write_text("{bad")
    _one_line_error(runner.invoke(app, ["trace", str(run)]), "trace.json: unreadable trace (Invalid JSON")
    (tmp_path / "bad.json").write_text("x")
    for weights in ("nope.json", "bad.json"):
        res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path / "r"), "--weights", weights])
        _one_line_error(res, f"{weights}: cannot read weights")
    (tmp_path / "f").write_text("x")
    res = runner.invoke(app, ["run", "--agent", "reference", "--model", "ptb/tiny-random", "--benchmark", "gsm8k-calc",
                              "--results", "f"])  # fmt: skip
    _one_line_error(res, "f: not a folder (the results folder)")
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path / "r"), "--format", "csv", "--out", "f/x.csv"])
    _one_line_error(res, "not a folder")
    res = runner.invoke(app, ["import", str(tmp_path / "r"), "--results", "r2", "--baselines", "nope.csv"])
    _one_line_error(res, "nope.csv: no such file")
    res = runner.invoke(app, ["eval", "nomodel", "--benchmark", "gsm8k", "--base-model", "ptb/tiny-random"])
    _one_line_error(res, "nomodel: no such folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "f", "r"]


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    results = tmp_path / "results"
    results.mkdir()
    before = _tree(ro)
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    ptb = [sys.executable, "-m", "posttrainbench"]
    for argv, needle in (
        (["run", "--agent", "reference", "--model", "ptb/tiny-random", "--benchmark", "gsm8k-calc", "--results", str(ro)],
         "the results folder is read-only"),
        (["report", str(results), "--out", str(ro / "site")], "cannot create the site folder"),
        (["import", str(results), "--results", str(ro)], "the results folder is read-only"),
    ):  # fmt: skip
        res = subprocess.run([*_ro_mount_argv(ro), *ptb, *argv], capture_output=True, text=True, env=env)
        assert res.returncode == 2, (argv, res.stdout, res.stderr)
        assert res.stderr.startswith("error: ") and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert _tree(ro) == before


def test_a_missing_agent_key_is_found_before_any_folder_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    res = runner.invoke(app, ["run", "--agent", "claude", "--model", "ptb/tiny-random", "--benchmark", "gsm8k-calc",
                              "--results", str(tmp_path / "results")])  # fmt: skip
    _one_line_error(res, "cannot start the run: Claude Code needs ANTHROPIC_API_KEY")
    assert not (tmp_path / "results").exists()
    # with the key, the same check passes (the pipeline is made, nothing is written)
    from posttrainbench.domain import RunSpec
    from posttrainbench.pipeline import Pipeline

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    spec = RunSpec(
        agent="claude", agent_config="claude-opus-4-5", base_model="ptb/tiny-random", benchmark="gsm8k-calc", hours=1
    )
    Pipeline(spec, tmp_path / "results").preflight()
    assert not (tmp_path / "results").exists()


def test_an_unreachable_hub_is_said_at_once_without_retries(tmp_path: Path) -> None:
    # GPQA is not shipped: it comes from the hub. Nothing listens on port 1: the connection is
    # refused, and the load must not go through the hub clients' retries (minutes with backoff).
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "PTB_DATA_DIR")}
    env |= {"HF_ENDPOINT": "http://127.0.0.1:1", "HF_HOME": str(tmp_path / "hf"), "PTB_CACHE_DIR": str(tmp_path / "c")}
    res = subprocess.run(
        [sys.executable, "-m", "posttrainbench", "data", "check", "gpqamain", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "the hub is unreachable (127.0.0.1:1: Connection refused) and the local cache could not" in res.stdout
    assert "Retrying" not in res.stderr and "Retry 1/5" not in res.stderr, res.stderr
