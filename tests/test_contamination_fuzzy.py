"""The contamination gate's fuzzy channel: order-free anchors (numbers, uncommon words) of an
item found together within one window catch reordered/paraphrased items that share few exact
8-grams; allowed data and scattered words are not hits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.domain import VerdictStatus
from posttrainbench.integrity import ContaminationIndex, build_index, scan
from posttrainbench.integrity.contamination import tokenize
from test_red_team import paraphrase


@pytest.fixture(scope="module")
def gsm8k() -> tuple[ContaminationIndex, list, list[dict]]:
    bench = get_benchmark("gsm8k")
    items = bench.load_test_items()[:150]
    train = bench.load_train_examples()[:2500]
    index = build_index(
        [(it.id, f"{it.input}\n{it.target}") for it in items], [e["prompt"] + "\n" + e["completion"] for e in train]
    )
    return index, items, train


def _q(item) -> str:
    return item.input.partition("\n\n")[2]


def _hits(v) -> list[dict]:
    return json.loads(Path(v.evidence[0]).read_text())["hits"]


def test_paraphrased_items_in_allowed_data_are_caught_by_the_fuzzy_channel(gsm8k, tmp_path: Path) -> None:
    index, items, train = gsm8k
    assert index.meta["fuzzy"]["entries_with_anchors"] >= 60
    rows = [{"prompt": e["prompt"], "completion": e["completion"]} for e in train]
    rows += [{"prompt": paraphrase(_q(it)), "completion": f"The answer is {it.target}."} for it in items[:60]]
    random.Random(0).shuffle(rows)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "mix.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    v = scan(index, [tmp_path / "ws"], tmp_path)
    assert v.status == VerdictStatus.failed
    hits = _hits(v)
    fuzzy = {h["item_id"] for h in hits if h["channel"] == "fuzzy"}
    exact = {h["item_id"] for h in hits if h["channel"] == "exact"}
    assert len(fuzzy) >= 15 and not fuzzy & exact
    assert fuzzy <= {it.id for it in items[:60]}, "only the planted items"
    assert json.loads(Path(v.evidence[0]).read_text())["fuzzy_hit_items"] == sorted(fuzzy)


def test_allowed_data_reformatted_is_no_hit(gsm8k, tmp_path: Path) -> None:
    index, _, train = gsm8k
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "sft.jsonl").write_text(
        "".join(json.dumps({"text": f"### Q\n{e['prompt']}\n### A\n{e['completion']}"}) + "\n" for e in train)
    )
    v = scan(index, [tmp_path / "ws"], tmp_path)
    assert v.status == VerdictStatus.passed, v.summary


def test_anchors_must_occur_together(gsm8k, tmp_path: Path) -> None:
    """An item's words spread over a long file (a word every 300 tokens) are not an item."""
    index, items, _ = gsm8k
    filler = ("lorem ipsum " * 150).strip()
    words = [t for it in items[:60] for t in tokenize(_q(it))]
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "spread.txt").write_text("\n".join(f"{filler} {w}" for w in words))
    v = scan(index, [tmp_path / "ws"], tmp_path)
    assert v.status == VerdictStatus.passed, v.summary
    # the same words, each item's together, are hits
    (tmp_path / "ws" / "spread.txt").write_text(
        "\n".join(f"{filler} {' '.join(sorted(set(tokenize(_q(it)))))}" for it in items[:60])
    )
    v = scan(index, [tmp_path / "ws"], tmp_path)
    assert v.status == VerdictStatus.failed and any(h["channel"] == "fuzzy" for h in _hits(v))


def test_index_round_trip_keeps_the_fuzzy_channel(gsm8k, tmp_path: Path) -> None:
    index, _, _ = gsm8k
    back = ContaminationIndex.load(index.save(tmp_path / "i.npz"))
    assert np.array_equal(back.fz_hashes, index.fz_hashes) and np.array_equal(back.fz_ptr, index.fz_ptr)
    # an index saved before the fuzzy channel existed loads with the channel off
    with np.load(tmp_path / "i.npz") as z:
        old = {k: z[k] for k in z.files if not k.startswith("fz_")}
    np.savez(tmp_path / "old.npz", **old)
    legacy = ContaminationIndex.load(tmp_path / "old.npz")
    assert legacy.fz_ptr is None and len(legacy.fz_hashes) == 0
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("nothing here")
    assert scan(legacy, [tmp_path / "ws"], tmp_path).status == VerdictStatus.passed


def test_index_cache_is_keyed_by_content_and_survives_damage(tmp_path: Path) -> None:
    from posttrainbench.integrity import build_index_cached

    items = [
        ("a", "Janet's ducks lay 16 eggs per day and she sells them at the market"),
        ("b", "Weng earns 12 dollars an hour for babysitting"),
    ]
    allowed = ["Natalia sold clips to 48 of her friends in April"]
    first = build_index_cached(items, allowed, tmp_path)
    files = list(tmp_path.glob("index-*.npz"))
    assert len(files) == 1
    again = build_index_cached(items, allowed, tmp_path)
    assert np.array_equal(again.hashes, first.hashes) and again.item_ids == first.item_ids
    files[0].write_bytes(b"not an npz")  # damaged: rebuilt, never an error
    assert build_index_cached(items, allowed, tmp_path).item_ids == first.item_ids
    build_index_cached(items[:1], allowed, tmp_path)  # other items: another cache entry
    assert len(list(tmp_path.glob("index-*.npz"))) == 2
