"""Tokens and hashes of the contamination index (scheme ``ptb-bytes-v2``), and array helpers.

Tokenisation (on bytes, vectorised with numpy: no Python work per token)
    ASCII letters are lowercased; a backslash, and the letter of an escape ``\\n \\t \\r \\b
    \\f`` after it, are separators (so a JSON- or Python-escaped copy tokenises like the text);
    *word bytes* are ``[0-9a-z_]`` and every byte >= 0x80 (so a UTF-8 letter is part of its
    word; non-ASCII letters are not case-folded); whitespace and the other control bytes
    separate tokens; every other ASCII byte (punctuation) is a token of its own. A token is a
    maximal run of word bytes or one punctuation byte, so whitespace, line breaks and
    indentation never matter. :func:`tokenize` gives the same tokens as strings.
Hashes (scheme ``ptb-bytes-v2``)
    token hash: its (lowercased) bytes read as little-endian uint64 words, the first xor the
    token length, each folded in with the splitmix64 finaliser; tokens above 32 bytes (rare in
    text) use blake2b. n-gram hash = Horner polynomial of its token hashes with multiplier
    ``_P`` modulo 2**64. Membership tests go through :class:`HashSet`, a sorted array behind a
    byte-per-slot prefilter table, so a token that is in no item costs one table lookup.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

HASH_SCHEME = "ptb-bytes-v2"
_P = np.uint64(0x9E3779B97F4A7C15)
NGRAM_MULTIPLIER = _P
_MASK = (1 << 64) - 1
# Common words of four letters or more that carry no identity (shorter words never are anchors).
_STOP = frozenset(
    """that this with have from they will would there their what about which when make like time just
    know take into year your good some could them than then look only come over think also back after
    work first well even want because these give most were been much many more each other does such
    very where should said total left same next last both half times every much many need needs
    answer number numbers question following problem step solve final reply show calculate write
    what's how's many much does did done into onto upon than then them they their there here""".split()  # noqa: SIM905 - a word list reads better as text
)


_ESC_LETTER = np.zeros(256, dtype=bool)
_ESC_LETTER[[ord(c) for c in "ntrbf"]] = True
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
LONG_TOKEN = 32  # tokens longer than this are hashed one by one (rare in text)
_TOKEN_RE = re.compile(rb"[0-9a-z_\x80-\xff]+|[!-/:-@\[\]^`{-~]")
_ESCAPE_RE = re.compile(rb"\\[ntrbf]?")
_TAIL_MASK = np.array([0] + [(1 << (8 * i)) - 1 for i in range(1, 8)] + [_MASK], dtype=np.uint64)


def _finalise(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def lower_bytes(b: np.ndarray) -> np.ndarray:
    """ASCII letters lowercased (a new array)."""
    up = (b - np.uint8(65)) < np.uint8(26)
    return b + up.view(np.uint8) * np.uint8(32)


def word_mask(low: np.ndarray) -> np.ndarray:
    """Word bytes of lowercased bytes: ``[0-9a-z_]`` and every byte >= 0x80."""
    w = (low - np.uint8(97)) < np.uint8(26)
    w |= (low - np.uint8(48)) < np.uint8(10)
    w |= low >= np.uint8(0x80)
    w |= low == np.uint8(95)
    return w


def long_hash(tok: bytes) -> int:
    """The hash of a token above ``LONG_TOKEN`` bytes (its lowercased bytes)."""
    return int.from_bytes(hashlib.blake2b(tok, digest_size=8, person=b"ptb-long").digest(), "little")


def hash_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """uint64 hash of every token of ``data`` (bytes of text), in order.

    A token of up to 32 bytes hashes its bytes read as (at most four) little-endian uint64
    words, each folded in with the splitmix64 finaliser together with the token length;
    longer tokens hash with blake2b. All of it vectorised over the tokens of the chunk.
    """
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    n = len(raw)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    low = np.empty(n + 8, dtype=np.uint8)  # 8 bytes of padding: every 8-byte read stays inside
    low[n:] = 0
    np.add(raw, ((raw - np.uint8(65)) < np.uint8(26)).view(np.uint8) * np.uint8(32), out=low[:n])
    b = low[:n]
    bs = np.flatnonzero(b == np.uint8(92))
    if len(bs):  # escapes: a backslash separates, and so does the letter of \n \t \r \b \f after it
        nxt = bs[bs + 1 < n] + 1
        low[nxt[_ESC_LETTER[b[nxt]]]] = 32
        low[bs] = 32
    w = word_mask(b)
    punct = ~w
    punct &= (b - np.uint8(33)) < np.uint8(94)
    edge = np.empty(n + 1, dtype=bool)  # word-ness changes between byte i-1 and i
    edge[0], edge[n] = w[0], w[n - 1]
    np.not_equal(w[1:], w[:-1], out=edge[1:n])
    smask = edge[:n] & w
    smask |= punct
    emask = edge[1:] & w
    emask |= punct
    starts = np.flatnonzero(smask)
    lens = np.flatnonzero(emask) - starts + 1
    words = np.ndarray((n + 1,), dtype="<u8", buffer=low.data, strides=(1,))  # 8 bytes from any offset
    with np.errstate(over="ignore"):
        h = words[starts] & _TAIL_MASK[np.minimum(lens, 8)]
        h ^= lens.astype(np.uint64) * _K1
        _finalise(h)
        more = np.flatnonzero(lens > 8)
        for j in (1, 2, 3):
            if len(more) == 0:
                break
            r = lens[more] - 8 * j
            x = words[starts[more] + 8 * j] & _TAIL_MASK[np.minimum(r, 8)]
            x *= _K2
            x ^= h[more]
            h[more] = _finalise(x)
            more = more[r > 8]
        for i in np.flatnonzero(lens > LONG_TOKEN).tolist():
            s = int(starts[i])
            h[i] = long_hash(b[s : s + int(lens[i])].tobytes())
    return h


def tokenize(text: str) -> list[str]:
    """The tokens of :func:`hash_bytes` as strings (lowercased words and punctuation marks)."""
    raw = _ESCAPE_RE.sub(b" ", text.encode("utf-8", "surrogatepass").lower())
    return [t.decode("utf-8", "replace") for t in _TOKEN_RE.findall(raw)]


def token_hashes(tokens: list[str]) -> np.ndarray:
    """uint64 hash of every token (each a token of :func:`tokenize`)."""
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    out = hash_bytes(" ".join(tokens).encode("utf-8", "surrogatepass"))
    if len(out) != len(tokens):
        raise ValueError("token_hashes takes tokens of tokenize(), one token each")
    return out


def text_hashes(text: str) -> np.ndarray:
    """Token hashes of a text (``hash_bytes`` of its UTF-8 bytes)."""
    return hash_bytes(text.encode("utf-8", "surrogatepass"))


def ngrams(th: np.ndarray, k: int) -> np.ndarray:
    """Hashes of every k-gram of the token-hash array ``th`` (empty if shorter than k)."""
    m = len(th) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = th[:m].copy()
    with np.errstate(over="ignore"):
        for j in range(1, k):
            h *= _P
            h += th[j : j + m]
    return h


_PREFILTER_MAX_BITS = 23  # an 8 MiB table at most (the full n-gram set: ~2% false candidates)
_SMALL_SET = 1 << 15  # sets up to this size also get a slot -> position table (int32, <= 8 MiB)


class HashSet:
    """A sorted set of uint64 hashes behind a prefilter: ``table[h >> (64 - bits)]`` (one slot
    per 64 possible hashes, about 64 slots per member, at most 2**23) says no for most hashes
    not in the set, so only the few candidates are compared. In a small set (<= 2**15 members:
    the anchors, the pair prefixes, the short items) a slot holds the position of its one member
    (-1: empty, -2: several), so a candidate costs one comparison, not a binary search. Results
    are those of a plain binary search (``member``): the prefilter never drops a member."""

    def __init__(self, hashes: np.ndarray):
        self.sorted = np.unique(hashes.astype(np.uint64))
        need = max(1, len(self.sorted)).bit_length() + 6
        self.bits = min(_PREFILTER_MAX_BITS, max(16, need))
        self.shift = np.uint64(64 - self.bits)
        slots = (self.sorted >> self.shift).view(np.int64)
        self.slot_pos: np.ndarray | None = None
        self.table = np.zeros(1 << self.bits, dtype=bool)
        self.table[slots] = True
        self.bitmap = np.packbits(self.table, bitorder="little")  # the same table as bits (the compiled kernel's)
        if len(self.sorted) <= _SMALL_SET:
            sp = np.full(1 << self.bits, -1, dtype=np.int32)
            sp[slots] = np.arange(len(slots), dtype=np.int32)
            shared = slots[1:][slots[1:] == slots[:-1]]  # sorted hashes: a shared slot's members are adjacent
            sp[shared] = -2
            self.slot_pos = sp

    def __len__(self) -> int:
        return len(self.sorted)

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices into ``q`` of the hashes found, their positions in ``sorted``)."""
        if len(self.sorted) == 0 or len(q) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        slot = (q >> self.shift).view(np.int64)
        if self.slot_pos is not None:
            sp = self.slot_pos[slot]
            cand = np.flatnonzero(sp != -1)
            if len(cand) == 0:
                return cand, cand
            pos = sp[cand].astype(np.int64)
            multi = pos < 0
            if multi.any():
                m = np.flatnonzero(multi)
                pos[m] = np.minimum(np.searchsorted(self.sorted, q[cand[m]]), len(self.sorted) - 1)
            ok = self.sorted[pos] == q[cand]
            return cand[ok], pos[ok]
        cand = np.flatnonzero(self.table[slot])
        if len(cand) == 0:
            return cand, cand
        qc = q[cand]
        pos = np.minimum(np.searchsorted(self.sorted, qc), len(self.sorted) - 1)
        ok = self.sorted[pos] == qc
        return cand[ok], pos[ok]


