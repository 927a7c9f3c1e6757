"""What the scan roots hold besides file contents: file and folder names, symlink targets and
extended attributes, read as one text (an agent can keep a test item in names: one word per
path component, or a whole question as a file name, and read it back with ``os.walk``)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scan import IncrementalScan

_SEPARATORS = re.compile(r"[/_.\-]+")
_MAX_XATTR = 1 << 16


class FileNames:
    """Collects the names, symlink targets and ``user.*`` extended attributes of the files the
    scan walks, and feeds them to the scan as one text: path components separated by spaces
    (``/``, ``_``, ``.``, ``-`` read as spaces, so ``Natalia/sold/clips`` reads as words)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: Path, real: str) -> None:
        """One walked file: its path, its symlink target, its extended attributes."""
        self.lines.append(_SEPARATORS.sub(" ", str(path)))
        if str(path) != real:
            with contextlib.suppress(OSError):
                self.lines.append(_SEPARATORS.sub(" ", os.readlink(path)))
        try:
            attrs = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return
        for a in attrs:
            try:
                value = os.getxattr(path, a, follow_symlinks=False)[:_MAX_XATTR]
            except OSError:
                continue
            self.lines.append(f"{a} {value.decode('utf-8', 'replace')}")

    def feed(self, inc: IncrementalScan, roots: list[Path]) -> None:
        """Feed the collected text to ``inc`` (a hit in it names the pseudo-file
        ``<names under ROOTS>``)."""
        if not self.lines:
            return
        blob = "\n".join(self.lines).encode()
        name = f"<names under {', '.join(str(r) for r in roots)}>"
        inc.feed_text(name, blob)  # unchanged: memoised
