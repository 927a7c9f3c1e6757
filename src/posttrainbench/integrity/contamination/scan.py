"""The contamination gate: every byte the agent could have trained on, against the index.

Incremental scan (:class:`IncrementalScan`, the entry point the sandbox observer calls during
the run, and what :func:`scan` is built on)
    ``feed(name, stream, size)`` scans one stream: its content is decoded by content, not by
    name (:mod:`.decode`: compression, archives, arrays, UTF-16/32, base64/hex/base32 runs,
    JSON escapes, token-id sequences), with no size cap (streamed; sparse files read without
    their holes), and scored as one document. ``feed_path(path)`` does the same for a file and
    memoises by ``(device, inode, size, mtime, ctime)`` and by content digest (SHA-256 of the
    bytes read), so a rescan of an unchanged tree, or content already fed, costs nothing.
    ``verdict()`` is the gate's verdict over everything fed so far (each version of a file that
    was fed counts: a file deleted or rewritten later still hits).
Per document (a top-level stream, all it decodes to included)
    exact channel: containment = fraction of an index entry's n-grams found in the document; a
    hit is ``>= threshold = 0.5``. Fuzzy channel: an entry's anchors found together in a window
    (:mod:`.index`); a hit is ``>= fuzzy_threshold = 0.8``. Pair channel: an item's question
    prefix (an 8-gram at the start of its question) with its answer token within
    ``PAIR_WINDOW = 32`` tokens before or after it (a "question prefix -> answer" table).
Verdict
    failed when more than ``max_hits = 0`` distinct items hit, an item found only in what the agent
    typed (the trace's tool-call inputs, the observed argv) counting only when at least
    ``TYPED_MIN_ITEMS = 3`` such items are (one or two pasted into a smoke test are evidence, a
    training set typed from memory is many); otherwise ``not_run`` when some
    content could not be fully decoded (over the bomb limits, encrypted, an unsupported archive
    format: listed under ``incomplete``), else passed.

Known gaps: a paraphrase that also rewrites the numbers and names, translations, encryption or
a custom encoding, and text rendered into images are not caught; containment is per document,
so an item split across files is missed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...domain import Verdict, VerdictStatus
from .._common import guarded, not_run, short_list, verdict, write_evidence
from .decode import BLOCK, Decoder, Limits, Readable, open_sparse_aware
from .index import DEFAULT_FUZZY_THRESHOLD, FUZZY_WINDOW, PAIR_K, PAIR_WINDOW, ContaminationIndex
from .kernel import Kernels, directory, load
from .names import FileNames
from .tokens import NGRAM_MULTIPLIER, HashSet, expand, hash_bytes, long_hash, ngrams, postings

GATE = "contamination"
DEFAULT_THRESHOLD = 0.5
SKIP_DIRS = {".git", "__pycache__", ".hg", ".svn"}
_LIST_CAP = 5000
# Items found only in typed texts (no file) fail from this many on: an honest agent may paste a dev
# question or two into a command to try its model; training on typed-in items takes many.
TYPED_MIN_ITEMS = 3
# The names of the texts of what the agent typed (fed with IncrementalScan.feed_text).
TRACE_INPUTS = "<trace: tool-call inputs>"
OBSERVED_ARGV = "<observed: argv of every process>"
_IDS_BLOCK = 1 << 16


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` of a fresh int64 array, sorted in place (no hash table, no copy to sort)."""
    if len(x) < 2:
        return x
    x.sort()
    keep = np.empty(len(x), dtype=bool)
    keep[0] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


