"""The contamination scan's fast paths (numpy: hashing, prefiltered hash sets with slot tables,
in-place n-gram hashing; the compiled kernels of ``kernel.py``, numba; both: block-wise
decoding, regex ``\\uXXXX`` decoding, the binary-block pre-check) against a slow, simple reference written from the documented rules: regex tokens
of the whole document, Python sets of n-grams, windows counted one by one. Both must give the
same per-entry exact and fuzzy containment and the same pairs on a randomized corpus of several
read blocks with planted items (verbatim, case and whitespace variants, JSON ``\\u`` escapes of
unicode, halves, shuffles, question prefix + answer), some planted across block boundaries."""

from __future__ import annotations

import base64
import io
import json
import random

import numpy as np
import pytest

from posttrainbench.integrity.contamination import IncrementalScan, build_index, kernel, tokenize
from posttrainbench.integrity.contamination.decode import (
    BLOCK,
    _may_hold_run,
    _merged_runs,
    _spaceless,
    runs,
    unescape_json,
)
from posttrainbench.integrity.contamination.index import FUZZY_WINDOW, PAIR_K, PAIR_WINDOW
from posttrainbench.integrity.contamination.tokens import HashSet, hash_bytes, member, ngrams, token_hashes

_UNICODE = ["café", "naïve", "Ελλάδα", "数学", "Straße", "über", "😀grin", "ŁódźX"]


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choice("bcdfghjklmnpqrstvwxz") + rnd.choice("aeiou") for _ in range(rnd.randint(2, 4)))


def _ref_unescape(data: bytes) -> bytes:
    """The ``\\uXXXX`` rule written the long way: split at every ``\\u``, gather adjacent escapes."""
    hexd = frozenset(b"0123456789abcdefABCDEF")
    parts = data.split(b"\\u")
    out, units = [parts[0]], []
    for p in parts[1:]:
        if len(p) >= 4 and all(c in hexd for c in p[:4]):
            units.append(int(p[:4], 16))
            if not p[4:]:
                continue
            rest = p[4:]
        else:
            rest = b"\\u" + p
        if units:
            out.append(b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "replace").encode())
            units = []
        out.append(rest)
    if units:
        out.append(b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "replace").encode())
    return b"".join(out)


