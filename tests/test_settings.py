"""The one typed settings object: every ``PTB_*`` variable declared once, parsed and validated at
once with errors naming the variable, read at call time (never at import), documented in
docs/reference/environment.md from the same declarations, and read nowhere else in the package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli.main import app
from posttrainbench.evaluation.graders import GraderConfig
from posttrainbench.integrity.judge import JudgeConfig
from posttrainbench.settings import (
    OTHER_VARIABLES,
    TIME_LIMIT_VAR,
    GraderSettings,
    JudgeSettings,
    Settings,
    SettingsError,
    all_variables,
    command_variables,
    markdown_table,
)

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "posttrainbench"
runner = CliRunner()


# --------------------------------------------------------------------------- parsing


def test_defaults_and_typed_values() -> None:
    s = Settings.from_env({})
    assert s.paths.cache_dir == Path.home() / ".cache" / "posttrainbench"
    assert s.paths.agents_dir == Path.home() / ".cache" / "posttrainbench" / "agents"
    assert (s.paths.models_dir, s.data.data_dir, s.data.allow_unpinned) == (None, None, False)
    assert (s.sandbox.uid, s.sandbox.gid, s.sandbox.memory_mb, s.sandbox.max_pids) == (65534, 65534, None, None)
    assert (s.sandbox.max_output_mb, s.sandbox.max_workspace_mb, s.run.submission_size_factor) == (1024, 512000, 3.0)
    assert s.run.hub_upstream == "https://huggingface.co" and s.judge.model is None and s.judge.problems == ()
    s = Settings.from_env({
        "PTB_CACHE_DIR": "/c", "PTB_MODELS_DIR": "/m", "PTB_ALLOW_UNPINNED_DATA": "1", "PTB_SANDBOX_UID": "0",
        "PTB_SANDBOX_MEMORY_MB": " 4096 ", "PTB_SANDBOX_MAX_PIDS": "Off", "PTB_SUBMISSION_SIZE_FACTOR": "1.5",
        "PTB_JUDGE_MODEL": "j", "PTB_JUDGE_N": "5", "PTB_GRADER_PROVIDER": "anthropic", "PTB_SCRATCH": "/s",
    })  # fmt: skip
    assert (s.paths.cache_dir, s.paths.models_dir, s.data.allow_unpinned) == (Path("/c"), Path("/m"), True)
    assert (s.sandbox.uid, s.sandbox.memory_mb, s.sandbox.max_pids) == (0, 4096, "off")
    assert (s.run.submission_size_factor, s.judge.model, s.judge.n) == (1.5, "j", 5)
    assert (s.grader.provider, s.launch.scratch) == ("anthropic", Path("/s"))


def test_an_empty_variable_counts_as_unset() -> None:
    s = Settings.from_env({"PTB_CACHE_DIR": "", "PTB_MAX_OUTPUT_MB": "  ", "PTB_JUDGE_MODEL": ""})
    assert s == Settings.from_env({})


def test_every_invalid_variable_is_named_at_once_with_what_it_expects() -> None:
    env = {
        "PTB_MAX_OUTPUT_MB": "lots", "PTB_SANDBOX_UID": "nobody", "PTB_SANDBOX_MEMORY_MB": "100",
        "PTB_ALLOW_UNPINNED_DATA": "maybe", "PTB_SUBMISSION_SIZE_FACTOR": "nan", "PTB_MAX_WORKSPACE_MB": "2.5",
        "PTB_JUDGE_MODEL": "j", "PTB_JUDGE_N": "zero",
    }  # fmt: skip
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert err.value.problems == (
        "PTB_ALLOW_UNPINNED_DATA='maybe': expected a boolean (`1` or `0`)",
        "PTB_SANDBOX_UID='nobody': expected a non-negative integer (a uid)",
        "PTB_SANDBOX_MEMORY_MB='100': expected an integer ≥ 512, or `off`",
        "PTB_MAX_OUTPUT_MB='lots': expected a positive integer",
        "PTB_MAX_WORKSPACE_MB='2.5': expected a positive integer",
        "PTB_SUBMISSION_SIZE_FACTOR='nan': expected a positive number",
    ), "the judge's problem is not among them: it is the judge's to report"
    assert isinstance(err.value, ValueError) and str(err.value) == "; ".join(err.value.problems)
    # parse() is the lenient reader: every problem by group, the invalid values left at their defaults
    settings, problems = Settings.parse(env)
    assert list(problems) == ["data", "sandbox", "run", "judge"]
    assert problems["judge"] == ["PTB_JUDGE_N='zero': expected an integer from 1 to 15"]
    assert settings.sandbox.max_output_mb == 1024 and settings.judge.n == 3


def test_judge_and_grader_problems_stay_in_their_group() -> None:
    s = Settings.from_env({"PTB_JUDGE_MODEL": "j", "PTB_JUDGE_N": "zero", "PTB_GRADER_ATTEMPTS": "11"})
    assert s.judge.problems == ("PTB_JUDGE_N='zero': expected an integer from 1 to 15",)
    assert s.grader.problems == ("PTB_GRADER_ATTEMPTS='11': expected an integer from 1 to 10",)
    assert s.judge.model == "j" and s.grader.attempts == 4


def test_the_environment_is_read_when_called_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_MAX_OUTPUT_MB", "7")
    assert Settings.from_env().sandbox.max_output_mb == 7
    monkeypatch.setenv("PTB_MAX_OUTPUT_MB", "8")
    assert Settings.from_env().sandbox.max_output_mb == 8


def test_llm_settings_defaults_are_the_configs_defaults() -> None:
    """The table documents the defaults the judge and the graders really get."""
    judge = JudgeConfig.configured(Settings.from_env({"PTB_JUDGE_MODEL": "m"}).judge)
    assert judge == JudgeConfig(model="m")
    grader = GraderConfig.from_settings(Settings.from_env({}).grader)
    assert grader == GraderConfig()  # type: ignore[call-arg]  # model and key variable: the provider's defaults
    for field in JudgeSettings.env_fields():
        if field != "model":
            assert JudgeSettings.model_fields[field].default == JudgeConfig.model_fields[field].default, field
    for field in ("provider", "attempts", "timeout_s", "temperature", "max_tokens"):
        assert GraderSettings.model_fields[field].default == GraderConfig.model_fields[field].default, field


# --------------------------------------------------------------------------- one place


_READ = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*f?["']PTB_""")
_NAME_CONSTANT = re.compile(r"""^\s*[A-Z_]+\s*=\s*["']PTB_[A-Z0-9_]+["']""", re.M)


