"""The contamination index: hash-only n-grams of the test items, and the fuzzy channel's anchors.

The index is built *outside* the sandbox from the test items and never shipped into it; it
holds only 64-bit n-gram hashes, no text.

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

Fuzzy channel (reordered / paraphrased items)
    Per indexed entry, its *anchors*: number tokens and alphabetic tokens of four letters or
    more outside a stop list, minus anchors shared by more than ``FUZZY_MAX_ITEMS = 10`` items;
    entries with fewer than ``FUZZY_MIN_ANCHORS = 7`` anchors get none (short items, e.g. the
    calculator steps of gsm8k-calc, are left to the exact channel; 6 let a number-randomised
    copy of the train split, an honest augmentation, hit one item at 5/6 once every benchmark's
    items were indexed and so fewer anchors stayed uncommon). Calibration: each allowed
    text is scored as one window, and an entry whose anchors an allowed text already holds at
    ``>= 0.7`` (threshold minus ``FUZZY_ALLOWED_MARGIN``) gets none (listed in the index meta).
    Scan: the token stream is cut into windows of ``FUZZY_WINDOW = 256`` tokens starting every
    128 tokens; an entry's fuzzy containment is the largest fraction of its anchors found in one
    window. A fuzzy hit is ``>= DEFAULT_FUZZY_THRESHOLD = 0.8`` (and not already an exact hit);
    hits carry ``"channel": "exact" | "fuzzy" | "pair"``. On GSM8K (1319 test items minus the
    7473 train texts) 646 items get anchors; the red-team paraphrase (statements reordered, ~25
    common words swapped for synonyms) of 200 items is caught for 140 (33 by exact 8-grams, 82
    more by anchors, 25 more by question prefix + answer), and neither the whole train split,
    reformatted, nor 20 MB of it with every number randomised (JSONL or Parquet) gives a hit.

Pair channel (a table of question prefixes and answers)
    Per ``(item_id, question, answer)`` given: up to ``PAIR_PREFIXES = 4`` ``PAIR_K = 8``-grams
    from the start of the question past any instruction the items share (its n-grams are
    boilerplate: in more than ``max_shared_items`` items), minus those in the allowed data, each
    with the hash of the answer's last word token. A hit is one of them with the answer token
    within ``PAIR_WINDOW = 32`` tokens before or after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .tokens import HASH_SCHEME, HashSet, anchors, expand, member, ngrams, postings, text_hashes, token_hashes, tokenize

DEFAULT_N = 8
DEFAULT_MAX_SHARED_ITEMS = 3
DEFAULT_MIN_ITEM_TOKENS = 4
DEFAULT_MAX_ALLOWED_FRACTION = 0.5
DEFAULT_FUZZY_THRESHOLD = 0.8
FUZZY_WINDOW = 256  # tokens; windows overlap by half, so any span of <= 128 tokens lies in one
FUZZY_MIN_ANCHORS = 7
FUZZY_MAX_ITEMS = 10
FUZZY_ALLOWED_MARGIN = 0.1
PAIR_K = 8  # tokens of a question prefix
PAIR_WINDOW = 32  # tokens before or after the prefix where its answer token must be
PAIR_PREFIXES = 4  # prefix n-grams indexed per item (the question's first, from its start on)


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
    # pair channel: per pair entry, a question-prefix PAIR_K-gram hash, the answer token hash, the item
    pair_prefix: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    pair_answer: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    pair_ids: list[str] = field(default_factory=list)

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
            pair_prefix=self.pair_prefix.astype(np.uint64),
            pair_answer=self.pair_answer.astype(np.uint64),
            pair_ids=np.array(self.pair_ids, dtype=str),
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
                pair_prefix=z["pair_prefix"].astype(np.uint64) if "pair_prefix" in z else np.empty(0, np.uint64),
                pair_answer=z["pair_answer"].astype(np.uint64) if "pair_answer" in z else np.empty(0, np.uint64),
                pair_ids=[str(x) for x in z["pair_ids"]] if "pair_ids" in z else [],
            )


def save_index(index: ContaminationIndex, path: Path) -> Path:
    return index.save(path)


def load_index(path: Path) -> ContaminationIndex:
    return ContaminationIndex.load(path)


def build_index(
    items: list[tuple[str, str]],
    allowed_texts: Iterable[str],
    n: int = DEFAULT_N,
    max_shared_items: int = DEFAULT_MAX_SHARED_ITEMS,
    min_item_tokens: int = DEFAULT_MIN_ITEM_TOKENS,
    max_allowed_fraction: float = DEFAULT_MAX_ALLOWED_FRACTION,
    pairs: Iterable[tuple[str, str, str]] = (),
) -> ContaminationIndex:
    """Index ``(item_id, text)`` entries, minus n-grams of ``allowed_texts`` and boilerplate;
    ``pairs``: ``(item_id, question, answer)`` for the pair channel."""
    if n < 1:
        raise ValueError("n must be >= 1")
    pair_list = list(pairs)
    entry_ids: list[str] = []
    entry_k: list[int] = []
    entry_sets: list[np.ndarray] = []
    entry_toks: list[list[str]] = []
    unindexable: dict[str, str] = {}
    for item_id, text in items:
        toks = tokenize(text)
        th = text_hashes(text)
        if len(th) < min_item_tokens:
            unindexable[str(item_id)] = f"only {len(th)} tokens (< {min_item_tokens})"
            continue
        k = min(n, len(th))
        entry_ids.append(str(item_id))
        entry_k.append(k)
        entry_sets.append(np.unique(ngrams(th, k)))
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
    p_ids, p_prefix, p_answer, pair_meta = _pair_candidates(pair_list, max_shared_items)
    prefix_set = HashSet(p_prefix)
    prefix_allowed = np.zeros(len(prefix_set), dtype=bool)
    cand_set = HashSet(candidates)
    for text in allowed_texts:
        allowed_count += 1
        th = text_hashes(text)
        allowed_hashes.append(th)
        for k in lengths:
            _, pos = cand_set.lookup(ngrams(th, k))
            removed[pos] = True
        if len(prefix_set):
            _, pos = prefix_set.lookup(ngrams(th, PAIR_K))
            prefix_allowed[pos] = True
    kept = candidates[~removed]
    if len(prefix_set):
        ok = ~member(prefix_set.sorted[prefix_allowed], p_prefix)[0]
        pair_meta["prefixes_in_allowed_data"] = int((~ok).sum())
        p_ids, p_prefix, p_answer = [i for i, k in zip(p_ids, ok) if k], p_prefix[ok], p_answer[ok]
    pair_meta["entries"] = len(p_ids)
    pair_meta["items"] = len(set(p_ids))

    ids_out: list[str] = []
    ks_out: list[int] = []
    toks_out: list[list[str]] = []
    ptr = [0]
    idx_parts: list[np.ndarray] = []
    allowed_h = candidates[removed]
    for item_id, k, s, toks in zip(entry_ids, entry_k, entry_sets, entry_toks):
        _mask, pos = member(kept, s)
        in_allowed = int(member(allowed_h, s)[0].sum())
        own = len(s) - int(member(boiler, s)[0].sum())
        if in_allowed and in_allowed >= max_allowed_fraction * own:
            unindexable.setdefault(
                item_id,
                f"{in_allowed}/{own} of its non-boilerplate n-grams are in the allowed training data "
                "(a duplicate of it)",
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
        "pairs": pair_meta,
        "scheme": HASH_SCHEME,
        "n": n,
        "max_shared_items": max_shared_items,
        "min_item_tokens": min_item_tokens,
        "max_allowed_fraction": max_allowed_fraction,
        "entries_given": len(items),
        "entries_indexed": len(ids_out),
        "items_indexed": len(set(ids_out)),
        "allowed_texts": allowed_count,
        "ngrams_boilerplate_removed": len(boiler),
        "ngrams_allowed_removed": int(removed.sum()),
        "ngrams_kept": len(kept),
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
        pair_prefix=p_prefix,
        pair_answer=p_answer,
        pair_ids=p_ids,
    )


def _pair_candidates(
    pairs: list[tuple[str, str, str]], max_shared_items: int
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, Any]]:
    """Per item: up to ``PAIR_PREFIXES`` ``PAIR_K``-grams from the start of its question (after
    the instruction it shares with other items: n-grams of more than ``max_shared_items`` items
    are boilerplate, and the first n-gram past a leading run of them starts the question), each
    with the hash of the answer's last word token."""
    grams: list[np.ndarray] = []
    answers: list[int | None] = []
    for _, question, answer in pairs:
        grams.append(ngrams(text_hashes(question), PAIR_K))
        words = [t for t in tokenize(answer) if t[:1].isalnum()]
        answers.append(int(token_hashes(words[-1:])[0]) if words else None)
    df: dict[int, set[str]] = {}
    for (item, _, _), g in zip(pairs, grams):
        for h in np.unique(g).tolist():
            df.setdefault(h, set()).add(item)
    boiler = {h for h, who in df.items() if len(who) > max_shared_items}
    ids: list[str] = []
    prefix: list[int] = []
    answer_h: list[int] = []
    no_answer = 0
    for (item, _, _), g, ans in zip(pairs, grams, answers):
        if ans is None:
            no_answer += 1
            continue
        seq = g.tolist()
        lead = 0
        while lead < len(seq) and seq[lead] in boiler:
            lead += 1
        start = lead + PAIR_K - 1 if lead else 0  # past the grams that straddle the instruction
        picked = [h for h in seq[start:] if h not in boiler][:PAIR_PREFIXES]
        for h in picked:
            ids.append(str(item))
            prefix.append(h)
            answer_h.append(ans)
    meta: dict[str, Any] = {
        "prefix_tokens": PAIR_K,
        "window_tokens": PAIR_WINDOW,
        "items_without_final_word": no_answer,
    }
    return ids, np.array(prefix, dtype=np.uint64), np.array(answer_h, dtype=np.uint64), meta


