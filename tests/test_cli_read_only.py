"""Read commands never create or modify anything in a results tree: a typo'd path is an error
(and is not created), a run folder passed as the results root is refused, and a published,
read-only results tree (a real read-only bind mount, in a private mount namespace) is ranked
with its index kept in the cache folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.results.index import DB_NAME, ResultsIndexError, index_location
from test_cli import _write_run

runner = CliRunner()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root`` with its size and mtime: what "nothing changed" compares."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("command", [["leaderboard", "--results"], ["index", "--results"], ["report"]])
def test_a_path_that_does_not_exist_is_an_error_and_is_not_created(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "cache"))
    typo = tmp_path / "resluts"
    res = runner.invoke(
        app, [*command, str(typo)] + (["--out", str(tmp_path / "site")] if command == ["report"] else [])
    )
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: {typo}: no such folder") and res.stderr.count("\n") == 1
    assert not typo.exists()
    assert not (tmp_path / "site").exists()


def test_a_run_folder_is_not_taken_for_a_results_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "cache"))
    _write_run(tmp_path / "results", 0, 0.5, verified=True)
    run = next((tmp_path / "results").glob("*/*"))
    before = _tree(run)
    for argv in (["report", str(run), "--out", str(tmp_path / "site")], ["leaderboard", "--results", str(run)]):
        res = runner.invoke(app, argv)
        assert res.exit_code == 2, res.output
        assert "a run folder, not a results root" in res.stderr
    assert _tree(run) == before and not (tmp_path / "site").exists()


def test_the_index_of_a_writable_tree_is_in_it_and_of_a_read_only_one_in_the_cache(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    assert index_location(results, tmp_path / "cache") == results / DB_NAME
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsIndexError, match="not a folder"):
        index_location(tmp_path / "file", tmp_path / "cache")
    with pytest.raises(ResultsIndexError, match="no such folder"):
        index_location(tmp_path / "nothing", tmp_path / "cache")
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "cache").exists()


def _ro_mount_argv(source: Path) -> list[str]:
    """A shell prefix that runs what follows with ``source`` bind-mounted read-only over itself, in a
    private mount namespace (as root directly; otherwise inside a user namespace)."""
    flags = "-m" if os.geteuid() == 0 else "-rm"
    return [
        "unshare",
        flags,
        "sh",
        "-c",
        f'mount --bind "{source}" "{source}" && mount -o remount,ro,bind "{source}" "{source}" && exec "$@"',
        "ro",
    ]


def test_a_read_only_results_tree_is_ranked_and_left_untouched(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for a real read-only mount")
    results = tmp_path / "published"
    _write_run(results, 0, 0.5, verified=True)
    _write_run(results, 1, 0.7, verified=True)
    before = _tree(results)
    cache = tmp_path / "cache"
    env = {**os.environ, "PTB_CACHE_DIR": str(cache), "COLUMNS": "200"}
    ptb = [sys.executable, "-m", "posttrainbench"]
    # the mount is read-only for real: writing into it fails inside the namespace
    probe = subprocess.run([*_ro_mount_argv(results), "touch", str(results / "x")], capture_output=True, text=True)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr, probe.stderr

    lb = subprocess.run(
        [*_ro_mount_argv(results), *ptb, "leaderboard", "--results", str(results)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert lb.returncode == 0, lb.stderr
    assert "reference/sft" in lb.stdout and "0.600" in lb.stdout, lb.stdout
    idx = subprocess.run(
        [*_ro_mount_argv(results), *ptb, "index", "--results", str(results)], capture_output=True, text=True, env=env
    )
    assert idx.returncode == 0, idx.stderr
    dbs = list((cache / "results-index").glob("*.db"))
    assert len(dbs) == 1 and str(dbs[0]) in " ".join(idx.stdout.split()), idx.stdout
    assert "2 runs" in idx.stdout
    site = tmp_path / "site"
    rep = subprocess.run(
        [*_ro_mount_argv(results), *ptb, "report", str(results), "--out", str(site)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert rep.returncode == 0, rep.stderr
    assert (site / "index.html").is_file()
    assert _tree(results) == before, "a read command wrote into the results tree"
    assert not (results / DB_NAME).exists()
