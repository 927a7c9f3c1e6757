"""A strict reader and a canonical writer for the safetensors format, and the weights digest.

The submitted model is hostile, so its safetensors files are parsed here, by one strict
reader, instead of trusting whichever library reads them later. A file is refused unless

- the 8-byte little-endian header length is sane (at most :data:`MAX_HEADER_BYTES`) and the
  header is one UTF-8 JSON object without duplicate keys (JSON parsers disagree on duplicates);
- every entry is ``{"dtype", "shape", "data_offsets"}`` and nothing else, with a known dtype,
  non-negative integer dimensions and ``end - begin == prod(shape) * itemsize``;
- the data regions tile the data section exactly: sorted, contiguous from 0, no gap, no
  overlap (two names aliasing the same bytes) and nothing after the last tensor.

:func:`write_canonical` writes tensors (in sorted name order) into fresh files with a
normalised header, copying the bytes in bounded chunks, and computes :func:`weights_digest`
on the way. The digest identifies *the tensors*, not the files: sha256 over, for each tensor in
name order, ``name NUL dtype NUL shape NUL u64le(nbytes) bytes``. The evaluator computes the
same digest over the state dict it has loaded (see :mod:`.loaded_check`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: The largest header accepted (the reference implementation's own limit is 100 MB).
MAX_HEADER_BYTES = 100_000_000
#: Bytes per element of every safetensors dtype.
ITEMSIZE: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
#: The dtypes a submitted model's weights may have: plain floating point, nothing quantised.
WEIGHT_DTYPES: frozenset[str] = frozenset({"F32", "F16", "BF16"})
_CHUNK = 8 << 20


class SafetensorsError(ValueError):
    """A safetensors file that the strict reader refuses; the message says why."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a parsed file: where its bytes are (absolute offsets in ``path``)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    start: int
    stop: int

    @property
    def nbytes(self) -> int:
        return self.stop - self.start


def no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json.loads`` hook: refuse an object with a key twice (parsers disagree on which wins)."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise SafetensorsError(f"duplicate key {key!r} in the header")
        out[key] = value
    return out


