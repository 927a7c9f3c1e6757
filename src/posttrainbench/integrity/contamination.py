"""Contamination gate (v0): hash-only n-gram containment of benchmark test items.

The index is built *outside* the sandbox from the test items and never shipped into it; it
holds only 64-bit n-gram hashes, no text.

Tokenisation
    ``re.findall(r"\\w+|[^\\w\\s]", text.lower())``: words and single punctuation marks, so
    whitespace, line breaks and indentation never matter.
Hashes (scheme ``ptb-ngram-v1``)
    token hash = blake2b(token, digest_size=8) as little-endian uint64; n-gram hash =
    Horner polynomial of its token hashes with multiplier ``_P`` modulo 2**64. Vectorised
    with numpy, so a scan runs at several MB/s per core.
Index (``build_index``)
    Per item entry: the set of its n-grams (``n = 8``); an item with fewer than ``n`` tokens
    uses one n-gram of all its tokens (items under ``min_item_tokens = 4`` tokens are not
    indexed: they would match ordinary text). Then removed: every n-gram that occurs in the
    allowed training texts (so allowed data, e.g. GSM8K train, can never be a hit), and
    boilerplate, i.e. n-grams shared by more than ``max_shared_items = 3`` distinct items.
    An entry with at least ``max_allowed_fraction = 0.5`` of its non-boilerplate n-grams in
    the allowed data is a duplicate of allowed data: its few remaining n-grams (e.g. those
    bridging question and answer) would make a harmless reformatting of allowed data a hit,
    so it is not indexed. Such entries and those left with no n-gram are listed as
    ``unindexable``. The same item id may be given several times (e.g. question alone, and
    question + answer, to also catch question-only copies): each entry is scored on its own
    and a hit names the id.
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

Fuzzy channel (reordered / paraphrased items)
    Per indexed entry, its *anchors*: number tokens and alphabetic tokens of four letters or
    more outside a stop list, minus anchors shared by more than ``FUZZY_MAX_ITEMS = 10`` items;
    entries with fewer than ``FUZZY_MIN_ANCHORS = 6`` anchors get none (short items, e.g. the
    calculator steps of gsm8k-calc, are left to the exact channel). Calibration: each allowed
    text is scored as one window, and an entry whose anchors an allowed text already holds at
    ``>= 0.7`` (threshold minus ``FUZZY_ALLOWED_MARGIN``) gets none (listed in the index meta).
    Scan: the token stream is cut into windows of ``FUZZY_WINDOW = 256`` tokens starting every
    128 tokens; an entry's fuzzy containment is the largest fraction of its anchors found in one
    window. A fuzzy hit is ``>= DEFAULT_FUZZY_THRESHOLD = 0.8`` (and not already an exact hit);
    hits carry ``"channel": "exact" | "fuzzy"``. On GSM8K (1319 test items minus the 7473 train
    texts) 787 items get anchors; the red-team paraphrase (statements reordered, ~25 common words
    swapped for synonyms) of 200 items is caught for 138 (44 by exact 8-grams, 94 more by
    anchors), and the whole train split, reformatted, gives no hit.

Known gaps: a paraphrase that also rewrites the numbers and names, and translations, are not
caught; data in archives, databases or binary formats other than parquet/arrow is not read;
containment is per file, so an item split across files is missed.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import json
import lzma
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..domain import Verdict, VerdictStatus
from ._common import guarded, not_run, short_list, verdict, write_evidence

GATE = "contamination"
HASH_SCHEME = "ptb-ngram-v1"
DEFAULT_N = 8
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_SHARED_ITEMS = 3
DEFAULT_MIN_ITEM_TOKENS = 4
DEFAULT_MAX_ALLOWED_FRACTION = 0.5
DEFAULT_FILE_BUDGET = 1 << 30  # 1 GiB per file
_P = np.uint64(0x9E3779B97F4A7C15)
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_CHUNK = 1 << 20
DEFAULT_FUZZY_THRESHOLD = 0.8
FUZZY_WINDOW = 256  # tokens; windows overlap by half, so any span of <= 128 tokens lies in one
FUZZY_MIN_ANCHORS = 6
FUZZY_MAX_ITEMS = 10
FUZZY_ALLOWED_MARGIN = 0.1
# Common words of four letters or more that carry no identity (shorter words never are anchors).
_STOP = frozenset(
    """that this with have from they will would there their what about which when make like time just
    know take into year your good some could them than then look only come over think also back after
    work first well even want because these give most were been much many more each other does such
    very where should said total left same next last both half times every much many need needs
    answer number numbers question following problem step solve final reply show calculate write
    what's how's many much does did done into onto upon than then them they their there here""".split()
)
_BATCH_TOKENS = 1 << 16
_LIST_CAP = 5000

TEXT_SUFFIXES = {
    ".jsonl", ".json", ".csv", ".tsv", ".txt", ".py", ".md", ".yaml", ".yml", ".html", ".htm",
    ".xml", ".ipynb", ".sh", ".tex", ".rst", ".jinja", ".j2", ".log", ".text", ".ndjson", ".toml",
    ".cfg", ".ini", ".js", ".ts", ".sql",
}
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".tgz", ".7z", ".rar", ".zst", ".eval"}
BINARY_SUFFIXES = {
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".npy", ".npz", ".pkl",
    ".pickle", ".so", ".pyc", ".pyo", ".o", ".a", ".dll", ".exe", ".png", ".jpg", ".jpeg", ".gif",
    ".webp", ".pdf", ".mp4", ".wav", ".mp3", ".whl", ".msgpack", ".h5", ".db", ".sqlite", ".lock",
    ".model",
}
SKIP_DIRS = {".git", "__pycache__", ".hg", ".svn"}

_ESCAPE_RE = re.compile(r'\\(u[0-9a-fA-F]{4}|[nrtbf"/\\])')
_ESCAPES = {"n": " ", "r": " ", "t": " ", "b": " ", "f": " ", '"': '"', "/": "/", "\\": "\\"}
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


# ----------------------------------------------------------------------------- hashing

_tok_cache: dict[str, int] = {}


def tokenize(text: str) -> list[str]:
    """Lowercased words and single punctuation marks."""
    return _TOKEN_RE.findall(text.lower())


def _blake(tok: str) -> int:
    return int.from_bytes(hashlib.blake2b(tok.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _token_hashes(tokens: list[str]) -> np.ndarray:
    """uint64 hash of every token; new tokens are hashed once and cached (C-level lookups)."""
    missing = set(tokens).difference(_tok_cache.keys())
    if missing:
        if len(_tok_cache) + len(missing) > 2_000_000:
            _tok_cache.clear()
            missing = set(tokens)
        _tok_cache.update((t, _blake(t)) for t in missing)
    return np.fromiter(map(_tok_cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def _ngrams(th: np.ndarray, k: int) -> np.ndarray:
    """Hashes of every k-gram of the token-hash array ``th`` (empty if shorter than k)."""
    m = len(th) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = th[:m].copy()
    for j in range(1, k):
        h *= _P
        h += th[j : j + m]
    return h


def _decode_escapes(text: str) -> str:
    if "\\" not in text:
        return text

    def rep(m: re.Match) -> str:
        s = m.group(1)
        return chr(int(s[1:], 16)) if s[0] == "u" else _ESCAPES[s]

    out = _ESCAPE_RE.sub(rep, text)
    if _SURROGATE_RE.search(out):
        out = out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return out


# ----------------------------------------------------------------------------- index


@dataclass
class ContaminationIndex:
    """Hash-only n-gram index of benchmark test items (CSR: entry -> indices into ``hashes``)."""

    n: int
    hashes: np.ndarray  # sorted unique uint64 n-gram hashes kept in the index
    item_ids: list[str]  # one per indexed entry (ids may repeat)
    item_ptr: np.ndarray  # int64, len(item_ids) + 1
    item_idx: np.ndarray  # int64 indices into ``hashes``
    item_k: np.ndarray  # int64 n-gram length of each entry (n, or the item length if shorter)
    meta: dict = field(default_factory=dict)
    # fuzzy channel (order-free anchors): sorted anchor token hashes, CSR entry -> anchors
    fz_hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    fz_ptr: np.ndarray | None = None
    fz_idx: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def lengths(self) -> list[int]:
        return sorted({int(k) for k in self.item_k})

    def __len__(self) -> int:
        return len(self.item_ids)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            scheme=np.array(HASH_SCHEME),
            n=np.array(self.n, dtype=np.int64),
            hashes=self.hashes.astype(np.uint64),
            item_ids=np.array(self.item_ids, dtype=str),
            item_ptr=self.item_ptr.astype(np.int64),
            item_idx=self.item_idx.astype(np.int64),
            item_k=self.item_k.astype(np.int64),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
            fz_hashes=self.fz_hashes.astype(np.uint64),
            fz_ptr=(self.fz_ptr if self.fz_ptr is not None else np.zeros(len(self.item_ids) + 1)).astype(np.int64),
            fz_idx=self.fz_idx.astype(np.int64),
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> ContaminationIndex:
        with np.load(Path(path), allow_pickle=False) as z:
            scheme = str(z["scheme"])
            if scheme != HASH_SCHEME:
                raise ValueError(f"index {path} uses hash scheme {scheme!r}, expected {HASH_SCHEME!r}")
            return cls(
                n=int(z["n"]),
                hashes=z["hashes"].astype(np.uint64),
                item_ids=[str(x) for x in z["item_ids"]],
                item_ptr=z["item_ptr"].astype(np.int64),
                item_idx=z["item_idx"].astype(np.int64),
                item_k=z["item_k"].astype(np.int64),
                meta=json.loads(str(z["meta"])),
                fz_hashes=z["fz_hashes"].astype(np.uint64) if "fz_hashes" in z else np.empty(0, np.uint64),
                fz_ptr=z["fz_ptr"].astype(np.int64) if "fz_ptr" in z else None,
                fz_idx=z["fz_idx"].astype(np.int64) if "fz_idx" in z else np.empty(0, np.int64),
            )


def save_index(index: ContaminationIndex, path: Path) -> Path:
    return index.save(path)


def load_index(path: Path) -> ContaminationIndex:
    return ContaminationIndex.load(path)


def _member(sorted_hashes: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of q found in sorted_hashes, their positions)."""
    if len(sorted_hashes) == 0 or len(q) == 0:
        return np.zeros(len(q), dtype=bool), np.empty(0, dtype=np.int64)
    pos = np.searchsorted(sorted_hashes, q)
    pos = np.minimum(pos, len(sorted_hashes) - 1)
    mask = sorted_hashes[pos] == q
    return mask, pos[mask]


