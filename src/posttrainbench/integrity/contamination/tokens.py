"""Tokens and hashes of the contamination index (scheme ``ptb-ngram-v1``), and array helpers.

Tokenisation
    ``re.findall(r"\\w+|[^\\w\\s]", text.lower())``: words and single punctuation marks, so
    whitespace, line breaks and indentation never matter.
Hashes (scheme ``ptb-ngram-v1``)
    token hash = blake2b(token, digest_size=8) as little-endian uint64; n-gram hash =
    Horner polynomial of its token hashes with multiplier ``_P`` modulo 2**64. Vectorised
    with numpy, so a scan runs at several MB/s per core.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

HASH_SCHEME = "ptb-ngram-v1"
_P = np.uint64(0x9E3779B97F4A7C15)
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# Common words of four letters or more that carry no identity (shorter words never are anchors).
_STOP = frozenset(
    """that this with have from they will would there their what about which when make like time just
    know take into year your good some could them than then look only come over think also back after
    work first well even want because these give most were been much many more each other does such
    very where should said total left same next last both half times every much many need needs
    answer number numbers question following problem step solve final reply show calculate write
    what's how's many much does did done into onto upon than then them they their there here""".split()  # noqa: SIM905 - a word list reads better as text
)
_ESCAPE_RE = re.compile(r'\\(u[0-9a-fA-F]{4}|[nrtbf"/\\])')
_ESCAPES = {"n": " ", "r": " ", "t": " ", "b": " ", "f": " ", '"': '"', "/": "/", "\\": "\\"}
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")

_tok_cache: dict[str, int] = {}


def tokenize(text: str) -> list[str]:
    """Lowercased words and single punctuation marks."""
    return _TOKEN_RE.findall(text.lower())


def _blake(tok: str) -> int:
    return int.from_bytes(hashlib.blake2b(tok.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def token_hashes(tokens: list[str]) -> np.ndarray:
    """uint64 hash of every token; new tokens are hashed once and cached (C-level lookups)."""
    missing = set(tokens).difference(_tok_cache.keys())
    if missing:
        if len(_tok_cache) + len(missing) > 2_000_000:
            _tok_cache.clear()
            missing = set(tokens)
        _tok_cache.update((t, _blake(t)) for t in missing)
    return np.fromiter(map(_tok_cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def ngrams(th: np.ndarray, k: int) -> np.ndarray:
    """Hashes of every k-gram of the token-hash array ``th`` (empty if shorter than k)."""
    m = len(th) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = th[:m].copy()
    for j in range(1, k):
        h *= _P
        h += th[j : j + m]
    return h


def decode_escapes(text: str) -> str:
    """JSON string escapes decoded (so a JSON-encoded copy of an item tokenises like the item)."""
    if "\\" not in text:
        return text

    def rep(m: re.Match) -> str:
        s = m.group(1)
        return chr(int(s[1:], 16)) if s[0] == "u" else _ESCAPES[s]

    out = _ESCAPE_RE.sub(rep, text)
    if _SURROGATE_RE.search(out):
        out = out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return out


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
