"""What a byte stream holds, decoded by content (never by name) into text for the scanner.

Every stream is sniffed from its first bytes and decoded recursively:

- compressed: gzip, bz2, xz/lzma, zstd;
- archives: zip (wheels, ``.npz``, ``.docx`` ... included), tar (any compression); each member
  is a stream of its own;
- arrays: NumPy ``.npy`` (strings as text; integer arrays, and float arrays holding only
  integers, as code points and as token ids), safetensors (header as text, integer tensors as
  token ids), Parquet and Arrow IPC via pyarrow (string columns row by row, integer columns
  and lists of integers as token ids);
- text encodings: UTF-16/UTF-32 (BOM, or the zero-byte pattern of ASCII text without one),
  re-encoded as UTF-8;
- everything else is read as text, whatever its name (so a "binary" name hides nothing): in a
  256 KiB block that is neither mostly printable ASCII (60%) nor valid UTF-8, i.e. binary data
  such as float weights, the printable stretches of 24 bytes or more, as ``strings`` reads
  them. In text, JSON string escapes are decoded, and runs are decoded again as streams of
  their own: base64 (standard and URL-safe), base32 and hex runs of 40 characters or more,
  and lists of 16 or more integers (token ids, decoded with the base model's tokenizer when
  the scan has one).

Limits (a zip bomb must not stop the scan, and must not pass it): nesting depth
``max_depth = 8``; decoded bytes per top-level file at most ``max(max_ratio * size,
min_budget)`` (ratio 1000, at least 1 GiB). What goes over a limit, an encrypted member, or an
archive format not read here (7z, rar) is recorded as *incomplete*: the gate is then
``not_run`` (never a pass) unless it fails anyway. A stream that ends in a decoding error is
kept as far as it decoded and recorded in ``decode_errors`` (not a reason to refuse the run:
a truncated download is common and the prefix was scanned).

Files are read sparse-aware: holes (``SEEK_HOLE``/``SEEK_DATA``) are skipped, never read as
data, so a 1 TB sparse file with a few bytes of data costs those bytes.
"""

from __future__ import annotations

import bz2
import codecs
import functools
import io
import json
import lzma
import os
import re
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from . import transforms

BLOCK = 1 << 18  # 256 KiB: the scanner's arrays stay in cache
_HEAD = 1 << 12
_MAX_LINE = 1 << 24  # a text block is cut at whitespace; a line longer than this is cut anyway
_SPOOL_MEMORY = 64 << 20


@dataclass(frozen=True)
class Limits:
    """Bomb limits of one top-level file."""

    max_depth: int = 8
    max_ratio: int = 1000
    min_budget: int = 1 << 30


class Readable(Protocol):
    """What the decoders read from: ``read(n)``."""

    def read(self, n: int = -1, /) -> bytes: ...


class Sink(Protocol):
    """Where decoded content goes: text bytes (UTF-8) and integer arrays (token ids)."""

    def text(self, data: bytes) -> None: ...

    def ids(self, ids: np.ndarray) -> None: ...


class OverLimit(Exception):
    """The decoded bytes of one top-level file exceed its budget."""


@dataclass
class DecodeReport:
    """What decoding one top-level file met (for the evidence)."""

    layers: Counter = field(default_factory=Counter)
    incomplete: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    decoded_bytes: int = 0


class _Counted(io.RawIOBase):
    """A readable that counts what it yields against the budget of the top-level file."""

    def __init__(self, inner: Readable, dec: Decoder):
        self.inner, self.dec = inner, dec

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.dec.charge(n)
        return n


class _Replay(io.RawIOBase):
    """A stream whose first bytes (already read to sniff it) are given back first."""

    def __init__(self, head: bytes, rest: Readable):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(b))
        b[: len(data)] = data
        return len(data)


class SparseFile(io.RawIOBase):
    """A file's data extents, holes skipped (``SEEK_DATA``/``SEEK_HOLE``): what a sparse file
    really holds, without reading its zeros."""

    def __init__(self, fd: int, size: int):
        self.fd, self.size, self.pos = fd, size, 0
        self.hole = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.pos >= self.hole:
            try:
                self.pos = os.lseek(self.fd, self.pos, os.SEEK_DATA)
                self.hole = os.lseek(self.fd, self.pos, os.SEEK_HOLE)
            except OSError:  # ENXIO: no data after pos
                return 0
        n = min(len(b), self.hole - self.pos)
        data = os.pread(self.fd, n, self.pos)
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)


