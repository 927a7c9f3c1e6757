"""Where a benchmark's raw records come from: a local file under the data root first, then the
hub (``datasets.load_dataset`` at the pinned revision, else the default branch's commit, resolved
once per process and recorded). Benchmark-agnostic: each benchmark turns the records into items.
"""

from __future__ import annotations

import functools
import gzip
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from ..domain import Benchmark
from .items import DATA_DIR_ENV, DataError, Item
from .provenance import DataProvenance, note_source

# Set while a caller asked for local files only: the hub is not tried (no network, no waiting).
_LOCAL_ONLY: ContextVar[bool] = ContextVar("ptb_local_only", default=False)


class TestSet(NamedTuple):
    """A benchmark's evaluation items and where they came from (digest checked against the pin)."""

    items: list[Item]
    provenance: DataProvenance


@contextmanager
def local_files_only(flag: bool = True) -> Iterator[None]:
    """While the block runs, :func:`records` (and any loader asking :func:`is_local_only`) never
    tries the hub: a missing local file is a :class:`DataError`."""
    token = _LOCAL_ONLY.set(flag)
    try:
        yield
    finally:
        _LOCAL_ONLY.reset(token)


def is_local_only() -> bool:
    """Whether the current load was asked to use local files only."""
    return _LOCAL_ONLY.get()


def records(
    benchmark: Benchmark, root: Path, which: Literal["test", "train"], *, hub: Benchmark | None = None
) -> list[dict[str, Any]]:
    """The raw records of ``benchmark``'s test or train split: its local file under ``root``
    (``local_test_file`` / ``local_train_file``) if present, else the hub entry of ``hub``
    (default: the benchmark itself; a derived benchmark names the one holding its data)."""
    rel = benchmark.local_test_file if which == "test" else benchmark.local_train_file
    if rel is not None:
        path = root / rel
        if path.is_file():
            return read_jsonl(path)
    src = hub if hub is not None else benchmark
    split = src.test_split if which == "test" else "train"
    where = f"{root / rel}" if rel else f"a local {which} file"
    if src.hub_id is None or is_local_only():
        why = "the benchmark has no hub source" if src.hub_id is None else "only local files were asked for"
        raise DataError(
            f"{benchmark.id}: {where} not found and {why}. "
            f"Set {DATA_DIR_ENV} to a data root holding {rel or '<benchmark files>'}."
        )
    down = None if Path(src.hub_id).exists() else hub_unreachable()
    revision = src.hub_revision or (None if down else resolve_hub_revision(src.hub_id))
    try:
        import datasets

        # an unreachable hub: the local datasets cache only, at once (not minutes of retries)
        with _hub_offline(bool(down)):
            ds = datasets.load_dataset(src.hub_id, src.hub_config, split=split, revision=revision)
    except Exception as exc:  # offline, gated, renamed: the fix is the same for the user
        why = f"{type(exc).__name__}: {exc}"
        if down:
            why = f"the hub is unreachable ({down}) and the local cache could not serve it: {why}"
        raise DataError(
            f"{benchmark.id}: {where} not found, and loading {src.hub_id}"
            f"{'/' + src.hub_config if src.hub_config else ''} split {split!r} from the hub failed "
            f"({why}). Set {DATA_DIR_ENV} to a data root holding "
            f"{rel or 'the files'}, or make the hub reachable."
        ) from exc
    config = f"/{src.hub_config}" if src.hub_config else ""
    note_source(f"hub:{src.hub_id}{config}@{revision or 'unresolved'}:{split}")
    return [dict(r) for r in ds]


@functools.cache
def hub_unreachable() -> str | None:
    """Why the hub cannot be reached, or None when it can: offline mode, or a quick TCP connect to
    its endpoint (``HF_ENDPOINT``) that fails. Asked once per process, before a hub load, so that
    a machine without network gets its answer at once instead of after the clients' retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode (HF_HUB_OFFLINE)"
    url = urlsplit(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


@contextmanager
def _hub_offline(flag: bool) -> Iterator[None]:
    """While the block runs (if ``flag``), huggingface_hub and datasets are in offline mode: a
    load uses the local cache or fails at once. Both libraries read these flags at call time."""
    if not flag:
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


@functools.cache
def resolve_hub_revision(hub_id: str) -> str | None:
    """The commit the hub's default branch points at (recorded with the result, so the
    evaluation names the exact data it used); None offline or for a local dataset folder.
    Resolved once per process: a benchmark's test and train splits, and every later load in
    the same process, come from the same commit."""
    if Path(hub_id).exists():
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(hub_id, timeout=30).sha
    except Exception:  # noqa: BLE001 - offline, gated without a token: load_dataset says why, or uses its cache
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (``.gz`` too), noted as a source of the set being loaded."""
    note_source(f"file:{path}")
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: invalid JSON ({exc})") from exc
    return out


def field(rec: dict[str, Any], *names: str, where: str) -> str:
    """The first of ``names`` present (and not null) in ``rec``, as text; a clear DataError if none."""
    for n in names:
        if n in rec and rec[n] is not None:
            return str(rec[n])
    raise DataError(f"{where}: record has none of the fields {names}: keys {sorted(rec)}")