def _build_fuzzy(
    ids: list[str], toks: list[list[str]], allowed: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Anchor sets per entry: minus anchors shared by more than ``FUZZY_MAX_ITEMS`` items; an
    entry with fewer than ``FUZZY_MIN_ANCHORS`` anchors, or whose anchors an allowed text
    already holds at ``DEFAULT_FUZZY_THRESHOLD - FUZZY_ALLOWED_MARGIN``, gets none."""
    sets = [np.unique(token_hashes(sorted(anchors(t)))) for t in toks]
    df: dict[int, set[str]] = {}
    for i, s in zip(ids, sets):
        for h in s.tolist():
            df.setdefault(h, set()).add(i)
    common = np.array(sorted(h for h, who in df.items() if len(who) > FUZZY_MAX_ITEMS), dtype=np.uint64)
    sets = [s[~member(common, s)[0]] if len(common) else s for s in sets]
    few = {j for j, s in enumerate(sets) if len(s) < FUZZY_MIN_ANCHORS}
    pool = (
        np.unique(np.concatenate([s for j, s in enumerate(sets) if j not in few]))
        if len(few) < len(sets)
        else np.empty(0, np.uint64)
    )
    rows = [np.empty(0, np.int64) if j in few else np.searchsorted(pool, s) for j, s in enumerate(sets)]
    ptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    idx = np.concatenate(rows).astype(np.int64) if rows else np.empty(0, np.int64)
    # calibration: each allowed text is one window
    best = np.zeros(len(ids))
    if len(pool) and allowed:
        inv_e, inv_p = postings(ptr, idx, len(pool))
        n = np.maximum(np.diff(ptr), 1)
        for th in allowed:
            _, apos = member(pool, th)
            if len(apos) == 0:
                continue
            where, _ = expand(inv_p, np.unique(apos))
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
        "anchors": len(pool),
    }
    return pool, ptr, idx, meta


def build_index_cached(
    items: list[tuple[str, str]],
    allowed_texts: Iterable[str],
    cache_dir: Path | None,
    pairs: Iterable[tuple[str, str, str]] = (),
    **params: Any,
) -> ContaminationIndex:
    """:func:`build_index`, memoised on disk under ``cache_dir`` (outside any sandbox).

    The key is the sha256 of the hash scheme, the parameters, every item and every allowed
    text, so a changed data file or parameter builds a new index; an unreadable cache file is
    rebuilt. Building the GSM8K index (1319 items minus 7473 allowed texts) takes seconds;
    loading it, milliseconds.
    """
    allowed = list(allowed_texts)
    pairs = list(pairs)
    if cache_dir is None:
        return build_index(items, allowed, pairs=pairs, **params)
    h = hashlib.sha256(json.dumps([HASH_SCHEME, sorted(params.items())], default=str).encode())
    for item_id, text in items:
        h.update(b"\x00i" + str(item_id).encode() + b"\x00" + text.encode("utf-8", "surrogatepass"))
    for text in allowed:
        h.update(b"\x00a" + text.encode("utf-8", "surrogatepass"))
    for item_id, question, answer in pairs:
        h.update(b"\x00p" + "\x00".join((str(item_id), question, answer)).encode("utf-8", "surrogatepass"))
    path = Path(cache_dir) / f"index-{h.hexdigest()[:24]}.npz"
    if path.is_file():
        try:
            return ContaminationIndex.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
            pass
    index = build_index(items, allowed, pairs=pairs, **params)
    with contextlib.suppress(OSError):  # a read-only or full cache only costs the rebuild next time
        index.save(path)
    return index
