"""Where a benchmark's evaluation set came from, and whether it is the pinned one.

Every benchmark whose data we could verify carries ``items_sha256`` in its spec: the sha256 of
its full evaluation set *as the evaluator asks it* (the items' prompts, targets, own context and
metadata, in order), and, where it asks few-shot turns (GSM8K), ``fewshot_sha256`` of those
turns (checked whenever they are used; a zero-shot baseline asks none). Loading from a local
file or from the hub must give exactly that set; a file that was edited, truncated or
re-ordered, or a hub dataset that moved, gives another digest and the harness refuses to score
with it (unless ``PTB_ALLOW_UNPINNED_DATA=1``, which is recorded).
Pinning the content rather than only a hub commit also covers the local files and the BFCL wheel,
and it changes when the evaluator's own prompts change, so two results with the same digest were
asked the same questions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..domain import Benchmark
from ..settings import DataSettings
from .items import ChatTurn, DataError, Item

ALLOW_UNPINNED_ENV = DataSettings.env_name("allow_unpinned")

_SOURCES: ContextVar[list[str] | None] = ContextVar("ptb_data_sources", default=None)


def items_sha256(items: Iterable[Item]) -> str:
    """sha256 of the items' test content as asked (prompt, target, own context, metadata; not the
    few-shot turns, see ``fewshot_sha256``), as canonical JSON lines (sorted keys), in order."""
    h = hashlib.sha256()
    for it in items:
        h.update(_canonical(it.model_dump(mode="json", exclude={"fewshot"})))
    return h.hexdigest()


def fewshot_sha256(items: Iterable[Item]) -> str | None:
    """sha256 of the distinct few-shot contexts (from the train split) in order of first use;
    None when no item has one (a zero-shot evaluation)."""
    seen: list[tuple[ChatTurn, ...]] = []
    for it in items:
        if it.fewshot and it.fewshot not in seen:
            seen.append(it.fewshot)
    if not seen:
        return None
    h = hashlib.sha256()
    for turns in seen:
        h.update(_canonical([t.model_dump(mode="json") for t in turns]))
    return h.hexdigest()


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def note_source(source: str) -> None:
    """Record one input of the set being loaded (a file path, a hub repo at a commit)."""
    sources = _SOURCES.get()
    if sources is not None and source not in sources:
        sources.append(source)


@contextmanager
def collecting_sources() -> Iterator[list[str]]:
    """Collect what ``note_source`` is told while the block runs."""
    sources: list[str] = []
    token = _SOURCES.set(sources)
    try:
        yield sources
    finally:
        _SOURCES.reset(token)


class DataProvenance(BaseModel):
    """The evaluation set actually used: its inputs, size and digest against the benchmark's pin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    benchmark: str
    sources: list[str]
    n_items: int
    full_size: int
    items_sha256: str
    pinned_sha256: str | None = None
    fewshot_sha256: str | None = None
    pinned_fewshot_sha256: str | None = None
    status: Literal["pinned", "unpinned", "differs"]
    allowed_by_env: bool = False

    @classmethod
    def of(cls, benchmark: Benchmark, items: list[Item], sources: list[str], *, allow_unpinned: bool) -> DataProvenance:
        """The provenance of ``items`` loaded from ``sources``; ``allow_unpinned``: a set that
        differs from the pin may be scored anyway (``Settings.data.allow_unpinned``)."""
        digest, shots = items_sha256(items), fewshot_sha256(items)
        pin = benchmark.items_sha256
        # The few-shot turns are checked when they are used (a zero-shot baseline asks none).
        shots_pin = benchmark.fewshot_sha256 if benchmark.fewshot > 0 else None
        if pin is None:
            status = "unpinned"
        else:
            status = "pinned" if digest == pin and (shots_pin is None or shots == shots_pin) else "differs"
        return cls(
            benchmark=benchmark.id,
            sources=list(sources),
            n_items=len(items),
            full_size=benchmark.full_size,
            items_sha256=digest,
            pinned_sha256=pin,
            fewshot_sha256=shots,
            pinned_fewshot_sha256=shots_pin,
            status=status,
            allowed_by_env=status == "differs" and allow_unpinned,
        )

    def problem(self) -> str | None:
        """Why this set must not be scored as the benchmark (None when it may)."""
        if self.status != "differs" or self.allowed_by_env:
            return None
        if self.items_sha256 == self.pinned_sha256:
            what = (
                f"its few-shot turns (sha256 {str(self.fewshot_sha256)[:12]}…, pinned "
                f"{str(self.pinned_fewshot_sha256)[:12]}…) are not the pinned ones"
            )
        else:
            size = (
                "" if self.n_items == self.full_size else f" ({self.n_items} items, the benchmark has {self.full_size})"
            )
            what = (
                f"is not the pinned one{size} (sha256 {self.items_sha256[:12]}…, pinned "
                f"{(self.pinned_sha256 or '')[:12]}…)"
            )
        return (
            f"{self.benchmark}: the evaluation set loaded from {', '.join(self.sources) or 'its sources'} "
            f"{what}. Restore the original data, or set {ALLOW_UNPINNED_ENV}=1 to evaluate on it "
            f"anyway (recorded in the result)."
        )

    def require(self) -> DataProvenance:
        """``self``, or DataError when the set differs from the pin (and the env does not allow it)."""
        problem = self.problem()
        if problem:
            raise DataError(problem)
        return self
