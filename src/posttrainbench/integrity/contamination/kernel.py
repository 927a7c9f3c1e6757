"""The scan's hot path compiled with numba: a few tight passes per block instead of numpy's many.

Same rules and results as the numpy path (:func:`.tokens.hash_bytes`, :class:`.tokens.HashSet`
lookups, ``Scanner._fuzzy``), which stays the fallback when numba is not installed (it is the
``fast`` extra) and the reference the tests compare with. Three kernels:

- :func:`hash_tokens`: tokenise and hash a block: its bytes lowercased (vectorised), then
  classified 8 at a time (lane masks; the escape rule byte by byte only near a backslash) into
  edges where the byte class changes, then its tokens, each read as at most four words
  (tokens above 32 bytes are listed and hashed with blake2b by the caller, as in
  ``hash_bytes``);
- :func:`block_ngrams`: the n-gram hashes from one Horner prefix (one multiply per length),
  probed through :class:`.tokens.HashSet`'s prefilter table as bits, in branch-free loops,
  then the few candidates by binary search (the full-length set, the short items' set with all
  their lengths in one loop, the pair prefixes); marks what it finds as seen;
- :func:`fuzzy_windows`: anchors of a block, and per window the distinct anchors counted per
  entry with a stamp array and a counter array (no sort), keeping the per-entry maximum.

The kernels do not check bounds: the caller's buffers are sized as each docstring says. Hot
loops index with unsigned integers: numba checks a signed index for wraparound (a negative
index counts from the end), which cost a third of the shortest loops.
Compiled on first use (5-10 s) into ``cache_dir`` (numba's on-disk cache, reused by later
processes; None: compiled in memory, per process) and checked against numpy's hashes
(:func:`_agrees`). :func:`load` returns None when numba is missing, does not compile or
disagrees.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tokens import LONG_TOKEN, NGRAM_MULTIPLIER, hash_bytes, ngrams

# the hash scheme's constants (``ptb-bytes-v2``, :mod:`.tokens`), as numba reads them: globals
_P = NGRAM_MULTIPLIER
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_F1 = np.uint64(0xBF58476D1CE4E5B9)
_F2 = np.uint64(0x94D049BB133111EB)
_S8 = np.uint64(8)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_LONG = LONG_TOKEN


def _fin(h: Any) -> Any:
    """splitmix64's finaliser."""
    h ^= h >> _S30
    h *= _F1
    h ^= h >> _S27
    h *= _F2
    h ^= h >> _S31
    return h


# byte tables: class of a lowercased byte (0 separator, 1 word byte, 2 punctuation); the
# letters of ``\\n \\t \\r \\b \\f``
_CLASS = np.array(
    [1 if (97 <= c <= 122 or 48 <= c <= 57 or c >= 128 or c == 95) else 2 if 33 <= c <= 126 else 0 for c in range(256)],
    dtype=np.uint8,
)
_ESCAPED = np.array([c in b"ntrbf" for c in range(256)], dtype=np.bool_)
_TAIL = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _load8(low64: Any, s: int, length: int) -> Any:
    """The ``length`` (<= 8) bytes from byte ``s`` of the words ``low64`` as a little-endian
    uint64: two aligned word reads and shifts (eight byte reads are not fused by the compiler).
    The words read lie inside ``low64`` (the caller pads it by two words); bytes past the block
    are masked off. Byte ``j`` of a word is its bits ``8j..8j+7`` on a little-endian machine
    only (here and in the 8-byte classification); on another, :func:`_agrees` fails at load
    and the numpy path runs."""
    us = np.uint64(s)
    q = us >> np.uint64(3)
    r = (us & np.uint64(7)) << np.uint64(3)
    lo = low64[q] >> r
    hi = (low64[q + np.uint64(1)] << np.uint64(1)) << (np.uint64(63) - r)  # r = 0: shifted out entirely
    return (lo | hi) & _TAIL[length]


_H = np.uint64(0x8080808080808080)
_SEVEN = np.uint64(0x7F7F7F7F7F7F7F7F)
_ONES = np.uint64(0x0101010101010101)