class _Compiled:
    """The index in the form a scan reads: prefiltered hash sets and inverse postings."""

    def __init__(self, index: ContaminationIndex):
        self.index = index
        self.lengths = index.lengths
        self.length_set = set(self.lengths)
        # hashes of the full-length n-grams, and those of the items shorter than n (few)
        k_of = np.repeat(index.item_k, np.diff(index.item_ptr))
        short_pos = np.unique(index.item_idx[k_of < (self.lengths[-1] if self.lengths else 0)])
        self.short = HashSet(index.hashes[short_pos])  # index.hashes is sorted and unique: same order
        self.short_pos = short_pos
        self.exact = HashSet(index.hashes)
        self.counts = np.diff(index.item_ptr)
        entry_of = np.repeat(np.arange(len(self.counts)), self.counts)
        order = np.argsort(index.item_idx, kind="stable")
        self.inv_entries = entry_of[order]
        self.inv_ptr = np.searchsorted(index.item_idx[order], np.arange(len(index.hashes) + 1))
        fz_ptr = index.fz_ptr if len(index.fz_hashes) else None
        self.fz_n = np.diff(fz_ptr) if fz_ptr is not None else None
        self.fuzzy = HashSet(index.fz_hashes)
        if fz_ptr is not None:
            self.fz_inv_entries, self.fz_inv_ptr = postings(fz_ptr, index.fz_idx, len(index.fz_hashes))
        self.pairs = HashSet(index.pair_prefix)
        # for the compiled kernel: the full n-gram length (0: none) and the shorter ones
        self.k_full = self.lengths[-1] if self.lengths else 0
        self.k_short = np.array(self.lengths[:-1], dtype=np.int64)
        self.exact_dir, self.exact_dshift = directory(self.exact.sorted)
        # prefix hash position -> pair entries (a prefix may be several items')
        order = np.argsort(index.pair_prefix, kind="stable")
        self.pair_order = order
        self.pair_sorted = index.pair_prefix[order]


