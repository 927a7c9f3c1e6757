"""Moving large folders (a ``final_model/``, a whole run folder) between machines.

A copy is **streamed** (one chunk in memory at a time, no per-file size cap), **resumable** (an
interrupted copy continues from the last chunk that arrived intact), **checked** (every chunk's
sha256 on arrival, every file's sha256 once complete, and, for a run folder, the canonical
submission's hashes recorded in ``run.json``) and **atomic** (the destination appears complete, by
one rename of a staging folder, or not at all).

The state of an interrupted copy is the staging folder itself: ``.<dest>.transfer/`` beside the
destination holds the source manifest and the ``*.part`` files. On resume every full chunk already
on disk is re-hashed against the manifest and the file is cut at the first chunk that does not
match (a torn write or a corrupted disk block is fetched again; nothing is trusted because it is
there). The manifest's hashes are reused for source files whose size and mtime are unchanged; a
source that changed since restarts the copy from scratch.

The transport is a :class:`Source`: :class:`LocalSource` reads a folder on this machine (another
mount, a synced bucket, a folder a cluster's file sync brought back); a remote transport only has
to provide ``manifest()`` and ``read()``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..fsutil import atomic_write_text, sha256_file

#: Default chunk: the unit of memory use, of re-fetching and of resume granularity.
DEFAULT_CHUNK = 16 << 20
#: A chunk whose bytes do not match the manifest is fetched again this many times before the copy fails.
FETCH_ATTEMPTS = 3
MANIFEST_NAME = ".ptb-transfer.json"
PART_SUFFIX = ".part"


class TransferError(RuntimeError):
    """The copy could not complete (disk full, corrupt source, hash mismatch); the message says
    what to do. What arrived intact stays in the staging folder and a rerun resumes from it."""


@dataclass(frozen=True)
class FileEntry:
    """One regular file of the source: its size, its sha256 and the sha256 of each chunk
    (``mtime_ns``: when it was hashed, to reuse the hashes when a copy resumes)."""

    path: str
    size: int
    sha256: str
    chunks: list[str]
    mtime_ns: int = 0


@dataclass(frozen=True)
class Manifest:
    """What the source holds, in chunks of ``chunk_size`` bytes (the last chunk of a file may be shorter)."""

    chunk_size: int
    files: list[FileEntry]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        return json.dumps({"chunk_size": self.chunk_size, "files": [asdict(f) for f in self.files]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(int(data["chunk_size"]), [FileEntry(**f) for f in data["files"]])


class Source(Protocol):
    """Where a copy reads from."""

    def manifest(self, chunk_size: int, previous: Manifest | None = None) -> Manifest:
        """Every regular file under the source with its chunk hashes; ``previous`` (that of the
        interrupted attempt) may be reused for files that have not changed since."""
        ...

    def read(self, path: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of ``path`` from ``offset``."""
        ...


def _chunk_hashes(path: Path, chunk_size: int) -> tuple[list[str], str]:
    """(sha256 of each chunk, sha256 of the whole file), reading the file once."""
    whole, chunks = hashlib.sha256(), []
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return chunks, whole.hexdigest()


