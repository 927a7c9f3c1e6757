"""Seeded decoding of the reference protocols (ptb-v1.2): which seeds run, the reference's aggregation, the policy of
the max-tokens ladder across seeds, GPQA's choice order per seed and resuming after an interrupt, on the tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log

from posttrainbench import interrupts
from posttrainbench.benchmarks import get_benchmark
from posttrainbench.catalog import get_base_model
from posttrainbench.evaluation import evaluate_model
from posttrainbench.evaluation.protocols import REF_V1, REF_V1_2, REFERENCE_SEEDS
from posttrainbench.evaluation.reference_prompts import gpqa_reference_orders
from posttrainbench.evaluation.runner import SEED_RESULT, EvalResult
from posttrainbench.evaluation.seeds import ModelSampling, aggregate_seed_metrics, model_sampling, seeds_to_run
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.settings import Settings
from test_reference_prompts import ends_at_once

DATA = Path(__file__).parent / "fixtures" / "data"
TINY = get_base_model("ptb/tiny-random")


# -- the reference's aggregation (src/utils/aggregate_seed_metrics.py) ------------------------------------------


def test_the_aggregation_is_the_references_mean_of_every_numeric_metric_stderr_included() -> None:
    per_seed = {
        72332: (0, {"accuracy": 0.5, "stderr": 0.1, "by_theme": {"a": 1}}),
        87681: (1, {"accuracy": 0.25, "stderr": 0.3, "by_theme": {"a": 2}}),
        38992: (1, {"accuracy": 0.75, "stderr": 0.2, "by_theme": {"a": 3}}),
    }
    out = aggregate_seed_metrics(5, per_seed)  # two of five seeds left out
    assert out["accuracy"] == pytest.approx(0.5) and out["stderr"] == pytest.approx(0.2)  # mean stderr, not a spread
    assert "by_theme" not in out  # non-numeric: under per_seed only
    assert out["num_seeds"] == 5 and out["num_seeds_succeeded"] == 3
    assert out["per_seed"]["87681"] == {"max_tokens_stage": 1, "metrics": per_seed[87681][1]}
    assert list(out) == ["accuracy", "stderr", "num_seeds", "num_seeds_succeeded", "per_seed"]
    with pytest.raises(TypeError, match="numeric for some seeds but not others"):
        aggregate_seed_metrics(2, {1: (0, {"accuracy": 0.5}), 2: (0, {"accuracy": None})})
    with pytest.raises(ValueError, match="metric keys"):
        aggregate_seed_metrics(2, {1: (0, {"accuracy": 0.5}), 2: (0, {"accuracy": 0.5, "stderr": 0.1})})
    with pytest.raises(ValueError, match="collides"):
        aggregate_seed_metrics(1, {1: (0, {"num_seeds": 3})})
    with pytest.raises(ValueError, match="2 seed results given"):
        aggregate_seed_metrics(1, {1: (0, {"accuracy": 1}), 2: (0, {"accuracy": 1})})


# -- which seeds run ---------------------------------------------------------------------------------------------


def _folder(tmp_path: Path, name: str, **files: dict[str, Any]) -> Path:
    d = tmp_path / name
    d.mkdir()
    for fname, data in files.items():
        (d / f"{fname}.json").write_text(json.dumps(data))
    return d


def test_a_greedy_model_runs_the_first_seed_only_except_where_the_seed_shuffles_the_prompts(tmp_path: Path) -> None:
    greedy = model_sampling(_folder(tmp_path, "g", generation_config={"temperature": 0.0}))
    assert greedy.greedy and greedy.source == "generation_config.json"
    assert seeds_to_run(REFERENCE_SEEDS, "gsm8k", greedy) == REFERENCE_SEEDS[:1]
    assert seeds_to_run(REFERENCE_SEEDS, "gpqamain", greedy) == REFERENCE_SEEDS  # its seed orders the choices
    # vLLM reads the temperature only: do_sample false with no temperature still samples at 1.0
    nodo = model_sampling(_folder(tmp_path, "n", generation_config={"do_sample": False}))
    assert (nodo.temperature, nodo.greedy) == (1.0, False)
    assert seeds_to_run(REFERENCE_SEEDS, "gsm8k", nodo) == REFERENCE_SEEDS
    # no generation_config.json: config.json; neither: vLLM's default 1.0
    cfg = model_sampling(_folder(tmp_path, "c", config={"temperature": 0.6, "top_p": 0.95}))
    assert (cfg.temperature, cfg.top_p, cfg.source) == (0.6, 0.95, "config.json")
    assert model_sampling(_folder(tmp_path, "e")) == ModelSampling(temperature=1.0, source="vLLM default")
    assert seeds_to_run(REFERENCE_SEEDS, "gsm8k", None) == REFERENCE_SEEDS  # unknown: every seed
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "generation_config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"generation_config\.json"):
        model_sampling(tmp_path / "bad")


# -- GPQA's choice order per seed --------------------------------------------------------------------------------


def test_gpqa_asks_each_seed_its_own_choice_order_and_scores_its_letter() -> None:
    gpqa = get_benchmark("gpqamain")
    items = gpqa.load_test_items(root=DATA)
    raw = [json.loads(x) for x in (DATA / "gpqamain" / "gpqa_main.jsonl").read_text().splitlines()]
    first = gpqa.items_for_seed(items, REFERENCE_SEEDS[0])
    assert [it.metadata for it in first] == [it.metadata for it in items]  # as loaded: the first seed's order
    orders_seen = set()
    for seed in REFERENCE_SEEDS:
        orders = gpqa_reference_orders(len(raw), seed)
        chosen = gpqa.items_for_seed(items[1:3], seed)  # a subset keeps each record's place in the file
        for it, rec, order in zip(chosen, raw[1:3], orders[1:3], strict=True):
            m = it.metadata
            assert m["reference_choices"] == [it.metadata["reference_raw"][j] for j in order]
            assert m["reference_choices"]["ABCD".index(m["reference_target"])] == rec["Correct Answer"]
            assert gpqa.sample_target(it, REF_V1_2) == m["reference_target"]
            asked = gpqa.messages(it, REF_V1_2)[0].text
            assert f"{m['reference_target']}) {rec['Correct Answer']}" in asked
            orders_seen.add((it.id, tuple(order)))
        assert [it.input for it in chosen] == [it.input for it in items[1:3]]  # strict's prompt is untouched
    assert len(orders_seen) > 2  # the seeds do reorder


# -- evaluation on the tiny model --------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Settings]:
    """A tiny model that ends at once (prefill only) and the tiny base with room for AIME's 16,000-token budget."""
    build_tiny_model(tmp_path / "models" / "ptb" / "tiny-random", max_positions=17_000)
    env = {**os.environ, "PTB_MODELS_DIR": str(tmp_path / "models"), "PTB_ALLOW_UNPINNED_DATA": "1"}
    return ends_at_once(build_tiny_model(tmp_path / "tiny", seed=0, max_positions=17_000)), Settings.from_env(env)