def _reference(index, doc: bytes) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Per entry exact and fuzzy containment, and the pair entries found, the slow way."""
    th = token_hashes(tokenize(_ref_unescape(doc).decode("utf-8", "surrogateescape")))
    n_e = len(index.item_ids)
    grams = {k: set(ngrams(th, k).tolist()) for k in index.lengths}
    exact = np.zeros(n_e)
    for e in range(n_e):
        hs = index.hashes[index.item_idx[index.item_ptr[e] : index.item_ptr[e + 1]]].tolist()
        exact[e] = sum(h in grams[int(index.item_k[e])] for h in hs) / max(len(hs), 1)
    fuzzy = np.zeros(n_e)
    owners: dict[int, list[int]] = {}
    n_anchors = np.zeros(n_e, dtype=np.int64)
    if index.fz_ptr is not None:
        for e in range(n_e):
            anchors = index.fz_hashes[index.fz_idx[index.fz_ptr[e] : index.fz_ptr[e + 1]]].tolist()
            n_anchors[e] = len(anchors)
            for a in anchors:
                owners.setdefault(a, []).append(e)
    toks = th.tolist()
    best = np.zeros(n_e, dtype=np.int64)
    half = FUZZY_WINDOW // 2
    for start in range(0, len(toks), half):  # windows of FUZZY_WINDOW tokens every half window
        count = np.zeros(n_e, dtype=np.int64)
        for a in set(toks[start : start + FUZZY_WINDOW]) & owners.keys():
            count[owners[a]] += 1
        best = np.maximum(best, count)
    fuzzy = np.where(n_anchors > 0, best / np.maximum(n_anchors, 1), 0.0)
    at: dict[int, list[int]] = {}  # PAIR_K-gram hash -> its positions
    for i, g in enumerate(ngrams(th, PAIR_K).tolist()):
        at.setdefault(g, []).append(i)
    found = set()
    for e, (prefix, answer) in enumerate(zip(index.pair_prefix.tolist(), index.pair_answer.tolist(), strict=True)):
        for i in at.get(prefix, []):
            if answer in toks[max(0, i - PAIR_WINDOW) : i] + toks[i + PAIR_K : i + PAIR_K + PAIR_WINDOW]:
                found.add(e)
                break
    return exact, fuzzy, found


def _corpus(rnd: random.Random, items: list[tuple[str, str, str]], vocab: list[str]) -> bytes:
    """~2.2 MB of filler (words of the items' vocabulary, numbers, unicode) with planted items."""

    def filler(n: int) -> str:
        return " ".join(rnd.choice(vocab) if rnd.random() < 0.8 else str(rnd.randint(0, 999)) for _ in range(n))

    edge = iter(items[40:])  # kinds 6-8 plant a fresh item each: its result hangs on that one plant

    def plant(i: int, kind: int, fresh: bool = False) -> str:
        fresh = fresh or 6 <= kind <= 8
        _, q, a = next(edge, items[i % 40]) if fresh else items[i % 40]
        words = f"{q} {a}".split()
        if kind == 0:
            return f"{q}\n{a}"
        if kind == 1:
            return "".join(c.upper() if rnd.random() < 0.5 else c for c in f"{q} {a}")
        if kind == 2:
            return "".join(w + rnd.choice([" ", "  ", "\n", "\t", " \r\n "]) for w in words)
        if kind == 3:
            return json.dumps({"text": f"{q}\n{a}"})  # ensure_ascii: unicode as \uXXXX, emoji as pairs
        if kind == 4:
            return " ".join(words[: len(words) * 11 // 20])
        if kind == 5:
            rnd.shuffle(words)
            return " ".join(words)
        if kind == 6:  # answer after the prefix, around the window's edge (PAIR_WINDOW = 32 tokens)
            return f"{' '.join(q.split()[:8])} {filler(rnd.randint(24, 36))} {a}"
        if kind == 7:  # answer before the prefix, around the window's edge
            return f"{a} {filler(rnd.randint(24, 36))} {' '.join(q.split()[:8])}"
        if kind == 8:  # anchors spread over ~250 tokens: the windows decide
            rnd.shuffle(words)
            return " ".join(w + " " + filler(rnd.randint(0, 10)) for w in words)
        return json.dumps({"prompt": q, "completion": a}, ensure_ascii=False).upper()

    out = io.StringIO()
    size, i = 0, 0
    while size < 2_200_000:
        boundary = (size // BLOCK + 1) * BLOCK
        at_edge = boundary - size < 6000
        if at_edge:  # a fresh item across the read-block boundary, at a varying offset
            pad = max(0, boundary - size - rnd.randint(20, 300))
            out.write(" " * pad)
            size += pad
        kind = rnd.choice([0, 2, 3, 6, 7, 8]) if at_edge else i % 10
        chunk = plant(i, kind, at_edge) + "\n" + filler(rnd.randint(40, 300)) + "\n"
        out.write(chunk)
        size += len(chunk.encode())
        i += 1
    return out.getvalue().encode()


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_fast_scan_equals_the_reference_on_planted_items(compiled: bool) -> None:
    rnd = random.Random(13)
    vocab = [_word(rnd) for _ in range(400)] + _UNICODE
    items = []
    for j in range(340):
        # some items shorter than n = 8; the others too long for the answer to follow the prefix
        # within PAIR_WINDOW in a verbatim copy (so pairs are found by the plants at the edge)
        n = rnd.randint(4, 7) if j % 5 == 0 and j < 40 else rnd.randint(44, 60)
        q = " ".join(rnd.choice(vocab) if rnd.random() < 0.6 else str(rnd.randint(0, 9999)) for _ in range(n))
        items.append((f"t/{j}", q, str(rnd.randint(10, 99999))))
    allowed = [" ".join(rnd.choice(vocab) for _ in range(60)) for _ in range(20)]
    index = build_index([(i, f"{q}\n{a}") for i, q, a in items], allowed, pairs=items)
    assert len(index) > 30 and index.fz_ptr is not None and len(index.pair_prefix) > 20
    assert min(index.lengths) < 8 == max(index.lengths)
    doc = _corpus(rnd, items, vocab)
    assert len(doc) > 4 * BLOCK

    inc = IncrementalScan(index, compiled=compiled)
    assert (inc.scanner.kernels is not None) == compiled  # numba is a dev dependency: no silent fallback here
    inc.feed("corpus.jsonl", io.BytesIO(doc), len(doc))
    sc = inc.scanner
    exact, fuzzy, pairs = _reference(index, doc)
    np.testing.assert_array_equal(sc.containment(), exact)
    np.testing.assert_array_equal(sc.fuzzy_containment(), fuzzy)
    assert sc.pair_found == pairs
    # the corpus exercises every channel, with full and partial matches
    assert (exact == 1.0).sum() >= 12 and ((exact > 0.3) & (exact < 1.0)).any()
    assert ((fuzzy >= 0.5) & (fuzzy < 1.0)).sum() >= 20 and len(pairs) >= 40


def test_compiled_token_hashes_equal_numpy_on_hostile_bytes() -> None:
    """The kernel's tokeniser and hash against ``hash_bytes`` (the index's): escapes (doubled,
    at the end, ``\\N``), case, UTF-8 and invalid high bytes, control bytes, punctuation, and
    words of every length around the 8-byte words and the 32-byte blake2b cut."""
    k = kernel.load(None)
    assert k is not None
    rnd = random.Random(7)
    parts = [b"\\", b"n", b"N", b"t", b"u", b"\\\\n", b"A", b"z", b"_", b"0", b"9", b" ", b"\n", b"\t", b"\x00",
             b"\x1f", b"\x7f", b"\xff", b"\xc3\xa9", b".", b",", b"{", b"~", b"@", b"[", b"`"]  # fmt: skip
    docs = [b"", b"x", b"\\", b"Q" * 8, b"Q" * 9, b"q" * 32, b"q" * 33, b"Q" * 70 + b" " + b"r" * 100]
    for _ in range(3000):
        docs.append(
            b"".join(rnd.choice(parts) * rnd.choice([1, 1, 1, 3, 7, 9, 17, 33]) for _ in range(rnd.randint(1, 40)))
        )
    n = max(len(d) for d in docs) + 1
    low, edges, out = (
        np.empty(n // 8 + 3, np.uint64),
        np.empty(2 * n + 2, np.int64),
        np.empty(n, np.uint64),
    )
    long_tokens = 0
    for d in docs:
        raw = np.frombuffer(d, dtype=np.uint8)
        nt, long_at, nl = k.hash_tokens(raw, low, edges, out)
        got = out[:nt].copy()
        for t, s, ln in long_at[:nl].tolist():
            got[t] = hash_bytes(d[s : s + ln])[0]  # the caller's blake2b, as Scanner does
        long_tokens += nl
        np.testing.assert_array_equal(got, hash_bytes(raw), err_msg=repr(d))
    assert long_tokens > 100


def test_hash_set_lookup_equals_binary_search() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 14, 3000, 40_000):  # small sets (slot -> position table) and a large one (bool table)
        members = rng.integers(0, 2**64, n, dtype=np.uint64)
        members[: n // 3] &= np.uint64(0xFFF0_0000_0000_FFFF)  # many members sharing a slot
        hs = HashSet(members)
        q = np.concatenate([rng.integers(0, 2**64, 50_000, dtype=np.uint64), members, members[:7] + np.uint64(1)])
        rng.shuffle(q)
        qi, pos = hs.lookup(q)
        mask, ref_pos = member(hs.sorted, q)
        np.testing.assert_array_equal(qi, np.flatnonzero(mask))
        np.testing.assert_array_equal(pos, ref_pos)


def test_unicode_escapes_and_binary_precheck_equal_the_simple_rules() -> None:
    rnd = random.Random(5)
    parts = [b"\\u", b"\\", b"u", b"00", b"d8", b"3d", b"de", b"41", b"F", b"g", b" ", b"\\ud83d\\ude00", b"\\uDC00"]
    for _ in range(20_000):
        data = b"".join(rnd.choice(parts) for _ in range(rnd.randint(0, 12)))
        assert unescape_json(data) == _ref_unescape(data), data
    rng = np.random.default_rng(1)
    for _ in range(3000):
        mask = rng.random(rng.integers(0, 300)) < 0.5
        if len(mask) > 30 and rng.random() < 0.7:
            s, n = int(rng.integers(0, len(mask) - 26)), int(rng.integers(20, 27))
            mask[s : s + n] = True
        assert _may_hold_run(mask) or not runs(mask, 24)


def test_kernels_that_disagree_with_numpy_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Numba's cache is keyed on kernel.py alone: stale machine code (say, after a hash scheme
    change in tokens.py) must fail the load-time check and leave the scan on numpy's path."""
    k = kernel.load(None)
    assert k is not None
    fns = (k.hash_tokens, k.block_ngrams, k.fuzzy_windows)
    assert kernel._agrees(fns)

    def stale_hash(raw, low, edges, out):  # one token hashed differently
        nt, long_at, nl = k.hash_tokens(raw, low, edges, out)
        out[1] ^= np.uint64(1)
        return nt, long_at, nl

    def stale_ngrams(*args):  # the last n-gram not found
        return k.block_ngrams(args[0][:-1], *args[1:])

    assert not kernel._agrees((stale_hash, k.block_ngrams, k.fuzzy_windows))
    assert not kernel._agrees((k.hash_tokens, stale_ngrams, k.fuzzy_windows))
    # without numba: the numpy path, and the evidence says so
    monkeypatch.setitem(__import__("sys").modules, "numba", None)
    monkeypatch.setattr(kernel, "_LOADED", {})
    inc = IncrementalScan(build_index([("t/0", "one two three four five six seven eight nine")], []))
    assert inc.scanner.kernels is None and inc.report()["scan_kernel"] == "numpy"


def _ref_spaceless(arr: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """The spaceless-stretch rule the long way: split at every byte <= 32, merge across <= 2."""
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(len(arr) + 1):
        if i == len(arr) or arr[i] <= 32:
            if i - start >= min_len:
                if out and start - out[-1][1] <= 2:
                    out[-1] = (out[-1][0], i)
                else:
                    out.append((start, i))
            start = i + 1
    return out


def _ref_merged_runs(data: bytes) -> list[tuple[int, int]]:
    """Encoding-character runs of >= 16, merged across one line break, kept from 40, the long way."""
    chars = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
    found, start = [], 0
    for i in range(len(data) + 1):
        if i == len(data) or data[i] not in chars:
            if i - start >= 16:
                found.append((start, i))
            start = i + 1
    out: list[tuple[int, int]] = []
    for s, e in found:
        if out and data[out[-1][1] : s] in (b"\n", b"\r\n"):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return [(s, e) for s, e in out if e - s >= 40]


def test_spaceless_stretches_and_encoding_runs_equal_the_simple_rules() -> None:
    """The base64 finder's shortcuts (stretches found from whole 8-byte words, runs by regex)
    against the rules byte by byte: stretches of every length around the 40-byte minimum, at
    every alignment, separated by one or two whitespace bytes (merged) or more."""
    rnd = random.Random(11)
    seps = [b" ", b"\n", b"\r\n", b"  ", b"\t", b"\x00", b" \n ", b"!", b"\\", b"\xc3\xa9"]
    alpha = b"ABCxyz019+/=_-.:"
    for _ in range(4000):
        parts = [b"x" * rnd.randint(0, 9)]
        for _ in range(rnd.randint(0, 10)):
            n = rnd.choice([0, 1, 13, 15, 16, 17, 25, 31, 32, 33, 38, 39, 40, 41, 47, 48, 55, 64, 100])
            parts += [bytes(rnd.choice(alpha) for _ in range(n)), rnd.choice(seps)]
        data = b"".join(parts) + b"y" * rnd.randint(0, 9)
        arr = np.frombuffer(data, dtype=np.uint8)
        for min_len in (40, 24, 16, 10):
            assert _spaceless(arr, min_len) == _ref_spaceless(arr, min_len), (data, min_len)
        assert _merged_runs(data) == _ref_merged_runs(data), data


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_encoded_and_escaped_items_at_every_alignment_and_block_edge(compiled: bool) -> None:
    """Items only visible after decoding, placed where the shortcuts could miss them: a base64
    run (one line, and wrapped at 76 as MIME tools do) at every offset modulo 8 and straddling
    the read blocks' edges, a run of JSON ``\\u`` escapes long enough to bypass their memo,
    and a text block of valid UTF-8 that is mostly not printable ASCII (text, not binary).
    The same document without the plants is clean."""
    rnd = random.Random(17)
    vocab = [_word(rnd) for _ in range(300)]
    items = [(f"t/{j}", " ".join(rnd.choice(vocab) for _ in range(40)), str(j)) for j in range(40)]
    index = build_index([(i, q) for i, q, _ in items], [])
    filler = " ".join(rnd.choice(vocab) for _ in range(200)).encode()
    parts: list[bytes] = []
    planted: set[str] = set()
    size = 0
    for j, (item, q, _) in enumerate(items[:32]):
        enc = base64.encodebytes(q.encode()) if j % 2 else base64.b64encode(q.encode())  # wrapped, or one line
        head = b"z" * (j % 8) + b" "  # every alignment of the run
        if j % 4 == 3:  # the run's middle on a read block's edge
            gap = (size // BLOCK + 1) * BLOCK - size - len(head) - len(enc) // 2
            parts.append((filler * (gap // len(filler) + 1))[: gap - 1] + b"\n")
            size += gap
        parts.append(head + enc + b"\n" + filler * 8 + b"\n")
        size += len(parts[-1])
        planted.add(item)
    escaped = "".join(f"\\u{ord(c):04x}" for c in items[32][1])  # one run of 40 words' escapes
    parts.append(b'{"t": "' + escaped.encode() + b'"}\n')
    planted.add(items[32][0])
    cjk = "数学题目" * 3000  # > 4096 bytes, mostly bytes >= 0x80
    parts.append((cjk + " " + items[33][1] + " " + cjk + "\n").encode())
    planted.add(items[33][0])
    doc = b"".join(parts)
    assert len(doc) > 3 * BLOCK
    for body, want in ((doc, planted), (filler * 4000, set())):
        inc = IncrementalScan(index, compiled=compiled)
        assert (inc.scanner.kernels is not None) == compiled
        res = inc.feed("doc.txt", io.BytesIO(body), len(body))
        assert {h["item_id"] for h in res.hits} == want


def test_compiled_tokens_at_every_alignment_and_length_equal_numpy() -> None:
    """The kernel reads a token's bytes as two aligned 8-byte words and shifts them: every
    start offset modulo 8 and every length from 1 to 40 (around the word size, the 32-byte
    blake2b cut and the block's end), lowercase and mixed case, after escapes and punctuation."""
    k = kernel.load(None)
    assert k is not None
    rnd = random.Random(3)
    n = 4096
    low, edges, out = np.empty(n // 8 + 3, np.uint64), np.empty(2 * n + 2, np.int64), np.empty(n, np.uint64)
    for offset in range(8):
        for length in range(1, 41):
            word = bytes(rnd.choice(b"abcXYZ09_\xc3\xa9") for _ in range(length))
            for doc in (b"." * offset + word, b"\\n" * offset + b" " + word + b" " + word.upper() + b"!x"):
                raw = np.frombuffer(doc, dtype=np.uint8)
                nt, long_at, nl = k.hash_tokens(raw, low, edges, out)
                got = out[:nt].copy()
                for t, s, ln in long_at[:nl].tolist():
                    got[t] = hash_bytes(doc[s : s + ln])[0]
                np.testing.assert_array_equal(got, hash_bytes(raw), err_msg=repr(doc))
    # the escape rule at every offset: a backslash in the last byte of an 8-byte word and its
    # letter in the next word's first (the rule carried across words), doubled backslashes
    for pad in range(17):
        for esc in (b"\\n", b"\\N", b"\\\\n", b"\\q", b"\\\\\\t"):
            doc = b"w" * pad + esc + b"ord " + b"z" * pad + esc + b"x"
            raw = np.frombuffer(doc, dtype=np.uint8)
            nt, _, _ = k.hash_tokens(raw, low, edges, out)
            np.testing.assert_array_equal(out[:nt], hash_bytes(raw), err_msg=repr(doc))


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_items_of_long_words_at_every_alignment_and_block_edge(compiled: bool) -> None:
    """Items of words of 9 to 40 bytes (read as several 8-byte words, some past the 32-byte cut)
    planted at every offset modulo 8, some straddling a read block's edge (the tokens after a
    block's carry), mixed case and as JSON ``\\u`` escapes: each found; the filler alone is clean."""
    rnd = random.Random(23)

    def long_word() -> str:
        return "".join(rnd.choice("bcdfghklmnprstvz") + rnd.choice("aeiou") for _ in range(rnd.randint(5, 20)))

    vocab = [_word(rnd) for _ in range(300)]
    words = [long_word, lambda: rnd.choice(vocab), long_word, lambda: rnd.choice(_UNICODE)]
    items = [(f"t/{j}", " ".join(words[i % 4]() for i in range(24))) for j in range(24)]
    index = build_index(items, [])
    filler = " ".join(rnd.choice(vocab) for _ in range(200)).encode()
    parts: list[bytes] = []
    size = 0
    for j, (_, q) in enumerate(items):
        text = "".join(c.upper() if c.isascii() else c for c in q) if j % 3 == 1 else q  # ASCII case folds
        body = json.dumps(text).encode() if j % 3 == 2 else text.encode()  # unicode as \\uXXXX
        head = b"q" * (j % 8) + b" "
        if j % 2:  # the item's middle on a read block's edge
            gap = (size // BLOCK + 1) * BLOCK - size - len(head) - len(body) // 2
            parts.append((filler * (gap // len(filler) + 1))[: gap - 1] + b"\n")
            size += gap
        parts.append(head + body + b"\n" + filler + b"\n")
        size += len(parts[-1])
    doc = b"".join(parts)
    assert len(doc) > 6 * BLOCK
    for body, want in ((doc, {i for i, _ in items}), (filler * 3000, set())):
        inc = IncrementalScan(index, compiled=compiled)
        assert (inc.scanner.kernels is not None) == compiled
        res = inc.feed("doc.txt", io.BytesIO(body), len(body))
        assert {h["item_id"] for h in res.hits} == want