class LocalSource:
    """A folder on this machine. Symlinks are refused (a copy never follows one out of the folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise TransferError(f"source is not a folder: {self.root}")

    def manifest(self, chunk_size: int, previous: Manifest | None = None) -> Manifest:
        # A file with the size and mtime it had when hashed keeps its hashes (a resume does not read
        # the whole source again). Safe against a change that keeps both: every chunk fetched is
        # checked against these hashes, so such a change fails the copy instead of passing.
        known = {f.path: f for f in previous.files} if previous and previous.chunk_size == chunk_size else {}
        files = []
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root).as_posix()
            if p.is_symlink():
                raise TransferError(f"source holds a symlink, not copied: {rel}")
            if p.is_file():
                st = p.stat()
                old = known.get(rel)
                if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    files.append(old)
                    continue
                chunks, whole = _chunk_hashes(p, chunk_size)
                files.append(FileEntry(rel, st.st_size, whole, chunks, st.st_mtime_ns))
        return Manifest(chunk_size, files)

    def read(self, path: str, offset: int, length: int) -> bytes:
        with open(self.root / path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)


def staging_dir(dest: Path) -> Path:
    """Where an unfinished copy to ``dest`` lives (a hidden sibling: never read as ``dest``)."""
    return dest.parent / f".{dest.name}.transfer"


def _verified_prefix(part: Path, entry: FileEntry, chunk_size: int, whole: Any) -> int:
    """Bytes of ``part`` that match the manifest chunk by chunk (fed to ``whole``, the file's
    running sha256); the file is cut to that length."""
    if not part.exists():
        return 0
    good = 0
    with open(part, "r+b") as fh:
        for expected in entry.chunks:
            block = fh.read(chunk_size)
            full = len(block) == min(chunk_size, entry.size - good)
            if not block or not full or hashlib.sha256(block).hexdigest() != expected:
                break
            whole.update(block)
            good += len(block)
        fh.truncate(good)
    return good


def _disk_full(dest: Path, exc: OSError, remaining: int) -> TransferError:
    return TransferError(
        f"no space left on the device of {dest} ({remaining} bytes still to copy): free space and run the copy "
        f"again; it resumes from what arrived ({staging_dir(dest)})"
    )


def _fetch_chunk(source: Source, entry: FileEntry, index: int, chunk_size: int) -> bytes:
    """Chunk ``index`` of ``entry``, fetched again while it does not match its manifest hash."""
    offset = index * chunk_size
    length = min(chunk_size, entry.size - offset)
    for _ in range(FETCH_ATTEMPTS):
        block = source.read(entry.path, offset, length)
        if len(block) == length and hashlib.sha256(block).hexdigest() == entry.chunks[index]:
            return block
    raise TransferError(
        f"{entry.path}: chunk {index} (bytes {offset}-{offset + length}) did not match its hash after "
        f"{FETCH_ATTEMPTS} fetches: the source changed or is corrupt"
    )


def _copy_file(source: Source, entry: FileEntry, stage: Path, chunk_size: int, on_chunk: OnChunk | None) -> None:
    final = stage / entry.path
    if final.exists() and final.stat().st_size == entry.size and sha256_file(final) == entry.sha256:
        return
    final.unlink(missing_ok=True)
    part = final.with_name(final.name + PART_SUFFIX)
    part.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()  # of the bytes written, so the finished file is not read again
    done = _verified_prefix(part, entry, chunk_size, whole)
    with open(part, "ab") as fh:
        for index in range(done // chunk_size, len(entry.chunks)):
            block = _fetch_chunk(source, entry, index, chunk_size)
            whole.update(block)
            fh.write(block)
            fh.flush()  # no fsync per chunk: a resume hashes every chunk on disk again anyway
            if on_chunk is not None:
                on_chunk(entry.path, index)
        os.fsync(fh.fileno())  # on disk before it is named complete
    if whole.hexdigest() != entry.sha256:  # every chunk matched, so only a changed source gets here
        part.unlink()
        raise TransferError(f"{entry.path}: the file's sha256 does not match the manifest after the copy")
    os.replace(part, final)


#: Called after each chunk is on disk, with (file, chunk index): progress, or a test's interruption.
OnChunk = Callable[[str, int], None]


def copy_tree(
    source: Source,
    dest: Path,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    expected: Mapping[str, str] | None = None,
    on_chunk: OnChunk | None = None,
    in_place: bool = False,
) -> Manifest:
    """Copy everything ``source`` holds to the new folder ``dest``, resuming an interrupted copy.

    ``expected``: relative path -> sha256 that must hold independently of the source's own manifest
    (the canonical submission's recorded hashes); a file missing from the source or a different
    hash fails the copy. Raises :class:`TransferError`; ``FileExistsError`` if ``dest`` exists.
    ``in_place``: stage in ``dest`` itself, with no folder rename at the end (bucket mounts such as
    gcsfuse or goofys cannot rename a folder); the caller marks completion itself, and ``dest``
    holds ``.ptb-transfer.json`` until the copy is complete.
    """
    dest = Path(dest)
    if not in_place and (dest.exists() or dest.is_symlink()):
        raise FileExistsError(f"destination already exists: {dest}")
    stage = dest if in_place else staging_dir(dest)
    state = stage / MANIFEST_NAME
    previous = None
    if state.is_file():
        try:
            previous = Manifest.from_json(state.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError):
            previous = None  # a torn or foreign state file: hash the source again
    manifest = source.manifest(chunk_size, previous)
    by_path = {f.path: f for f in manifest.files}
    for rel, digest in sorted((expected or {}).items()):
        if rel not in by_path:
            raise TransferError(f"{rel}: recorded in the run but missing from the source")
        if by_path[rel].sha256 != digest:
            raise TransferError(f"{rel}: the source's sha256 differs from the one recorded in the run")
    if stage.exists() and (not state.exists() or state.read_text(encoding="utf-8") != manifest.to_json()):
        shutil.rmtree(stage)  # a different source (or chunk size) since the last attempt: start over
    remaining = manifest.total_bytes
    try:
        stage.mkdir(parents=True, exist_ok=True)
        atomic_write_text(state, manifest.to_json())
        for entry in manifest.files:
            _copy_file(source, entry, stage, chunk_size, on_chunk)
            remaining -= entry.size
        os.unlink(state)
        if not in_place:
            os.replace(stage, dest)
    except TransferError:
        state.unlink(missing_ok=True)  # the source is not what the manifest says: the next attempt re-hashes it
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(dest, exc, remaining) from exc
        raise
    return manifest


def recorded_hashes(run_folder: Path) -> dict[str, str]:
    """The canonical submission's hashes recorded in a run folder's ``run.json``, keyed by their
    path in the run folder (``final_model/<file>``); empty if there are none."""
    run_json = Path(run_folder) / "run.json"
    if not run_json.is_file():
        return {}
    record = json.loads(run_json.read_text(encoding="utf-8"))
    return {f"final_model/{name}": digest for name, digest in (record.get("final_model_hashes") or {}).items()}


def copy_run_folder(
    src: Path, dest: Path, *, chunk_size: int = DEFAULT_CHUNK, on_chunk: OnChunk | None = None, in_place: bool = False
) -> Manifest:
    """Copy a run folder with :func:`copy_tree`, holding ``final_model/`` to the hashes its ``run.json`` recorded."""
    return copy_tree(
        LocalSource(src),
        dest,
        chunk_size=chunk_size,
        expected=recorded_hashes(src),
        on_chunk=on_chunk,
        in_place=in_place,
    )
