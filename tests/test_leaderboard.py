"""Leaderboard aggregation: grids, weights, fallback, repeats, leaderboard.

Golden tests use copies of the published reference files in
tests/fixtures/leaderboard_reference/ (copied from ../shared/data/leaderboard_reference/).
"""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest

from posttrainbench.leaderboard import (
    Cell,
    Grid,
    GridError,
    MissingCellsError,
    Sentinel,
    agent_score,
    agent_score_over_repeats,
    apply_fallback,
    benchmark_weights,
    leaderboard_from_cells,
    load_weights,
    normalised_gain,
    normalised_gain_grid,
    read_grid,
    repeats_summary,
    save_weights,
    score_breakdown,
    write_grid,
)

REF = Path(__file__).parent / "fixtures" / "leaderboard_reference"
INSTRUCT_OF = {
    "Qwen3-1.7B-Base": "Qwen3-1.7B",
    "Qwen3-4B-Base": "Qwen3-4B",
    "SmolLM3-3B-Base": "SmolLM3-3B",
    "gemma-3-4b-pt": "gemma-3-4b-it",
}
BASE_MODELS = list(INSTRUCT_OF)
GLM_RAW = REF / "aggregated_opencode_zai_glm-5_10h_run2.csv"
GLM_FINAL = REF / "final_opencode_zai_glm-5_10h_run2.csv"
OPUS_AVG = REF / "aggregated_avg_Opus-4.5.csv"
OPUS_STD = REF / "aggregated_std_Opus-4.5.csv"


@pytest.fixture(scope="module")
def factors() -> dict[str, float]:
    return json.loads((REF / "factors.json").read_text())


@pytest.fixture(scope="module")
def baseline() -> Grid:
    return read_grid(REF / "aggregated_baseline.csv")


# --------------------------------------------------------------------------- grids


def test_read_grid_keeps_sentinels_with_their_text() -> None:
    g = read_grid(GLM_RAW)
    assert g.models == BASE_MODELS
    assert g.benchmarks[0] == "aime2025" and len(g.benchmarks) == 7
    assert g.get("Qwen3-4B-Base", "bfcl") == Sentinel("ERR")
    assert g.get("SmolLM3-3B-Base", "gpqamain") == Sentinel("not stored")
    assert g.get("Qwen3-1.7B-Base", "bfcl") == 0.62
    assert g.number("Qwen3-4B-Base", "bfcl") is None
    assert g.get("nope", "bfcl") is None


@pytest.mark.parametrize("path", sorted(REF.glob("*.csv")), ids=lambda p: p.name)
def test_write_grid_round_trips_reference_files_byte_for_byte(path: Path, tmp_path: Path) -> None:
    out = tmp_path / path.name
    write_grid(out, read_grid(path))
    assert out.read_bytes() == path.read_bytes()


def test_odd_cells_become_sentinels(tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text("model,a,b,c,d,e\nm,,nan,inf, 0.5 ,x y\n")
    g = read_grid(p)
    assert g.get("m", "a") == Sentinel("")
    assert g.get("m", "b") == Sentinel("nan")
    assert g.get("m", "c") == Sentinel("inf")
    assert g.get("m", "d") == 0.5
    assert g.get("m", "e") == Sentinel("x y")


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("model,a,b\nm1,1,2\nm2,3\n", ["row 3", "column 'b'", "2 fields"]),
        ("model,a\nm1,1\nm1,2\n", ["row 3", "duplicate model 'm1'"]),
        ("name,a\nm1,1\n", ["row 1", "column 'name'"]),
        ("model,a,a\nm1,1,2\n", ["row 1", "column 'a'", "duplicate"]),
        ("model,a\n,1\n", ["row 2", "empty model"]),
        ("", ["empty file"]),
    ],
)
def test_grid_errors_name_file_row_and_column(tmp_path: Path, text: str, fragments: list[str]) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(GridError) as exc:
        read_grid(p)
    msg = str(exc.value)
    assert str(p) in msg
    for fragment in fragments:
        assert fragment in msg


# --------------------------------------------------------------------------- weights