def read_header(path: Path) -> list[TensorEntry]:
    """Parse and validate the header of ``path``; the tensors in file order (see module doc)."""
    path = Path(path)
    size = path.stat().st_size
    name = path.name
    if size < 8:
        raise SafetensorsError(f"{name}: {size} bytes, too short for a safetensors file")
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError(
                f"{name}: safetensors header does not parse (header length {n} is not plausible for a {size}-byte file)"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except SafetensorsError as exc:
        raise SafetensorsError(f"{name}: {exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError(f"{name}: safetensors header does not parse (not UTF-8 JSON: {exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise SafetensorsError(f"{name}: __metadata__ must map strings to strings")
    data_start, data_len = 8 + n, size - 8 - n
    entries: list[TensorEntry] = []
    for key, info in header.items():
        if not key or len(key) > 1024 or any(ord(c) < 32 or ord(c) == 127 for c in key):
            raise SafetensorsError(f"{name}: tensor name {key[:80]!r} is empty, too long or has control characters")
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{name}: entry {key!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in ITEMSIZE:
            raise SafetensorsError(f"{name}: {key!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError(f"{name}: {key!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise SafetensorsError(f"{name}: {key!r} has invalid data_offsets {offsets!r}")
        expected = math.prod(shape) * ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != expected:
            raise SafetensorsError(
                f"{name}: {key!r} spans {offsets[1] - offsets[0]} bytes, its dtype and shape need {expected}"
            )
        entries.append(TensorEntry(key, dtype, tuple(shape), path, data_start + offsets[0], data_start + offsets[1]))
    declared = max((e.stop for e in entries), default=data_start)
    if declared > data_start + data_len:
        raise SafetensorsError(
            f"{name}: truncated: the header declares {declared - data_start} bytes of tensor data, the file holds "
            f"{data_len}"
        )
    pos = data_start
    for e in sorted(entries, key=lambda e: (e.start, e.stop)):
        if e.start != pos:
            what = "overlaps another tensor" if e.start < pos else f"leaves a gap of {e.start - pos} bytes"
            raise SafetensorsError(f"{name}: the data of {e.name!r} {what}")
        pos = e.stop
    if pos != data_start + data_len:
        raise SafetensorsError(f"{name}: {data_start + data_len - pos} bytes after the last tensor")
    return entries


def _digest_prefix(name: str, dtype: str, shape: Iterable[int], nbytes: int) -> bytes:
    head = f"{name}\0{dtype}\0{','.join(map(str, shape))}\0".encode()
    return head + struct.pack("<Q", nbytes)


class WeightsDigest:
    """Incremental :func:`weights_digest`: feed tensors in name order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._last: str | None = None

    def begin(self, name: str, dtype: str, shape: Iterable[int], nbytes: int) -> None:
        """Start a tensor (names must come in strictly increasing order)."""
        if self._last is not None and name <= self._last:
            raise ValueError(f"tensors must be digested in name order ({name!r} after {self._last!r})")
        self._last = name
        self._h.update(_digest_prefix(name, dtype, shape, nbytes))

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def iter_bytes(entry: TensorEntry, chunk: int = _CHUNK) -> Iterator[bytes]:
    """The raw bytes of one tensor, in chunks (bounded memory)."""
    with open(entry.path, "rb") as fh:
        fh.seek(entry.start)
        left = entry.nbytes
        while left:
            block = fh.read(min(chunk, left))
            if not block:
                raise SafetensorsError(f"{entry.path.name}: file ended inside {entry.name!r}")
            left -= len(block)
            yield block


def weights_digest(entries: Iterable[TensorEntry]) -> str:
    """The digest of tensors read from files (see the module docstring)."""
    d = WeightsDigest()
    for e in sorted(entries, key=lambda e: e.name):
        d.begin(e.name, e.dtype, e.shape, e.nbytes)
        for block in iter_bytes(e):
            d.update(block)
    return d.hexdigest()


def _header_bytes(entries: list[tuple[str, TensorEntry]]) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    pos = 0
    for name, e in entries:
        header[name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [pos, pos + e.nbytes]}
        pos += e.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned, as safetensors writes
    return struct.pack("<Q", len(raw)) + raw


def plan_shards(entries: list[tuple[str, TensorEntry]], max_shard_bytes: int) -> list[list[tuple[str, TensorEntry]]]:
    """Split (name, entry) pairs, already in name order, into consecutive shards."""
    shards: list[list[tuple[str, TensorEntry]]] = [[]]
    size = 0
    for pair in entries:
        if shards[-1] and size + pair[1].nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(pair)
        size += pair[1].nbytes
    return shards


def write_canonical(
    tensors: dict[str, TensorEntry], dest: Path, *, max_shard_bytes: int = 4 << 30
) -> tuple[list[str], str, dict[str, str]]:
    """Write ``tensors`` (canonical name -> source entry) as safetensors files in ``dest``.

    One ``model.safetensors`` when everything fits in ``max_shard_bytes``, else
    ``model-0000i-of-0000N.safetensors`` files plus ``model.safetensors.index.json``.
    Returns (file names written, weights digest, {file name: sha256}).
    """
    pairs = sorted(tensors.items())
    shards = plan_shards(pairs, max_shard_bytes)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    digest = WeightsDigest()
    hashes: dict[str, str] = {}
    weight_map: dict[str, str] = {}
    for fname, shard in zip(names, shards):
        fh_hash = hashlib.sha256()
        with open(dest / fname, "wb") as out:
            head = _header_bytes(shard)
            out.write(head)
            fh_hash.update(head)
            for name, e in shard:
                digest.begin(name, e.dtype, e.shape, e.nbytes)
                for block in iter_bytes(e):
                    out.write(block)
                    fh_hash.update(block)
                    digest.update(block)
                weight_map[name] = fname
            out.flush()
            os.fsync(out.fileno())
        hashes[fname] = fh_hash.hexdigest()
    if len(shards) > 1:
        total = sum(e.nbytes for _, e in pairs)
        index = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True)
        (dest / "model.safetensors.index.json").write_text(index + "\n", encoding="utf-8")
        hashes["model.safetensors.index.json"] = hashlib.sha256((index + "\n").encode()).hexdigest()
        names.append("model.safetensors.index.json")
    return names, digest.hexdigest(), hashes
