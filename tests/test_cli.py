"""The `ptb` command line: help, catalog listing, clear errors, doctor, show."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from posttrainbench.cli import app

runner = CliRunner()


def test_console_script_is_installed() -> None:
    exe = shutil.which("ptb") or str(Path(sys.executable).parent / "ptb")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("demo", "run", "doctor", "eval", "list", "show"):
        assert cmd in out


def test_list_shows_catalog() -> None:
    res = runner.invoke(app, ["list"], terminal_width=200)
    assert res.exit_code == 0
    for name in ("gsm8k", "humaneval", "Qwen/Qwen3-4B-Base", "google/gemma-3-4b-pt", "reference", "claude"):
        assert name in res.output


def test_run_with_unknown_names_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["run", "--agent", "reference", "--model", "Qwen/Qwen3-4B-Bas", "--benchmark", "gsm8k", "--results", str(tmp_path)],
        terminal_width=200,
    )
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "unknown base model" in text and "Qwen/Qwen3-4B-Base" in text
    res = runner.invoke(app, ["run", "--agent", "codex", "--model", "Qwen/Qwen3-4B-Base", "--benchmark", "gsm8k", "--results", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 2 and "not runnable" in " ".join(res.output.split())
    assert list(tmp_path.iterdir()) == []


def test_doctor_reports_sandbox_and_packages(tmp_path: Path) -> None:
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path)], terminal_width=200)
    assert "bubblewrap" in res.output and "transformers" in res.output and "ANTHROPIC_API_KEY" in res.output
    assert res.exit_code == 0, res.output  # bwrap is installed by scripts/setup.sh


def test_show_reports_a_broken_run_folder(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{")
    res = runner.invoke(app, ["show", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 2 and "unreadable run.json" in res.output