def open_sparse_aware(path: str) -> tuple[IO[bytes], bool]:
    """(a readable of the file's data, whether it has holes). The caller closes it."""
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller
    st = os.fstat(fh.fileno())
    if st.st_blocks * 512 < st.st_size and hasattr(os, "SEEK_DATA"):
        return io.BufferedReader(_Owning(SparseFile(fh.fileno(), st.st_size), fh), BLOCK), True
    return fh, False


class _Owning(io.RawIOBase):
    """A raw stream that closes the file it reads when closed."""

    def __init__(self, inner: io.RawIOBase, owner: IO[bytes]):
        self.inner, self.owner = inner, owner

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self.inner.readinto(b) or 0

    def close(self) -> None:
        self.owner.close()
        super().close()


# --------------------------------------------------------------------------- runs inside text

_INT_CHARS = np.zeros(256, dtype=bool)
for _c in b"0123456789, \t\r\n-":
    _INT_CHARS[_c] = True
_INT_RUN = re.compile(rb"\d+(?:\s*,\s*\d+){15,}")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_B32 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")
_MIN_RUN = 40
_TEXT_RATIO = 0.6  # a block with fewer printable ASCII bytes is binary
_MIN_STRING = 24  # printable bytes in a row that are read as text inside binary


def runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """(start, end) of every run of True of at least ``min_len`` in ``mask``."""
    n = len(mask)
    if n < min_len or n == 0:
        return []
    m8 = mask.view(np.int8)
    d = np.empty(n + 1, dtype=np.int8)  # where the mask changes (np.diff with prepend/append, without its copies)
    d[0], d[n] = m8[0], m8[n - 1]
    np.not_equal(m8[1:], m8[:-1], out=d[1:n].view(np.bool_))
    edge = np.flatnonzero(d)
    starts, ends = edge[0::2], edge[1::2]
    keep = ends - starts >= min_len
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


# a run of encoding characters (a base64, base32 or hex line): on the short stretches the
# spaceless prefilter leaves, a regex costs less than numpy's fixed cost per call
_ENCODING_RUN = re.compile(rb"[A-Za-z0-9+/=_\-]{16,}")


def _merged_runs(data: bytes) -> list[tuple[int, int]]:
    """Runs of encoding characters of 40 or more, lines of one encoded block (runs separated by
    a single line break, as base64 tools wrap them) merged into one."""
    out: list[tuple[int, int]] = []
    for m in _ENCODING_RUN.finditer(data):
        s, e = m.span()
        if out and data[out[-1][1] : s] in (b"\n", b"\r\n"):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return [(s, e) for s, e in out if e - s >= _MIN_RUN]


