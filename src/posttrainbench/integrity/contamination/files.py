"""Reading the files a contamination scan sees: which files are text, and their text, chunk by chunk.

Text-like files (``.jsonl .json .csv .tsv .txt .py .md ...``, their ``.gz/.bz2/.xz`` versions,
extension-less files that sniff as UTF-8 text, ``.parquet`` and ``.arrow`` via pyarrow) are read
in 1 MiB chunks (constant memory per file, even for one-line files), with JSON string escapes
(``\\n``, ``\\"``, ``\\uXXXX``) decoded so that JSON-encoded copies of an item tokenise like the
item. Model weights and other binaries are ``binary``; zip/tar are ``archive`` (not inspected).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .tokens import decode_escapes

_CHUNK = 1 << 20

TEXT_SUFFIXES = {
    ".jsonl",
    ".json",
    ".csv",
    ".tsv",
    ".txt",
    ".py",
    ".md",
    ".yaml",
    ".yml",
    ".html",
    ".htm",
    ".xml",
    ".ipynb",
    ".sh",
    ".tex",
    ".rst",
    ".jinja",
    ".j2",
    ".log",
    ".text",
    ".ndjson",
    ".toml",
    ".cfg",
    ".ini",
    ".js",
    ".ts",
    ".sql",
}
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
OPENERS: dict[str, Callable[..., io.BufferedIOBase]] = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".tgz", ".7z", ".rar", ".zst", ".eval"}
BINARY_SUFFIXES = {
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".onnx",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".so",
    ".pyc",
    ".pyo",
    ".o",
    ".a",
    ".dll",
    ".exe",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".pdf",
    ".mp4",
    ".wav",
    ".mp3",
    ".whl",
    ".msgpack",
    ".h5",
    ".db",
    ".sqlite",
    ".lock",
    ".model",
}
SKIP_DIRS = {".git", "__pycache__", ".hg", ".svn"}


class BudgetExceeded(Exception):
    pass


def strings_of(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings_of(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from strings_of(v)


def iter_text_chunks(fh: io.BufferedIOBase, budget: int) -> Iterator[str]:
    """Decoded text of a binary stream in ~1 MiB pieces cut at whitespace (constant memory)."""
    dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    total = 0
    while True:
        raw = fh.read(_CHUNK)
        if not raw:
            break
        total += len(raw)
        if total > budget:
            raise BudgetExceeded(f"decompressed size above the per-file budget ({budget} bytes)")
        text = tail + dec.decode(raw)
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        if cut < 0 and len(text) < 4 * _CHUNK:
            tail = text
            continue
        cut = len(text) if cut < 0 else cut + 1
        tail = text[cut:]
        yield decode_escapes(text[:cut])
    rest = tail + dec.decode(b"", final=True)
    if rest:
        yield decode_escapes(rest)


def iter_arrow_texts(path: Path, fmt: str) -> Iterator[str]:
    """Every string (nested ones included) of a parquet or Arrow IPC file, batch by batch."""
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=512):
            for row in batch.to_pylist():
                yield from strings_of(row)
        return
    with pa.OSFile(str(path), "rb") as src:
        try:
            reader = pa.ipc.open_stream(src)
            batches: Iterator = iter(reader)
        except pa.ArrowInvalid:
            src.seek(0)
            f = pa.ipc.open_file(src)
            batches = (f.get_batch(i) for i in range(f.num_record_batches))
        for batch in batches:
            for row in batch.to_pylist():
                yield from strings_of(row)


def sniff(path: Path) -> str:
    """Kind of an extension-less (or unknown-extension) file from its first 8 KiB."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return "binary"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "arrow"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04"):
        return "archive"
    if not head or b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError as exc:
        return "text" if exc.start >= len(head) - 3 else "binary"  # a char cut by the window


def classify(path: Path, name: str) -> str:
    """'text', 'gzip'/'bz2'/'xz' (compressed text), 'parquet', 'arrow', 'archive' or 'binary'.

    ``name`` decides (a symlink is classified by its own name); unknown extensions are sniffed.
    """
    lower = name.lower()
    suffix = os.path.splitext(lower)[1]
    if suffix in COMPRESSED:
        inner = os.path.splitext(lower[: -len(suffix)])[1]
        return COMPRESSED[suffix] if inner in TEXT_SUFFIXES or inner == "" else "archive"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".arrow":
        return "arrow"
    if suffix in ARCHIVE_SUFFIXES:
        return "archive"
    if suffix in BINARY_SUFFIXES:
        return "binary"
    return sniff(path)


def read_texts(path: Path, kind: str, budget: int) -> Iterator[str]:
    if kind in ("parquet", "arrow"):
        yield from iter_arrow_texts(path, kind)
        return
    opener = OPENERS.get(kind, open)
    with opener(path, "rb") as fh:
        yield from iter_text_chunks(fh, budget)


def texts_from_files(paths: Iterable[Path]) -> Iterator[str]:
    """Every string in the given data files (jsonl/json/csv/txt/parquet/arrow, possibly .gz),
    read the way ``scan`` reads them: a convenience for ``build_index(allowed_texts=...)``."""
    for p in paths:
        p = Path(p)
        kind = classify(p, p.name)
        if kind in ("archive", "binary"):
            raise ValueError(f"cannot read allowed data file {p} ({kind})")
        yield from read_texts(p, kind, 1 << 62)