def _ge(x7: Any, c: int) -> Any:
    """Per byte lane of ``x7`` (each < 0x80): high bit set where the byte is >= ``c`` (1..128)."""
    return (x7 + np.uint64(0x80 - c) * _ONES) & _H


def _classes(w: Any) -> tuple[Any, Any]:
    """(word bytes, punctuation) of the 8 lowercased bytes ``w``, as the high bit of each lane:
    word bytes are ``[0-9a-z_]`` and every byte >= 0x80, punctuation the other bytes 33..126."""
    x7 = w & _SEVEN
    ascii_ = ~w & _H
    digit = _ge(x7, 48) & ~_ge(x7, 58)
    letter = _ge(x7, 97) & ~_ge(x7, 123)
    under = _ge(x7, 95) & ~_ge(x7, 96)
    word = (w & _H) | (ascii_ & (digit | letter | under))
    punct = ascii_ & _ge(x7, 33) & ~_ge(x7, 127) & ~word
    return word, punct


def hash_tokens(raw: Any, low64: Any, edges: Any, out: Any) -> tuple[int, Any, int]:
    """Token hashes of ``raw`` (:func:`.tokens.hash_bytes`) into ``out``; ``low64`` (uint64, >=
    n / 8 + 3 words) and ``edges`` (int64, >= n + 9): work buffers the caller keeps (fresh arrays
    cost a page fault every 4 KiB). Returns (tokens, long tokens as rows of (token index, start,
    length), number of long tokens): tokens above 32 bytes get their blake2b hash from the caller.

    Three passes: the bytes lowercased (a loop the compiler vectorises); their classes 8 bytes at
    a time (one word: word bytes and punctuation marks as lane masks, the escape rule byte by
    byte only in a word that holds a backslash or follows one) and where the class changes or a
    punctuation mark stands, stored without a branch; then the tokens between those edges, each
    read as at most four words."""
    n = len(raw)
    low = low64.view(np.uint8)
    for i in range(n):
        ui = np.uint64(i)
        b = raw[ui]
        low[ui] = np.uint8(b + np.uint8(32) * np.uint8((b >= 65) & (b <= 90)))
    nw = (n + 7) // 8
    for i in range(n, nw * 8):
        low[np.uint64(i)] = 0  # separators past the end
    ne = np.uint64(0)
    prev_bs = np.uint64(0)
    prev_word = np.uint64(0)
    prev_punct = np.uint64(0)
    for q in range(nw):
        uq = np.uint64(q)
        w = low64[uq]
        x7 = w & _SEVEN
        bs = (~w & _H) & _ge(x7, 92) & ~_ge(x7, 93)
        if bs | prev_bs:  # the escape rule, byte by byte: a backslash, and n t r b f after one
            after = prev_bs != 0
            for j in range(8):
                sh = np.uint64(8 * j)
                c = (w >> sh) & np.uint64(255)
                if c == 92 or (after and _ESCAPED[c]):
                    w = (w & ~(np.uint64(255) << sh)) | (np.uint64(32) << sh)
                after = c == 92
            low64[uq] = w
        prev_bs = bs >> np.uint64(63)
        word, punct = _classes(w)
        wp = (word << np.uint64(8)) | (prev_word >> np.uint64(56))
        pp = (punct << np.uint64(8)) | (prev_punct >> np.uint64(56))
        e = (word ^ wp) | (punct ^ pp) | punct
        prev_word, prev_punct = word, punct
        base = np.int64(8 * q)
        for j in range(8):
            edges[ne] = base + j
            ne += (e >> np.uint64(8 * j + 7)) & np.uint64(1)
    while ne > 0 and edges[ne - np.uint64(1)] >= n:
        ne -= np.uint64(1)
    edges[ne] = n
    long_at = np.empty((n // (_LONG + 1) + 1, 3), dtype=np.int64)  # a long token holds >= 33 bytes
    nl = 0
    nt = 0
    for j in range(ne):
        s = edges[j]
        cls = _CLASS[low[np.uint64(s)]]
        if cls == 0:
            continue  # a run of separators
        length = 1 if cls == 2 else edges[j + np.uint64(1)] - s
        h = _load8(low64, s, min(length, 8))
        h ^= np.uint64(length) * _K1
        h = _fin(h)
        if length > 8:
            k = 8
            while k < length and k < _LONG:
                x = _load8(low64, s + k, min(length - k, 8)) * _K2
                x ^= h
                h = _fin(x)
                k += 8
            if length > _LONG:
                long_at[nl, 0] = nt
                long_at[nl, 1] = s
                long_at[nl, 2] = length
                nl += 1
        out[nt] = h
        nt += 1
    return nt, long_at, nl


def _search(h: Any, sorted_: Any) -> int:
    """Position of ``h`` in ``sorted_``, or -1."""
    return _search_in(h, sorted_, 0, len(sorted_))


def _search_in(h: Any, sorted_: Any, lo: int, hi: int) -> int:
    """Position of ``h`` in ``sorted_[lo:hi]`` (where it would be in all of ``sorted_``), or -1."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(sorted_) and sorted_[lo] == h:
        return lo
    return -1


def directory(sorted_: np.ndarray) -> tuple[np.ndarray, np.uint64]:
    """(where each value of a hash's top bits starts in ``sorted_``, one more for the end; the
    shift that gives those bits): about one member per value, so a lookup reads the directory
    and a cache line or two of ``sorted_`` instead of ~18 of a binary search (the full-length
    set's prefilter lets ~2% of the n-grams of text through)."""
    bits = int(min(20, max(1, int(len(sorted_)).bit_length() - 1)))
    shift = np.uint64(64 - bits)
    tops = (sorted_ >> shift).astype(np.int64)
    return np.searchsorted(tops, np.arange((1 << bits) + 1)).astype(np.int32), shift


def _search_dir(h: Any, sorted_: Any, dir_: Any, dshift: Any) -> int:
    """:func:`_search` through a :func:`directory`."""
    t = h >> dshift
    return _search_in(h, sorted_, dir_[t], dir_[t + np.uint64(1)])


def _find(h: Any, bitmap: Any, sorted_: Any, shift: Any) -> int:
    """Position of ``h`` in ``sorted_`` or -1: the prefilter first (:class:`.tokens.HashSet`'s
    table as bits), then a binary search."""
    slot = h >> shift
    if not (bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7))) & np.uint8(1):
        return -1
    return _search(h, sorted_)


def _candidates(hs: Any, n: int, bitmap: Any, shift: Any, cand: Any) -> Any:
    """Indices of ``hs[:n]`` that pass the prefilter into ``cand``; their count. A tight,
    branch-free loop: the table reads of many hashes are in flight at once. (Unsigned indices
    here and in the other hot loops: numba checks a signed index for wraparound, which costs
    a third of a loop this short.)"""
    nc = np.uint64(0)
    for i in range(n):
        ui = np.uint64(i)
        slot = hs[ui] >> shift
        cand[nc] = i
        nc += np.uint64((bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7))) & np.uint8(1))
    return np.int64(nc)