def test_no_ptb_variable_is_read_outside_the_settings_module() -> None:
    """The settings module is the only reader; the one exception is the re-prompt driver, which
    runs inside the sandbox on the standard library alone and reads what the solve phase set."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "settings.py":
            continue
        text = path.read_text()
        if rel == "agents/reprompt_driver.py":
            assert re.findall(r"""environ\.get\("(PTB_[A-Z_]+)\"""", text) == [TIME_LIMIT_VAR]
            continue
        offenders += [f"{rel}: {m.group(0)}" for m in _READ.finditer(text)]
        offenders += [f"{rel}: {m.group(0).strip()}" for m in _NAME_CONSTANT.finditer(text)]
    assert offenders == []


def _names_in(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        names |= set(re.findall(r"\bPTB_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")))
    return names


def test_every_ptb_variable_of_the_package_and_scripts_is_declared() -> None:
    declared = {v.name for v in all_variables()}
    assert len(declared) == len(all_variables()), "a variable is declared twice"
    files = [*SRC.rglob("*.py"), *SRC.rglob("*.sh"), *(ROOT / "scripts").rglob("*")]
    used = _names_in([p for p in files if p.is_file()]) - {"PTB_JUDGE", "PTB_GRADER"}
    assert used - declared == set()
    # and nothing is declared that nothing uses
    assert declared - used - _names_in(list((ROOT / "tests").glob("*.py"))) == set()


# --------------------------------------------------------------------------- documentation


def test_docs_table_is_the_generated_one() -> None:
    page = (ROOT / "docs" / "reference" / "environment.md").read_text()
    start, end = "<!-- generated:settings -->\n", "<!-- /generated:settings -->"
    assert page.count(start) == 1 and page.count(end) == 1
    assert page.split(start, 1)[1].split(end, 1)[0] == markdown_table(), (
        "docs/reference/environment.md is stale: run `python -m posttrainbench.cli.reference`"
    )


