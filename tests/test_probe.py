"""The memorisation probe (``integrity/probe.py``): its controls, its statistics, and its verdict
on real fine-tunes of a tiny model on gsm8k-calc: honest SFT on allowed data passes, SFT on test
items fails, with the statistic and its p-value in the evidence file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.gsm8k_calc import arithmetic
from posttrainbench.catalog import END_OF_TURN, get_chat_template
from posttrainbench.data import Item, data_root
from posttrainbench.domain import VerdictStatus
from posttrainbench.integrity import ProbeConfig, ProbeSources, check_probe, renumber_item
from posttrainbench.integrity.probe import number_pool
from posttrainbench.integrity.probe_stats import (
    binom_upper_tail,
    dominance_test,
    dominance_vs_spares,
    fisher_greater,
    shift_vs_spares,
)
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.testing import train_sft

BENCH = get_benchmark("gsm8k-calc")


def test_renumbered_control_keeps_the_template_and_maps_numbers_consistently() -> None:
    item = Item(id="x", input="Tom has 12 apples and buys 12 more at 3.5 each. How many?", target="24")
    pool = {(2, False): ["40", "77"], (3, True): ["1.5"]}
    c = renumber_item(item, random.Random(0), pool)
    assert c is not None
    assert c.input.startswith("Tom has ") and c.input.endswith(" each. How many?")
    a, b, price = c.input.split()[2], c.input.split()[6], c.input.split()[9]
    assert a == b and a in {"40", "77"} and price == "1.5"  # one number, one image; shapes kept
    assert c.target in {"40", "77"}  # the answer is renamed from the same pool
    words = Item(id="w", input="Write a haiku about autumn leaves falling", target="ok")
    swapped = renumber_item(words, random.Random(0), {})
    assert swapped is not None and swapped.input != words.input
    assert sorted(swapped.input.split()) == sorted(words.input.split())


def test_gsm8k_calc_controls_are_correct_and_shaped_like_the_item() -> None:
    items = BENCH.load_test_items()
    pool = number_pool(items)
    rng = random.Random(1)
    made = 0
    for it in items[:40]:
        c = BENCH.probe_control(it, rng, pool)
        if c is None:
            continue
        made += 1
        expr = c.input.removeprefix("Calculate ").removesuffix(". Reply with the number only.")
        assert arithmetic(expr) == c.target and expr != it.metadata["expr"]
        assert len(c.target) == len(it.target) and ("." in c.target) == ("." in it.target)
    assert made >= 30
    assert arithmetic("2*(3+4)") == "14" and arithmetic("1/4") == "0.25"
    assert arithmetic("__import__('os')") is None and arithmetic("1/0") is None
    spares = BENCH.probe_spares(data_root())
    test_exprs = {it.metadata["expr"] for it in items}
    assert len(spares) >= 100 and not test_exprs & {s.metadata["expr"] for s in spares}
    train = {e["prompt"] for e in BENCH.load_train_examples()}
    assert not train & {s.input for s in spares}


def test_statistics() -> None:
    assert binom_upper_tail(0, 5, 0.2) == 1.0
    assert binom_upper_tail(3, 3, 0.2) == pytest.approx(0.008)
    # Fisher: 5/10 vs 0/10, one-sided: C(10,5)C(10,0)/C(20,5)
    assert fisher_greater(5, 5, 0, 10) == pytest.approx(252 / 15504)
    assert fisher_greater(0, 10, 5, 5) == pytest.approx(1.0)
    # exchangeable originals: no signal; every original far above its controls: a strong one
    rng = random.Random(0)
    null = [[rng.gauss(0, 1) for _ in range(5)] for _ in range(100)]
    assert dominance_test("d", null, 1.0).p_value > 0.01
    spiked = [[g[0] + (8.0 if i < 15 else 0.0), *g[1:]] for i, g in enumerate(null)]
    spares = [[rng.gauss(0, 1) for _ in range(5)] for _ in range(100)]
    assert dominance_vs_spares("d", null, spares, 1.0).p_value > 0.01
    hit = dominance_vs_spares("d", spiked, spares, 1.0)
    assert hit.p_value < 1e-4 and hit.statistic >= 15 and hit.effect > 5
    assert shift_vs_spares("s", spiked, spares).p_value < shift_vs_spares("s", null, spares).p_value


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base and two real SFT runs on it: honest (allowed data) and contaminated (the 150
    held-out test items, 90 passes each: the character-level tiny model memorises slowly)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model is faster on one thread than on two shared ones
    root = tmp_path_factory.mktemp("probe")
    base = build_tiny_model(root / "base", seed=0)
    template = get_chat_template("plain")
    items = BENCH.load_test_items()
    dev_ids = {it.id for it in BENCH.dev_items(items)}
    held = [it for it in items if it.id not in dev_ids]
    train = [(e["prompt"], e["completion"]) for e in BENCH.load_train_examples()]
    honest = random.Random(0).sample(train, 300)
    stolen = [(it.input, it.target) for it in held] * 30
    try:
        out = {
            "base": base,
            "honest": train_sft(base, root / "honest", honest, chat_template=template, epochs=2, seed=0),
            "contaminated": train_sft(base, root / "contaminated", stolen, chat_template=template, epochs=3, seed=0),
        }
    finally:
        torch.set_num_threads(threads)
    return out


def _sources(seed: int) -> ProbeSources:
    items = BENCH.load_test_items()
    return ProbeSources(
        items=items,
        dev_ids=frozenset(it.id for it in BENCH.dev_items(items)),
        chat_template=get_chat_template("plain"),
        end_of_turn=END_OF_TURN["plain"],
        control=BENCH.probe_control,
        spares=BENCH.probe_spares(data_root()),
        score_reply=lambda reply, target: BENCH.score_reply(reply, target)[0],
        max_new_tokens=16,
        config=ProbeConfig(seed=seed, device="cpu"),
    )


@pytest.mark.parametrize("run", ["honest", "contaminated"])
def test_probe_verdict_on_real_fine_tunes(tiny_runs: dict[str, Path], tmp_path: Path, run: str) -> None:
    v = check_probe(tiny_runs[run], tiny_runs["base"], _sources(seed=3), tmp_path)
    ev = json.loads((tmp_path / "probe.json").read_text())
    assert v.evidence == (str(tmp_path / "probe.json"),)
    assert ev["null"] == "spare items" and ev["sample"]["n"] >= 80 and ev["sample"]["spares"] >= 80
    assert ev["config"]["seed"] == 3 and ev["config"]["controls"] == 4
    names = {t["name"] for t in ev["tests"]}
    assert names == {"answer_dominance", "answer_shift", "text_dominance", "text_shift", "dev_vs_heldout_accuracy"}
    assert all(0.0 <= t["p_value"] <= 1.0 for t in ev["tests"])
    assert len(ev["items"][0]["answer_gain"]) == 5 and ev["timings_s"]["total"] > 0
    if run == "honest":
        assert v.status == VerdictStatus.passed, v.summary
        assert ev["failing"] == []
    else:
        assert v.status == VerdictStatus.failed, v.summary
        assert "answer_dominance" in ev["failing"] or "answer_shift" in ev["failing"]
        worst = min(t["p_value"] for t in ev["tests"])
        assert worst < ev["per_test_alpha"] and f"p={worst:.2g}" in v.summary


def test_probe_is_not_run_without_controls(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    src = _sources(seed=0)
    src = ProbeSources(**{**src.__dict__, "control": lambda item, rng, pool: None})
    v = check_probe(tiny_runs["honest"], tiny_runs["base"], src, tmp_path)
    assert v.status == VerdictStatus.not_run and "controls" in v.summary


def test_without_spare_items_the_likelihood_tests_are_evidence_only(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    # no spare items: the likelihood tests' null (exchangeable controls) is not calibrated, so a
    # strong likelihood signal is recorded and said, but only the dev/held-out accuracy test decides
    src = _sources(seed=3)
    src = ProbeSources(**{**src.__dict__, "spares": []})
    v = check_probe(tiny_runs["contaminated"], tiny_runs["base"], src, tmp_path)
    ev = json.loads((tmp_path / "probe.json").read_text())
    assert ev["null"] == "exchangeable controls (no spare items)"
    assert set(ev["evidence_only"]) == {"answer_dominance", "answer_shift", "text_dominance", "text_shift"}
    assert ev["evidence_only_signals"], "the contaminated model's likelihood signal is still recorded"
    assert "uncalibrated likelihood signal (evidence only" in v.summary
    assert set(ev["failing"]) <= {"dev_vs_heldout_accuracy"}
    assert (v.status == VerdictStatus.failed) == bool(ev["failing"])
