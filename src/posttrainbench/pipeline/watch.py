"""The solve phase's live progress: while the agent runs, the harness (never anything inside the
sandbox) polls the agent's output file every few seconds and shows elapsed / limit, the agent's
latest step (its last tool call, or the training log's step and loss) and the tokens and cost so
far, on a :class:`~posttrainbench.console.LiveStatus`.

Display only: the output is read with the scaffold's own parser (:class:`TraceTail`), every
error while polling is ignored, and the trace of record is parsed at collect from the whole file.
What the agent prints is hostile: control characters are replaced before anything is shown."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from ..agents.trace_parsers import TraceTail
from ..console import LiveStatus
from ..results.loss_curve import latest_trainer_loss
from ..trace import ToolCall
from .common import hms

#: Seconds between two polls of the agent's output.
POLL_S = 2.0


def printable(text: str, width: int = 60) -> str:
    """``text`` on one line, control characters (terminal escapes included) replaced, cut to ``width``."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def describe_call(call: ToolCall) -> str:
    """A tool call in a few words: its name and its command (or first string argument)."""
    arg: Any = call.input
    if isinstance(arg, dict):
        arg = next((arg[k] for k in ("command", "cmd", "file_path", "path", "pattern") if isinstance(arg.get(k), str)),
                   next((v for v in arg.values() if isinstance(v, str)), ""))  # fmt: skip
    return printable(f"{call.name} {arg if isinstance(arg, str) else ''}".strip())


def tokens(n: int) -> str:
    """``950``, ``12.3k``, ``4.1M``."""
    return f"{n}" if n < 1000 else f"{n / 1000:.1f}k" if n < 1_000_000 else f"{n / 1_000_000:.1f}M"


class SolveWatch:
    """Shows the agent's progress on ``status`` while the block runs (a daemon thread polls)."""

    def __init__(self, status: LiveStatus, tail: TraceTail, limit_s: float, workspace: Path) -> None:
        self.status, self.tail, self.limit_s, self.workspace = status, tail, limit_s, workspace
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ptb-solve-watch", daemon=True)

    def __enter__(self) -> SolveWatch:
        self.status.__enter__()
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.status.close()

    def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # display only: a bad line never touches the run
                self.tick()
            if self._stop.wait(POLL_S):
                return

    def tick(self) -> None:
        """Poll once and update the display."""
        self.tail.poll()
        parts = [f"{hms(time.monotonic() - self.started)} / {hms(self.limit_s)}"]
        training = self.tail.training
        if training is None:
            try:
                training = latest_trainer_loss(self.workspace)
            except (OSError, ValueError, AttributeError):
                training = None
        news = ""
        if training is not None:
            news = f"{training[0]} loss {training[1]:.4g}"
        elif self.tail.last_call is not None:
            news = describe_call(self.tail.last_call)
        elif self.tail.last_log:
            news = printable(self.tail.last_log)
        if news:
            parts.append(printable(news, 80))
        usage = self.tail.usage()
        if usage.input_tokens or usage.output_tokens:
            parts.append(f"{tokens(usage.input_tokens + usage.output_tokens)} tokens")
        if usage.cost_usd:
            parts.append(f"${usage.cost_usd:.2f}")
        self.status.update(" · ".join(parts), key=news)
