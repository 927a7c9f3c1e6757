"""The `ptb` command line: help, catalog listing, clear errors, doctor, show."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
        [
            "run",
            "--agent",
            "reference",
            "--model",
            "Qwen/Qwen3-4B-Bas",
            "--benchmark",
            "gsm8k",
            "--results",
            str(tmp_path),
        ],
        terminal_width=200,
    )
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "unknown base model" in text and "Qwen/Qwen3-4B-Base" in text
    # an agent nobody registered: named with the registered ones, with and without --agent-config
    for config in ([], ["--agent-config", "x"]):
        res = runner.invoke(
            app,
            [
                "run",
                "--agent",
                "future-agent",
                *config,
                "--model",
                "Qwen/Qwen3-4B-Base",
                "--benchmark",
                "gsm8k",
                "--results",
                str(tmp_path),
            ],
            terminal_width=200,
        )
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and "unknown agent 'future-agent'" in text and "reference" in text, text
    assert list(tmp_path.iterdir()) == []


def test_doctor_reports_sandbox_and_packages(tmp_path: Path) -> None:
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path)], terminal_width=200)
    assert (
        "bubblewrap" in res.output
        and "transformers" in res.output
        and "ANTHROPIC_API_KEY" in res.output
        and "numba" in res.output
    )
    assert "sandbox user/limits" in res.output and "default limits" in res.output
    assert "posttrainbench[gpu]" in res.output, "install hints must survive rich markup"
    assert res.exit_code == 0, res.output  # bwrap is installed by scripts/setup.sh


def test_doctor_json_names_each_key_once_and_checks_docker_judge_and_agent_clis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.delenv("PTB_JUDGE_MODEL", raising=False)
    monkeypatch.setenv("PTB_AGENTS_DIR", str(tmp_path / "agents"))  # an empty install folder
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    names = [c["name"] for c in json.loads(res.stdout)]
    assert len(names) == len(set(names)), "a check (a key shared by agents) is listed twice"
    assert checks["key OPENAI_API_KEY"]["status"] == "ok"
    assert "codex" in checks["key OPENAI_API_KEY"]["detail"] and "opencode" in checks["key OPENAI_API_KEY"]["detail"]
    assert checks["judge"]["status"] == "warn" and "not configured" in checks["judge"]["detail"]
    assert checks["docker"]["required"] is False and checks["docker"]["status"] in ("ok", "warn")
    assert (
        checks["agent claude"]["status"] == "warn" and "ptb agents install claude" in checks["agent claude"]["detail"]
    )
    # a configured judge without its key is a required check that fails
    monkeypatch.setenv("PTB_JUDGE_MODEL", "judge-model")
    monkeypatch.delenv("PTB_JUDGE_API_KEY", raising=False)
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path), "--json"])
    judge = next(c for c in json.loads(res.stdout) if c["name"] == "judge")
    assert judge["status"] == "missing" and res.exit_code == 1


def test_list_and_show_json(tmp_path: Path) -> None:
    import json

    from posttrainbench.testing import write_synthetic_run

    data = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    assert {"gsm8k", "humaneval"} <= {b["id"] for b in data["benchmarks"]}
    assert any(m["id"] == "ptb/tiny-random" for m in data["base_models"])
    assert any(a["id"] == "reference" for a in data["agents"])
    folder = write_synthetic_run(tmp_path, score=0.4)
    res = runner.invoke(app, ["show", str(folder), "--json"])
    assert res.exit_code == 0
    shown = json.loads(res.stdout)
    assert shown["record"]["metrics"]["score"] == 0.4 and shown["folder"] == str(folder)


def test_show_reports_a_broken_run_folder(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{")
    res = runner.invoke(app, ["show", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 2 and "unreadable run.json" in res.output


def test_show_prints_the_data_pin_status(tmp_path: Path) -> None:
    from posttrainbench.testing import write_synthetic_run

    folder = write_synthetic_run(tmp_path, score=0.4, data_status="differs")
    res = runner.invoke(app, ["show", str(folder)], terminal_width=200)
    assert res.exit_code == 0 and "score: 0.4" in res.output and "data: differs" in res.output


def _write_run(root: Path, repeat: int, score: float | None, verified: bool) -> None:
    from posttrainbench.catalog import get_base_model
    from posttrainbench.domain import PhaseState, RunMetrics, RunRecord, RunSpec, VerdictStatus
    from posttrainbench.results import run_paths, save_record

    spec = RunSpec(
        agent="reference",
        agent_config="sft",
        base_model="ptb/tiny-random",
        benchmark="gsm8k-calc",
        hours=1,
        repeat=repeat,
    )
    rec = RunRecord(run_id=spec.run_id(), spec=spec)
    rec.phases = {k: PhaseState(status="done") for k in rec.phases}  # type: ignore[assignment]  # validated into Phases
    rec.required_gates = ["tamper"]
    rec.final_verdict = VerdictStatus.passed if verified else VerdictStatus.failed
    rec.metrics = RunMetrics.model_validate(
        {"status": "ok", "score": score} if score is not None else {"status": "failed"}
    )
    save_record(run_paths(root, spec, get_base_model(spec.base_model)).run_json, rec)


def test_leaderboard_from_run_folders_applies_fallback_and_reports_bad_folders(tmp_path: Path) -> None:
    import json

    _write_run(tmp_path, 0, 0.5, verified=True)
    _write_run(tmp_path, 1, 0.9, verified=False)  # flagged: counts as the base score 0.1
    base = tmp_path / "baseline_zeroshot" / "gsm8k-calc_ptb_tiny-random_full"
    base.mkdir(parents=True)
    (base / "baseline.json").write_text(
        json.dumps({"benchmark": "gsm8k-calc", "base_model": "ptb/tiny-random", "limit": None, "score": 0.1})
    )
    broken = tmp_path / "reference_sft_1h" / "gsm8k-calc_ptb_tiny-random_broken"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("{oops")
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path)], terminal_width=250)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "reference/sft" in text
    assert "0.300" in text, "mean of 0.5 and the fallback 0.1"
    assert "0.283" in text, "sample std of (0.5, 0.1)"
    assert "skipped:" in text and "broken" in text and "unreadable run.json" in text


def test_python_dash_m_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "posttrainbench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage: ptb" in out and "leaderboard" in out


def test_an_expected_error_is_one_line_on_stderr_with_its_fix(tmp_path: Path) -> None:
    res = runner.invoke(app, ["trace", str(tmp_path / "nothing")], terminal_width=60)
    assert res.exit_code == 2 and res.stdout == ""
    assert (
        res.stderr
        == f"error: {tmp_path / 'nothing'}: no trace.json or solve_out.txt; pass a run folder (results/<group>/<run>)\n"
    )
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path)])
    assert res.exit_code == 1 and res.stderr.startswith(f"error: {tmp_path}: no runs; ") and res.stderr.count("\n") == 1


def test_choices_are_read_from_the_registries_they_validate() -> None:
    from typing import get_args

    from posttrainbench.domain import PHASES, LauncherKind, NetworkPolicy, SandboxKind
    from posttrainbench.evaluation import BACKENDS
    from posttrainbench.leaderboard.tables import FORMATS

    shown = {
        ("run",): [*(k.value for k in SandboxKind), *(p.value for p in NetworkPolicy), *PHASES],
        ("baseline",): list(BACKENDS),
        ("leaderboard",): ["table", *FORMATS],
        ("sweep", "run"): list(get_args(LauncherKind)),
    }
    for cmd, values in shown.items():
        res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        for value in values:
            assert value in res.output, (cmd, value)
    res = runner.invoke(app, ["sweep", "plan", "sweep.toml", "--launcher", "k8s"], env={"COLUMNS": "250"})
    assert res.exit_code == 2 and "'k8s' is not one of 'local', 'slurm', 'htcondor', 'skypilot'" in res.output


def test_one_console_and_no_import_cycles_in_the_cli() -> None:
    """Only posttrainbench.console makes consoles; nothing below the CLI imports it; the CLI's
    modules import each other without cycles."""
    import ast

    import posttrainbench

    root = Path(posttrainbench.__file__).parent
    cli_graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Console"]
        assert not calls or module == "posttrainbench.console", f"{module} makes its own Console"
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                    )
                imported |= {base} | {f"{base}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        on_cli = {m for m in imported if m == "posttrainbench.cli" or m.startswith("posttrainbench.cli.")}
        if module.startswith("posttrainbench.cli"):
            cli_graph[module] = on_cli - {module}
        elif module != "posttrainbench.__main__":
            assert not on_cli, f"{module} (below the CLI) imports {sorted(on_cli)}"
    cli_graph = {m: {d for d in deps if d in cli_graph} for m, deps in cli_graph.items()}
    cli_graph["posttrainbench.cli"].discard("posttrainbench.cli.main")  # the package re-exports the app

    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for dep in cli_graph[module]:
                visit(dep, (*path, module))
            done.add(module)

    for module in cli_graph:
        visit(module, ())
    assert "posttrainbench.cli.common" in cli_graph and len(cli_graph) > 10


def test_version_short_help_and_limits_are_checked_before_anything_runs(tmp_path: Path) -> None:
    from posttrainbench import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"ptb {__version__}\n"
    assert runner.invoke(app, ["-h"]).output == runner.invoke(app, ["--help"]).output
    assert "Usage: ptb eval" in runner.invoke(app, ["eval", "-h"]).output
    for argv in (
        ["eval", str(tmp_path / "model"), "--benchmark", "gsm8k", "--limit", "-3"],
        ["eval", str(tmp_path / "model"), "--benchmark", "gsm8k", "--limit", "0"],
        ["baseline", "--limit", "-1", "--results", str(tmp_path / "r")],
        ["run", "--agent", "reference", "--model", "ptb/tiny-random", "--benchmark", "gsm8k", "--limit", "-5",
         "--results", str(tmp_path / "r")],
    ):  # fmt: skip
        res = runner.invoke(app, argv)
        assert res.exit_code == 2 and "--limit" in res.output, (argv, res.output)
    assert not (tmp_path / "r").exists() and not (tmp_path / "model").exists()


def test_eval_says_what_it_evaluates_and_where_the_inspect_log_went(tmp_path: Path) -> None:
    from posttrainbench.models.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", seed=0)
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["eval", str(model), "--benchmark", "gsm8k-calc", "--base-model", "ptb/tiny-random", "--limit", "2",
         "--out", str(out), "--batch-size", "2"],
        terminal_width=400,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"evaluating {model} on gsm8k-calc (first 2 items, batch 2, protocol strict); Inspect log in {out}" in text
    logs = list(out.rglob("*.eval"))
    assert len(logs) == 1 and f"log: {logs[0]}" in text and f"inspect view --log-dir {out}" in text
    assert "gsm8k-calc: accuracy = " in text and "(2 items; protocol strict " in text


def test_a_narrow_terminal_keeps_rank_agent_and_score_and_says_what_it_hid(tmp_path: Path) -> None:
    import os
    import re

    from posttrainbench.testing import write_synthetic_run

    for agent, config, score in (
        ("claude", "claude-opus-4-5-20251101-a-very-long-config", 0.1),
        ("reference", "sft", 0.3),
    ):
        for bench in ("gsm8k", "gsm8k-calc", "humaneval"):
            write_synthetic_run(tmp_path / "r", agent=agent, agent_config=config, benchmark=bench, score=score)
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "70", "PTB_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-m", "posttrainbench", "leaderboard", "--results", str(tmp_path / "r")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout)
    lines = text.splitlines()
    assert max(len(ln) for ln in lines if ln.startswith(("┃", "│"))) <= 70
    head = next(ln for ln in lines if "rank" in ln)
    assert [c.strip() for c in head.strip("┃").split("┃")] == ["rank", "agent", "score", "std", "repeats"]
    first = next(ln for ln in lines if "reference/sft@1h" in ln)
    assert "0.300" in first and "│    1 │" in first
    assert "claude/claude-opus-4-5" in text and "0.100" in text
    assert "11 more column(s) not shown at this width (gsm8k, gsm8k-calc, humaneval," in " ".join(text.split())
    # piped (not a terminal): every column, however wide
    res = subprocess.run(
        [sys.executable, "-m", "posttrainbench", "leaderboard", "--results", str(tmp_path / "r")],
        capture_output=True, text=True, env={**env, "FORCE_COLOR": ""}, check=True,
    )  # fmt: skip
    assert "cost USD" in res.stdout and "not shown" not in res.stdout