def test_zero_shot_baseline_reproduces_published_factors(baseline: Grid, factors: dict) -> None:
    w = benchmark_weights(baseline, BASE_MODELS, INSTRUCT_OF)
    assert list(w) == list(factors)
    for bench, published in factors.items():
        assert w[bench] == pytest.approx(published, abs=1e-9, rel=0)
    # Actually much closer: the published values carry 15 significant digits.
    assert max(abs(w[b] - factors[b]) for b in factors) < 1e-15
    assert math.fsum(w.values()) == pytest.approx(1.0, abs=1e-15)


def test_published_factors_digits_differ_only_by_float_rounding(baseline: Grid, factors: dict) -> None:
    """The published factors carry 15 significant digits. Ours agree at that precision for 6 of
    7; gsm8k's published 0.0935882347031865 vs our 0.09358823470318645 (binary value just under
    the decimal midpoint, so it prints ...1864). The exact rational value of the formula on the
    CSV's floats is 0.0935882347031864374..., so the published digit comes from a float result
    about one ulp higher than the exact value: different inputs' last bits or summation order,
    not a different formula. The gap (5e-17) is below half a unit of the 15th digit + one ulp.
    """
    w = benchmark_weights(baseline, BASE_MODELS, INSTRUCT_OF)
    assert [b for b in factors if float(f"{w[b]:.15g}") != factors[b]] == ["gsm8k"]
    n = len(BASE_MODELS)
    exact = {}
    for b in factors:
        base = sum(Fraction(baseline.number(m, b)) for m in BASE_MODELS) / n
        inst = sum(Fraction(baseline.number(INSTRUCT_OF[m], b)) for m in BASE_MODELS) / n
        exact[b] = 1 / (inst - base)
    total = sum(exact.values())
    exact_digits = {b: float(f"{float(exact[b] / total):.15g}") for b in factors}
    assert [b for b in factors if exact_digits[b] != factors[b]] == ["gsm8k"]
    assert float(exact["gsm8k"] / total) == pytest.approx(0.09358823470318643, abs=1e-17)
    assert abs(w["gsm8k"] - factors["gsm8k"]) <= 5e-17 + math.ulp(factors["gsm8k"])


def test_few_shot_baseline_does_not_reproduce_factors(factors: dict, baseline: Grid) -> None:
    few = read_grid(REF / "aggregated_baseline_fewshot.csv")
    # The few-shot file has only base rows: base from few-shot, instruct from zero-shot.
    merged = Grid(
        baseline.models,
        baseline.benchmarks,
        {**baseline.cells, **dict(few.cells.items())},
    )
    w = benchmark_weights(merged, BASE_MODELS, INSTRUCT_OF)
    assert max(abs(w[b] - factors[b]) for b in factors) > 0.05


def test_mean_of_per_model_inverse_gaps_does_not_reproduce_factors(baseline: Grid, factors: dict) -> None:
    raw = {
        b: sum(1 / (baseline.number(INSTRUCT_OF[m], b) - baseline.number(m, b)) for m in BASE_MODELS) / len(BASE_MODELS)
        for b in factors
    }
    total = sum(raw.values())
    assert max(abs(raw[b] / total - factors[b]) for b in factors) > 0.01


def test_weights_errors(baseline: Grid) -> None:
    with pytest.raises(GridError, match="nope"):
        benchmark_weights(baseline, BASE_MODELS, {**INSTRUCT_OF, "Qwen3-4B-Base": "nope"})
    with pytest.raises(GridError, match="no instruct model"):
        benchmark_weights(baseline, BASE_MODELS, {})
    flipped = {m: m for m in BASE_MODELS}
    with pytest.raises(ValueError, match="not above"):
        benchmark_weights(baseline, BASE_MODELS, flipped)
    # a function works as instruct_of too
    assert benchmark_weights(baseline, BASE_MODELS, INSTRUCT_OF.__getitem__)