def _kgram_candidates(g: Any, lo: int, n: int, k: int, pw: Any, bitmap: Any, shift: Any, hs: Any, cand: Any) -> Any:
    """:func:`_candidates` of the ``k``-grams starting at ``lo .. lo + n - 1`` (hashes from the
    Horner prefix ``g``, ``pw`` = P**k), which it also writes to ``hs``: one loop, not two."""
    nc = np.uint64(0)
    ulo, uk = np.uint64(lo), np.uint64(k)
    for i in range(n):
        ui = np.uint64(i)
        h = g[ulo + ui + uk] - g[ulo + ui] * pw
        hs[ui] = h
        slot = h >> shift
        cand[nc] = i
        nc += np.uint64((bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7))) & np.uint8(1))
    return np.int64(nc)


def _mark(p: int, seen: Any, touched: Any, n_touched: int) -> int:
    if p >= 0 and not seen[p]:
        seen[p] = True
        touched[n_touched] = p
        n_touched += 1
    return n_touched


def block_ngrams(
    arr: Any,
    c: int,
    k_full: int,
    k_short: Any,
    ex_bits: Any,
    ex_sorted: Any,
    ex_shift: Any,
    ex_dir: Any,
    ex_dshift: Any,
    sh_bits: Any,
    sh_sorted: Any,
    sh_shift: Any,
    short_pos: Any,
    seen: Any,
    touched: Any,
    n_touched: int,
    pair_k: int,
    pr_bits: Any,
    pr_sorted: Any,
    pr_shift: Any,
    pair_at: Any,
    pair_h: Any,
    g: Any,
    hs: Any,
    cand: Any,
) -> tuple[int, int]:
    """The n-grams of ``arr`` (carry of ``c`` tokens, then the new ones) that end in the new
    tokens: of length ``k_full`` (0: none) in the full-length set, of the lengths ``k_short``
    in the short items' set; each found and not yet ``seen`` is marked and appended to
    ``touched`` (from ``n_touched``). ``pair_k`` > 0: the ``pair_k``-grams are probed in the
    pair prefixes (start and hash into ``pair_at``/``pair_h``). ``g`` (>= len(arr) + 1),
    ``hs``, ``cand`` (>= len(arr)): work. Returns (new ``n_touched``, pair candidates).

    A k-gram's hash is ``g[s + k] - g[s] * P**k`` with ``g`` the Horner prefix of the stream
    (mod 2**64: the same value as Horner over the k-gram), so a length costs one multiply per
    token; per length, the hashes, then the prefilter over all of them, then the few candidates."""
    m = len(arr)
    g[0] = np.uint64(0)
    for i in range(m):
        ui = np.uint64(i)
        g[ui + np.uint64(1)] = g[ui] * _P + arr[ui]
    npair = 0
    for step in range(2):  # the full length; then the pair length when it is not the full one
        k = k_full if step == 0 else pair_k
        if k == 0 or (step == 1 and pair_k == k_full):
            continue
        lo = max(0, c - k + 1)  # the k-grams that end in the new tokens
        n = m - k + 1 - lo
        if n <= 0:
            continue
        pw = np.uint64(1)
        for _ in range(k):
            pw *= _P
        if step == 0:
            for j in range(_kgram_candidates(g, lo, n, k, pw, ex_bits, ex_shift, hs, cand)):
                n_touched = _mark(_search_dir(hs[cand[j]], ex_sorted, ex_dir, ex_dshift), seen, touched, n_touched)
        else:
            for i in range(n):
                hs[i] = g[lo + i + k] - g[lo + i] * pw
        if k == pair_k:  # hs holds the pair_k-grams
            for j in range(_candidates(hs, n, pr_bits, pr_shift, cand)):
                h = hs[cand[j]]
                if _search(h, pr_sorted) >= 0:
                    pair_at[npair] = lo + cand[j]
                    pair_h[npair] = h
                    npair += 1
    if len(k_short):
        n_touched = _short_ngrams(
            g, m, c, k_short, sh_bits, sh_sorted, sh_shift, short_pos, seen, touched, n_touched, hs, cand
        )
    return n_touched, npair