def member(sorted_hashes: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of q found in sorted_hashes, their positions)."""
    if len(sorted_hashes) == 0 or len(q) == 0:
        return np.zeros(len(q), dtype=bool), np.empty(0, dtype=np.int64)
    pos = np.searchsorted(sorted_hashes, q)
    pos = np.minimum(pos, len(sorted_hashes) - 1)
    mask = sorted_hashes[pos] == q
    return mask, pos[mask]


def anchors(tokens: list[str]) -> set[str]:
    """Tokens that identify an item whatever its wording: numbers and uncommon words."""
    return {t for t in tokens if t.isdigit() or (len(t) >= 4 and t.isalpha() and t not in _STOP)}


def postings(ptr: np.ndarray, idx: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of a CSR (entry -> keys): (entries sorted by key, key -> start pointer)."""
    counts = np.diff(ptr)
    entry_of = np.repeat(np.arange(len(counts)), counts)
    order = np.argsort(idx, kind="stable")
    return entry_of[order], np.searchsorted(idx[order], np.arange(n_keys + 1))


def expand(inv_ptr: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions into the inverse postings, index into ``keys``) for every posting of keys."""
    starts, lens = inv_ptr[keys], inv_ptr[keys + 1] - inv_ptr[keys]
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(keys)), lens)
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    return np.repeat(starts, lens) + offsets, owner