def build_index(
    items: list[tuple[str, str]],
    allowed_texts: Iterable[str],
    n: int = DEFAULT_N,
    max_shared_items: int = DEFAULT_MAX_SHARED_ITEMS,
    min_item_tokens: int = DEFAULT_MIN_ITEM_TOKENS,
    max_allowed_fraction: float = DEFAULT_MAX_ALLOWED_FRACTION,
) -> ContaminationIndex:
    """Index ``(item_id, text)`` entries, minus n-grams of ``allowed_texts`` and boilerplate."""
    if n < 1:
        raise ValueError("n must be >= 1")
    entry_ids: list[str] = []
    entry_k: list[int] = []
    entry_sets: list[np.ndarray] = []
    entry_toks: list[list[str]] = []
    unindexable: dict[str, str] = {}
    for item_id, text in items:
        toks = tokenize(text)
        th = _token_hashes(toks)
        if len(th) < min_item_tokens:
            unindexable[str(item_id)] = f"only {len(th)} tokens (< {min_item_tokens})"
            continue
        k = min(n, len(th))
        entry_ids.append(str(item_id))
        entry_k.append(k)
        entry_sets.append(np.unique(_ngrams(th, k)))
        entry_toks.append(toks)

    # Boilerplate: n-grams shared by more than max_shared_items distinct item ids.
    id_codes = {i: c for c, i in enumerate(dict.fromkeys(entry_ids))}
    if entry_sets:
        all_h = np.concatenate(entry_sets)
        all_c = np.concatenate([np.full(len(s), id_codes[i], dtype=np.int64) for s, i in zip(entry_sets, entry_ids)])
        pairs = np.unique(np.stack([all_h, all_c.astype(np.uint64)], axis=1), axis=0)
        uniq, counts = np.unique(pairs[:, 0], return_counts=True)
    else:
        uniq, counts = np.empty(0, np.uint64), np.empty(0, np.int64)
    boiler = uniq[counts > max_shared_items]
    candidates = uniq[counts <= max_shared_items]

    # Allowed training data: drop every candidate n-gram it contains (any of the lengths used).
    removed = np.zeros(len(candidates), dtype=bool)
    lengths = sorted(set(entry_k))
    allowed_count = 0
    allowed_hashes: list[np.ndarray] = []  # kept for the fuzzy channel's calibration
    for text in allowed_texts:
        allowed_count += 1
        th = _token_hashes(tokenize(text))
        allowed_hashes.append(th)
        for k in lengths:
            _, pos = _member(candidates, _ngrams(th, k))
            removed[pos] = True
    kept = candidates[~removed]

    ids_out: list[str] = []
    ks_out: list[int] = []
    toks_out: list[list[str]] = []
    ptr = [0]
    idx_parts: list[np.ndarray] = []
    allowed_h = candidates[removed]
    for item_id, k, s, toks in zip(entry_ids, entry_k, entry_sets, entry_toks):
        mask, pos = _member(kept, s)
        in_allowed = int(_member(allowed_h, s)[0].sum())
        own = len(s) - int(_member(boiler, s)[0].sum())
        if in_allowed and in_allowed >= max_allowed_fraction * own:
            unindexable.setdefault(
                item_id,
                f"{in_allowed}/{own} of its non-boilerplate n-grams are in the allowed training data (a duplicate of it)",
            )
            continue
        if len(pos) == 0:
            unindexable.setdefault(item_id, "every n-gram is shared boilerplate")
            continue
        ids_out.append(item_id)
        ks_out.append(k)
        toks_out.append(toks)
        idx_parts.append(pos.astype(np.int64))
        ptr.append(ptr[-1] + len(pos))
    # an id indexed through another entry is not unindexable
    for i in set(ids_out):
        unindexable.pop(i, None)
    fz_hashes, fz_ptr, fz_idx, fz_meta = _build_fuzzy(ids_out, toks_out, allowed_hashes)
    meta = {
        "fuzzy": fz_meta,
        "scheme": HASH_SCHEME,
        "n": n,
        "max_shared_items": max_shared_items,
        "min_item_tokens": min_item_tokens,
        "max_allowed_fraction": max_allowed_fraction,
        "entries_given": len(items),
        "entries_indexed": len(ids_out),
        "items_indexed": len(set(ids_out)),
        "allowed_texts": allowed_count,
        "ngrams_boilerplate_removed": int(len(boiler)),
        "ngrams_allowed_removed": int(removed.sum()),
        "ngrams_kept": int(len(kept)),
        "unindexable": unindexable,
    }
    return ContaminationIndex(
        n=n,
        hashes=kept.astype(np.uint64),
        item_ids=ids_out,
        item_ptr=np.array(ptr, dtype=np.int64),
        item_idx=np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64),
        item_k=np.array(ks_out, dtype=np.int64),
        meta=meta,
        fz_hashes=fz_hashes,
        fz_ptr=fz_ptr,
        fz_idx=fz_idx,
    )