def test_load_and_save_weights(tmp_path: Path, factors: dict) -> None:
    assert load_weights(REF / "factors.json") == factors
    out = tmp_path / "w.json"
    save_weights(out, factors)
    assert load_weights(out) == factors
    (tmp_path / "bad.json").write_text('{"a": 0.5, "b": 0.6}')
    with pytest.raises(ValueError, match="sum"):
        load_weights(tmp_path / "bad.json")
    (tmp_path / "neg.json").write_text('{"a": -0.5, "b": 1.5}')
    with pytest.raises(ValueError, match="'a'"):
        load_weights(tmp_path / "neg.json")


# --------------------------------------------------------------------------- fallback


def test_fallback_reproduces_published_final_grid_exactly(baseline: Grid, tmp_path: Path) -> None:
    final, mask = apply_fallback(read_grid(GLM_RAW), baseline)
    published = read_grid(GLM_FINAL)
    assert final.models == published.models and final.benchmarks == published.benchmarks
    assert final.cells == published.cells  # float equality, every cell
    out = tmp_path / "final.csv"
    write_grid(out, final)
    assert out.read_bytes() == GLM_FINAL.read_bytes()
    assert sorted(k for k, v in mask.items() if v) == [
        ("Qwen3-4B-Base", "bfcl"),
        ("SmolLM3-3B-Base", "bfcl"),
        ("SmolLM3-3B-Base", "gpqamain"),
        ("SmolLM3-3B-Base", "humaneval"),
    ]
    assert len(mask) == 28


def test_fallback_without_baseline_names_the_cells(baseline: Grid) -> None:
    raw = Grid(["X-Base"], ["bfcl"], {("X-Base", "bfcl"): Sentinel("ERR")})
    with pytest.raises(MissingCellsError) as exc:
        apply_fallback(raw, baseline)
    assert exc.value.missing == [("X-Base", "bfcl")]


def test_absent_cells_stay_absent_and_are_reported(baseline: Grid, factors: dict) -> None:
    raw = read_grid(GLM_RAW)
    del raw.cells[("gemma-3-4b-pt", "gsm8k")]
    final, mask = apply_fallback(raw, baseline)
    assert ("gemma-3-4b-pt", "gsm8k") not in final.cells and ("gemma-3-4b-pt", "gsm8k") not in mask
    result = score_breakdown(final, factors)
    assert result.score is None and result.missing == [("gemma-3-4b-pt", "gsm8k")]
    assert result.per_benchmark["gsm8k"] is None and result.per_benchmark["bfcl"] is not None
    with pytest.raises(MissingCellsError) as exc:
        agent_score(final, factors)
    assert exc.value.missing == [("gemma-3-4b-pt", "gsm8k")]
    # a model the grid lacks entirely is missing on every benchmark
    with pytest.raises(MissingCellsError) as exc:
        agent_score(read_grid(GLM_FINAL), factors, models=[*BASE_MODELS, "Llama-Base"])
    assert exc.value.missing == [("Llama-Base", b) for b in factors]


def test_agent_score_refuses_sentinels(factors: dict) -> None:
    with pytest.raises(MissingCellsError) as exc:
        agent_score(read_grid(GLM_RAW), factors)
    assert len(exc.value.missing) == 4


# --------------------------------------------------------------------------- agent score


