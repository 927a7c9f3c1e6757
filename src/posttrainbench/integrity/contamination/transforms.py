"""Reversible text transforms an agent can hide test items under, recovered by content.

The scan's exact channels read tokens; these are the transforms that keep every byte of an item
but change its tokens, so that a file the agent decodes in memory before training reads as
noise. Each recovery is triggered by a cheap *necessary* condition measured on the block (a
``bytes.count``, or a histogram of a sample), so ordinary text pays a few passes at memory speed
and only a block that shows the sign of a transform is decoded again. A recovered block is
scanned as a stream of its own (so it may itself be compressed, encoded, transformed again),
within the decoder's depth and byte budget.

Classes (each a family, not one instance):

- *text escapes*: URL percent-encoding (``+`` for spaces too), HTML/XML character references
  (``&#87;``, ``&#x57;``, named ones), C/Python byte escapes (``\\x57``, octal ``\\127``),
  quoted-printable (``=57``);
- *numbers as characters*: 16 or more integers close together (any separators: JSON or Python
  lists, ``chr(87)+chr(104)``, CSV) that are mostly printable code points; hex bytes with
  separators (``57 68``, ``xxd``/``hexdump -C`` dumps);
- *binary-to-text encodings* the base64/hex runs do not cover: ascii85/base85 (the ``<~ ~>``
  form too), uuencode, and base64 wrapped in lines shorter than the run finder's 40 bytes;
- *byte substitutions*: a Caesar shift of the letters (ROT13 and the 24 others), found by the
  letter histogram; a single-byte XOR key, found by the most common byte (a space in text);
  EBCDIC; text reversed byte by byte;
- *interleaving and look-alikes*: one separator between every character (``W-h-a-t``, one
  character per line), invisible format characters and combining marks between characters,
  full-width forms and common Cyrillic/Greek homoglyphs (NFKC and a small confusables map).

What stays out (said in docs/integrity.md): keyed ciphers (AES, a Vigenère key, a random byte
permutation), whitespace removed without a separator, and any transform an agent writes itself
that none of these families covers.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import quopri
import re
import unicodedata
import urllib.parse

import numpy as np

# English letter frequencies (a..z), for the Caesar and XOR checks
_ENGLISH = np.array(
    [
        8.2,
        1.5,
        2.8,
        4.3,
        12.7,
        2.2,
        2.0,
        6.1,
        7.0,
        0.15,
        0.77,
        4.0,
        2.4,
        6.7,
        7.5,
        1.9,
        0.095,
        6.0,
        6.3,
        9.1,
        2.8,
        0.98,
        2.4,
        0.15,
        2.0,
        0.074,
    ]
)
_ENGLISH = _ENGLISH / np.linalg.norm(_ENGLISH)
# row k: English shifted by k, so that ``_SHIFTED @ letters`` scores every Caesar shift at once
# (``letters`` rolled back by k, dotted with English, is ``letters`` dotted with English rolled by k)
_SHIFTED = np.stack([np.roll(_ENGLISH, k) for k in range(26)])
_MIN_LETTERS = 200  # a histogram of fewer letters says nothing
_ENGLISH_COS = 0.85  # cosine of a text's letter histogram with English (English prose: 0.9+)
_PLAIN_COS = 0.75  # below this the block is not English as it stands
_SAMPLE = 1 << 14

_WORD = np.zeros(256, dtype=bool)
_WORD[[*range(48, 58), *range(65, 91), *range(97, 123)]] = True
_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[[9, 10, 13, *range(32, 127)]] = True
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]
_SPACES = b" \n"


def _rot_table(k: int) -> bytes:
    """The translation that shifts letters back by ``k`` (undoes a Caesar shift of ``k``)."""
    t = bytearray(range(256))
    for i in range(26):
        t[ord("a") + i] = ord("a") + (i - k) % 26
        t[ord("A") + i] = ord("A") + (i - k) % 26
    return bytes(t)


_ROT = [_rot_table(k) for k in range(26)]


def _sample(arr: np.ndarray) -> np.ndarray:
    """At most ``_SAMPLE`` bytes spread over the block (contiguous 1 KiB pieces, the first at
    the block's start and the last at its end: byte pairs and word alignment are kept)."""
    n = len(arr)
    if n <= _SAMPLE:
        return arr
    k = _SAMPLE // 1024
    span = n - 1024
    return np.concatenate([arr[i * span // (k - 1) : i * span // (k - 1) + 1024] for i in range(k)])


def _histogram(s: np.ndarray) -> np.ndarray:
    return np.bincount(s, minlength=256)


def _letters(hist: np.ndarray) -> np.ndarray:
    return hist[97:123] + hist[65:91]


def _cos(h: np.ndarray) -> float:
    n = float(np.linalg.norm(h))
    return float(h @ _ENGLISH) / n if n else 0.0


def _english(sample: np.ndarray) -> bool:
    """Whether a sample reads as English text by its letters and printable share."""
    if len(sample) == 0 or np.count_nonzero(_PRINTABLE[sample]) < 0.95 * len(sample):
        return False
    h = _letters(np.bincount(sample, minlength=256))
    return int(h.sum()) >= _MIN_LETTERS // 4 and _cos(h.astype(np.float64)) >= _ENGLISH_COS


# ---------------------------------------------------------------- byte substitutions


def substitutions(data: bytes, arr: np.ndarray, hist: np.ndarray | None = None) -> list[tuple[str, bytes]]:
    """Caesar shift, single-byte XOR, EBCDIC: (layer, decoded block) when the block's sample
    shows one (its letters are English only after the shift; its most common byte is a space
    only after the XOR). ``hist``: the sample's histogram, when the caller has it."""
    s = _sample(arr)
    if hist is None:
        hist = _histogram(s)
    out: list[tuple[str, bytes]] = []
    top = int(hist.argmax())
    if top == 0x40 and hist[0x40] > 0.08 * len(s):  # EBCDIC's space
        cand = data.decode("cp500", "replace").encode()
        if _english(np.frombuffer(cand[: 2 * _SAMPLE], np.uint8)):
            return [("ebcdic", cand)]
    if top not in _SPACES and hist[top] > 0.08 * len(s):
        key = top ^ 0x20
        if _english(np.frombuffer(s.tobytes().translate(_XOR[key]), np.uint8)):
            return [(f"xor-{key:02x}", data.translate(_XOR[key]))]
    letters = _letters(hist).astype(np.float64)
    norm = float(np.linalg.norm(letters))
    if letters.sum() >= _MIN_LETTERS and float(letters @ _ENGLISH) < _PLAIN_COS * norm:
        scores = _SHIFTED @ letters / norm
        k = int(np.argmax(scores))
        if k and scores[k] >= _ENGLISH_COS:
            out.append((f"caesar-{k}", data.translate(_ROT[k])))
    return out


def reversed_text(sample: bytes, data: bytes) -> list[tuple[str, bytes]]:
    """Text reversed byte by byte (English's commonest words read backwards in the sample)."""
    if _backward_starts(sample) < 3:  # forward text stops here (usually no start at all)
        return []
    back = sample.count(b" eht ") + sample.count(b" dna ") + sample.count(b" fo ")
    if back < 3:
        return []
    if back > 2 * (sample.count(b" the ") + sample.count(b" and ") + sample.count(b" of ")):
        return [("reversed", data[::-1])]
    return []


_BACKWARD = np.frombuffer(b" eht dna fo ", "<u4")  # the first 4 bytes of each backward word


def _backward_starts(sample: bytes) -> int:
    """How many positions start `` eht``, `` dna`` or `` fo `` (4-byte words compared at the 4
    offsets): at least the number of backward words :func:`reversed_text` counts (each starts at
    its own position), for half the cost of its three ``bytes.count`` on text full of spaces."""
    n = len(sample)
    if n < 12:  # three words do not fit
        return 0
    hits = 0
    for off in range(4):
        words = np.frombuffer(sample, "<u4", count=(n - off) // 4, offset=off)
        eq = words == _BACKWARD[0]
        eq |= words == _BACKWARD[1]
        eq |= words == _BACKWARD[2]
        hits += int(np.count_nonzero(eq))
    return hits


# ---------------------------------------------------------------- interleaving and look-alikes

_CONFUSABLE = str.maketrans(
    "аеорсухіјѕԁһӏвмнткАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhlbmhtkABEKMHOPCTXIJSabeiknoptuxABEZHIKMNOPTYX",
)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\u0300-\u036f\u1ab0-\u1aff"
    "\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)


def look_alikes(data: bytes, arr: np.ndarray, hist: np.ndarray | None = None) -> list[tuple[str, bytes]]:
    """Invisible characters and combining marks removed, full-width forms folded (NFKC),
    Cyrillic/Greek homoglyphs mapped to Latin when 8 or more sit inside Latin words (a whole word
    in Greek or Cyrillic is honest text, left alone). Only on a block whose non-ASCII share is 1%
    or more; None of it on text that shows none of these signs."""
    s = _sample(arr)
    high = int(hist[0x80:].sum()) if hist is not None else np.count_nonzero(s >= 0x80)
    if high < 0.01 * len(s):
        return []
    text = data.decode("utf-8", "replace")
    norm = _INVISIBLE.sub("", text)
    if _FULLWIDTH.search(norm):
        norm = unicodedata.normalize("NFKC", norm)
    if len(_MIXED.findall(norm)) >= 8:
        norm = norm.translate(_CONFUSABLE)
    return [("look-alikes", norm.encode())] if norm != text else []


_FULLWIDTH = re.compile("[\uff01-\uff5e]")
_HOMOGLYPHS = "аеорсухіјѕԁһӏвмнткАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"
_MIXED = re.compile(f"[A-Za-z][{_HOMOGLYPHS}]|[{_HOMOGLYPHS}][A-Za-z]")


def interleaved(data: bytes, arr: np.ndarray, hist: np.ndarray | None = None) -> list[tuple[str, bytes]]:
    """One separator between every character (``W-h-a-t``, ``W h a t``, a character per line):
    letters almost never follow letters; the commonest byte between them is the separator."""
    s = _sample(arr)
    if hist is not None:
        # at most a fifth of the word bytes may be followed by a word byte, so the others (4/5)
        # are each followed by a distinct non-word byte: prose (a fifth non-word) is out at once
        nw = int(hist[_WORD].sum())
        if nw < _MIN_LETTERS or len(s) - nw < 0.8 * nw - 1:
            return []
    w = _WORD[s]
    nw = int(np.count_nonzero(w))
    if nw < _MIN_LETTERS or np.count_nonzero(w[1:] & w[:-1]) > 0.2 * nw:
        return []
    between = s[1:][w[:-1]]  # the byte after each word character
    between = between[~_WORD[between]]
    if len(between) == 0:
        return []
    sep = int(np.bincount(between, minlength=256).argmax())
    pat = re.compile(b"(.)" + re.escape(bytes([sep])), re.S)
    return [(f"interleaved-{sep:02x}", pat.sub(rb"\1", data))]


# ---------------------------------------------------------------- escapes and numbers

_HEX_ESC = re.compile(rb"\\x([0-9a-fA-F]{2})")
_OCT_ESC = re.compile(rb"\\([0-7]{1,3})")
_NUM_RUN = re.compile(rb"\d{1,7}(?:\D{1,8}\d{1,7}){15,}")
_NUMS = re.compile(rb"\d+")
_HEX_GROUPS = re.compile(rb"(?:[0-9a-fA-F]{2}){1,4}(?:[ ,:;\-](?:[0-9a-fA-F]{2}){1,4}){15,}")
_DUMP_LINE = re.compile(rb"(?m)^[0-9a-fA-F]{6,16}:? {1,2}(.*)$")


def escapes(data: bytes) -> list[tuple[str, bytes]]:
    """Percent, HTML, ``\\x``/octal and quoted-printable escapes, when they are dense (one
    marker per 32 bytes or more)."""
    n = len(data)
    dense = max(16, n // 32)
    out: list[tuple[str, bytes]] = []
    if data.count(b"%") >= dense:
        body = data
        if data.count(b"+") > data.count(b"%20") and data.count(b" ") < n // 64:
            body = data.replace(b"+", b" ")
        out.append(("percent", urllib.parse.unquote_to_bytes(body)))
    if data.count(b"&") >= dense:
        out.append(("html-entities", html.unescape(data.decode("utf-8", "replace")).encode()))
    if data.count(b"\\") >= dense:
        if data.count(b"\\x") >= dense:
            out.append(("x-escapes", _HEX_ESC.sub(lambda m: bytes([int(m[1], 16)]), data)))
        else:
            out.append(("octal-escapes", _OCT_ESC.sub(lambda m: bytes([int(m[1], 8) & 0xFF]), data)))
    if data.count(b"=") >= dense:
        with contextlib.suppress(ValueError, binascii.Error):
            out.append(("quoted-printable", quopri.decodestring(data)))
    return out


def numbers_as_text(data: bytes) -> list[tuple[str, bytes]]:
    """Runs of 16+ integers that are mostly printable code points, as text; hex byte groups
    with separators and hex dumps, as bytes. Only on a block that is 15% digits or more."""
    n = len(data)
    digits = n - len(data.translate(None, b"0123456789"))
    if digits < 0.15 * n:
        return []
    out: list[tuple[str, bytes]] = []
    chars: list[str] = []
    for m in _NUM_RUN.finditer(data):
        nums = [int(x) for x in _NUMS.findall(m[0])]
        ok = sum(1 for v in nums if 32 <= v < 127 or v in (9, 10, 13) or 160 <= v < 0x110000)
        if ok >= 0.9 * len(nums):
            chars.append("".join(chr(v) for v in nums if 0 < v < 0x110000 and not 0xD800 <= v <= 0xDFFF))
    if chars:
        out.append(("char-codes", "\n".join(chars).encode()))
    dump = [m[1] for m in _DUMP_LINE.finditer(data)]
    if len(dump) >= 4:
        hexes = []
        for line in dump:
            for tok in line.split():
                if len(tok) % 2 or not all(c in b"0123456789abcdefABCDEF" for c in tok):
                    break
                hexes.append(tok)
        with contextlib.suppress(ValueError):
            out.append(("hex-dump", bytes.fromhex(b"".join(hexes).decode())))
    groups = [re.sub(rb"[ ,:;\-]", b"", m[0]) for m in _HEX_GROUPS.finditer(data)]
    if groups and not dump:
        with contextlib.suppress(ValueError):
            out.append(("hex-groups", b"\n".join(bytes.fromhex(g.decode()) for g in groups)))
    return out


# ---------------------------------------------------------------- binary-to-text encodings

_UU_LINE = re.compile(rb"(?m)^[ -`]{2,61}$")
_SHORT_B64 = re.compile(rb"(?m)(?:^[A-Za-z0-9+/_\-]{8,39}={0,2}\r?\n){4,}")
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-\r\n\t "
_B85_LINE = re.compile(rb"(?m)^\S{40,}$")


def encodings(data: bytes) -> list[tuple[str, bytes]]:
    """ascii85/base85 lines, uuencode, base64 in short lines: only on a block with hardly any
    spaces (one per 64 bytes at most), where they live."""
    n = len(data)
    if n < 64 or data.count(b" ") > n // 64 + data.count(b"\nM") * 8:
        return []
    out: list[tuple[str, bytes]] = []
    if data.count(b"\nM") >= 8:
        uu = bytearray()
        for m in _UU_LINE.finditer(data):
            try:
                uu += binascii.a2b_uu(m[0])
            except binascii.Error:
                continue
        if uu:
            out.append(("uuencode", bytes(uu)))
    short = [m[0] for m in _SHORT_B64.finditer(data)]
    for run in short:
        body = re.sub(rb"\s", b"", run)
        try:
            alt = b"-_" if (b"-" in body or b"_" in body) else b"+/"
            out.append(("base64-short-lines", base64.b64decode(body + b"=" * (-len(body) % 4), altchars=alt)))
        except (ValueError, binascii.Error):
            continue
    lines = [m[0] for m in _B85_LINE.finditer(data)] if data.translate(None, _B64_CHARS) else []
    if lines:
        body = b"".join(lines)
        for name, dec in (("base85", base64.b85decode), ("ascii85", _a85)):
            try:
                got = dec(body)
            except (ValueError, binascii.Error):
                continue
            if got and np.count_nonzero(_PRINTABLE[np.frombuffer(got[:4096], np.uint8)]) > 0.6 * min(len(got), 4096):
                out.append((name, got))
                break
            if got[:2] in (b"\x1f\x8b", b"BZ", b"\xfd7", b"PK", b"\x28\xb5", b"\x78\x9c", b"\x78\xda"):
                out.append((name, got))
                break
    return out


def _a85(body: bytes) -> bytes:
    adobe = body.startswith(b"<~")
    return base64.a85decode(body, adobe=adobe and body.rstrip().endswith(b"~>"))


def latin1_bytes(data: bytes) -> list[tuple[str, bytes]]:
    """Bytes stored as Latin-1 characters in UTF-8 (how pickle protocol 2, and so ``torch.save``,
    writes a ``bytes`` object: a compressed blob inside reads as ``\xc2``/``\xc3`` pairs)."""
    n = data.count(b"\xc2") + data.count(b"\xc3")
    if n < max(16, len(data) // 32):
        return []
    text = data.decode("utf-8", "surrogateescape")
    try:
        out = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        out = text.encode("latin-1", "ignore")
    return [("latin-1-bytes", out)]


def text_variants(data: bytes, arr: np.ndarray) -> list[tuple[str, bytes]]:
    """Every recovery of a text block whose necessary condition holds (usually none). The
    conditions are read from one histogram of a 16 KiB sample (a full pass over the block only
    where the sample shows the sign: ordinary text costs about a tenth of the scan's time per byte)."""
    s = _sample(arr)
    m = max(1, len(s))
    h = _histogram(s)
    out: list[tuple[str, bytes]] = []
    if max(h[ord("%")], h[ord("&")], h[ord("\\")], h[ord("=")]) * 48 >= m:
        out += escapes(data)
    if h[48:58].sum() * 8 >= m:
        out += numbers_as_text(data)
    if h[32] * 40 <= m or h[ord("M")] * 80 >= m:
        out += encodings(data)
    if (h[0xC2] + h[0xC3]) * 48 >= m:
        out += latin1_bytes(data)
    out += reversed_text(s.tobytes(), data) + look_alikes(data, s, h) + interleaved(data, s, h)
    out += substitutions(data, s, h)
    return [(k, v) for k, v in out if v and v != data]


def stretch_variants(run: bytes) -> list[tuple[str, bytes]]:
    """A stretch without whitespace that is not base64/hex: escapes, base85/ascii85 (one item
    escaped inside ordinary text is such a stretch)."""
    return [(k, v) for k, v in escapes(run) + encodings(run) if v and v != run]


# ---------------------------------------------------------------- binary data

_EMBEDDED = ((b"\x1f\x8b\x08", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"))
_MAX_EMBEDDED = 32


def embedded_offsets(data: bytes) -> list[tuple[int, str]]:
    """Offsets (> 0) and kinds of gzip, xz, zstd and bz2 streams inside a binary block (a
    pickled or ``torch.save``d compressed blob, a blob after a junk header): at most 32 per
    block. A magic number's first two bytes are compared as one 16-bit word, at even and at odd
    offsets (two comparisons per magic over half as many words, no list of every first-byte
    match); the rare candidates are then checked byte by byte."""
    n = len(data)
    if n < 4:
        return []
    arr = np.frombuffer(data, np.uint8)
    even = np.frombuffer(data, "<u2", count=n // 2)
    odd = np.frombuffer(data[1 : 1 + (n - 1) // 2 * 2], "<u2")  # a copy, aligned: compares twice as fast
    halves = ((even, 0), (odd, 1))
    found: list[tuple[int, str]] = []
    for magic, kind in _EMBEDDED:
        key = np.uint16(magic[0] | magic[1] << 8)
        parts = [_true_at(eq) * 2 + off for words, off in halves if (eq := words == key).any()]
        if not parts:
            continue
        idx = np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]
        if len(idx) <= 64:  # the usual few: checked in Python (numpy's cost per call is the larger)
            hits = [i for i in idx.tolist() if 1 <= i <= n - len(magic) and data.startswith(magic, i)]
        else:
            idx = idx[(idx >= 1) & (idx <= n - len(magic))]
            for j in range(2, len(magic)):
                idx = idx[arr[idx + j] == magic[j]]
            hits = idx.tolist()
        for i in hits[:_MAX_EMBEDDED]:
            if magic != b"BZh" or data[i + 4 : i + 10] == b"1AY&SY":
                found.append((i, kind))
    return sorted(found)[:_MAX_EMBEDDED]


def _true_at(mask: np.ndarray) -> np.ndarray:
    """Indices of the True entries of a mask that has few (a 16-bit word of random data: about
    two per 256 KiB): found by ``argmax``, which stops at the first True, instead of a full
    ``flatnonzero`` per call; many Trues (an agent's block of magics) fall back to it."""
    out: list[int] = []
    start = 0
    while len(out) < 16:
        j = start + int(mask[start:].argmax())
        if not mask[j]:
            return np.array(out, dtype=np.int64)
        out.append(j)
        start = j + 1
        if start >= len(mask):
            return np.array(out, dtype=np.int64)
    return np.concatenate([np.array(out, dtype=np.int64), np.flatnonzero(mask[start:]) + start])


def float_codes(arr: np.ndarray) -> np.ndarray | None:
    """Character codes stored as floats under an affine map (``code / 255``, ``(code - 128) /
    128`` ...): at most 512 distinct finite values on a common grid; the commonest value is
    taken for a space. None when the floats are not such codes (real weights never are)."""
    a = arr[np.isfinite(arr)]
    if len(a) < 64 or len(a) < 0.99 * len(arr):
        return None
    if len(np.unique(a[:1024])) > 512:  # implies the test below fails: weights cost 1 Ki values, not 64 Ki
        return None
    u = np.unique(a[:65536])
    if len(u) > 512 or len(u) < 8:
        return None
    step = float(np.min(np.diff(u)))
    if step <= 0:
        return None
    g = (a.astype(np.float64) - float(u[0])) / step
    r = np.round(g)
    if np.max(np.abs(g - r)) > 1e-3 or r.max() > 0x10FFFF:
        return None
    vals, counts = np.unique(r[:65536], return_counts=True)
    codes = r - vals[int(np.argmax(counts))] + 32
    if codes.min() < 0:
        return None
    return codes.astype(np.int64)


def raw_floats(data: bytes) -> list[tuple[str, bytes]]:
    """A raw float32/float64 array of character codes inside binary data (no ``.npy`` header)."""
    head = data[: 1 << 14]
    words = np.frombuffer(head[: len(head) - len(head) % 8], np.uint32)
    if len(words) < 128 or len(set(words[:256].tolist())) > 200:
        return []  # codes take few distinct values; weights take one per float
    for dt in ("<f4", "<f8"):
        size = np.dtype(dt).itemsize
        for shift in range(size):
            body = head[shift:]
            body = body[: len(body) - len(body) % size]
            if len(body) < 64 * size:
                continue
            with np.errstate(all="ignore"):
                codes = float_codes(np.frombuffer(body, dtype=dt))
            if codes is None:
                continue
            full = data[shift:]
            full = full[: len(full) - len(full) % size]
            with np.errstate(all="ignore"):
                codes = float_codes(np.frombuffer(full, dtype=dt))
            if codes is not None:
                return [(f"float-codes-{dt}", codes_text(codes))]
    return []


def codes_text(codes: np.ndarray) -> bytes:
    cp = codes[((codes < 0xD800) | (codes > 0xDFFF)) & (codes < 0x110000)].astype("<u4")
    return cp.tobytes().decode("utf-32-le", "replace").encode()


def binary_variants(data: bytes, arr: np.ndarray) -> list[tuple[str, bytes]]:
    """Recoveries of a binary block: a byte substitution (XOR, EBCDIC), character codes as
    floats."""
    s = _sample(arr)
    h = _histogram(s)
    out = substitutions(data, s, h) + raw_floats(data)
    if (h[0xC2] + h[0xC3]) * 48 >= max(1, len(s)):
        out += latin1_bytes(data)
    return out


def raw_compressed(head: bytes) -> str | None:
    """'deflate' or 'lzma-raw' when a binary head is a headerless deflate or LZMA stream whose
    first bytes inflate to text (no magic number to sniff: tried on the head)."""
    import lzma
    import zlib

    tries: list[tuple[str, object]] = [("deflate", lambda: zlib.decompressobj(-15))]
    tries += [
        (f"lzmaraw{i}", lambda f=f: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=f)) for i, f in enumerate(LZMA_RAW)
    ]
    for kind, make in tries:
        try:
            out = make().decompress(head, 1 << 14)  # type: ignore[operator]  # the factories are callables typed as object
        except Exception:  # noqa: BLE001 - any decoding error: not this format
            continue
        if len(out) >= 256 and np.count_nonzero(_PRINTABLE[np.frombuffer(out, np.uint8)]) > 0.9 * len(out):
            return kind
    return None


LZMA_RAW = [
    [{"id": 0x21, "dict_size": 1 << 26}],  # lzma.FILTER_LZMA2
    [{"id": 0x4000000000000001, "dict_size": 1 << 26}],  # lzma.FILTER_LZMA1
]