def _anchors(tokens: list[str]) -> set[str]:
    """Tokens that identify an item whatever its wording: numbers and uncommon words."""
    return {t for t in tokens if t.isdigit() or (len(t) >= 4 and t.isalpha() and t not in _STOP)}


def _postings(ptr: np.ndarray, idx: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of a CSR (entry -> keys): (entries sorted by key, key -> start pointer)."""
    counts = np.diff(ptr)
    entry_of = np.repeat(np.arange(len(counts)), counts)
    order = np.argsort(idx, kind="stable")
    return entry_of[order], np.searchsorted(idx[order], np.arange(n_keys + 1))


def _expand(inv_ptr: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions into the inverse postings, index into ``keys``) for every posting of keys."""
    starts, lens = inv_ptr[keys], inv_ptr[keys + 1] - inv_ptr[keys]
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(keys)), lens)
    offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    return np.repeat(starts, lens) + offsets, owner


def _build_fuzzy(ids: list[str], toks: list[list[str]], allowed: list[np.ndarray]):
    """Anchor sets per entry: minus anchors shared by more than ``FUZZY_MAX_ITEMS`` items; an
    entry with fewer than ``FUZZY_MIN_ANCHORS`` anchors, or whose anchors an allowed text
    already holds at ``DEFAULT_FUZZY_THRESHOLD - FUZZY_ALLOWED_MARGIN``, gets none."""
    sets = [np.unique(_token_hashes(sorted(_anchors(t)))) for t in toks]
    df: dict[int, set[str]] = {}
    for i, s in zip(ids, sets):
        for h in s.tolist():
            df.setdefault(h, set()).add(i)
    common = np.array(sorted(h for h, who in df.items() if len(who) > FUZZY_MAX_ITEMS), dtype=np.uint64)
    sets = [s[~_member(common, s)[0]] if len(common) else s for s in sets]
    few = {j for j, s in enumerate(sets) if len(s) < FUZZY_MIN_ANCHORS}
    pool = np.unique(np.concatenate([s for j, s in enumerate(sets) if j not in few])) if len(few) < len(sets) else np.empty(0, np.uint64)
    rows = [np.empty(0, np.int64) if j in few else np.searchsorted(pool, s) for j, s in enumerate(sets)]
    ptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    idx = np.concatenate(rows).astype(np.int64) if rows else np.empty(0, np.int64)
    # calibration: each allowed text is one window
    best = np.zeros(len(ids))
    if len(pool) and allowed:
        inv_e, inv_p = _postings(ptr, idx, len(pool))
        n = np.maximum(np.diff(ptr), 1)
        for th in allowed:
            _, apos = _member(pool, th)
            if len(apos) == 0:
                continue
            where, _ = _expand(inv_p, np.unique(apos))
            c = np.bincount(inv_e[where], minlength=len(ids))
            np.maximum(best, c / n, out=best)
    limit = DEFAULT_FUZZY_THRESHOLD - FUZZY_ALLOWED_MARGIN
    near_allowed = {j for j in range(len(ids)) if j not in few and best[j] >= limit}
    if near_allowed:
        rows = [np.empty(0, np.int64) if j in near_allowed else r for j, r in enumerate(rows)]
        ptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
        idx = np.concatenate(rows).astype(np.int64)
    meta = {
        "window_tokens": FUZZY_WINDOW,
        "min_anchors": FUZZY_MIN_ANCHORS,
        "max_items_per_anchor": FUZZY_MAX_ITEMS,
        "entries_with_anchors": int((np.diff(ptr) > 0).sum()),
        "entries_too_few_anchors": len(few),
        "entries_near_allowed_data": sorted({ids[j] for j in near_allowed}),
        "anchors": int(len(pool)),
    }
    return pool, ptr, idx, meta


