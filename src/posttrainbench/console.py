"""The process's two terminals: ``console`` (stdout: tables, results, progress) and
``err_console`` (stderr: errors and warnings).

Every module that prints to the terminal uses these two, so live displays (progress bars,
spinners) and widths stay consistent. This module imports nothing of the package: any layer may
use it without importing the CLI (which re-exports both from ``cli.common``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


@contextmanager
def muted(target: Console, enabled: bool = True) -> Iterator[Console]:
    """Silence ``target`` inside the block when ``enabled`` (a caller asked for quiet)."""
    saved = target.quiet
    target.quiet = saved or enabled
    try:
        yield target
    finally:
        target.quiet = saved
