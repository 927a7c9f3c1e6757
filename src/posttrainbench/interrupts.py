"""Ctrl-C and SIGTERM: one signal stops the work within seconds and is recorded as an
interruption (never a failure, never retried); a second one forces the process out.

:func:`handling` installs the handlers (the CLI does, around every command). The first signal
sets a process-wide flag and raises :class:`KeyboardInterrupt` in the main thread, which stops
whatever it was waiting on (the agent's supervision loop kills the sandbox; Inspect's event loop
cancels its tasks). Work running in other threads polls :func:`requested` (the ``ptb-hf``
provider stops generating at the next token), and code that would otherwise go on (the
max-tokens ladder's next rung) calls :func:`check`. :class:`Interrupted` derives from
:class:`BaseException`, as :class:`KeyboardInterrupt` does, so no ``except Exception`` on the way
up can mistake it for a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["EXIT_INTERRUPTED", "Interrupted", "check", "handling", "on_force", "requested", "signal_name"]

EXIT_INTERRUPTED = 130
"""The exit code of an interrupted command (128 + SIGINT, as shells report it)."""

_event = threading.Event()
_signal_name: str | None = None
_on_force: list[Callable[[], None]] = []


class Interrupted(BaseException):
    """The work was interrupted by a signal (or Ctrl-C); raised where it is noticed."""

    def __init__(self, signal: str | None = None, detail: str | None = None) -> None:
        self.signal = signal or _signal_name or "SIGINT"
        #: what the interrupt left where, when the generic "recorded as interrupted" is not it
        self.detail = detail
        super().__init__(f"interrupted by {self.signal}")


def requested() -> bool:
    """Whether an interrupt has been requested in this process."""
    return _event.is_set()


def signal_name() -> str | None:
    """The name of the signal that interrupted (``SIGINT``, ``SIGTERM``), if one did."""
    return _signal_name


def check() -> None:
    """Raise :class:`Interrupted` if an interrupt has been requested."""
    if _event.is_set():
        raise Interrupted()


def _handle(signum: int, frame: FrameType | None) -> None:
    global _signal_name
    if _event.is_set():  # the second signal: out now, whatever is still running
        os.write(2, b"\ninterrupted again: forced exit\n")
        for callback in list(_on_force):
            with contextlib.suppress(BaseException):  # forced: nothing may stop the exit
                callback()
        os._exit(128 + signum)
    _signal_name = signal.Signals(signum).name
    _event.set()
    raise KeyboardInterrupt


@contextmanager
def on_force(callback: Callable[[], None]) -> Iterator[None]:
    """Inside the block, a forced exit (the second signal) first calls ``callback`` (best effort,
    e.g. to kill the child processes that would outlive this one: a pool's workers)."""
    _on_force.append(callback)
    try:
        yield
    finally:
        _on_force.remove(callback)


@contextmanager
def handling() -> Iterator[None]:
    """Install the SIGINT and SIGTERM handlers for the block (main thread only; elsewhere a
    no-op), restoring the previous ones afterwards. The flag is cleared on entry."""
    global _signal_name
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _event.clear()
    _signal_name = None
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        # Our KeyboardInterrupt may land in a finaliser or weakref callback, where Python can only
        # print it ("Exception ignored in ..."); the flag already holds the interrupt, and the
        # cooperative checks stop the work, so that one is not printed.
        if isinstance(info.exc_value, KeyboardInterrupt) and _event.is_set():
            return
        previous_hook(info)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for s, handler in previous.items():
            signal.signal(s, handler)


def _reset_for_tests() -> None:
    """Clear the flag (tests that simulate an interrupt in-process)."""
    global _signal_name
    _event.clear()
    _signal_name = None