class Scanner:
    """One document at a time against the index; marks the n-grams, anchors and pairs seen.

    Work per document is proportional to its size and to what it matched, not to the index
    size (walking a virtualenv means many small files). ``kernels``: the compiled hot path
    (:mod:`.kernel`); None: numpy's (same results).
    """

    def __init__(
        self,
        index: ContaminationIndex | _Compiled,
        decode_ids: Callable[[np.ndarray], str] | None = None,
        kernels: Kernels | None = None,
    ):
        self.c = index if isinstance(index, _Compiled) else _Compiled(index)
        self.index = self.c.index
        self.decode_ids = decode_ids
        self.kernels = kernels
        self.seen = np.zeros(len(self.index.hashes), dtype=bool)
        self.carry_len = max([*self.c.lengths, PAIR_K, PAIR_WINDOW + PAIR_K]) - 1
        self.touched: list[np.ndarray] = []
        # the kernel appends what it marks seen here (each hash once per document)
        self.touched_buf = np.empty(len(self.index.hashes) if kernels else 0, dtype=np.int64)
        if kernels is not None:
            self.fz_cnt = np.zeros(len(self.c.counts), dtype=np.int64)
            self.fz_stamp = np.zeros(len(self.index.fz_hashes), dtype=np.int64)
            self.fz_clock = np.zeros(1, dtype=np.int64)
        self.n_touched = 0
        self.work: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        if self.touched:
            self.seen[np.concatenate(self.touched)] = False
        if self.n_touched:
            self.seen[self.touched_buf[: self.n_touched]] = False
        self.touched = []
        self.n_touched = 0
        self.carry = np.empty(0, dtype=np.uint64)
        self.tokens = 0
        self.pos_base = 0
        self.fz_best = np.zeros(len(self.c.counts), dtype=np.int64)
        self.fz_carry = (np.empty(0, np.int64), np.empty(0, np.int64))
        self.pending: list[tuple[int, int]] = []  # (pair entry, last global token position to look at)
        self.pair_found: set[int] = set()

    # ------------------------------------------------------------------ input
    def text(self, data: bytes) -> None:
        """Bytes of text (a token is never split across two calls: callers cut at whitespace)."""
        mv = memoryview(data)
        n, i = len(data), 0
        while n - i > BLOCK:
            j = max(data.rfind(b" ", i, i + BLOCK), data.rfind(b"\n", i, i + BLOCK))
            j = i + BLOCK if j <= i else j + 1
            self._block(np.frombuffer(mv[i:j], dtype=np.uint8))
            i = j
        if i < n:
            self._block(np.frombuffer(mv[i:], dtype=np.uint8))

    def _block(self, raw: np.ndarray) -> None:
        if self.kernels is None:
            self._process(hash_bytes(raw))
        else:
            self._process_compiled(raw)

    def ids(self, ids: np.ndarray) -> None:
        """Token ids of the base model's tokenizer (ignored without one)."""
        if self.decode_ids is None:
            return
        for s in range(0, len(ids), _IDS_BLOCK):
            self.text(self.decode_ids(ids[s : s + _IDS_BLOCK]).encode("utf-8", "surrogatepass") + b"\n")

    # ------------------------------------------------------------------ channels
    def _process(self, th: np.ndarray) -> None:
        if len(th) == 0:
            return
        arr = np.concatenate([self.carry, th]) if len(self.carry) else th
        c = len(self.carry)
        base = self.tokens - c  # global token position of arr[0]
        self.tokens += len(th)
        if self.c.fz_n is not None:
            self._fuzzy(th)
        # every indexed n-gram length in one pass (Horner: the k-gram hashes extend the (k-1)-gram
        # ones); the few items shorter than n have their own small set, so their lookups are cheap
        grams8: np.ndarray | None = None
        lengths = self.c.lengths
        if lengths:
            h = arr.copy()
            with np.errstate(over="ignore"):
                for k in range(1, lengths[-1] + 1):
                    if k > 1:  # in place on a shrinking view: no new array per length
                        h = h[:-1]
                        h *= NGRAM_MULTIPLIER
                        h += arr[k - 1 :]
                    if k == PAIR_K:
                        grams8 = h if k == lengths[-1] else h.copy()
                    if k in self.c.length_set and len(h):
                        ng = h[max(0, c - k + 1) :]
                        if k == lengths[-1]:
                            _, pos = self.c.exact.lookup(ng)
                        else:
                            _, spos = self.c.short.lookup(ng)
                            pos = self.c.short_pos[spos]
                        if len(pos):
                            new = np.unique(pos[~self.seen[pos]])
                            if len(new):
                                self.seen[new] = True
                                self.touched.append(new)
        if len(self.c.pairs):
            if grams8 is None:
                grams8 = ngrams(arr, PAIR_K)
            start = max(0, c - PAIR_K + 1)
            qi, _ = self.c.pairs.lookup(grams8[start:])
            qi += start
            self._pairs(arr, c, base, qi, grams8[qi])
        self.carry = arr[-self.carry_len :]

    def _work(self, n: int) -> dict[str, np.ndarray]:
        """The compiled path's work buffers for a block of ``n`` bytes, kept between blocks (a
        fresh array costs a page fault every 4 KiB written)."""
        w = self.work
        # the kernels do not check bounds: every buffer holds the carry, then a token or an
        # n-gram per byte of the block (the fuzzy ones a window more)
        if len(w.get("g", ())) < n + self.carry_len + 9:
            m = max(n, BLOCK) + self.carry_len + 8
            w |= {
                "low": np.empty(m // 8 + 3, dtype=np.uint64),  # the lowercased bytes, as words
                "edges": np.empty(m + 16, dtype=np.int64),
                "stream": np.empty(m, dtype=np.uint64),
                "g": np.empty(m + 1, dtype=np.uint64),
                "hs": np.empty(m, dtype=np.uint64),
                "cand": np.empty(m, dtype=np.int64),
                "pair_at": np.empty(m, dtype=np.int64),
                "pair_h": np.empty(m, dtype=np.uint64),
                "fz_pos": np.empty(m + FUZZY_WINDOW, dtype=np.int64),
                "fz_aid": np.empty(m + FUZZY_WINDOW, dtype=np.int64),
                "fz_touched": np.empty(len(self.c.counts), dtype=np.int64),
            }
        return w

    def _process_compiled(self, raw: np.ndarray) -> None:
        """:meth:`_process` of the block's tokens through the compiled kernels (same results):
        the tokens are hashed into a stream buffer after the carry."""
        k, cc = self.kernels, self.c
        assert k is not None
        w = self._work(len(raw))
        c = len(self.carry)
        stream = w["stream"]
        stream[:c] = self.carry
        nt, long_at, nl = k.hash_tokens(raw, w["low"], w["edges"], stream[c:])
        for t, s, n in long_at[:nl].tolist():  # word bytes: ASCII lowercasing is the tokeniser's
            stream[c + t] = long_hash(raw[s : s + n].tobytes().lower())
        if nt == 0:
            return
        arr = stream[: c + nt]
        th = arr[c:]
        base = self.tokens - c  # global token position of arr[0]
        self.tokens += nt
        if cc.fz_n is not None:
            fz = cc.fuzzy
            self.fz_carry = k.fuzzy_windows(
                th, self.pos_base, *self.fz_carry, fz.bitmap, fz.sorted, fz.shift, cc.fz_inv_ptr, cc.fz_inv_entries,
                self.fz_best, self.fz_cnt, self.fz_stamp, self.fz_clock, FUZZY_WINDOW, w["fz_pos"], w["fz_aid"],
                w["fz_touched"], w["cand"],
            )  # fmt: skip
            self.pos_base += nt
        pair_k = PAIR_K if len(cc.pairs) else 0
        ex, sh, pr = cc.exact, cc.short, cc.pairs
        pair_at, pair_h = w["pair_at"], w["pair_h"]
        self.n_touched, npair = k.block_ngrams(
            arr, c, cc.k_full, cc.k_short, ex.bitmap, ex.sorted, ex.shift, cc.exact_dir, cc.exact_dshift,
            sh.bitmap, sh.sorted, sh.shift, cc.short_pos, self.seen, self.touched_buf, self.n_touched, pair_k,
            pr.bitmap, pr.sorted, pr.shift, pair_at, pair_h, w["g"], w["hs"], w["cand"],
        )  # fmt: skip
        if pair_k:
            self._pairs(arr, c, base, pair_at[:npair].copy(), pair_h[:npair].copy())
        self.carry = arr[-self.carry_len :].copy()

    def _pairs(self, arr: np.ndarray, c: int, base: int, qi: np.ndarray, qh: np.ndarray) -> None:
        """Question prefixes with their answer token nearby (before, or after: maybe in a later
        chunk): ``qi``, the positions in ``arr`` of the new prefix candidates, ``qh`` their hashes."""
        idx = self.index
        end = base + len(arr)  # global position after arr
        still: list[tuple[int, int]] = []
        for e, last in self.pending:
            hi = min(len(arr), last + 1 - base)
            if hi > c and np.any(arr[c:hi] == idx.pair_answer[e]):
                self.pair_found.add(e)
            elif last >= end:
                still.append((e, last))
        self.pending = still
        for i, h in zip(qi.tolist(), qh.tolist()):
            lo_e = int(np.searchsorted(self.c.pair_sorted, h, "left"))
            hi_e = int(np.searchsorted(self.c.pair_sorted, h, "right"))
            for e in self.c.pair_order[lo_e:hi_e].tolist():
                ans = idx.pair_answer[e]
                before = arr[max(0, i - PAIR_WINDOW) : i]
                after = arr[i + PAIR_K : i + PAIR_K + PAIR_WINDOW]
                if np.any(before == ans) or np.any(after == ans):
                    self.pair_found.add(e)
                elif i + PAIR_K + PAIR_WINDOW > len(arr):
                    self.pending.append((e, base + i + PAIR_K + PAIR_WINDOW - 1))

    def _fuzzy(self, th: np.ndarray) -> None:
        """Per entry, the most of its anchors found in one window of ``FUZZY_WINDOW`` tokens
        (windows start every half window, so the count of a span of up to half a window is exact)."""
        half = FUZZY_WINDOW // 2
        qi, aid = self.c.fuzzy.lookup(th)
        pos = qi.astype(np.int64) + self.pos_base
        pos = np.concatenate([self.fz_carry[0], pos])
        aid = np.concatenate([self.fz_carry[1], aid.astype(np.int64)])
        self.pos_base += len(th)
        keep = pos >= self.pos_base - FUZZY_WINDOW
        self.fz_carry = (pos[keep], aid[keep])
        if len(pos) == 0:
            return
        n_a = len(self.index.fz_hashes)
        w1 = pos // half
        w = np.concatenate([w1, w1 - 1])
        a = np.concatenate([aid, aid])
        ok = w >= 0
        key = _sorted_unique(w[ok] * n_a + a[ok])
        wk, ak = key // n_a, key % n_a
        where, owner = expand(self.c.fz_inv_ptr, ak)
        if len(where) == 0:
            return
        n_e = len(self.c.counts)
        k2 = (wk[owner] - wk.min()) * n_e + self.c.fz_inv_entries[where]
        k2.sort()
        starts = np.flatnonzero(np.concatenate(([True], k2[1:] != k2[:-1])))
        counts = np.diff(np.append(starts, len(k2)))
        k2 = k2[starts]
        np.maximum.at(self.fz_best, k2 % n_e, counts)

    # ------------------------------------------------------------------ results
    def containment(self) -> np.ndarray:
        """Per entry: fraction of its indexed n-grams seen in the current document."""
        found = np.zeros(len(self.c.counts), dtype=np.int64)
        if self.touched or self.n_touched:
            u = np.concatenate([*self.touched, self.touched_buf[: self.n_touched]])
            where, _ = expand(self.c.inv_ptr, u)
            found = np.bincount(self.c.inv_entries[where], minlength=len(self.c.counts))
        return found / np.maximum(self.c.counts, 1)

    def fuzzy_containment(self) -> np.ndarray:
        """Per entry: the largest fraction of its anchors seen within one window (0 if none)."""
        if self.c.fz_n is None:
            return np.zeros(len(self.c.counts))
        return np.where(self.c.fz_n > 0, self.fz_best / np.maximum(self.c.fz_n, 1), 0.0)


@dataclass
class FileResult:
    """What one fed document gave."""

    name: str
    digest: str
    bytes_read: int
    tokens: int
    hits: list[dict]
    near: list[dict]
    layers: dict[str, int] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Digesting:
    """Reads through, hashing and counting what it yields. The digest is a security hash (the
    memo answers content by it: a collision would hide a file), SHA-256: with the SHA
    instructions of current CPUs it costs half of blake2b (~1.5 GB/s per core here), and it is
    the hash the observer records and the preserved copies are named by."""

    def __init__(self, inner: Readable):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.h.update(data)
        self.n += len(data)
        return data

    def readable(self) -> bool:
        return True


def _drain(src: _Digesting) -> None:
    while src.read(BLOCK):
        pass


class IncrementalScan:
    """The contamination scan as a stream of documents (see the module docstring).

    ``decode_ids``/``vocab_size``: the base model tokenizer's decode and vocabulary size, so
    token-id sequences are read as text (None: they are not). ``compiled``: use the compiled
    kernels (:mod:`.kernel`) when numba is installed, compiled into or read from ``jit_cache``
    (None: compiled in this process); False: numpy's path. Both give the same results. Not
    thread-safe: one feeder.
    """

    def __init__(
        self,
        index: ContaminationIndex | Path,
        evidence_dir: Path | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
        max_hits: int = 0,
        limits: Limits = Limits(),  # noqa: B008 - frozen
        decode_ids: Callable[[np.ndarray], str] | None = None,
        vocab_size: int | None = None,
        compiled: bool = True,
        jit_cache: Path | None = None,
    ):
        self.index = index if isinstance(index, ContaminationIndex) else ContaminationIndex.load(Path(index))
        self.evidence_dir = evidence_dir
        self.threshold, self.fuzzy_threshold, self.max_hits = threshold, fuzzy_threshold, max_hits
        self.limits = limits
        self.decode_ids, self.vocab_size = decode_ids, vocab_size
        kernels = load(jit_cache) if compiled else None
        self.scanner = Scanner(self.index, decode_ids, kernels)
        self.results: list[FileResult] = []
        self.by_digest: dict[str, FileResult] = {}
        self.by_stat: dict[tuple[int, ...], str] = {}
        self.skipped: list[dict] = []
        self.memo_hits = 0
        self.seconds = 0.0
        self.roots: list[str] = []
        # which path scanned, and what loading the kernels cost (once per process: compiled or cached)
        self.notes: dict[str, Any] = {
            "scan_kernel": "numba" if kernels else "numpy",
            "kernel_load_s": kernels.compile_s if kernels else None,
        }

    # ------------------------------------------------------------------ feeding
    def feed(self, name: str, stream: Readable, size: int | None = None, digest: str | None = None) -> FileResult:
        """Scan one stream as a document (``digest``: its content digest if the caller knows
        it; content already scanned under that digest is not scanned again)."""
        if digest is not None and digest in self.by_digest:
            return self._memo(name, self.by_digest[digest])
        return self._run(name, stream, size if size is not None else 0, None, digest)

    def feed_text(self, name: str, blob: bytes) -> FileResult:
        """Scan a text that is no file (names under the roots, what the agent typed), named
        ``<...>``; memoised by its digest like any content."""
        return self.feed(name, io.BytesIO(blob), len(blob), digest=hashlib.sha256(blob).hexdigest())

    def feed_path(self, path: Path | str, name: str | None = None) -> FileResult | None:
        """Scan a regular file (None if it is not one: recorded as skipped); memoised."""
        path = str(path)
        name = name or path
        try:
            st = os.stat(path)
        except OSError as exc:
            self.skipped.append({"file": name, "reason": f"unreadable: {exc}"})
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key in self.by_stat:
            return self._memo(name, self.by_digest[self.by_stat[key]])
        try:
            fh, _sparse = open_sparse_aware(path)
        except OSError as exc:
            self.skipped.append({"file": name, "reason": f"unreadable: {exc}"})
            return None
        with fh:
            res = self._run(name, fh, st.st_size, path, None)
        self.by_stat[key] = res.digest
        return res

    def _run(self, name: str, fh: Readable, size: int, path: str | None, digest: str | None) -> FileResult:
        t0 = time.monotonic()
        src = _Digesting(fh)
        sc = self.scanner
        sc.reset()
        dec = Decoder(sc, size, self.limits, self.decode_ids, self.vocab_size)
        report = dec.run(src, name, seekable_path=path)
        _drain(src)  # what the decoders did not read still counts in the digest
        res = FileResult(
            name=name,
            digest=digest or src.h.hexdigest(),
            bytes_read=src.n,
            tokens=sc.tokens,
            hits=[],
            near=[],
            layers=dict(report.layers),
            incomplete=report.incomplete,
            errors=report.errors,
        )
        self._score(res)
        self.results.append(res)
        self.by_digest.setdefault(res.digest, res)
        self.seconds += time.monotonic() - t0
        return res

    def _memo(self, name: str, prior: FileResult) -> FileResult:
        self.memo_hits += 1
        if name == prior.name:
            return prior
        res = FileResult(
            name=name,
            digest=prior.digest,
            bytes_read=0,
            tokens=0,
            hits=[dict(h, file=name) for h in prior.hits],
            near=[],
            layers=prior.layers,
            incomplete=[f"{name}: " + i.partition(": ")[2] for i in prior.incomplete],
            errors=[],
        )
        self.results.append(res)
        return res

    def save_results(self, path: Path) -> Path:
        """Write what was fed so far (per document: name, digest, hits, what was not fully
        scanned), e.g. by the observer at the end of the run, for the gate to load at verify."""
        from dataclasses import asdict

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"results": [asdict(r) for r in self.results], "skipped": self.skipped}))
        os.replace(tmp, path)
        return path

    def load_results(self, path: Path) -> int:
        """Add the documents a :meth:`save_results` file holds (their hits count in the verdict)."""
        data = json.loads(Path(path).read_text())
        for r in data["results"]:
            res = FileResult(**r)
            self.results.append(res)
            self.by_digest.setdefault(res.digest, res)
        self.skipped += data.get("skipped", [])
        return len(data["results"])

    def skip(self, name: str, reason: str) -> None:
        """Record a file the caller could not feed (listed in the evidence)."""
        self.skipped.append({"file": name, "reason": reason})

    def _score(self, res: FileResult) -> None:
        sc, idx = self.scanner, self.index
        cont = sc.containment()
        fz = sc.fuzzy_containment()
        for i in np.nonzero(cont >= self.threshold)[0]:
            res.hits.append(
                {
                    "item_id": idx.item_ids[i],
                    "file": res.name,
                    "containment": round(float(cont[i]), 4),
                    "channel": "exact",
                }
            )
        for i in np.nonzero((fz >= self.fuzzy_threshold) & (cont < self.threshold))[0]:
            res.hits.append(
                {
                    "item_id": idx.item_ids[i],
                    "file": res.name,
                    "containment": round(float(fz[i]), 4),
                    "channel": "fuzzy",
                }
            )
        exact = {h["item_id"] for h in res.hits}
        for item in sorted({idx.pair_ids[e] for e in sc.pair_found}):  # one row per item, not per prefix
            if item not in exact:
                res.hits.append({"item_id": item, "file": res.name, "containment": 1.0, "channel": "pair"})
        close = np.nonzero((cont < self.threshold) & (cont >= self.threshold / 2))[0]
        res.near = [
            {"item_id": idx.item_ids[i], "file": res.name, "containment": round(float(cont[i]), 4)} for i in close
        ][:20]

    # ------------------------------------------------------------------ verdict
    def report(self) -> dict[str, Any]:
        """The evidence: hits, what was scanned, skipped, decoded, not fully scanned."""
        hits = [h for r in self.results for h in r.hits]
        near = sorted((n for r in self.results for n in r.near), key=lambda h: -h["containment"])[:20]
        layers: dict[str, int] = {}
        for r in self.results:
            for k, v in r.layers.items():
                layers[k] = layers.get(k, 0) + v
        incomplete = [i for r in self.results for i in r.incomplete]
        bytes_read = sum(r.bytes_read for r in self.results)
        exact_items = {h["item_id"] for h in hits if h["channel"] == "exact"}
        files = [r for r in self.results if not _is_text(r.name)]
        return {
            "gate": GATE,
            "roots": self.roots,
            "index": {k: v for k, v in self.index.meta.items() if k != "unindexable"},
            "unindexable_items": self.index.meta.get("unindexable", {}),
            "threshold": self.threshold,
            "fuzzy_threshold": self.fuzzy_threshold,
            "fuzzy_hit_items": sorted({h["item_id"] for h in hits if h["channel"] == "fuzzy"} - exact_items),
            "pair_hit_items": sorted({h["item_id"] for h in hits if h["channel"] == "pair"}),
            "max_hits": self.max_hits,
            "hit_items": sorted({h["item_id"] for h in hits}),
            "hits": hits[:_LIST_CAP],
            "near_misses": near,
            "files_scanned_count": len(files),
            "files_scanned": [r.name for r in files][:_LIST_CAP],
            "texts_scanned": [r.name for r in self.results if _is_text(r.name)],  # names, trace, argv
            "files_skipped": self.skipped[:_LIST_CAP],
            "files_skipped_count": len(self.skipped),
            "incomplete": incomplete[:_LIST_CAP],
            "incomplete_count": len(incomplete),
            "decode_errors": [e for r in self.results for e in r.errors][:_LIST_CAP],
            "decoded_layers": layers,
            "memo_hits": self.memo_hits,
            "token_ids_decoded": self.decode_ids is not None,
            "bytes_scanned": bytes_read,
            "tokens_scanned": sum(r.tokens for r in self.results),
            "seconds": round(self.seconds, 3),
            "throughput_mb_s": round(bytes_read / 1e6 / self.seconds, 3) if self.seconds > 0 else None,
            **self.notes,
        }

    def verdict(self) -> Verdict:
        """failed (more than max_hits items hit), else not_run (content not fully scanned), else passed."""
        report = self.report()
        ev = write_evidence(self.evidence_dir, GATE, report)
        all_hits = [h for r in self.results for h in r.hits]
        in_files = {h["item_id"] for h in all_hits if not _is_typed(h["file"])}
        typed_only = sorted({h["item_id"] for h in all_hits} - in_files)
        hit_items = sorted(in_files) + (typed_only if len(typed_only) >= TYPED_MIN_ITEMS else [])
        best: dict[str, dict] = {}
        for h in report["hits"]:
            if h["item_id"] not in best or h["containment"] > best[h["item_id"]]["containment"]:
                best[h["item_id"]] = h
        n_inc = report["incomplete_count"]
        tail = f"{sum(not _is_text(r.name) for r in self.results)} files scanned" + (
            f", {len(self.skipped)} skipped" if self.skipped else ""
        )
        if len(hit_items) > self.max_hits:
            shown = [f"{i} ({best[i]['file']}, {best[i]['containment']:.2f})" for i in hit_items]
            return verdict(
                GATE,
                VerdictStatus.failed,
                f"{len(hit_items)} test items found in reachable files: {short_list(shown, 5)}; {tail}",
                ev,
            )
        if n_inc:
            return verdict(
                GATE,
                VerdictStatus.not_run,
                f"{n_inc} files or members not fully scanned: {short_list(report['incomplete'], 3)}; {tail}",
                ev,
            )
        extra = f" ({len(hit_items)} item hits within max_hits={self.max_hits})" if hit_items else ""
        if typed_only and len(typed_only) < TYPED_MIN_ITEMS:
            extra += f" ({len(typed_only)} typed into commands, under {TYPED_MIN_ITEMS}: {', '.join(typed_only)})"
        return verdict(
            GATE, VerdictStatus.passed, f"no test item above containment {self.threshold}{extra}; {tail}", ev
        )


