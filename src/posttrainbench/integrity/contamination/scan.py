"""The contamination gate: scan every reachable file for the indexed test items.

Scan (``scan``)
    Walks the roots (``.git`` and ``__pycache__`` skipped; folder symlinks are not followed,
    file symlinks only when their target lies inside a root, each real file read once, so
    Hugging Face cache snapshots are read through their links to extension-less blobs),
    reads text-like files (``.jsonl .json .csv .tsv .txt .py .md ...``, their ``.gz/.bz2/.xz``
    versions, extension-less files that sniff as UTF-8 text, ``.parquet`` and ``.arrow`` via
    pyarrow) in 1 MiB chunks (constant memory per file, even for one-line files), with JSON
    string escapes (``\\n``, ``\\"``, ``\\uXXXX``) decoded so that JSON-encoded copies of an
    item tokenise like the item. Per (item entry, file): containment = fraction of the
    entry's indexed n-grams found in the file. A hit is containment >= ``threshold = 0.5``;
    the gate fails when more than ``max_hits = 0`` distinct items hit. Model weights and other
    binaries are ignored (counted); files above ``size_budget_bytes`` (1 GiB default),
    archives (zip/tar, not inspected), symlinks and unreadable files are listed as skipped.

Known gaps: a paraphrase that also rewrites the numbers and names, and translations, are not
caught; data in archives, databases or binary formats other than parquet/arrow is not read;
containment is per file, so an item split across files is missed.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ...domain import Verdict, VerdictStatus
from .._common import guarded, not_run, short_list, verdict, write_evidence
from .files import SKIP_DIRS, BudgetExceeded, classify, read_texts
from .index import DEFAULT_FUZZY_THRESHOLD, FUZZY_WINDOW, ContaminationIndex
from .tokens import expand, member, ngrams, postings, token_hashes, tokenize

GATE = "contamination"
DEFAULT_THRESHOLD = 0.5
DEFAULT_FILE_BUDGET = 1 << 30  # 1 GiB per file
_BATCH_TOKENS = 1 << 16
_LIST_CAP = 5000


class Scanner:
    """Token stream of one file at a time against the index; marks the n-grams seen.

    Work per file is proportional to the file and to the n-grams it matched, not to the index
    size (walking a virtualenv means many small files).
    """

    def __init__(self, index: ContaminationIndex):
        self.index = index
        self.lengths = index.lengths
        self.carry_len = max(self.lengths) - 1 if self.lengths else 0
        self.seen = np.zeros(len(index.hashes), dtype=bool)
        self.counts = np.diff(index.item_ptr)
        # inverse postings: hash position -> entries holding it
        entry_of = np.repeat(np.arange(len(self.counts)), self.counts)
        order = np.argsort(index.item_idx, kind="stable")
        self.inv_entries = entry_of[order]
        self.inv_ptr = np.searchsorted(index.item_idx[order], np.arange(len(index.hashes) + 1))
        self.touched: list[np.ndarray] = []
        fz_ptr = index.fz_ptr if len(index.fz_hashes) else None
        self.fz_n = np.diff(fz_ptr) if fz_ptr is not None else None
        if fz_ptr is not None:
            self.fz_inv_entries, self.fz_inv_ptr = postings(fz_ptr, index.fz_idx, len(index.fz_hashes))
        self.reset()

    def reset(self) -> None:
        if self.touched:
            self.seen[np.concatenate(self.touched)] = False
        self.touched = []
        self.carry = np.empty(0, dtype=np.uint64)
        self.buf: list[str] = []
        self.tokens = 0
        self.pos_base = 0
        self.fz_best = np.zeros(len(self.counts), dtype=np.int64)
        self.fz_carry = (np.empty(0, np.int64), np.empty(0, np.int64))

    def _fuzzy(self, th: np.ndarray) -> None:
        """Per entry, the most of its anchors found in one window of ``FUZZY_WINDOW`` tokens
        (windows start every half window, so the count of a span of up to half a window is exact)."""
        half = FUZZY_WINDOW // 2
        mask, aid = member(self.index.fz_hashes, th)
        pos = np.nonzero(mask)[0].astype(np.int64) + self.pos_base
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
        key = np.unique(w[ok] * n_a + a[ok])
        wk, ak = key // n_a, key % n_a
        where, owner = expand(self.fz_inv_ptr, ak)
        if len(where) == 0:
            return
        n_e = len(self.counts)
        k2, counts = np.unique((wk[owner] - wk.min()) * n_e + self.fz_inv_entries[where], return_counts=True)
        np.maximum.at(self.fz_best, k2 % n_e, counts)

    def feed(self, text: str) -> None:
        toks = tokenize(text)
        self.buf.extend(toks)
        self.tokens += len(toks)
        if len(self.buf) >= _BATCH_TOKENS:
            self._process()

    def _process(self) -> None:
        if not self.buf:
            return
        th = token_hashes(self.buf)
        self.buf = []
        if self.fz_n is not None:
            self._fuzzy(th)
        arr = np.concatenate([self.carry, th]) if len(self.carry) else th
        c = len(self.carry)
        for k in self.lengths:
            ng = ngrams(arr, k)[max(0, c - k + 1) :]
            _, pos = member(self.index.hashes, ng)
            new = np.unique(pos[~self.seen[pos]])
            if len(new):
                self.seen[new] = True
                self.touched.append(new)
        self.carry = arr[-self.carry_len :] if self.carry_len else np.empty(0, dtype=np.uint64)

    def containment(self) -> np.ndarray:
        """Per entry: fraction of its indexed n-grams seen in the current file."""
        self._process()
        found = np.zeros(len(self.counts), dtype=np.int64)
        if self.touched:
            u = np.concatenate(self.touched)
            starts, lens = self.inv_ptr[u], self.inv_ptr[u + 1] - self.inv_ptr[u]
            offsets = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
            found = np.bincount(self.inv_entries[np.repeat(starts, lens) + offsets], minlength=len(self.counts))
        return found / self.counts

    def fuzzy_containment(self) -> np.ndarray:
        """Per entry: the largest fraction of its anchors seen within one window (0 if none)."""
        self._process()
        if self.fz_n is None:
            return np.zeros(len(self.counts))
        return np.where(self.fz_n > 0, self.fz_best / np.maximum(self.fz_n, 1), 0.0)


@guarded(GATE)
def scan(
    index: ContaminationIndex | Path,
    roots: list[Path],
    evidence_dir: Path | None = None,
    size_budget_bytes: int = DEFAULT_FILE_BUDGET,
    threshold: float = DEFAULT_THRESHOLD,
    max_hits: int = 0,
    exclude: Iterable[Path] = (),
    fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
) -> Verdict:
    """Scan every text-like file under ``roots`` for test items; fail on more than ``max_hits`` items."""
    if not isinstance(index, ContaminationIndex):
        index = ContaminationIndex.load(Path(index))
    if len(index) == 0:
        return not_run(GATE, "contamination index is empty (no indexable test item)")
    roots = [Path(r) for r in roots]
    existing = [Path(os.path.realpath(r)) for r in roots if r.exists()]
    if not existing:
        return not_run(GATE, f"no scan root exists: {short_list([str(r) for r in roots])}")
    root_reals = [str(r) for r in existing]
    excluded = [os.path.realpath(p) for p in exclude]

    def under(rp: str, bases: list[str]) -> bool:
        return any(rp == b or rp.startswith(b.rstrip(os.sep) + os.sep) for b in bases)

    try:
        import pyarrow  # noqa: F401 - only: is pyarrow installed?

        have_arrow = True
    except ImportError:
        have_arrow = False

    def walk() -> Iterator[Path]:
        for root in existing:
            if root.is_file():
                yield root
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
                    yield Path(dirpath, fn)

    scanner = Scanner(index)
    t0 = time.monotonic()
    scanned: list[str] = []
    skipped: list[dict] = []
    ignored: dict[str, int] = {}
    hits: list[dict] = []
    near: list[dict] = []
    done: set[str] = set()  # real paths already scanned (a file reached by a link is read once)
    bytes_scanned = 0
    tokens_scanned = 0
    n_scanned = 0

    for path in walk():
        if under(str(path), excluded):
            continue
        try:
            if path.is_symlink():
                real = os.path.realpath(path)
                if not under(real, root_reals):
                    skipped.append(
                        {"file": str(path), "reason": f"symlink to {os.readlink(path)}, outside the scan roots"}
                    )
                    continue
            else:
                real = str(path)
            st = os.stat(real)
        except OSError as exc:
            skipped.append({"file": str(path), "reason": f"unreadable: {exc}"})
            continue
        if not stat.S_ISREG(st.st_mode) or real in done:
            continue
        kind = classify(Path(real), path.name)
        if kind == "binary":
            ext = path.suffix.lower() or "(none)"
            ignored[ext] = ignored.get(ext, 0) + 1
            continue
        if kind == "archive":
            skipped.append({"file": str(path), "reason": "archive not inspected", "bytes": st.st_size})
            continue
        if kind in ("parquet", "arrow") and not have_arrow:
            skipped.append({"file": str(path), "reason": "pyarrow not installed", "bytes": st.st_size})
            continue
        if st.st_size > size_budget_bytes:
            skipped.append(
                {
                    "file": str(path),
                    "reason": f"above per-file budget ({st.st_size} > {size_budget_bytes} bytes)",
                    "bytes": st.st_size,
                }
            )
            continue
        done.add(real)
        scanner.reset()
        try:
            for text in read_texts(Path(real), kind, size_budget_bytes):
                scanner.feed(text)
            cont = scanner.containment()
            fz = scanner.fuzzy_containment()
        except BudgetExceeded as exc:
            skipped.append({"file": str(path), "reason": str(exc), "bytes": st.st_size})
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the scan
            skipped.append(
                {"file": str(path), "reason": f"read error: {type(exc).__name__}: {exc}", "bytes": st.st_size}
            )
            continue
        n_scanned += 1
        bytes_scanned += st.st_size
        tokens_scanned += scanner.tokens
        if len(scanned) < _LIST_CAP:
            scanned.append(str(path))
        for i in np.nonzero(cont >= threshold)[0]:
            hits.append(
                {
                    "item_id": index.item_ids[i],
                    "file": str(path),
                    "containment": round(float(cont[i]), 4),
                    "channel": "exact",
                }
            )
        for i in np.nonzero((fz >= fuzzy_threshold) & (cont < threshold))[0]:
            hits.append(
                {
                    "item_id": index.item_ids[i],
                    "file": str(path),
                    "containment": round(float(fz[i]), 4),
                    "channel": "fuzzy",
                }
            )
        close = np.nonzero((cont < threshold) & (cont >= threshold / 2))[0]
        for i in close:
            near.append({"item_id": index.item_ids[i], "file": str(path), "containment": round(float(cont[i]), 4)})
        near = sorted(near, key=lambda h: -h["containment"])[:20]

    seconds = time.monotonic() - t0
    hit_items = sorted({h["item_id"] for h in hits})
    best: dict[str, dict] = {}
    for h in hits:
        if h["item_id"] not in best or h["containment"] > best[h["item_id"]]["containment"]:
            best[h["item_id"]] = h
    report = {
        "gate": GATE,
        "roots": [str(r) for r in roots],
        "index": {k: v for k, v in index.meta.items() if k != "unindexable"},
        "unindexable_items": index.meta.get("unindexable", {}),
        "threshold": threshold,
        "fuzzy_threshold": fuzzy_threshold,
        "fuzzy_hit_items": sorted(
            {h["item_id"] for h in hits if h["channel"] == "fuzzy"}
            - {h["item_id"] for h in hits if h["channel"] == "exact"}
        ),
        "max_hits": max_hits,
        "hit_items": hit_items,
        "hits": hits[:_LIST_CAP],
        "near_misses": near,
        "files_scanned_count": n_scanned,
        "files_scanned": scanned,
        "files_skipped": skipped[:_LIST_CAP],
        "files_skipped_count": len(skipped),
        "binary_files_ignored": ignored,
        "bytes_scanned": bytes_scanned,
        "tokens_scanned": tokens_scanned,
        "seconds": round(seconds, 3),
        "throughput_mb_s": round(bytes_scanned / 1e6 / seconds, 3) if seconds > 0 else None,
    }
    ev = write_evidence(evidence_dir, GATE, report)
    tail = f"{n_scanned} files scanned" + (f", {len(skipped)} skipped" if skipped else "")
    if len(hit_items) > max_hits:
        shown = [f"{i} ({best[i]['file']}, {best[i]['containment']:.2f})" for i in hit_items]
        return verdict(
            GATE,
            VerdictStatus.failed,
            f"{len(hit_items)} test items found in reachable files: {short_list(shown, 5)}; {tail}",
            ev,
        )
    extra = f" ({len(hit_items)} item hits within max_hits={max_hits})" if hit_items else ""
    return verdict(GATE, VerdictStatus.passed, f"no test item above containment {threshold}{extra}; {tail}", ev)
