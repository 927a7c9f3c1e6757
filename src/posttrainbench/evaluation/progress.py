"""Live progress of an evaluation: samples done out of all, with rate and ETA.

Inspect tells us each finished sample through its hooks API (``inspect_ai.hooks``): one hook is
registered once per process (Inspect keeps a single instance for the process's life) and calls
the listener of the evaluation now running, if any. :func:`evaluate_model` takes that listener
(``on_sample(done, total)``); :class:`SampleMeter` turns the counts into the status text. One
evaluation at a time per process is counted (the CLI and the sweep workers run one)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..console import LiveStatus, hms

#: Called with (samples done, samples in all) when an attempt starts (0) and as samples finish.
SampleFn = Callable[[int, int], None]

_lock = threading.Lock()
_listener: Callable[[], None] | None = None
_registered = False


def _register() -> None:
    """Register the hook with Inspect (once per process, on first use: importing Inspect is slow)."""
    global _registered
    with _lock:
        if _registered:
            return
        from inspect_ai.hooks import Hooks, SampleEnd, hooks

        @hooks(name="ptb_sample_progress", description="ptb's live count of finished samples")
        class SampleProgress(Hooks):
            def enabled(self) -> bool:
                return _listener is not None

            async def on_sample_end(self, data: SampleEnd) -> None:
                listener = _listener
                if listener is not None:
                    listener()

        _registered = True


@contextmanager
def counting(on_sample: SampleFn | None, total: int) -> Iterator[None]:
    """Count the samples Inspect finishes inside the block and report each to ``on_sample``."""
    global _listener
    if on_sample is None:
        yield
        return
    _register()
    done = 0

    def finished() -> None:
        nonlocal done
        done += 1
        with contextlib.suppress(Exception):  # display only: never the evaluation's problem
            on_sample(done, total)

    on_sample(0, total)
    _listener = finished
    try:
        yield
    finally:
        _listener = None


class SampleMeter:
    """``n/N samples · rate/s · ETA`` on a :class:`LiveStatus`; ``prefix`` names what is evaluated.

    Until the first sample finishes (the model loads, the first batch generates: minutes for a
    big model) the line says so and its clock ticks every ``tick_s``, so a wait is never silent."""

    def __init__(self, status: LiveStatus, prefix: str = "", tick_s: float = 1.0) -> None:
        self.status, self.prefix, self.tick_s = status, prefix, tick_s
        self.started = time.monotonic()
        self._done = 0
        self._ticker: threading.Thread | None = None

    def _tick(self, total: int) -> None:
        while not self.status.closed:
            time.sleep(self.tick_s)
            if self._done or self.status.closed:
                break
            waited = hms(time.monotonic() - self.started)
            self.status.update(
                f"{self.prefix}0/{total} samples · loading the model, first answers pending · {waited}", key="0"
            )
        self._ticker = None

    def __call__(self, done: int, total: int) -> None:
        self._done = done
        if done == 0:  # an attempt starts (the max-tokens ladder may start over)
            self.started = time.monotonic()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, args=(total,), daemon=True, name="ptb-eval-wait")
                self._ticker.start()
        elapsed = time.monotonic() - self.started
        text = f"{done}/{total} samples"
        if done and elapsed > 0:
            rate = done / elapsed
            eta = (total - done) / rate
            text += f" · {rate:.2f}/s · ETA {hms(eta)}"
        self.status.update(f"{self.prefix}{text}", key=str(done))