def _is_typed(name: str) -> bool:
    """Whether a fed name is one of the texts of what the agent typed (trace inputs, observed argv)."""
    return name in (TRACE_INPUTS, OBSERVED_ARGV)


def _is_text(name: str) -> bool:
    """Whether a fed name is one of the texts that are no file (``<names under …>``,
    ``<trace: …>``, ``<observed: …>``)."""
    return name.startswith("<") and name.endswith(">")


def walk(roots: Iterable[Path], exclude: Iterable[Path], skipped: list[dict]) -> Iterator[tuple[Path, str]]:
    """(path, real path) of every regular file to scan under the roots: ``.git`` and
    ``__pycache__`` skipped, folder symlinks not followed (listed), file symlinks followed when
    their target lies inside a root (listed otherwise), excluded paths left out."""
    existing = [Path(os.path.realpath(r)) for r in roots if Path(r).exists()]
    root_reals = [str(r) for r in existing]
    excluded = [os.path.realpath(p) for p in exclude]

    def under(rp: str, bases: list[str]) -> bool:
        return any(rp == b or rp.startswith(b.rstrip(os.sep) + os.sep) for b in bases)

    for root in existing:
        if root.is_file():
            yield root, str(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for d in dirnames:
                dp = os.path.join(dirpath, d)
                if os.path.islink(dp):
                    skipped.append({"file": dp, "reason": f"folder symlink to {os.readlink(dp)} (not followed)"})
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and not under(os.path.join(dirpath, d), excluded)
            )
            for fn in sorted(filenames):
                path = Path(dirpath, fn)
                if under(str(path), excluded):
                    continue
                if path.is_symlink():
                    real = os.path.realpath(path)
                    if not under(real, root_reals):
                        skipped.append(
                            {"file": str(path), "reason": f"symlink to {os.readlink(path)}, outside the scan roots"}
                        )
                        continue
                    if under(real, excluded):
                        continue
                    yield path, real
                else:
                    yield path, str(path)