def _short_ngrams(
    g: Any,
    m: int,
    c: int,
    ks: Any,
    bits: Any,
    sorted_: Any,
    shift: Any,
    short_pos: Any,
    seen: Any,
    touched: Any,
    n_touched: int,
    hs: Any,
    cand: Any,
) -> int:
    """The short items' n-grams (every length of ``ks``) ending in the new tokens: four lengths at
    a time in one branch-free loop over the positions where all four end in the new tokens (the
    small prefilter probed four times, a position kept when any passes), the few positions at
    the two edges and the lengths left over one by one (:func:`_kgram_candidates`); then the
    candidates by binary search."""
    nk = len(ks)
    for grp in range(0, nk - nk % 4, 4):
        k0, k1, k2, k3 = ks[grp], ks[grp + 1], ks[grp + 2], ks[grp + 3]
        p0, p1, p2, p3 = _pow(k0), _pow(k1), _pow(k2), _pow(k3)
        kmin = min(min(k0, k1), min(k2, k3))
        kmax = max(max(k0, k1), max(k2, k3))
        first = max(0, c - kmax + 1)  # the first start of an n-gram that ends in the new tokens
        inner = max(first, c - kmin + 1)  # from here to m - kmax, all four do
        nc = np.uint64(0)
        for s in range(first, min(inner, m - kmin + 1)):  # the carry's edge: checked below
            cand[nc] = s
            nc += np.uint64(1)
        u0, u1, u2, u3 = np.uint64(k0), np.uint64(k1), np.uint64(k2), np.uint64(k3)
        for s in range(inner, m - kmax + 1):
            us = np.uint64(s)  # unsigned indices: no wraparound check for negative ones
            gs = g[us]
            x0 = (g[us + u0] - gs * p0) >> shift
            x1 = (g[us + u1] - gs * p1) >> shift
            x2 = (g[us + u2] - gs * p2) >> shift
            x3 = (g[us + u3] - gs * p3) >> shift
            hit = (bits[x0 >> np.uint64(3)] >> (x0 & np.uint64(7))) | (bits[x1 >> np.uint64(3)] >> (x1 & np.uint64(7)))
            hit |= (bits[x2 >> np.uint64(3)] >> (x2 & np.uint64(7))) | (bits[x3 >> np.uint64(3)] >> (x3 & np.uint64(7)))
            cand[nc] = s
            nc += np.uint64(hit & np.uint8(1))
        for s in range(max(inner, m - kmax + 1), m - kmin + 1):  # the block's end: checked below
            cand[nc] = s
            nc += np.uint64(1)
        for j in range(nc):
            s = cand[j]
            for i in range(grp, grp + 4):
                e = s + ks[i]
                if c < e <= m:
                    p = _search(g[e] - g[s] * _pow(ks[i]), sorted_)
                    if p >= 0:
                        n_touched = _mark(short_pos[p], seen, touched, n_touched)
    for i in range(nk - nk % 4, nk):
        k = ks[i]
        lo = max(0, c - k + 1)  # the k-grams that end in the new tokens
        n = m - k + 1 - lo
        if n <= 0:
            continue
        pw = _pow(k)
        for j in range(_kgram_candidates(g, lo, n, k, pw, bits, shift, hs, cand)):
            p = _search(hs[cand[j]], sorted_)
            if p >= 0:
                n_touched = _mark(short_pos[p], seen, touched, n_touched)
    return n_touched