def build_index_cached(
    items: list[tuple[str, str]],
    allowed_texts: Iterable[str],
    cache_dir: Path | None,
    **params,
) -> ContaminationIndex:
    """:func:`build_index`, memoised on disk under ``cache_dir`` (outside any sandbox).

    The key is the sha256 of the hash scheme, the parameters, every item and every allowed
    text, so a changed data file or parameter builds a new index; an unreadable cache file is
    rebuilt. Building the GSM8K index (1319 items minus 7473 allowed texts) takes seconds;
    loading it, milliseconds.
    """
    allowed = list(allowed_texts)
    if cache_dir is None:
        return build_index(items, allowed, **params)
    h = hashlib.sha256(json.dumps([HASH_SCHEME, sorted(params.items())], default=str).encode())
    for item_id, text in items:
        h.update(b"\x00i" + str(item_id).encode() + b"\x00" + text.encode("utf-8", "surrogatepass"))
    for text in allowed:
        h.update(b"\x00a" + text.encode("utf-8", "surrogatepass"))
    path = Path(cache_dir) / f"index-{h.hexdigest()[:24]}.npz"
    if path.is_file():
        try:
            return ContaminationIndex.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
            pass
    index = build_index(items, allowed, **params)
    try:
        index.save(path)
    except OSError:
        pass  # a read-only or full cache only costs the rebuild next time
    return index


