"""Collect ``final_model/`` out of the workspace, and the transfer gate that re-checks it.

``collect_final_model`` is the only way a model leaves the sandbox. It refuses anything the
agent could use to make the harness read outside the workspace or hang:

- a symlink whose real target lies outside ``src`` (or outside ``allowed_root`` when given,
  e.g. the workspace), a dangling symlink, a symlink to a folder;
- a special file (FIFO, socket, device);
- more than ``max_total_bytes`` in total (checked before copying, and again while copying).

Symlinks to files inside the allowed root are copied as regular files (dereferenced). The
copy goes to a temporary sibling of ``dest`` and is renamed into place, so ``dest`` is either
complete or absent. The returned per-file sha256 is what ``check_transfer`` compares against.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..domain import Verdict, VerdictStatus
from ..fsutil import hash_tree
from ._common import guarded, not_run, short_list, verdict, write_evidence

GATE = "transfer"
DEFAULT_MAX_TOTAL_BYTES = 200 * (1 << 30)  # 200 GiB
_CHUNK = 1 << 20


class TransferError(Exception):
    """final_model cannot be collected safely; the message says why."""


def _plan(src: Path, root_real: str) -> list[tuple[str, str, int]]:
    """(relative path, real source path, size) of every file to copy, or TransferError."""
    plan: list[tuple[str, str, int]] = []

    def unreadable(exc: OSError) -> None:
        raise TransferError(f"cannot read {exc.filename}: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(src, followlinks=False, onerror=unreadable):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = Path(p).relative_to(src).as_posix()
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                real = os.path.realpath(p)
                if not (real == root_real or real.startswith(root_real + os.sep)):
                    raise TransferError(
                        f"final_model/{rel} is a symlink to {target!r}, which resolves outside "
                        f"the allowed folder ({real}); refusing to collect"
                    )
                try:
                    st = os.stat(real)
                except FileNotFoundError:
                    raise TransferError(f"final_model/{rel} is a dangling symlink to {target!r}") from None
                if stat.S_ISDIR(st.st_mode):
                    raise TransferError(
                        f"final_model/{rel} is a symlink to a folder ({target!r}); copy the files instead"
                    )
                if not stat.S_ISREG(st.st_mode):
                    raise TransferError(f"final_model/{rel} is a symlink to a special file ({target!r})")
                plan.append((rel, real, st.st_size))
            elif stat.S_ISREG(st.st_mode):
                plan.append((rel, p, st.st_size))
            else:
                raise TransferError(
                    f"final_model/{rel} is a special file (mode {stat.filemode(st.st_mode)}); refusing to collect"
                )
    return sorted(plan)


def collect_final_model(
    src: Path,
    dest: Path,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    allowed_root: Path | None = None,
) -> dict[str, str]:
    """Copy ``src`` (the workspace's final_model) to ``dest``; return {relative path: sha256}.

    Raises ``TransferError`` (nothing is left at ``dest``) on a missing/empty ``src``, an
    existing ``dest``, an unsafe symlink, a special file or a total size above the cap.
    """
    src, dest = Path(src), Path(dest)
    if src.is_symlink() and allowed_root is None:
        raise TransferError(f"{src} is itself a symlink; refusing to collect")
    if not src.is_dir():
        raise TransferError(f"no final_model folder at {src}")
    root_real = os.path.realpath(allowed_root if allowed_root is not None else src)
    src_real = os.path.realpath(src)
    if not (src_real == root_real or src_real.startswith(root_real + os.sep)):
        raise TransferError(f"{src} resolves outside the allowed folder ({src_real})")
    if dest.exists() or dest.is_symlink():
        raise TransferError(f"destination already exists: {dest}")

    plan = _plan(Path(src_real), root_real)
    if not plan:
        raise TransferError(f"final_model at {src} contains no files")
    total = sum(size for _, _, size in plan)
    if total > max_total_bytes:
        raise TransferError(
            f"final_model is {total / 2**30:.2f} GiB, above the cap of {max_total_bytes / 2**30:.2f} GiB"
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    hashes: dict[str, str] = {}
    copied = 0
    try:
        for rel, real, _ in plan:
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh, open(out, "wb") as oh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise TransferError(f"final_model/{rel} stopped being a regular file")
                h = hashlib.sha256()
                while block := fh.read(_CHUNK):
                    copied += len(block)
                    if copied > max_total_bytes:
                        raise TransferError(
                            f"final_model grew above the cap of {max_total_bytes / 2**30:.2f} GiB while copying"
                        )
                    h.update(block)
                    oh.write(block)
            hashes[rel] = h.hexdigest()
        os.replace(tmp, dest)
    except BaseException:
        # An OSError here (disk full, I/O error) is the harness's problem, not the agent's: it
        # propagates as such so the phase fails and is retried, with no half copy left behind.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return hashes


@guarded(GATE)
def check_transfer(final_model: Path, recorded: dict[str, str], evidence_dir: Path | None = None) -> Verdict:
    """Fail if the collected final_model changed (file modified, added or removed) since collect."""
    final_model = Path(final_model)
    if not recorded:
        return not_run(GATE, "no hashes were recorded at collect")
    actual = hash_tree(final_model) if final_model.is_dir() and not final_model.is_symlink() else {}
    missing = sorted(set(recorded) - set(actual))
    added = sorted(set(actual) - set(recorded))
    changed = sorted(k for k in set(recorded) & set(actual) if recorded[k] != actual[k])
    evidence = write_evidence(
        evidence_dir,
        GATE,
        {
            "gate": GATE,
            "final_model": str(final_model),
            "missing": missing,
            "added": {k: actual[k] for k in added},
            "changed": {k: {"recorded": recorded[k], "actual": actual[k]} for k in changed},
            "files_checked": len(recorded),
        },
    )
    problems = [
        f"{kind}: {short_list(paths)}"
        for kind, paths in (("changed", changed), ("added", added), ("missing", missing))
        if paths
    ]
    if problems:
        return verdict(GATE, VerdictStatus.failed, "final_model differs from what was collected: " + "; ".join(problems), evidence)
    return verdict(GATE, VerdictStatus.passed, f"{len(recorded)} collected files unchanged", evidence)
