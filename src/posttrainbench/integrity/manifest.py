"""Tamper gate: harness-owned files in the workspace vs the hash manifest written at prepare.

``write_manifest`` runs at *prepare*, before the agent starts; ``check_tamper`` runs at
*verify*. A harness file that was modified, deleted, replaced by a symlink (itself or through
a symlinked parent folder) or by something that is not a regular file fails the gate. When
the harness kept pristine copies (``<run_dir>/harness/``), the evidence also carries a short
unified diff of each modified text file under 1 MB.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path, PurePosixPath

from ..domain import Verdict, VerdictStatus
from ..fsutil import sha256_file
from ._common import guarded, not_run, short_list, verdict, write_evidence

GATE = "tamper"
DIFF_MAX_FILE_BYTES = 1 << 20  # diff only text files under 1 MB
DIFF_MAX_LINES = 200  # keep evidence small


def _safe_rel(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or rel in (".", ""):
        raise ValueError(f"harness path must be relative and inside the workspace: {rel!r}")
    return p


def write_manifest(workspace: Path, harness_files: list[str]) -> dict[str, str]:
    """sha256 of every harness-owned file, keyed by POSIX path relative to ``workspace``.

    An entry naming a folder covers every regular file below it. Called by the harness on
    files it just wrote, so a missing file, a symlink or a special file is a harness bug and
    raises ``ValueError``.
    """
    workspace = Path(workspace)
    out: dict[str, str] = {}
    for rel in harness_files:
        rp = _safe_rel(rel)
        p = workspace / rp
        if p.is_symlink():
            raise ValueError(f"harness file is a symlink: {rel}")
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                if sub.is_symlink():
                    raise ValueError(f"harness file is a symlink: {sub.relative_to(workspace)}")
                if sub.is_file():
                    out[sub.relative_to(workspace).as_posix()] = sha256_file(sub)
        elif p.is_file():
            out[rp.as_posix()] = sha256_file(p)
        else:
            raise ValueError(f"harness file missing or not a regular file: {rel}")
    return out


def _inspect(workspace: Path, rel: str) -> tuple[str, str | None]:
    """(state, actual sha256) of one harness path without following any symlink."""
    parts = _safe_rel(rel).parts
    cur = workspace
    for i, part in enumerate(parts):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return "deleted", None
        except NotADirectoryError:
            return "deleted", None
        last = i == len(parts) - 1
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(cur)
            where = "" if last else f" (parent {PurePosixPath(*parts[: i + 1])})"
            return f"symlinked{where}", f"symlink:{target}"
        if not last and not stat.S_ISDIR(st.st_mode):
            return "deleted", None
        if last and not stat.S_ISREG(st.st_mode):
            return "not_a_regular_file", None
    return "present", sha256_file(cur)


def _diff(pristine: Path, current: Path, rel: str) -> str | None:
    try:
        if pristine.stat().st_size > DIFF_MAX_FILE_BYTES or current.stat().st_size > DIFF_MAX_FILE_BYTES:
            return None
        a = pristine.read_bytes().decode("utf-8")
        b = current.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = list(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), f"pristine/{rel}", f"workspace/{rel}"
        )
    )
    if len(lines) > DIFF_MAX_LINES:
        lines = [*lines[:DIFF_MAX_LINES], f"... ({len(lines) - DIFF_MAX_LINES} more diff lines)\n"]
    return "".join(lines)


@guarded(GATE)
def check_tamper(
    workspace: Path,
    manifest: dict[str, str],
    evidence_dir: Path | None = None,
    pristine_dir: Path | None = None,
) -> Verdict:
    """Fail if any harness-owned file was modified, deleted or replaced by a symlink."""
    workspace = Path(workspace)
    if not manifest:
        return not_run(GATE, "empty manifest: no harness files to check")
    if not workspace.is_dir():
        return not_run(GATE, f"workspace not found: {workspace}")

    files: list[dict] = []
    problems: dict[str, list[str]] = {}
    for rel, expected in sorted(manifest.items()):
        state, actual = _inspect(workspace, rel)
        if state == "present" and actual != expected:
            state = "modified"
        entry: dict = {"path": rel, "state": state, "expected_sha256": expected, "actual_sha256": actual}
        if state == "modified" and pristine_dir is not None:
            pristine = Path(pristine_dir) / rel
            if pristine.is_file() and not pristine.is_symlink():
                entry["pristine_matches_manifest"] = sha256_file(pristine) == expected
                diff = _diff(pristine, workspace / rel, rel)
                if diff is not None:
                    entry["diff"] = diff
        files.append(entry)
        if state != "present":
            problems.setdefault(state.split(" ")[0], []).append(rel)

    evidence = write_evidence(
        evidence_dir,
        GATE,
        {"gate": GATE, "workspace": str(workspace), "checked": len(files), "problems": problems, "files": files},
    )
    if problems:
        parts = [f"{kind}: {short_list(paths)}" for kind, paths in sorted(problems.items())]
        return verdict(GATE, VerdictStatus.failed, "harness files tampered with: " + "; ".join(parts), evidence)
    return verdict(GATE, VerdictStatus.passed, f"{len(files)} harness files unchanged", evidence)