def decode_run(run: bytes, kind: str | None = None) -> tuple[str, bytes] | None:
    """(encoding, decoded bytes) of a hex, base32 or base64 run (``kind``: that one); None if it
    is none of them."""
    chars = set(run)
    try:
        if kind == "hex" or (kind is None and chars <= _HEX and len(run) % 2 == 0):
            return "hex", bytes.fromhex(run.decode())
        if kind == "base32" or (kind is None and chars <= _B32 and len(run.rstrip(b"=")) * 5 // 8 > 0):
            body = run.rstrip(b"=")
            return "base32", _b32(body)
        body = run.rstrip(b"=")
        alt = b"-_" if (ord("-") in chars or ord("_") in chars) else b"+/"
        import base64

        pad = b"=" * (-len(body) % 4)
        if len(body) % 4 == 1:
            body = body[:-1]
            pad = b""
        return "base64", base64.b64decode(body + pad, altchars=alt)
    except (ValueError, UnicodeDecodeError):
        return None


def _b32(body: bytes) -> bytes:
    import base64

    cut = len(body) - len(body) % 8
    return base64.b32decode(body[:cut]) if cut else b""


# a literal head lets the regex engine jump between backslashes (a leading group makes it 40x slower)
_U_ESCAPES = re.compile(rb"\\u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})*")


def _utf16_run(run: bytes) -> bytes:
    """A run of ``\\uXXXX`` escapes as UTF-8."""
    units = run.split(b"\\u")[1:]
    raw = b"".join(int(u, 16).to_bytes(2, "little") for u in units)
    return raw.decode("utf-16-le", "replace").encode("utf-8")


# memoised for short runs (text repeats the same few escapes, and decoding one costs
# microseconds of Python); long runs are not kept (the cache's memory stays bounded)
_utf16_short = functools.lru_cache(maxsize=1 << 14)(_utf16_run)


def _utf16_units(m: re.Match[bytes]) -> bytes:
    run = m[0]
    return _utf16_short(run) if len(run) <= 48 else _utf16_run(run)


def unescape_json(data: bytes) -> bytes:
    """``\\uXXXX`` escapes decoded (surrogate pairs included: a run of escapes is decoded
    together); the other escapes (``\\n``, ``\\"`` ...) need no decoding: the tokeniser reads a
    backslash, and the letter of ``\\n``, as separators."""
    if b"\\u" not in data:
        return data
    return _U_ESCAPES.sub(_utf16_units, data)


# --------------------------------------------------------------------------- the decoder


class Decoder:
    """Decodes one top-level stream into a sink, recursively, within :class:`Limits`."""

    def __init__(
        self,
        sink: Sink,
        size: int,
        limits: Limits = Limits(),
        decode_ids: Callable[[np.ndarray], str] | None = None,
        vocab_size: int | None = None,
    ):
        self.sink, self.limits = sink, limits
        self.budget = max(limits.max_ratio * max(size, 1), limits.min_budget)
        self.report = DecodeReport()
        self.decode_ids = decode_ids
        self.vocab = vocab_size
        self._ids_too = False

    def charge(self, n: int) -> None:
        self.report.decoded_bytes += n
        if self.report.decoded_bytes > self.budget:
            raise OverLimit(f"decoded more than {self.budget} bytes (limits: ratio {self.limits.max_ratio}, depth)")

    def run(self, fh: Readable, name: str, seekable_path: str | None = None) -> DecodeReport:
        """Decode ``fh`` (``seekable_path``: the file it reads, for zip/parquet)."""
        try:
            self.stream(fh, 0, name, seekable_path)
        except OverLimit as exc:
            self.report.incomplete.append(f"{name}: {exc}")
        return self.report

    def stream(self, fh: Readable, depth: int, name: str, path: str | None = None) -> None:
        head = _read_full(fh, _HEAD)
        kind = sniff(head)
        self._ids_too = False
        if self.vocab is not None and kind in ("text", "utf32le"):
            ids_kind = _id_array(head, self.vocab)
            if kind == "text" and ids_kind:
                kind = ids_kind
            self._ids_too = kind == "utf32le" and ids_kind == "ids32"  # small ids read as both
        if kind == "text" and len(head) >= 64 and _binary(head):
            kind = transforms.raw_compressed(head) or kind  # a headerless deflate/LZMA stream
        if kind != "text":
            self.report.layers[kind] += 1
        if depth >= self.limits.max_depth and kind not in ("text", "utf16", "utf32"):
            self.report.incomplete.append(f"{name}: nesting deeper than {self.limits.max_depth} ({kind})")
            return
        body = _Replay(head, fh)
        try:
            handler = getattr(self, "_" + kind)
            handler(io.BufferedReader(body, BLOCK), depth, name, path)
        except OverLimit:
            raise
        except Exception as exc:  # noqa: BLE001 - what decoded so far was scanned; the rest is recorded
            self.report.errors.append(f"{name}: {kind}: {type(exc).__name__}: {exc}"[:300])

    # -- containers
    def _compressed(self, opener: Callable[[Any], Any], fh: Readable, depth: int, name: str) -> None:
        inner = opener(fh)
        self.stream(io.BufferedReader(_Counted(inner, self), BLOCK), depth + 1, name)

    def _gzip(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._inflate(lambda: zlib.decompressobj(31), fh, depth, name + "|gz", b"\x1f\x8b")

    def _bz2(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._inflate(bz2.BZ2Decompressor, fh, depth, name + "|bz2", b"BZh")

    def _xz(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._inflate(lzma.LZMADecompressor, fh, depth, name + "|xz", b"\xfd7zXZ")

    def _zstd(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        import zstandard

        self._compressed(
            lambda f: zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True), fh, depth, name + "|zst"
        )

    def _zlib(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._inflate(zlib.decompressobj, fh, depth, name + "|zlib")

    def _deflate(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._inflate(lambda: zlib.decompressobj(-15), fh, depth, name + "|deflate")

    def _lzmaraw0(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        f = transforms.LZMA_RAW[0]
        self._inflate(lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=f), fh, depth, name + "|lzma-raw")

    def _lzmaraw1(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        f = transforms.LZMA_RAW[1]
        self._inflate(lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=f), fh, depth, name + "|lzma-raw")

    def _inflate(
        self, make: Callable[[], Any], fh: Readable, depth: int, name: str, magic: bytes | None = None
    ) -> None:
        """A compressed stream decompressed incrementally up to its own end (what decoded before
        an error is kept). Members that follow with the same ``magic`` are read on (concatenated
        gzip/bz2/xz files); any other bytes after the end are a stream of their own (text
        appended to a gzip file is scanned, not dropped as trailing garbage)."""
        limit = 1 << 22

        class _D(io.RawIOBase):
            def __init__(self) -> None:
                self.d, self.buf, self.pending = make(), b"", b""
                self.tail: bytes | None = None

            def readable(self) -> bool:
                return True

            def readinto(self, b: Any) -> int:
                while not self.buf and self.tail is None:
                    if self.d.eof:
                        rest = self.d.unused_data + self.pending + (b"" if self.pending else fh.read(BLOCK))
                        self.pending = b""
                        if magic is not None and rest.startswith(magic):
                            self.d, self.pending = make(), rest
                            continue
                        self.tail = rest
                        break
                    raw = self.pending or fh.read(BLOCK)
                    self.pending = b""
                    if not raw:
                        self.tail = b""
                        break
                    self.buf = (
                        self.d.decompress(raw, limit) if hasattr(self.d, "unconsumed_tail") else self.d.decompress(raw)
                    )
                    self.pending = getattr(self.d, "unconsumed_tail", b"")
                n = min(len(b), len(self.buf))
                b[:n], self.buf = self.buf[:n], self.buf[n:]
                return n

        dec = _D()
        self.stream(io.BufferedReader(_Counted(dec, self), BLOCK), depth + 1, name)
        if dec.tail is not None and depth + 1 < self.limits.max_depth:
            tail = _Replay(dec.tail, fh)
            head = _read_full(tail, 1)
            if head:
                self.report.layers["after-end"] += 1
                self.stream(_Replay(head, tail), depth + 1, name + "|after-end")

    def _variants(self, found: list[tuple[str, bytes]], depth: int, name: str) -> None:
        """Blocks recovered from a transform (:mod:`.transforms`), each scanned as a stream."""
        for kind, out in found:
            self.report.layers[kind] += 1
            self.charge(len(out))
            self.stream(io.BytesIO(out), depth + 1, f"{name}|{kind}")

    def _binary_block(self, data: bytes, arr: np.ndarray, depth: int, name: str) -> None:
        """A binary block: compressed streams embedded at an offset (a pickled or ``torch.save``d
        blob; decoded to the end of the block), a byte substitution, floats holding character codes."""
        self._embedded(data, depth, name)
        self._variants(transforms.binary_variants(data, arr), depth, name)

    def _embedded(self, data: bytes, depth: int, name: str) -> None:
        """Compressed streams that start inside the block, each decoded up to its own end (what
        follows it, e.g. the rest of a pickle, is no error)."""
        for off, kind in transforms.embedded_offsets(data):
            self.report.layers["embedded"] += 1
            before = len(self.report.errors)
            try:
                self._inflate(_EMBEDDED_DECOMPRESSORS[kind], io.BytesIO(data[off:]), depth, f"{name}@{off}|{kind}")
            except OverLimit:
                raise
            except Exception:  # noqa: BLE001 - refused at its first bytes: a magic number by chance, not a stream
                pass
            del self.report.errors[before:]  # a magic number by chance in random bytes is no error

    def _seekable(self, fh: Readable, path: str | None) -> tuple[IO[bytes], bool]:
        """A seekable copy of the stream (the file itself when there is one)."""
        if path is not None:
            return open(path, "rb"), True
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115 - closed by the caller
        shutil.copyfileobj(fh, spool, BLOCK)
        spool.seek(0)
        return spool, True

    def _zip(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        src, _ = self._seekable(fh, path)
        with src, zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                member = f"{name}!{info.filename}"
                if info.flag_bits & 0x1:
                    self.report.incomplete.append(f"{member}: encrypted zip member")
                    continue
                try:
                    with zf.open(info) as m:
                        self.stream(io.BufferedReader(_Counted(m, self), BLOCK), depth + 1, member)
                except OverLimit:
                    raise
                except (NotImplementedError, RuntimeError, zipfile.BadZipFile) as exc:
                    self.report.incomplete.append(f"{member}: {exc}")

    def _tar(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        with tarfile.open(fileobj=fh, mode="r|") as tf:  # type: ignore[call-overload]  # any readable will do in stream mode
            for member in tf:
                if not member.isfile():
                    continue
                f = tf.extractfile(member)
                if f is not None:
                    self.stream(io.BufferedReader(_Counted(f, self), BLOCK), depth + 1, f"{name}!{member.name}")

    def _encoded(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        """A stream that is one encoded block (base64/hex/base32 lines), of any size: decoded
        as a stream (its text is scanned too, in case it is not one)."""
        dec = self

        class _Dec(io.RawIOBase):
            def __init__(self) -> None:
                self.rest, self.buf, self.kind = b"", b"", ""

            def readable(self) -> bool:
                return True

            def readinto(self, b: Any) -> int:
                while not self.buf:
                    raw = fh.read(BLOCK)
                    if not raw:
                        if not self.rest:
                            return 0
                        got = decode_run(self.rest, self.kind or None)
                        self.rest, self.buf = b"", got[1] if got else b""
                        if not self.buf:
                            return 0
                        break
                    dec.sink.text(raw)
                    if depth + 1 < dec.limits.max_depth:  # not base64 after all: quoted-printable, say
                        dec._variants(transforms.text_variants(raw, np.frombuffer(raw, np.uint8)), depth, name)
                    body = self.rest + raw.replace(b"\r", b"").replace(b"\n", b"")
                    cut = len(body) - len(body) % 8
                    self.rest = body[cut:]
                    got = decode_run(body[:cut], self.kind or None) if cut else None
                    if got is not None:
                        self.kind = got[0]
                    self.buf = got[1] if got else b""
                n = min(len(b), len(self.buf))
                b[:n], self.buf = self.buf[:n], self.buf[n:]
                return n

        self.stream(io.BufferedReader(_Counted(_Dec(), self), BLOCK), depth + 1, name + "|decoded")

    def _unsupported(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self.report.incomplete.append(f"{name}: archive format not read by the scan (7z/rar)")
        self._text(fh, depth, name, path)

    # -- arrays
    def _npy(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        shape, _fortran, dtype = fmt.read_array_header_1_0(fh) if version == (1, 0) else fmt.read_array_header_2_0(fh)
        self.sink.text(f"{dtype} {shape}".encode())
        self._array_bytes(fh, dtype, depth, name)

    def _array_bytes(self, fh: Readable, dtype: np.dtype, depth: int, name: str) -> None:
        """The raw data of an array of ``dtype``: strings as text, numbers as numbers."""
        if dtype.hasobject or dtype.kind == "V":
            self._text(fh, depth, name, None)  # pickled objects: their strings are in the bytes
            return
        item = dtype.itemsize
        if item == 0:
            return
        step = max(item, BLOCK // item * item)
        rest = b""
        while True:
            raw = fh.read(step)
            if not raw:
                break
            raw = rest + raw
            cut = len(raw) - len(raw) % item
            rest = raw[cut:]
            arr = np.frombuffer(raw[:cut], dtype=dtype)
            if dtype.kind == "U":
                enc = "utf-32-be" if dtype.byteorder == ">" else "utf-32-le"
                self.sink.text(raw[:cut].decode(enc, "replace").replace("\x00", " ").encode())
            elif dtype.kind == "S":
                self.sink.text(raw[:cut].replace(b"\x00", b" "))
            else:
                self.numbers(arr)

    def numbers(self, arr: np.ndarray) -> None:
        """A numeric array: if it holds only non-negative integers, as code points (text hidden
        as character codes) and as token ids."""
        if arr.size == 0:
            return
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
                codes = transforms.float_codes(arr.ravel())  # codes scaled (code / 255, ...)
                if codes is not None:
                    self.report.layers["float-codes"] += 1
                    self.sink.text(transforms.codes_text(codes))
                return
        elif arr.dtype.kind not in "iub":
            return
        a = arr.astype(np.int64, copy=False).ravel()
        lo, hi = int(a.min()), int(a.max())
        if lo < 0:
            return
        if hi < 0x110000 and hi >= 32:
            cp = a[(a < 0xD800) | (a > 0xDFFF)].astype(np.uint32)
            self.sink.text(cp.astype("<u4").tobytes().decode("utf-32-le", "replace").encode())
        if self.vocab is not None and hi < self.vocab and len(np.unique(a[:4096])) > 2:
            self.sink.ids(a)

    def _ids64(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._array_bytes(fh, np.dtype("<i8"), depth, name)

    def _ids32(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._array_bytes(fh, np.dtype("<i4"), depth, name)

    def _safetensors(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        (n,) = struct.unpack("<Q", _read_full(fh, 8))
        header = _read_full(fh, n)
        self.sink.text(header)
        meta = json.loads(header)
        dtypes = {"I8": "<i1", "U8": "<u1", "I16": "<i2", "U16": "<u2", "I32": "<i4", "U32": "<u4", "I64": "<i8"}
        tensors = sorted(
            (v["data_offsets"][0], v["data_offsets"][1], v["dtype"])
            for k, v in meta.items()
            if k != "__metadata__" and isinstance(v, dict)
        )
        pos = 0
        for start, end, dt in tensors:
            if start > pos:
                _skip(fh, start - pos)
            if dt in dtypes:
                self._array_bytes(_Limited(fh, end - start), np.dtype(dtypes[dt]), depth, name)
            else:  # float weights: read as text too (a tensor can be any bytes an agent wrote)
                self._text(_Limited(fh, end - start), depth, name, None)
            pos = end

    def _parquet(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        import pyarrow.parquet as pq

        src, _ = self._seekable(fh, path)
        with src:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=4096):
                self._batch(batch, depth)

    def _arrow(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        import pyarrow as pa

        src, _ = self._seekable(fh, path)
        with src:
            try:
                batches: Iterator = iter(pa.ipc.open_stream(src))
            except pa.ArrowInvalid:
                src.seek(0)
                f = pa.ipc.open_file(src)
                batches = (f.get_batch(i) for i in range(f.num_record_batches))
            for batch in batches:
                self._batch(batch, depth)

    def _batch(self, batch: Any, depth: int) -> None:
        """One record batch: top-level string columns row by row (a row's question and answer
        stay together), nested strings leaf by leaf, integer leaves as numbers."""
        import pyarrow as pa
        import pyarrow.compute as pc

        flat: list[Any] = []
        nested: list[Any] = []
        for col in batch.columns:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                flat.append(pc.fill_null(col, ""))
            else:
                nested.append(col)
        if flat:  # each row's strings joined, each row ending with a line break; read from its buffer
            joined = pc.binary_join_element_wise(*flat, pa.scalar(""), "\n").cast(pa.large_string())
            offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[
                joined.offset : joined.offset + len(joined) + 1
            ]
            data = joined.buffers()[2]
            if data is not None and len(offsets) > 1:
                self.sink.text(data.to_pybytes()[int(offsets[0]) : int(offsets[-1])])
        for col in nested:
            for leaf in _leaves(col):
                if pa.types.is_string(leaf.type) or pa.types.is_large_string(leaf.type):
                    self.sink.text("\n".join(s for s in leaf.to_pylist() if s).encode("utf-8", "surrogatepass"))
                elif pa.types.is_binary(leaf.type) or pa.types.is_large_binary(leaf.type):
                    for v in leaf.to_pylist():
                        if v:
                            self.stream(io.BytesIO(v), depth + 1, "arrow-binary")
                elif pa.types.is_integer(leaf.type) or pa.types.is_floating(leaf.type):
                    self.numbers(leaf.to_numpy(zero_copy_only=False))

    # -- text
    def _utf16(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-16")

    def _utf16le(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-16-le")

    def _utf16be(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-16-be")

    def _utf32(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-32")

    def _utf32le(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-32-le", ids=self._ids_too)

    def _utf32be(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._recode(fh, depth, name, "utf-32-be")

    def _recode(self, fh: Readable, depth: int, name: str, encoding: str, ids: bool = False) -> None:
        dec = codecs.getincrementaldecoder(encoding)(errors="replace")

        def blocks() -> Iterator[bytes]:
            while raw := fh.read(BLOCK):
                if ids and len(raw) % 4 == 0:
                    self.numbers(np.frombuffer(raw, dtype="<i4"))
                yield dec.decode(raw).encode("utf-8", "surrogatepass")
            yield dec.decode(b"", final=True).encode("utf-8", "surrogatepass")

        self._text_blocks(blocks(), depth, name)

    def _text(self, fh: Readable, depth: int, name: str, path: str | None) -> None:
        self._text_blocks(iter(lambda: fh.read(BLOCK), b""), depth, name)

    def _text_blocks(self, blocks: Iterator[bytes], depth: int, name: str) -> None:
        """Text in blocks cut at whitespace (a token, or a base64 run, is never cut unless its
        line is longer than 16 MiB)."""
        pending: list[bytes] = []  # a line without whitespace so far (joined once, not per block)
        size = 0
        for raw in blocks:
            cut = max(raw.rfind(b" "), raw.rfind(b"\n"))
            if cut < 0 and size + len(raw) < _MAX_LINE:
                pending.append(raw)
                size += len(raw)
                continue
            data = b"".join([*pending, raw]) if pending else raw
            if cut < 0:
                cut = len(data) - len(data) % 8
            else:
                cut += size + 1
            pending = [data[cut:]] if cut < len(data) else []
            size = len(data) - cut
            self._text_block(data[:cut], depth, name)
        if pending:
            self._text_block(b"".join(pending), depth, name)

    def _text_block(self, data: bytes, depth: int, name: str) -> None:
        arr = np.frombuffer(data, dtype=np.uint8)
        # valid UTF-8 is text whatever it holds: checked first (a few GB/s; random bytes fail at
        # once), so text costs no printable mask
        if len(arr) >= 4096 and not _utf8(data):
            printable = (arr - np.uint8(32)) < np.uint8(95)
            printable |= (arr - np.uint8(9)) < np.uint8(5)
            if np.count_nonzero(printable) < _TEXT_RATIO * len(arr):
                # binary (weights, random bytes): only its printable stretches are text, as `strings` reads them
                if depth + 1 < self.limits.max_depth:
                    self._binary_block(data, arr, depth, name)
                if not _may_hold_run(printable):
                    return
                for s, e in runs(printable, _MIN_STRING):
                    self._text_block(data[s:e], depth, name)
                return
        data = unescape_json(data)
        self.sink.text(data)
        if depth + 1 >= self.limits.max_depth or len(data) < _MIN_RUN:
            return
        arr = np.frombuffer(data, dtype=np.uint8)
        self._variants(transforms.text_variants(data, arr), depth, name)
        if len(arr) < 4096:  # a small binary block is read as text: what it embeds is not
            self._embedded(data, depth, name)
        for rs, re_ in _spaceless(arr, _MIN_RUN):  # cheap prefilter: only long stretches without spaces
            sub = data[rs:re_]
            covered = 0
            for s, e in _merged_runs(sub):
                run = sub[s:e].replace(b"\r", b"").replace(b"\n", b"")
                got = decode_run(run)
                if got is not None and got[1]:
                    covered += e - s
                    self.report.layers[got[0]] += 1
                    self.charge(len(got[1]))
                    self.stream(io.BytesIO(got[1]), depth + 1, f"{name}|{got[0]}@{rs + s}")
            if covered < len(sub) // 2:  # not base64/hex: escapes or base85 (an item escaped in prose)
                self._variants(transforms.stretch_variants(sub), depth, f"{name}@{rs}")
        if self.vocab is not None:
            commas = np.flatnonzero(arr == np.uint8(44))
            if len(commas) < 16 or not np.any(commas[15:] - commas[:-15] <= 15 * 12):
                return  # no 16 numbers close together
            for s, e in runs(_INT_CHARS[arr], 48):
                for m in _INT_RUN.finditer(data, s, e):
                    ids = np.array([int(x) for x in m.group(0).split(b",")], dtype=np.int64)
                    if int(ids.max()) < self.vocab:
                        self.report.layers["token-id list"] += 1
                        self.sink.ids(ids)


_ALL_SET = np.uint64(0x0101010101010101)


def _zstd_obj() -> Any:
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


_EMBEDDED_DECOMPRESSORS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: zlib.decompressobj(31),
    "xz": lzma.LZMADecompressor,
    "zstd": _zstd_obj,
    "bz2": bz2.BZ2Decompressor,
}


def _binary(head: bytes) -> bool:
    """Whether a stream's head is binary (under 60% printable ASCII)."""
    arr = np.frombuffer(head, dtype=np.uint8)
    printable = np.count_nonzero((arr - np.uint8(32)) < np.uint8(95)) + np.count_nonzero(
        (arr - np.uint8(9)) < np.uint8(5)
    )
    return bool(printable < _TEXT_RATIO * len(arr))


def _may_hold_run(mask: np.ndarray) -> bool:
    """False only if ``mask`` has no run of ``_MIN_STRING`` (24) True: such a run covers two
    adjacent 8-aligned words entirely (its first aligned word starts within 7 bytes of it), so
    without two such words in a row there is none. One pass over the words instead of every
    edge of the mask (random bytes have an edge every few bytes)."""
    n8 = len(mask) - len(mask) % 8
    full = mask[:n8].view(np.uint64) == _ALL_SET
    return bool(np.any(full[1:] & full[:-1]))


def _utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (text in a non-Latin script); random bytes fail at once."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _spaceless(arr: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Stretches of at least ``min_len`` bytes without whitespace or control bytes; stretches
    separated by one line break (wrapped base64) merged.

    Found from the 8-byte words: a stretch of ``min_len`` bytes covers ``(min_len - 14) / 8``
    (rounded up) aligned words entirely, so the stretches are the runs of that many whole words,
    each extended by at most 7 bytes on either side (text has few: one pass over the words,
    instead of a list of every space)."""
    n = len(arr)
    need = (min_len - 14 + 7) // 8
    if n < min_len:
        return []
    solid = arr > np.uint8(32)
    if need < 1:
        return _spaceless_bytes(solid, min_len)
    n8 = n - n % 8
    full = solid[:n8].view(np.uint64) == _ALL_SET
    out: list[tuple[int, int]] = []
    for ws, we in runs(full, need):
        s, e = 8 * ws, 8 * we
        while s > 0 and solid[s - 1]:
            s -= 1
        while e < n and solid[e]:
            e += 1
        if e - s < min_len:
            continue
        if out and s - out[-1][1] <= 2:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _spaceless_bytes(solid: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """:func:`_spaceless` byte by byte (the rule, for short ``min_len``)."""
    out: list[tuple[int, int]] = []
    for s, e in runs(solid, min_len):
        if out and s - out[-1][1] <= 2:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


class _Limited(io.RawIOBase):
    def __init__(self, inner: Readable, n: int):
        self.inner, self.left = inner, n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.inner.read(min(len(b), self.left))
        self.left -= len(data)
        b[: len(data)] = data
        return len(data)


def _leaves(arr: Any) -> Iterator[Any]:
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        for chunk in arr.chunks:
            yield from _leaves(chunk)
        return
    t = arr.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _leaves(arr.field(i))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _leaves(arr.flatten())
    elif pa.types.is_dictionary(t):
        yield from _leaves(arr.dictionary_decode())
    else:
        yield arr


def _read_full(fh: Readable, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = fh.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _skip(fh: Readable, n: int) -> None:
    while n > 0:
        chunk = fh.read(min(n, BLOCK))
        if not chunk:
            return
        n -= len(chunk)


def sniff(head: bytes) -> str:
    """The kind of a stream from its first bytes (a name of a ``Decoder._<kind>`` handler)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bz2"
    if head.startswith((b"\xfd7zXZ\x00", b"]\x00\x00")):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")):
        return "unsupported"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "arrow"
    if len(head) >= 10 and head[8:10] in (b'{"', b"{ ") and struct.unpack("<Q", head[:8])[0] < 1 << 28:
        return "safetensors"
    if head[:2] in (b"\x78\x9c", b"\x78\xda", b"\x78\x01") and _zlib_ok(head):
        return "zlib"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf16"
    kind = _zero_pattern(head)
    if kind == "text" and len(head) >= _MIN_RUN and _ENCODED_HEAD.fullmatch(head) and b"\n" not in head[:_MIN_RUN]:
        return "encoded"
    return kind


_ENCODED_HEAD = re.compile(rb"[A-Za-z0-9+/=_\-]{40,}(?:\r?\n[A-Za-z0-9+/=_\-]*)*\r?\n?")


def _id_array(head: bytes, vocab: int) -> str | None:
    """'ids64'/'ids32' when the head reads as little-endian integers all below the vocabulary
    size and not all alike (a raw token-id array, e.g. a ``train.bin`` of int32 ids)."""
    for kind, dt in (("ids64", "<i8"), ("ids32", "<i4")):
        size = np.dtype(dt).itemsize
        n = len(head) - len(head) % size
        if n < 16 * size:
            continue
        a = np.frombuffer(head[:n], dtype=dt)
        if int(a.min()) >= 0 and int(a.max()) < vocab and len(np.unique(a)) > 4:
            return kind
    return None


def _zlib_ok(head: bytes) -> bool:
    try:
        zlib.decompressobj().decompress(head)
        return True
    except zlib.error:
        return False


def _zero_pattern(head: bytes) -> str:
    """UTF-16/32 without a BOM: ASCII text has zero bytes at fixed positions modulo 2 or 4."""
    n = len(head) - len(head) % 4
    if n < 16:
        return "text"
    a = np.frombuffer(head[:n], dtype=np.uint8).reshape(-1, 4) == 0
    z = a.mean(axis=0)
    if z[1] > 0.9 and z[2] > 0.9 and z[3] > 0.9 and z[0] < 0.5:
        return "utf32le"
    if z[0] > 0.9 and z[1] > 0.9 and z[2] > 0.9 and z[3] < 0.5:
        return "utf32be"
    if z[1] > 0.8 and z[3] > 0.8 and z[0] < 0.3 and z[2] < 0.3:
        return "utf16le"
    if z[0] > 0.8 and z[2] > 0.8 and z[1] < 0.3 and z[3] < 0.3:
        return "utf16be"
    return "text"