def _pow(k: int) -> Any:
    """``P**k`` modulo 2**64."""
    pw = np.uint64(1)
    for _ in range(k):
        pw *= _P
    return pw


def fuzzy_windows(
    th: Any,
    pos_base: int,
    carry_pos: Any,
    carry_aid: Any,
    bitmap: Any,
    sorted_: Any,
    shift: Any,
    inv_ptr: Any,
    inv_entries: Any,
    best: Any,
    cnt: Any,
    stamp: Any,
    clock: Any,
    window: int,
    pos: Any,
    aid: Any,
    touched: Any,
    cand: Any,
) -> tuple[Any, Any]:
    """Anchors of the block ``th`` (global positions from ``pos_base``) after those carried;
    for every window of ``window`` tokens (starting every half window) that holds one, the
    distinct anchors counted per entry, ``best`` raised to the count. Returns the new carry
    (anchors within the last ``window`` tokens). ``pos``/``aid`` (>= carry + block) and
    ``touched`` (>= entries), ``cand`` (>= block): work buffers."""
    half = window // 2
    nc = len(carry_pos)
    pos[:nc] = carry_pos
    aid[:nc] = carry_aid
    n = nc
    for j in range(_candidates(th, len(th), bitmap, shift, cand)):
        p = _search(th[cand[j]], sorted_)
        if p >= 0:
            pos[n] = pos_base + cand[j]
            aid[n] = p
            n += 1
    end = pos_base + len(th)
    lo = 0
    while lo < n and pos[lo] < end - window:
        lo += 1
    new_pos = pos[lo:n].copy()
    new_aid = aid[lo:n].copy()
    last_w = -1
    a_lo = 0
    one = np.uint64(1)
    for o in range(n):
        w1 = pos[np.uint64(o)] // half
        for w in (w1 - 1, w1):
            if w < 0 or w <= last_w:
                continue
            last_w = w
            clock[0] += 1
            now = clock[0]
            start = w * half
            while a_lo < n and pos[np.uint64(a_lo)] < start:
                a_lo += 1
            nt = np.uint64(0)
            q = a_lo
            while q < n and pos[np.uint64(q)] < start + window:
                a = np.uint64(aid[np.uint64(q)])
                if stamp[a] != now:
                    stamp[a] = now
                    for r in range(inv_ptr[a], inv_ptr[a + one]):
                        e = np.uint64(inv_entries[np.uint64(r)])
                        if cnt[e] == 0:
                            touched[nt] = e
                            nt += one
                        cnt[e] += 1
                q += 1
            for t in range(nt):
                e = np.uint64(touched[t])
                if cnt[e] > best[e]:
                    best[e] = cnt[e]
                cnt[e] = 0
    return new_pos, new_aid


