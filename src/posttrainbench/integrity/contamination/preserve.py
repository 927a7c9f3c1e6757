"""STAND-IN for ``integrity.contamination.IncrementalScan`` (issue 13, built in parallel): keep the
content of every file the agent wrote, as it was written, so that the contamination scan reads
it after the run even when the agent deleted or overwrote the file.

Same interface as the incremental scan (``feed(name, stream, size)``, ``feed_path(path)``,
``verdict(index, evidence_dir)``); the merge replaces this class with it, which scans during the
run without storing. This adapter copies each distinct content (by sha256) into a folder of the
run (``RunPaths.preserved``) that the contamination gate scans with today's :func:`.scan.scan`.
Limits of the stand-in: a file above ``max_file_bytes`` or past ``max_total_bytes`` is not kept
(counted in ``skipped``); the copies take disk space in the run folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import IO

from ...domain import Verdict
from .index import ContaminationIndex
from .scan import scan

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class PreservingScan:
    """Keeps what was written for the contamination scan (see the module doc)."""

    def __init__(self, folder: Path, *, max_file_bytes: int = 256 << 20, max_total_bytes: int = 4 << 30) -> None:
        self.folder = Path(folder)
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.kept_bytes = 0
        self.kept: dict[str, Path] = {}  # sha256 -> the copy
        self.skipped = 0

    def feed(self, name: str, stream: IO[bytes], size: int) -> None:
        """Copy ``size`` bytes of the file ``name`` from ``stream`` (once per distinct content)."""
        if size > self.max_file_bytes or self.kept_bytes + size > self.max_total_bytes:
            self.skipped += 1
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".incoming-{os.getpid()}"
        digest = hashlib.sha256()
        left = size
        try:
            with open(tmp, "wb") as out:
                while left > 0:
                    chunk = stream.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk must not keep a partial copy
            raise
        h = digest.hexdigest()
        if h in self.kept:
            tmp.unlink()
            return
        # the original name's suffix is kept: the scan reads a file by its name and content
        base = _SAFE.sub("_", os.path.basename(name))[-120:] or "file"
        dest = self.folder / f"{h[:16]}__{base}"
        tmp.replace(dest)
        self.kept[h] = dest
        self.kept_bytes += size - left

    def discard(self, sha256: str) -> None:
        """Drop the copy of a content that is still in place at the end (the scan reads it there)."""
        copy = self.kept.pop(sha256, None)
        if copy is not None:
            self.kept_bytes -= copy.stat().st_size
            copy.unlink()

    def feed_path(self, path: Path) -> None:
        """Feed a file by its path."""
        with open(path, "rb") as fh:
            self.feed(str(path), fh, os.fstat(fh.fileno()).st_size)

    def verdict(self, index: ContaminationIndex, evidence_dir: Path | None = None) -> Verdict:
        """Scan what was kept (the contamination gate scans the folder with the workspace instead)."""
        return scan(index, [self.folder], evidence_dir)

    def clear(self) -> None:
        """Remove everything kept."""
        shutil.rmtree(self.folder, ignore_errors=True)