def _eval(model: Path, settings: Settings, out: Path, **kw: Any) -> EvalResult:
    """AIME 2025 (short prompts: the shipped fixture items) under ptb-v1.2, ``--limit 2``."""
    aime = get_benchmark("aime2025")
    items = aime.load_test_items(root=DATA)
    return evaluate_model(
        model, aime, TINY, out, items=items, limit=2, batch_size=2, settings=settings, protocol=REF_V1_2, **kw
    )


@pytest.mark.slow
def test_five_seeds_run_sampled_from_the_generation_config_and_their_mean_is_the_score(
    tiny: tuple[Path, Settings], tmp_path: Path
) -> None:
    model, settings = tiny
    gen = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**gen, "temperature": 0.7, "top_p": 0.9}))
    r = _eval(model, settings, tmp_path / "eval")
    assert r.ok, r.error
    assert [s.seed for s in r.seeds] == list(REFERENCE_SEEDS) and r.num_seeds == 5 and r.seeds_left_out == []
    assert all(s.status == "ok" and s.max_tokens_stage == 0 and not s.resumed for s in r.seeds)
    assert r.score == pytest.approx(sum(s.score or 0.0 for s in r.seeds) / 5)
    assert r.sampling == ModelSampling(temperature=0.7, top_p=0.9, source="generation_config.json")
    for s in r.seeds:  # each seed's own Inspect log, asked with the model's sampling and that seed
        assert s.log_path and Path(s.log_path).parent == tmp_path / "eval" / f"seed-{s.seed}"
        cfg = read_eval_log(s.log_path, header_only=True).plan.config
        assert (cfg.seed, cfg.temperature, cfg.top_p) == (s.seed, 0.7, 0.9)
    metrics = r.to_metrics_json()
    assert metrics["num_seeds"] == 5 and metrics["num_seeds_succeeded"] == 5
    assert set(metrics["per_seed"]) == {str(s) for s in REFERENCE_SEEDS}
    assert metrics["accuracy"] == r.score

    # a greedy generation config: the first seed only (the seed would only drive sampling)
    (model / "generation_config.json").write_text(json.dumps({**gen, "temperature": 0.0}))
    g = _eval(model, settings, tmp_path / "greedy")
    assert g.ok and [s.seed for s in g.seeds] == [REFERENCE_SEEDS[0]] and g.num_seeds == 1
    assert g.to_metrics_json()["num_seeds"] == 1
    assert sorted(p.name for p in (tmp_path / "greedy").iterdir()) == [f"seed-{REFERENCE_SEEDS[0]}"]