@dataclass(frozen=True)
class Kernels:
    """The compiled kernels (numba dispatchers) and what compiling them cost."""

    hash_tokens: Any
    block_ngrams: Any
    fuzzy_windows: Any
    compile_s: float
    cache_dir: str | None


_LOCK = threading.Lock()
_LOADED: dict[str | None, Kernels | None] = {}


def load(cache_dir: Path | None = None) -> Kernels | None:
    """The kernels, compiled (or read from numba's cache in ``cache_dir``) once per process and
    cache folder; None when numba is not installed or fails to compile them."""
    key = str(cache_dir) if cache_dir is not None else None
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        _LOADED[key] = got = _compile(cache_dir)
        return got


def _compile(cache_dir: Path | None) -> Kernels | None:
    import time

    try:
        import numba  # type: ignore[import-not-found,unused-ignore]  # the `fast` extra
    except ImportError:
        return None
    t0 = time.monotonic()
    if cache_dir is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only cache: compiled in memory, as without one
            cache_dir = None
    try:
        cache = cache_dir is not None
        if cache_dir is not None:
            # numba picks the cache folder when a function is decorated: set it for ours only
            config: Any = numba.config
            old = config.CACHE_DIR
            config.CACHE_DIR = str(cache_dir)
        try:
            jit = numba.njit(cache=cache, nogil=True)
            helpers = {
                f: numba.njit(inline="always")(f)
                for f in (
                    _fin,
                    _ge,
                    _classes,
                    _load8,
                    _search,
                    _search_in,
                    _search_dir,
                    _find,
                    _candidates,
                    _kgram_candidates,
                    _mark,
                    _short_ngrams,
                    _pow,
                )
            }
            kernels = _rebind(helpers, jit)
        finally:
            if cache_dir is not None:
                config.CACHE_DIR = old
        if not _agrees(kernels):
            return None
    except Exception:  # noqa: BLE001 - any failure to compile means the numpy path, which is correct too
        return None
    hk, bk, fk = kernels
    return Kernels(hk, bk, fk, round(time.monotonic() - t0, 3), str(cache_dir) if cache_dir else None)


def _rebind(helpers: dict[Any, Any], jit: Any) -> tuple[Any, Any, Any]:
    """The three kernels jitted, their helpers resolved to the jitted helpers (numba reads the
    module globals at compile time: the plain Python helpers are swapped for the compiled ones
    while the kernels compile)."""
    g = globals()
    saved = {f.__name__: f for f in helpers}
    with contextlib.ExitStack() as stack:
        for f, jf in helpers.items():
            g[f.__name__] = jf
        stack.callback(g.update, saved)
        out = (jit(hash_tokens), jit(block_ngrams), jit(fuzzy_windows))
        _warm_up(out)  # compile now, while the globals point at the jitted helpers
    return out


