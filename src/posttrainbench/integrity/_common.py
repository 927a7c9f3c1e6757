"""Shared plumbing of the integrity gates: evidence files and the never-raise guard."""

from __future__ import annotations

import functools
import inspect
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

from ..domain import Verdict, VerdictStatus
from ..fsutil import atomic_write_json

P = ParamSpec("P")


def write_evidence(evidence_dir: Path | None, name: str, data: Any) -> tuple[str, ...]:
    """Write ``data`` as ``<evidence_dir>/<name>.json``; return ``(path,)`` or ``()`` if no dir."""
    if evidence_dir is None:
        return ()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    path = Path(evidence_dir) / f"{safe}.json"
    atomic_write_json(path, data)
    return (str(path),)


def short_list(items: list[str], limit: int = 10) -> str:
    """``a, b, c (+N more)`` for summaries that must stay one readable line."""
    head = ", ".join(items[:limit])
    return head + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def verdict(gate: str, status: VerdictStatus, summary: str, evidence: tuple[str, ...] = ()) -> Verdict:
    return Verdict(gate=gate, status=status, summary=summary, evidence=evidence)


def not_run(gate: str, summary: str, evidence: tuple[str, ...] = ()) -> Verdict:
    return verdict(gate, VerdictStatus.not_run, summary, evidence)


def guarded(gate: str) -> Callable[[Callable[P, Verdict]], Callable[P, Verdict]]:
    """Turn any exception raised by a gate into a ``not_run`` verdict (never ``pass``).

    The traceback is written next to the other evidence when the gate was given an
    ``evidence_dir`` (keyword or positional), so a crashed gate is still explainable.
    """

    def deco(fn: Callable[P, Verdict]) -> Callable[P, Verdict]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Verdict:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a gate must never raise
                evidence: tuple[str, ...] = ()
                try:
                    edir = sig.bind_partial(*args, **kwargs).arguments.get("evidence_dir")
                except TypeError:
                    edir = None
                try:
                    evidence = write_evidence(
                        edir,
                        f"{gate}_crash",
                        {"gate": gate, "error": repr(exc), "traceback": traceback.format_exc()},
                    )
                except Exception:  # noqa: BLE001 - the crash is reported even without its evidence file
                    evidence = ()
                return not_run(gate, f"gate crashed: {type(exc).__name__}: {exc}", evidence)

        return wrapper

    return deco