def _independent_score(path: Path, factors: dict) -> float:
    """The published procedure, written out plainly: per benchmark average over models, times
    the factor, summed."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(factors[b] * sum(float(r[b]) for r in rows) / len(rows) for b in factors)


def test_agent_score_matches_independent_computation(factors: dict) -> None:
    for path in (GLM_FINAL, OPUS_AVG):
        assert agent_score(read_grid(path), factors) == pytest.approx(_independent_score(path, factors), abs=1e-15)
    assert agent_score(read_grid(OPUS_AVG), factors) == pytest.approx(0.171385820421259, abs=1e-14)
    assert agent_score(read_grid(GLM_FINAL), factors) == pytest.approx(_independent_score(GLM_FINAL, factors), abs=0)


def test_agent_score_of_base_baseline_and_of_instruct(baseline: Grid, factors: dict) -> None:
    base_only = Grid(BASE_MODELS, baseline.benchmarks, {k: v for k, v in baseline.cells.items() if k[0] in BASE_MODELS})
    assert 0 < agent_score(base_only, factors) < agent_score(baseline, factors, models=list(INSTRUCT_OF.values()))


# --------------------------------------------------------------------------- repeats


# Item counts of the count-based benchmarks (scores are k/N): AIME 2025 30, BFCL 100,
# GPQA main 448, HumanEval 164, GSM8K 1319. Arena-Hard and HealthBench are graded scores.
COUNT_BENCHMARKS = {"aime2025": 30, "bfcl": 100, "gpqamain": 448, "humaneval": 164, "gsm8k": 1319}


def _triples(mean: float, std: float, n_items: int, ddof: int) -> list[tuple[int, int, int]]:
    """Every sorted triple of item counts (a <= b <= c, each 0..N) whose mean and std (with
    ddof) are ``mean`` and ``std``."""
    s = mean * 3 * n_items
    if abs(s - round(s)) > 1e-6:
        return []
    s = round(s)
    q = std**2 * (3 - ddof) * n_items**2 + s * s / 3  # sum of squares
    if abs(q - round(q)) > 1e-4:
        return []
    q = round(q)
    out = []
    for a in range(n_items + 1):
        t, u = s - a, q - a * a  # b + c = t, b^2 + c^2 = u
        disc = 2 * u - t * t  # (c - b)^2
        if t < 0 or disc < 0:
            continue
        d = math.isqrt(disc)
        if d * d != disc or (t + d) % 2:
            continue
        b, c = (t - d) // 2, (t + d) // 2
        if a <= b <= c <= n_items:
            out.append((a, b, c))
    return out


def test_opus_std_is_sample_std_of_three_repeats() -> None:
    """The std file is consistent with 3 repeats and ddof=1 for every count-based cell, and
    rebuilding 3 repeat grids from those counts gives back both published grids via
    ``repeats_summary``. ddof=0 (population std) is inconsistent with most cells."""
    avg, std = read_grid(OPUS_AVG), read_grid(OPUS_STD)
    repeats: list[dict] = [{}, {}, {}]
    population_ok = 0
    for model in avg.models:
        for bench, n_items in COUNT_BENCHMARKS.items():
            m, s = avg.number(model, bench), std.number(model, bench)
            found = _triples(m, s, n_items, ddof=1)
            assert found, (model, bench)
            population_ok += bool(_triples(m, s, n_items, ddof=0))
            for i, k in enumerate(found[0]):
                repeats[i][(model, bench)] = k / n_items
    assert population_ok <= 6  # only the std == 0 cells
    grids = [Grid(avg.models, list(COUNT_BENCHMARKS), cells) for cells in repeats]
    summary = repeats_summary(grids)
    assert summary.missing == [] and summary.std is not None
    for key in summary.mean.cells:
        assert summary.mean.cells[key] == pytest.approx(avg.cells[key], abs=1e-12)
        assert summary.std.cells[key] == pytest.approx(std.cells[key], abs=1e-12)


def _grid(values: dict[tuple[str, str], float]) -> Grid:
    models = sorted({m for m, _ in values})
    benches = sorted({b for _, b in values})
    return Grid(models, benches, dict(values))


def test_repeats_summary_sample_std_and_single_repeat() -> None:
    g1 = _grid({("m", "a"): 0.1, ("m", "b"): 0.5})
    g2 = _grid({("m", "a"): 0.3, ("m", "b"): 0.5})
    g3 = _grid({("m", "a"): 0.8, ("m", "b"): 0.5})
    s = repeats_summary([g1, g2, g3])
    assert s.mean.cells[("m", "a")] == pytest.approx(0.4)
    assert s.std.cells[("m", "a")] == pytest.approx(math.sqrt((0.09 + 0.01 + 0.16) / 2))
    assert s.std.cells[("m", "b")] == 0.0
    one = repeats_summary([g1])
    assert one.std is None and one.mean.cells == g1.cells and one.missing == []


def test_repeats_summary_reports_missing_cells() -> None:
    g1 = _grid({("m", "a"): 0.1, ("m", "b"): 0.5})
    g2 = Grid(["m"], ["a", "b"], {("m", "a"): 0.3, ("m", "b"): Sentinel("ERR")})
    g3 = _grid({("m", "a"): 0.8})
    s = repeats_summary([g1, g2, g3])
    assert s.missing == [(1, "m", "b"), (2, "m", "b")]
    assert ("m", "b") not in s.mean.cells and ("m", "b") not in s.std.cells
    assert s.mean.cells[("m", "a")] == pytest.approx(0.4)


def test_agent_score_over_repeats() -> None:
    weights = {"a": 0.25, "b": 0.75}
    grids = [
        _grid({("m1", "a"): 0.0, ("m2", "a"): 1.0, ("m1", "b"): 0.2, ("m2", "b"): 0.4}),
        _grid({("m1", "a"): 0.5, ("m2", "a"): 0.5, ("m1", "b"): 0.6, ("m2", "b"): 0.8}),
    ]
    per_repeat = [0.25 * 0.5 + 0.75 * 0.3, 0.25 * 0.5 + 0.75 * 0.7]
    mean, std = agent_score_over_repeats(grids, weights)
    assert mean == pytest.approx(sum(per_repeat) / 2)
    assert std == pytest.approx(abs(per_repeat[0] - per_repeat[1]) / math.sqrt(2))
    assert mean == pytest.approx(agent_score(repeats_summary(grids).mean, weights))
    one_score, one_std = agent_score_over_repeats(grids[:1], weights)
    assert one_score == pytest.approx(per_repeat[0]) and one_std is None
    partial = _grid({("m1", "a"): 0.0, ("m1", "b"): 0.2})
    with pytest.raises(MissingCellsError) as exc:
        agent_score_over_repeats([grids[0], partial], weights)
    assert exc.value.missing == [(1, "m2", "a"), (1, "m2", "b")]


# --------------------------------------------------------------------------- normalised gain


def test_normalised_gain(baseline: Grid) -> None:
    assert normalised_gain(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert normalised_gain(0.2, 0.2, 0.8) == 0.0
    with pytest.raises(ZeroDivisionError):
        normalised_gain(0.5, 0.3, 0.3)
    gains, missing = normalised_gain_grid(read_grid(GLM_FINAL), baseline, INSTRUCT_OF)
    # SmolLM3 healthbench: base 0.0 -> gain = score / instruct
    assert gains.cells[("SmolLM3-3B-Base", "healthbench")] == pytest.approx(0.11921262234324588 / 0.2957717718639611)
    # fallback cells have gain exactly 0
    assert gains.cells[("SmolLM3-3B-Base", "gpqamain")] == 0.0
    # gemma aime: base 0.0, instruct 0.1, score 0.0
    assert gains.cells[("gemma-3-4b-pt", "aime2025")] == 0.0
    assert missing == []
    raw_gains, raw_missing = normalised_gain_grid(read_grid(GLM_RAW), baseline, INSTRUCT_OF)
    assert len(raw_missing) == 4 and len(raw_gains.cells) == 24


# --------------------------------------------------------------------------- leaderboard


def _cell(
    agent: str,
    repeat: int,
    bench: str,
    model: str,
    raw: float | None,
    *,
    fallback: bool = False,
    config: str = "default",
) -> Cell:
    return Cell(
        agent=agent,
        agent_config=config,
        benchmark=bench,
        base_model=model,
        repeat=repeat,
        raw=raw,
        score=None if fallback else raw,
        fallback=fallback,
        reason="eval failed" if fallback else None,
    )


BASELINES = {("a", "m1"): 0.1, ("a", "m2"): 0.2, ("b", "m1"): 0.0, ("b", "m2"): 0.4}
WEIGHTS = {"a": 0.4, "b": 0.6}


def _full(agent: str, repeat: int, *values: float | None, config: str = "default") -> list[Cell]:
    """Cells of (a, m1), (a, m2), (b, m1), (b, m2) in that order; ``None`` marks a fallback cell."""
    keys = [("a", "m1"), ("a", "m2"), ("b", "m1"), ("b", "m2")]
    return [_cell(agent, repeat, b, m, v, fallback=v is None, config=config) for (b, m), v in zip(keys, values)]


def test_leaderboard_from_cells() -> None:
    cells = [
        # alpha: 2 repeats, one fallback cell in repeat 1
        *_full("alpha", 0, 0.5, 0.7, 0.3, 0.9),
        *_full("alpha", 1, 0.6, None, 0.1, 0.5),
        # beta: 2 repeats, two fallback cells
        *_full("beta", 0, None, 0.3, 0.2, 0.4),
        *_full("beta", 1, 0.2, 0.3, None, 0.6),
        # alpha with another config: repeat 1 lacks (b, m2) entirely
        *_full("alpha", 0, 0.9, 0.9, 0.9, 0.9, config="big"),
        *_full("alpha", 1, 0.9, 0.9, 0.9, 0.9, config="big")[:3],
    ]
    rows = leaderboard_from_cells(cells, BASELINES, WEIGHTS)
    assert [(r.agent, r.agent_config) for r in rows] == [("alpha", "default"), ("beta", "default"), ("alpha", "big")]

    def score(a1: float, a2: float, b1: float, b2: float) -> float:
        return 0.4 * (a1 + a2) / 2 + 0.6 * (b1 + b2) / 2

    alpha = [score(0.5, 0.7, 0.3, 0.9), score(0.6, 0.2, 0.1, 0.5)]  # fallback (a, m2) -> 0.2
    beta = [score(0.1, 0.3, 0.2, 0.4), score(0.2, 0.3, 0.0, 0.6)]
    a, b, big = rows
    assert a.score == pytest.approx(sum(alpha) / 2)
    assert a.std == pytest.approx(abs(alpha[0] - alpha[1]) / math.sqrt(2))
    assert (a.n_repeats, a.n_fallback, a.missing) == (2, 1, [])
    assert a.per_benchmark["a"] == pytest.approx(((0.5 + 0.7) / 2 + (0.6 + 0.2) / 2) / 2)
    assert a.repeat_scores == {0: pytest.approx(alpha[0]), 1: pytest.approx(alpha[1])}
    assert b.score == pytest.approx(sum(beta) / 2) and b.n_fallback == 2
    assert big.score is None and big.std is None
    assert big.missing == [(1, "m2", "b")]
    assert big.per_benchmark["a"] == pytest.approx(0.9) and big.per_benchmark["b"] is None
    assert big.repeat_scores[0] == pytest.approx(0.9) and big.repeat_scores[1] is None


def test_leaderboard_single_repeat_and_expected_repeats() -> None:
    cells = _full("solo", 0, 0.5, 0.5, 0.5, 0.5)
    (row,) = leaderboard_from_cells(cells, BASELINES, WEIGHTS)
    assert row.score == pytest.approx(0.5) and row.std is None and row.n_repeats == 1
    (row,) = leaderboard_from_cells(cells, BASELINES, WEIGHTS, n_repeats=2)
    assert row.score is None and row.n_repeats == 2
    assert row.missing == [(1, m, b) for m in ("m1", "m2") for b in ("a", "b")]


def test_leaderboard_fallback_without_baseline_is_missing_and_other_errors() -> None:
    # m3 has no baseline, so its fallback cell (a, m3) cannot be filled
    cells = [
        _cell("x", 0, "a", "m1", 0.5),
        _cell("x", 0, "a", "m3", None, fallback=True),
        _cell("x", 0, "b", "m1", 0.5),
        _cell("x", 0, "b", "m3", 0.1),
    ]
    (row,) = leaderboard_from_cells(cells, BASELINES, WEIGHTS)
    assert row.score is None and row.missing == [(0, "m3", "a")] and row.n_fallback == 0
    with pytest.raises(ValueError, match="duplicate"):
        leaderboard_from_cells([*cells, cells[0]], BASELINES, WEIGHTS)
    with pytest.raises(ValueError, match="without a weight"):
        leaderboard_from_cells([_cell("x", 0, "zzz", "m1", 0.1)], BASELINES, WEIGHTS)
    with pytest.raises(ValueError, match="not in `models`"):
        leaderboard_from_cells(cells, BASELINES, WEIGHTS, models=["m1"])
