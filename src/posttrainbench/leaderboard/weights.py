"""Benchmark weights ``w_b ∝ 1 / (instruct_b − base_b)``, normalised to sum to 1.

``base_b`` is the mean over the base models of their **zero-shot** score on benchmark ``b``, and
``instruct_b`` the mean over the same base models' official instruct counterparts. With the
published zero-shot baseline grid (``aggregated_baseline.csv``) and the four base/instruct pairs
this reproduces the published ``factors.json`` to within 5e-16 (6 of 7 values identical at the
15 significant digits they were printed with; gsm8k's 15th digit differs by one, a sub-ulp
rounding effect); the few-shot baseline does not (see tests/test_leaderboard.py).

Means and the normalising total are plain left-to-right float sums divided by the count, the
published procedure's arithmetic (``math.fsum``/``statistics.fmean`` would move some values by
an ulp and change a 15th printed digit).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .grids import Grid, GridError

__all__ = ["benchmark_weights", "load_weights", "parse_weights", "save_weights"]


def _instruct(instruct_of: Mapping[str, str] | Callable[[str], str], model: str) -> str:
    if callable(instruct_of) and not isinstance(instruct_of, Mapping):
        return instruct_of(model)
    try:
        return instruct_of[model]
    except KeyError:
        raise GridError(f"no instruct model given for base model {model!r}") from None


def benchmark_weights(
    baseline_grid: Grid,
    base_models: Sequence[str],
    instruct_of: Mapping[str, str] | Callable[[str], str],
    benchmarks: Sequence[str] | None = None,
) -> dict[str, float]:
    """Weights from a zero-shot baseline grid whose rows hold base AND instruct models.

    ``instruct_of`` maps each base model to its instruct model (a mapping or a function).
    Raises :class:`GridError` naming every absent/non-numeric cell needed, and ``ValueError`` if
    a benchmark's instruct mean is not above its base mean (the weight would be infinite or
    negative).
    """
    if not base_models:
        raise ValueError("no base models given")
    benches = list(benchmarks) if benchmarks is not None else list(baseline_grid.benchmarks)
    pairs = [(m, _instruct(instruct_of, m)) for m in base_models]
    missing = [
        (model, bench)
        for bench in benches
        for pair in pairs
        for model in pair
        if baseline_grid.number(model, bench) is None
    ]
    if missing:
        raise GridError(f"baseline grid lacks numeric cells (model, benchmark): {missing}")
    raw: dict[str, float] = {}
    for bench in benches:
        base_scores = [baseline_grid.number(m, bench) for m, _ in pairs]
        inst_scores = [baseline_grid.number(i, bench) for _, i in pairs]
        # None is never among them (checked above)
        base = sum(v for v in base_scores if v is not None) / len(pairs)
        inst = sum(v for v in inst_scores if v is not None) / len(pairs)
        gap = inst - base
        if not gap > 0:
            raise ValueError(f"benchmark {bench!r}: instruct mean {inst!r} is not above base mean {base!r}")
        raw[bench] = 1.0 / gap
    total = sum(raw.values())
    return {bench: w / total for bench, w in raw.items()}


def load_weights(path: str | Path) -> dict[str, float]:
    """Read ``{benchmark: weight}`` JSON (e.g. the published ``factors.json``), checked.

    Every weight must be a finite number >= 0 and they must sum to 1 (within 1e-9).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read weights: {exc}") from exc
    return parse_weights(text, str(path))


def parse_weights(text: str, where: str) -> dict[str, float]:
    """Weights from JSON text, checked as :func:`load_weights` says; ``where`` names the source in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: cannot read weights: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where}: weights must be a non-empty JSON object")
    weights: dict[str, float] = {}
    for bench, w in data.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{where}: weight of {bench!r} is not a finite number >= 0: {w!r}")
        weights[bench] = float(w)
    total = math.fsum(weights.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{where}: weights sum to {total!r}, not 1")
    return weights


def save_weights(path: str | Path, weights: Mapping[str, float]) -> None:
    """Write weights as JSON (full ``repr`` precision, so they read back identically)."""
    Path(path).write_text(json.dumps(dict(weights), indent=4) + "\n", encoding="utf-8")
