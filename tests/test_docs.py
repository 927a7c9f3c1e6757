"""The documentation stays true to the code: the generated reference pages equal what their
generator writes, the MkDocs site builds with --strict (broken links or anchors, pages left out
of the nav), the README's links into docs/ resolve, and the architecture picture of
docs/development.md is the package's import graph."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import markdown
import pytest
import typer

from posttrainbench.cli.main import app
from posttrainbench.cli.reference import PAGES, main, render
from posttrainbench.settings import all_variables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "posttrainbench"
REGENERATE = "python -m posttrainbench.cli.reference"


# --------------------------------------------------------------------------- generated pages


def test_generated_reference_pages_are_current() -> None:
    for page, parts in PAGES.items():
        text = (DOCS / page).read_text(encoding="utf-8")
        assert render(text, parts) == text, f"docs/{page} is stale: run `{REGENERATE}` at the repository root"
        assert REGENERATE in text[:600], f"docs/{page} must say at its top how to regenerate it"


def test_the_generator_rewrites_a_stale_page_and_check_reports_it(tmp_path: Path) -> None:
    shutil.copytree(DOCS / "reference", tmp_path / "reference")
    page = tmp_path / "reference" / "cli.md"
    page.write_text(page.read_text().replace("## ptb demo\n", "## ptb demo (edited)\n"))
    assert main(["--docs", str(tmp_path), "--check"]) == 1
    assert "(edited)" in page.read_text()
    assert main(["--docs", str(tmp_path)]) == 0
    assert page.read_text() == (DOCS / "reference" / "cli.md").read_text()
    assert main(["--docs", str(tmp_path), "--check"]) == 0
    with pytest.raises(ValueError, match="generated:cli"):
        render("no markers here", PAGES["reference/cli.md"])


def test_cli_reference_names_every_command_and_option() -> None:
    """Read from the typer app, independently of how the generator words it."""
    page = (DOCS / "reference" / "cli.md").read_text()
    root = typer.main.get_command(app)

    def walk(group, ctx, path):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            sub = type(ctx)(command, parent=ctx, info_name=name)
            yield f"{path} {name}", command
            if hasattr(command, "commands"):
                yield from walk(command, sub, f"{path} {name}")

    commands = list(walk(root, typer.Context(root, info_name="ptb"), "ptb"))
    assert len(commands) > 20
    for path, command in commands:
        assert re.search(rf"^#+ {re.escape(path)}$", page, re.MULTILINE), f"{path} has no section"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert f"`{param.opts[0]}" in page, (path, param.opts[0])
    env = (DOCS / "reference" / "environment.md").read_text()
    assert all(f"| `{v.name}` |" in env for v in all_variables())


# --------------------------------------------------------------------------- the site and links


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_site_builds_strictly_with_every_page_in_the_nav(tmp_path: Path) -> None:
    done = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    for page in pages:
        html = "index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html"
        assert (tmp_path / "site" / html).is_file(), page
    assert (tmp_path / "site" / "report-screenshot.png").is_file()


def test_a_broken_link_or_a_page_outside_the_nav_fails_the_build(tmp_path: Path) -> None:
    """The strictness the previous test relies on is really configured."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [the gates](integrity.md#no-such-anchor) and [a page](missing.md).\n")
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n")
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    for what in ("'missing.md'", "'#no-such-anchor'", "orphan.md"):
        assert what in done.stderr, (what, done.stderr)


def _anchors(page: Path) -> set[str]:
    md = markdown.Markdown(extensions=["toc", "tables", "fenced_code"])
    return set(re.findall(r'\bid="([^"]+)"', md.convert(page.read_text(encoding="utf-8"))))


def test_readme_links_resolve_and_it_stays_short() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150, "the README is a front page: details go to docs/"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "bash scripts/setup.sh && .venv/bin/python -m pytest" and ci in readme
    assert "bash scripts/setup.sh && .venv/bin/ptb demo" in readme
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert sum(link.startswith("docs/") for link in local) >= 10
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else ROOT / "README.md"
        assert target.exists(), f"README links to {link}: no such file"
        if anchor:
            assert anchor in _anchors(target), f"README links to {link}: no such heading"


# --------------------------------------------------------------------------- architecture

_ROW = re.compile(r"^\s*(\d+)\s*│(.*)│\s*$")
_EXCEPTION = re.compile(r"^- `([\w/]+\.py)` → `(\w+)`:", re.MULTILINE)


def _layers() -> tuple[dict[str, int], set[tuple[str, str]]]:
    text = (DOCS / "development.md").read_text(encoding="utf-8")
    picture = text.split("<!-- layers:", 1)[1].split("```", 2)[1]
    rows = [(int(m.group(1)), m.group(2).split()) for m in map(_ROW.match, picture.splitlines()) if m]
    layer = {name: row for row, names in rows for name in names}
    assert sum(len(names) for _, names in rows) == len(layer), "a package is drawn twice"
    return layer, set(_EXCEPTION.findall(text))


def _unit(path: Path) -> str:
    """The top-level package or module of the package a file belongs to."""
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    """Top-level units of posttrainbench that ``path`` imports (anywhere in the file)."""
    package = ["posttrainbench", *path.relative_to(SRC).parent.parts]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            names = [module] if len(module) > 1 else [[*module, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        out |= {n[1] for n in names if n[0] == "posttrainbench" and len(n) > 1 and n[1] != "__version__"}
    return out


def test_the_architecture_picture_is_the_import_graph() -> None:
    layer, exceptions = _layers()
    units = {p.name.removesuffix(".py") for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert set(layer) == units - {"__init__"}, "every package and module is drawn, and only those"
    assert _imported_units(SRC / "__init__.py") == set()
    assert exceptions == {("evaluation/baselines.py", "results"), ("evaluation/workspace_evaluate.py", "benchmarks")}
    upward, used = [], set()
    for path in sorted(SRC.rglob("*.py")):
        own, rel = _unit(path), path.relative_to(SRC).as_posix()
        if own == "__init__":
            continue
        for target in sorted(_imported_units(path) - {own}):
            if (rel, target) in exceptions:
                used.add((rel, target))
            elif layer[target] >= layer[own]:
                upward.append(f"{rel} ({own}, row {layer[own]}) imports {target} (row {layer[target]})")
    assert upward == [], "imports that do not point down: move the code, or redraw docs/development.md"
    assert used == exceptions, "an exception the code no longer needs: drop it from docs/development.md"
    # the scan sees what it must: relative, absolute and in-function imports
    assert {"domain", "registry", "settings"} <= _imported_units(SRC / "agents" / "base.py")
    assert "benchmarks" in _imported_units(SRC / "evaluation" / "workspace_evaluate.py")