@pytest.mark.slow
def test_the_first_seeds_stage_is_where_later_seeds_start_and_its_failure_writes_no_score(
    tiny: tuple[Path, Settings], tmp_path: Path
) -> None:
    model, settings = tiny
    # the first rung (16000) fails for every seed: the first seed succeeds at stage 1, the others start there
    r = _eval(model, settings, tmp_path / "stage", model_args={"fail_above_max_tokens": 12000})
    assert r.ok, r.error
    assert [s.max_tokens_stage for s in r.seeds] == [1] * 5 and r.max_tokens_used == 12000
    assert [(a.seed, a.max_tokens, a.error is None) for a in r.attempts] == [
        (REFERENCE_SEEDS[0], 16000, False),
        (REFERENCE_SEEDS[0], 12000, True),
        *[(s, 12000, True) for s in REFERENCE_SEEDS[1:]],
    ]
    assert r.to_metrics_json()["per_seed"][str(REFERENCE_SEEDS[1])]["max_tokens_stage"] == 1

    # a later seed that fails at every rung is left out of the mean; the others still count
    left = _eval(model, settings, tmp_path / "left", model_args={"fail_seeds": [REFERENCE_SEEDS[2]]})
    assert left.ok and left.seeds_left_out == [REFERENCE_SEEDS[2]] and left.num_seeds == 5
    assert [s.status for s in left.seeds] == ["ok", "ok", "failed", "ok", "ok"]
    assert [a.max_tokens for a in left.attempts if a.seed == REFERENCE_SEEDS[2]] == [16000, 12000, 8000]
    m = left.to_metrics_json()
    assert (m["num_seeds"], m["num_seeds_succeeded"]) == (5, 4) and str(REFERENCE_SEEDS[2]) not in m["per_seed"]

    # every rung fails for the first seed: the others are skipped, no score
    f = _eval(model, settings, tmp_path / "fail", model_args={"fail_seeds": [REFERENCE_SEEDS[0]]})
    assert f.status == "failed" and f.score is None
    assert [s.seed for s in f.seeds] == [REFERENCE_SEEDS[0]] and f.seeds[0].status == "failed"
    assert "the other seeds were skipped" in (f.error or "")
    assert len(f.attempts) == 3 and {a.seed for a in f.attempts} == {REFERENCE_SEEDS[0]}
    assert sorted(p.name for p in (tmp_path / "fail").iterdir()) == [f"seed-{REFERENCE_SEEDS[0]}"]
    assert not (tmp_path / "fail" / f"seed-{REFERENCE_SEEDS[0]}" / SEED_RESULT).exists()


@pytest.mark.slow
def test_an_evaluation_interrupted_after_seed_3_reruns_only_seeds_4_and_5(
    tiny: tuple[Path, Settings], tmp_path: Path
) -> None:
    model, settings = tiny
    out = tmp_path / "eval"
    started: list[int] = []

    def interrupt_at_seed_4(done: int, total: int) -> None:
        if done == 0:
            started.append(1)
            if len(started) == 4:  # Ctrl-C as the fourth seed's evaluation starts
                raise KeyboardInterrupt

    with pytest.raises(interrupts.Interrupted):
        _eval(model, settings, out, on_sample=interrupt_at_seed_4)
    done = {s: (out / f"seed-{s}" / SEED_RESULT).is_file() for s in REFERENCE_SEEDS}
    assert done == {s: i < 3 for i, s in enumerate(REFERENCE_SEEDS)}
    logs_before = {s: sorted(out.glob(f"seed-{s}/*.eval")) for s in REFERENCE_SEEDS[:3]}

    r = _eval(model, settings, out)
    assert r.ok, r.error
    assert [s.resumed for s in r.seeds] == [True, True, True, False, False]
    assert {s: sorted(out.glob(f"seed-{s}/*.eval")) for s in REFERENCE_SEEDS[:3]} == logs_before  # not re-run
    assert len(r.attempts) == 5 and r.num_seeds == 5

    full = _eval(model, settings, out)  # run again unchanged: nothing left to run
    assert (
        all(s.resumed for s in full.seeds) and full.score == r.score and full.to_metrics_json() == r.to_metrics_json()
    )
    # the control: the results of another model, or of this folder rewritten, are not reused
    (model / "generation_config.json").write_text((model / "generation_config.json").read_text() + "\n")
    again = _eval(model, settings, out)
    assert again.ok and not any(s.resumed for s in again.seeds)
    other = ends_at_once(build_tiny_model(tmp_path / "other", seed=1, max_positions=17_000))
    o = _eval(other, settings, out)
    assert o.ok and not any(s.resumed for s in o.seeds)