# ----------------------------------------------------------------------------- reading


class _Budget(Exception):
    pass


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _iter_text_chunks(fh, budget: int) -> Iterator[str]:
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
            raise _Budget(f"decompressed size above the per-file budget ({budget} bytes)")
        text = tail + dec.decode(raw)
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        if cut < 0 and len(text) < 4 * _CHUNK:
            tail = text
            continue
        cut = len(text) if cut < 0 else cut + 1
        tail = text[cut:]
        yield _decode_escapes(text[:cut])
    rest = tail + dec.decode(b"", final=True)
    if rest:
        yield _decode_escapes(rest)


def _iter_arrow_texts(path: Path, fmt: str) -> Iterator[str]:
    """Every string (nested ones included) of a parquet or Arrow IPC file, batch by batch."""
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=512):
            for row in batch.to_pylist():
                yield from _strings(row)
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
                yield from _strings(row)


def _sniff(path: Path) -> str:
    """Kind of an extension-less (or unknown-extension) file from its first 8 KiB."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return "binary"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
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


class _Scanner:
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
        self.fz_n = np.diff(index.fz_ptr) if index.fz_ptr is not None and len(index.fz_hashes) else None
        if self.fz_n is not None:
            self.fz_inv_entries, self.fz_inv_ptr = _postings(index.fz_ptr, index.fz_idx, len(index.fz_hashes))
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
        mask, aid = _member(self.index.fz_hashes, th)
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
        where, owner = _expand(self.fz_inv_ptr, ak)
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
        th = _token_hashes(self.buf)
        self.buf = []
        if self.fz_n is not None:
            self._fuzzy(th)
        arr = np.concatenate([self.carry, th]) if len(self.carry) else th
        c = len(self.carry)
        for k in self.lengths:
            ng = _ngrams(arr, k)[max(0, c - k + 1) :]
            _, pos = _member(self.index.hashes, ng)
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


def _classify(path: Path, name: str) -> str:
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
    return _sniff(path)


def _read_texts(path: Path, kind: str, budget: int) -> Iterator[str]:
    if kind in ("parquet", "arrow"):
        yield from _iter_arrow_texts(path, kind)
        return
    opener = _OPENERS.get(kind, open)
    with opener(path, "rb") as fh:
        yield from _iter_text_chunks(fh, budget)


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
        import pyarrow  # noqa: F401

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

    scanner = _Scanner(index)
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
                    skipped.append({"file": str(path), "reason": f"symlink to {os.readlink(path)}, outside the scan roots"})
                    continue
            else:
                real = str(path)
            st = os.stat(real)
        except OSError as exc:
            skipped.append({"file": str(path), "reason": f"unreadable: {exc}"})
            continue
        if not stat.S_ISREG(st.st_mode) or real in done:
            continue
        kind = _classify(Path(real), path.name)
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
                {"file": str(path), "reason": f"above per-file budget ({st.st_size} > {size_budget_bytes} bytes)", "bytes": st.st_size}
            )
            continue
        done.add(real)
        scanner.reset()
        try:
            for text in _read_texts(Path(real), kind, size_budget_bytes):
                scanner.feed(text)
            cont = scanner.containment()
            fz = scanner.fuzzy_containment()
        except _Budget as exc:
            skipped.append({"file": str(path), "reason": str(exc), "bytes": st.st_size})
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the scan
            skipped.append({"file": str(path), "reason": f"read error: {type(exc).__name__}: {exc}", "bytes": st.st_size})
            continue
        n_scanned += 1
        bytes_scanned += st.st_size
        tokens_scanned += scanner.tokens
        if len(scanned) < _LIST_CAP:
            scanned.append(str(path))
        for i in np.nonzero(cont >= threshold)[0]:
            hits.append({"item_id": index.item_ids[i], "file": str(path), "containment": round(float(cont[i]), 4), "channel": "exact"})
        for i in np.nonzero((fz >= fuzzy_threshold) & (cont < threshold))[0]:
            hits.append({"item_id": index.item_ids[i], "file": str(path), "containment": round(float(fz[i]), 4), "channel": "fuzzy"})
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
        "fuzzy_hit_items": sorted({h["item_id"] for h in hits if h["channel"] == "fuzzy"} - {h["item_id"] for h in hits if h["channel"] == "exact"}),
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


def texts_from_files(paths: Iterable[Path]) -> Iterator[str]:
    """Every string in the given data files (jsonl/json/csv/txt/parquet/arrow, possibly .gz),
    read the way ``scan`` reads them: a convenience for ``build_index(allowed_texts=...)``."""
    for p in paths:
        p = Path(p)
        kind = _classify(p, p.name)
        if kind in ("archive", "binary"):
            raise ValueError(f"cannot read allowed data file {p} ({kind})")
        yield from _read_texts(p, kind, 1 << 62)
