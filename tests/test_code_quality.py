"""Code quality as part of the test suite (so CI runs it): ruff's lint and format checks and mypy,
all configured in pyproject.toml, report nothing on src/, tests/ and benchmarks/; and every
suppression names what it silences and says why.

Fix a finding rather than silence it. Where a suppression is right, write it as
``# noqa: CODE - why`` or ``# type: ignore[code]  # why``. Locally: ``ruff check --fix``,
``ruff format`` and ``mypy`` (no arguments: pyproject.toml names the files). mypy keeps its cache
in ``.mypy_cache``: the first run takes about a minute, later ones a few seconds.
"""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("src", "tests", "benchmarks")

_NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)", re.IGNORECASE)
_NOQA_OK = re.compile(r":\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*\s+-\s+\S")
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<rest>.*)")
_IGNORE_OK = re.compile(r"\[[a-z-]+(?:\s*,\s*[a-z-]+)*\]\s+#\s*\S")


def _tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: pip install -e '.[dev]' (the dev extra pins it)")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_finds_nothing() -> None:
    res = _tool("ruff", "check", "--output-format", "concise", *TREES)
    assert res.returncode == 0, f"ruff check (fix: ruff check --fix):\n{res.stdout}{res.stderr}"


def test_ruff_format_changes_nothing() -> None:
    res = _tool("ruff", "format", "--check", *TREES)
    assert res.returncode == 0, f"ruff format --check (fix: ruff format):\n{res.stdout}{res.stderr}"


def test_mypy_finds_nothing() -> None:
    res = _tool("mypy")
    assert res.returncode == 0, f"mypy:\n{res.stdout}{res.stderr}"


def _comments(path: Path) -> list[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]


def test_suppressions_name_their_code_and_say_why() -> None:
    bad = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for line, comment in _comments(path):
                noqa, ignore = _NOQA.search(comment), _IGNORE.search(comment)
                if (noqa and not _NOQA_OK.match(noqa["rest"])) or (ignore and not _IGNORE_OK.match(ignore["rest"])):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {comment}")
    assert not bad, "write `# noqa: CODE - why` / `# type: ignore[code]  # why`:\n" + "\n".join(bad)