def test_table_lists_every_variable_with_type_default_and_meaning() -> None:
    table = markdown_table()
    rows = table.splitlines()
    assert rows[0] == "| Variable | Type | Default | Read by | Meaning |"
    assert len(rows) == 2 + len(all_variables())
    assert all(row.count(" | ") == 4 for row in rows[2:]), "a cell holds an unescaped |"
    assert "| `PTB_JUDGE_N` | integer from 1 to 15 | `3` | verify (the `judge` gate) | Samples per verdict" in table
    assert "| `PTB_CACHE_DIR` | path | `~/.cache/posttrainbench` |" in table
    for v in OTHER_VARIABLES:
        assert f"| `{v.name}` | {v.type} | {v.default} |" in table and f"({v.kind})" in table
    assert "(secret name) Name of the variable holding the judge's key" in table


def test_python_m_settings_and_ptb_settings_markdown_print_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "posttrainbench.settings"], capture_output=True, text=True, check=True)
    assert out.stdout == markdown_table()
    res = runner.invoke(app, ["settings", "--markdown"])
    assert res.exit_code == 0 and res.output == markdown_table()


def test_ptb_settings_shows_values_and_flags_invalid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_MODELS_DIR", "/site/models")
    res = runner.invoke(app, ["settings"], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert re.search(r"PTB_MODELS_DIR\s+│ /site/models\s+│ ok", res.output)
    monkeypatch.setenv("PTB_JUDGE_N", "zero")
    res = runner.invoke(app, ["settings"], terminal_width=250)
    assert res.exit_code == 1 and "PTB_JUDGE_N='zero': expected an integer from 1 to 15" in res.output


def test_help_names_the_variables_a_command_reads() -> None:
    assert "PTB_MAX_OUTPUT_MB" in command_variables("run") and "PTB_MAX_OUTPUT_MB" not in command_variables("eval")
    assert "PTB_OPENAI_BASE_URL" in command_variables("eval") and "PTB_AGENTS_DIR" in command_variables("agents")
    for argv, name in (
        (["run", "--help"], "PTB_SANDBOX_MEMORY_MB"), (["run", "--help"], "PTB_JUDGE_*"),
        (["eval", "--help"], "PTB_GRADER_*"), (["verify", "--help"], "PTB_JUDGE_*"),
        (["demo", "--help"], "PTB_SMOLLM2_WHEEL"), (["sweep", "run", "--help"], "PTB_SCRATCH"),
        (["data", "check", "--help"], "PTB_DATA_DIR"), (["agents", "install", "--help"], "PTB_AGENTS_DIR"),
        (["doctor", "--help"], "PTB_SANDBOX_UID"), (["baseline", "--help"], "PTB_MODELS_DIR"),
    ):  # fmt: skip
        res = runner.invoke(app, argv, terminal_width=400)
        assert res.exit_code == 0 and name in res.output, (argv, res.output)


def test_an_invalid_variable_stops_a_command_before_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_MAX_OUTPUT_MB", "lots")
    monkeypatch.setenv("PTB_SANDBOX_GID", "-1")
    res = runner.invoke(
        app,
        [
            "run",
            "--agent",
            "reference",
            "--model",
            "ptb/tiny-random",
            "--benchmark",
            "gsm8k-calc",
            "--results",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2 and not any(tmp_path.iterdir())
    lines = res.output.splitlines()
    assert (
        lines[0]
        == "error: invalid settings: PTB_SANDBOX_GID='-1': expected a non-negative integer (a gid); see `ptb settings`"
    )
    assert lines[1].strip() == "PTB_MAX_OUTPUT_MB='lots': expected a positive integer"
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path)], terminal_width=300)
    assert res.exit_code == 1 and re.search(r"│ settings\s+│ missing │ PTB_SANDBOX_GID='-1'", res.output), res.output
    assert "PTB_MAX_OUTPUT_MB='lots'" in res.output
    # the judge's problems do not stop a command (the judge is then not_run): doctor warns
    monkeypatch.delenv("PTB_MAX_OUTPUT_MB")
    monkeypatch.delenv("PTB_SANDBOX_GID")
    monkeypatch.setenv("PTB_JUDGE_N", "zero")
    res = runner.invoke(app, ["doctor", "--results", str(tmp_path)], terminal_width=300)
    assert re.search(r"│ settings\s+│ warn\s+│ PTB_JUDGE_N='zero'", res.output), res.output