@pytest.mark.slow
def test_ptb_v1_samples_once_unseeded_and_strict_stays_greedy(tiny: tuple[Path, Settings], tmp_path: Path) -> None:
    model, settings = tiny
    gsm8k = get_benchmark("gsm8k")  # its shipped test set and few-shot: a base with room for 6,500 tokens + 4,000
    v1 = evaluate_model(model, gsm8k, TINY, tmp_path / "v1", limit=1, batch_size=1, settings=settings, protocol=REF_V1)
    assert v1.ok and v1.seeds == [] and v1.num_seeds is None and v1.sampling is not None
    cfg = read_eval_log(v1.log_path or "", header_only=True).plan.config
    assert cfg.seed is None and cfg.temperature == v1.sampling.temperature == 1.0
    assert "num_seeds" not in v1.to_metrics_json()
    strict = evaluate_model(model, gsm8k, TINY, tmp_path / "s", limit=1, batch_size=1, settings=settings)
    assert strict.ok and strict.sampling is None and strict.seeds == []
    assert read_eval_log(strict.log_path or "", header_only=True).plan.config.seed is None
    # the agent's evaluate.py under ptb-v1.2 (seeds=()): one unseeded evaluation, as the reference's evaluate.py
    one = _eval(model, settings, tmp_path / "one", seeds=())
    assert one.ok and one.seeds == [] and one.num_seeds is None and len(list((tmp_path / "one").rglob("*.eval"))) == 1
    assert read_eval_log(one.log_path or "", header_only=True).plan.config.seed is None


@pytest.mark.slow
def test_each_seed_samples_its_own_replies_reproducibly_and_asks_gpqa_in_its_own_order(tmp_path: Path) -> None:
    gpqa = get_benchmark("gpqamain")
    items = gpqa.load_test_items(root=DATA)[:2]
    model = build_tiny_model(tmp_path / "tiny", seed=0)  # replies are random tokens: sampling shows in them
    settings = Settings.from_env({**os.environ, "PTB_ALLOW_UNPINNED_DATA": "1"})
    base = build_tiny_model(tmp_path / "base", seed=0)

    def replies(out: Path) -> dict[int, list[tuple[str, str, str]]]:
        r = evaluate_model(
            model, gpqa, TINY, out, items=items, max_tokens=6, batch_size=2, settings=settings,
            protocol=REF_V1_2, base_model_path=base,
        )  # fmt: skip
        assert r.ok, r.error
        got = {}
        for s in r.seeds:
            log = read_eval_log(s.log_path or "")
            got[s.seed] = [
                (next(m.text for m in x.messages if m.role == "user"), str(x.target), x.output.completion)
                for x in log.samples or []
            ]
        return got

    first = replies(tmp_path / "a")
    assert list(first) == list(REFERENCE_SEEDS)
    for seed, rows in first.items():
        for (asked, target, _), it in zip(rows, gpqa.items_for_seed(items, seed), strict=True):
            assert asked == gpqa.messages(it, REF_V1_2)[0].text and target == it.metadata["reference_target"]
    assert len({tuple(r[2] for r in rows) for rows in first.values()}) > 1  # the seeds sample differently
    assert len({tuple(r[0] for r in rows) for rows in first.values()}) > 1  # and ask other choice orders
    assert replies(tmp_path / "b") == first  # the same seed samples the same replies


@pytest.mark.slow
def test_ptb_eval_prints_the_seeds_and_the_models_sampling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from posttrainbench.cli.main import app

    build_tiny_model(tmp_path / "models" / "ptb" / "tiny-random", max_positions=12_000)
    monkeypatch.setenv("PTB_MODELS_DIR", str(tmp_path / "models"))
    model = ends_at_once(build_tiny_model(tmp_path / "tiny", seed=0, max_positions=12_000))
    gen = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**gen, "temperature": 0.0}))  # greedy: one seed
    argv = ["eval", str(model), "--benchmark", "gsm8k", "--base-model", "ptb/tiny-random", "--limit", "2",
            "--out", str(tmp_path / "eval"), "--batch-size", "2", "--protocol", REF_V1_2]  # fmt: skip
    res = CliRunner().invoke(app, argv, terminal_width=400)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"seeds (1 of 1 run, mean of those ok): {REFERENCE_SEEDS[0]} 0.000" in text, text
    assert "sampling: temperature 0.0, top_p unset (the model's, from generation_config.json)" in text
    metrics = json.loads(next((tmp_path / "eval").rglob(SEED_RESULT)).read_text())
    assert metrics["result"]["seeds"] == [] and metrics["result"]["max_tokens_used"] == 4000