def _agrees(kernels: tuple[Any, Any, Any]) -> bool:
    """Whether the kernels give numpy's token and n-gram hashes on a sample (numba's cache is
    keyed on this file alone: a hash scheme changed in :mod:`.tokens` must not be answered by
    stale machine code)."""
    hk, bk, _ = kernels
    text = b"Sam\\'s 3 APPLES\\ncost $4.50; caf\xc3\xa9 na\xc3\xafve " + b"Long" * 12 + b" x_1 {[()]} \\u00e9 end"
    raw = np.frombuffer(text, dtype=np.uint8)
    n = len(raw)
    out = np.empty(n + 8, dtype=np.uint64)
    nt, long_at, nl = hk(raw, np.empty(n // 8 + 3, dtype=np.uint64), np.empty(2 * n + 2, np.int64), out)
    want = hash_bytes(raw)
    got = out[:nt].copy()
    if nl != 1 or nt != len(want):
        return False
    got[long_at[0, 0]] = want[long_at[0, 0]]
    if not np.array_equal(got, want):
        return False
    # every 8-gram in the full set, every 3- to 7-gram in the short set, every 8-gram a pair prefix
    short_k = (3, 4, 5, 6, 7)  # a group of four lengths and one more: both of the short loops
    full, short = np.unique(ngrams(want, 8)), np.unique(np.concatenate([ngrams(want, k) for k in short_k]))
    n_all = len(full) + len(short)
    bits = np.full(1 << 13, 255, dtype=np.uint8)  # every slot a candidate: the search decides
    seen = np.zeros(n_all, dtype=np.bool_)
    touched = np.empty(n_all, dtype=np.int64)
    short_pos = np.arange(len(full), n_all, dtype=np.int64)
    sh = np.uint64(48)
    m = nt + 8
    g, hs, cand, pair_at = np.empty(m, np.uint64), np.empty(m, np.uint64), np.empty(m, np.int64), np.empty(m, np.int64)
    pair_h = np.empty(m, np.uint64)
    ks = np.array(short_k, dtype=np.int64)
    fdir, fdsh = directory(full)
    found, npair = bk(
        want, 0, 8, ks, bits, full, sh, fdir, fdsh, bits, short, sh, short_pos, seen, touched, 0, 8, bits, full, sh,
        pair_at, pair_h, g, hs, cand,
    )  # fmt: skip
    return bool(found == n_all and seen.all() and npair == nt - 7 and np.array_equal(pair_h[:npair], ngrams(want, 8)))


def _warm_up(kernels: tuple[Any, Any, Any]) -> None:
    """Compile every kernel for the argument types the scanner passes."""
    hk, bk, fk = kernels
    raw = np.frombuffer(b"Warm up\\n the kernels, " + b"x" * 40, dtype=np.uint8)
    n = len(raw)
    out = np.empty(n, dtype=np.uint64)
    i64 = np.zeros(n + 1, dtype=np.int64)
    hk(raw, np.empty(n // 8 + 3, dtype=np.uint64), np.empty(2 * n + 2, np.int64), out)
    u64 = np.zeros(2, dtype=np.uint64)
    tab = np.zeros(1 << 13, dtype=np.uint8)
    sh = np.uint64(48)
    g = np.empty(n + 1, dtype=np.uint64)
    short = np.array([4], dtype=np.int64)
    bk(
        out,
        0,
        8,
        short,
        tab,
        u64,
        sh,
        *directory(u64),
        tab,
        u64,
        sh,
        i64,
        np.zeros(2, np.bool_),
        i64,
        0,
        8,
        tab,
        u64,
        sh,
        i64,
        u64,
        g,
        g[1:].copy(),
        i64.copy(),
    )
    e = i64[:0]
    fk(
        out,
        0,
        e,
        e,
        tab,
        u64,
        sh,
        i64,
        i64,
        i64,
        i64,
        i64,
        np.zeros(1, np.int64),
        256,
        i64,
        i64.copy(),
        i64.copy(),
        i64.copy(),
    )
