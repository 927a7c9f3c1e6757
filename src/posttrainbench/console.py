"""The process's two terminals: ``console`` (stdout: tables, results, progress) and
``err_console`` (stderr: errors and warnings), and :class:`LiveStatus`, the one live status line
of long work (a rich ``Live`` line on a terminal, plain timestamped lines at a low rate elsewhere).

Every module that prints to the terminal uses these two, so live displays (progress bars,
spinners) and widths stay consistent. This module imports nothing of the package: any layer may
use it without importing the CLI (which re-exports both from ``cli.common``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.console import Console
from rich.live import Live
from rich.text import Text

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


class LiveStatus:
    """One status line that long work updates as it goes (the agent's latest step, samples done).

    On a terminal: a transient rich ``Live`` line, redrawn in place and erased when the work ends
    (lines printed meanwhile scroll above it). Not on a terminal (a Slurm log, CI, a pipe): plain
    ``HH:MM:SS <label> <text>`` lines at a low rate, one when ``key`` (what counts as news, e.g.
    the training step) changed and at least ``min_interval_s`` passed since the last line (at once
    if the last line had no key), and one every ``heartbeat_s`` anyway. Safe to update from another
    thread. A muted console shows nothing.
    """

    def __init__(self, out: Console, label: str, *, min_interval_s: float = 10.0, heartbeat_s: float = 60.0) -> None:
        self.out, self.label = out, label
        self.min_interval_s, self.heartbeat_s = min_interval_s, heartbeat_s
        self._live: Live | None = None
        self._lock = threading.Lock()
        self._last_print: float | None = None
        self._last_key: str | None = None
        self.last_text: str | None = None
        self._closed = False

    def __enter__(self) -> LiveStatus:
        if self.out.is_terminal and not self.out.quiet:
            self._live = Live(Text(""), console=self.out, transient=True, refresh_per_second=4)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, text: str, *, key: str | None = None) -> None:
        """Show ``text``; ``key``: what makes it news for the plain lines (default: the text)."""
        with self._lock:
            self.last_text = text
            if self._live is not None:
                self._live.update(self._line(text))
                return
            if self.out.quiet:
                return
            now, key = time.monotonic(), text if key is None else key
            since = None if self._last_print is None else now - self._last_print
            # news after a line that had none (the work had not said anything yet) comes at once
            news = key != self._last_key and (since is None or since >= self.min_interval_s or not self._last_key)
            if news or (since is not None and since >= self.heartbeat_s):
                self._last_print, self._last_key = now, key
                self.out.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] ", self._line(text), sep="", soft_wrap=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (the work this line showed has ended)."""
        return self._closed

    def close(self) -> None:
        """Erase the live line (terminal); nothing more is shown."""
        with self._lock:
            self._closed = True
            if self._live is not None:
                self._live.stop()
                self._live = None

    def _line(self, text: str) -> Text:
        line = Text(self.label, style="bold")
        line.append(f" {text}")
        return line


# ----------------------------------------------------------------- one format for times and numbers
# Every table, the report and the live display show times, durations and scores through these.
NONE = "—"
"""What is shown for a value there is none of."""


def hms(seconds: float) -> str:
    """A duration as ``H:MM:SS`` (elapsed, limits, ETAs, time used: the one format for durations)."""
    s = int(round(max(seconds, 0)))
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def duration(seconds: float | None) -> str:
    """:func:`hms`, or ``—`` when there is none."""
    return NONE if seconds is None else hms(seconds)


def utc(moment: datetime | None) -> str:
    """A moment as ``2026-11-30 02:21Z`` (UTC to the minute; a naive one is taken as UTC), or ``—``."""
    if moment is None:
        return NONE
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(UTC):%Y-%m-%d %H:%MZ}"


def score(value: float | None, digits: int = 3) -> str:
    """A score (or a gain) rounded to 3 decimals, or ``—``."""
    return NONE if value is None else f"{value:.{digits}f}"


def limited(eval_limit: int | None, *, short: bool = False) -> str:
    """The mark of a score from a ``--limit`` evaluation (first N items only), or ``""``; ``short``:
    for a table cell."""
    if eval_limit is None:
        return ""
    return f" (limit {eval_limit})" if short else f" (--limit {eval_limit}: first {eval_limit} items only)"