@guarded(GATE)
def scan(
    index: ContaminationIndex | Path,
    roots: list[Path],
    evidence_dir: Path | None = None,
    size_budget_bytes: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_hits: int = 0,
    exclude: Iterable[Path] = (),
    fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
    *,
    incremental: IncrementalScan | None = None,
    decode_ids: Callable[[np.ndarray], str] | None = None,
    vocab_size: int | None = None,
) -> Verdict:
    """Scan every file under ``roots`` (no size cap: ``size_budget_bytes`` is ignored, kept for
    callers) for test items; fail on more than ``max_hits`` items. ``incremental``: add to a scan
    fed during the run (its memo makes the files it already saw free, and its hits count too)."""
    inc = incremental or IncrementalScan(
        index,
        evidence_dir,
        threshold=threshold,
        fuzzy_threshold=fuzzy_threshold,
        max_hits=max_hits,
        decode_ids=decode_ids,
        vocab_size=vocab_size,
    )
    if evidence_dir is not None:
        inc.evidence_dir = evidence_dir
    if len(inc.index) == 0:
        return not_run(GATE, "contamination index is empty (no indexable test item)")
    roots = [Path(r) for r in roots]
    if not any(r.exists() for r in roots):
        return not_run(GATE, f"no scan root exists: {short_list([str(r) for r in roots])}")
    inc.roots += [str(r) for r in roots]
    done: set[str] = set()
    names = FileNames()
    for path, real in walk(roots, exclude, inc.skipped):
        names.add(path, real)
        if real in done:
            continue
        done.add(real)
        inc.feed_path(real, name=str(path))
    names.feed(inc, roots)
    return inc.verdict()
