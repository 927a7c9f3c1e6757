"""The statistics of the memorisation probe: exact binomial and Fisher tails, a rank-sum test,
and the per-item dominance count (no scipy: a few closed forms, exact where it matters).

Per item the probe measures the log-likelihood *gain* (final model minus base model, in nats)
of the original item and of ``P`` perturbed copies of it (controls the model never saw). When
the item was not trained on, the original and its controls are exchangeable with respect to the
gain, so:

- **dominance**: the item is *dominated* by one of its ``P + 1`` texts when that text's gain
  exceeds every other's by at least ``margin`` nats. Under the null, given that an item is
  dominated, the dominant text is the original with probability ``1 / (P + 1)``; so the number
  of items dominated by their original, among the dominated items, is ``Binomial(M, 1/(P+1))``
  and its upper tail is an exact p-value. Memorised items are dominated by their original; an
  honest fine-tune that raises the whole benchmark's likelihood raises the controls too.
- **shift**: the rank of the original's gain among its ``P + 1`` texts is uniform under the
  null; the sum of ranks over items is compared with its null mean (normal approximation, one
  sided). It sees a broad, small memorisation effect the dominance count misses; its effect
  size (the median of ``original - mean(controls)``) must also reach ``margin``.

Real items differ from perturbed copies in ways honest training rewards (GSM8K's numbers are
round, its answers integral, its number pairs typical): measured on gsm8k-calc, an honest SFT
gives its originals a small but significant edge over their controls. So when the benchmark has
*spare* items (same distribution, never evaluated, never allowed training data: gsm8k-calc's
test-split steps past the evaluated 200), both tests compare the test items with the spares
(:func:`dominance_vs_spares`, :func:`shift_vs_spares`) instead of the assumed null.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

#: The spares' quantile of the original-over-controls excess that a test item must beat.
SPARE_QUANTILE = 0.95


@dataclass(frozen=True)
class TestResult:
    """One test: its statistic, one-sided p-value, effect size (nats) and what it counted."""

    name: str
    statistic: float
    p_value: float
    effect: float
    n: int
    detail: str

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def binom_upper_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)`` (exact)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact test on the table ``[[a, b], [c, d]]``: the probability, with the
    margins fixed, of a top-left cell at least ``a`` (row 1's success rate higher than row 2's)."""
    r1, c1, n = a + b, a + c, a + b + c + d
    denom = math.comb(n, c1)
    if denom == 0:
        return 1.0
    top = min(r1, c1)
    return min(1.0, sum(math.comb(r1, x) * math.comb(n - r1, c1 - x) for x in range(a, top + 1)) / denom)


def normal_upper(z: float) -> float:
    """``P(Z >= z)`` for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def dominance_test(name: str, gains: Sequence[Sequence[float]], margin: float) -> TestResult:
    """Items whose original (index 0) beats every control by ``margin``, among the items some
    text dominates; exact binomial tail against ``1 / (P + 1)`` (see the module docstring).
    Effect: the median margin of the items their original dominates (0 when none)."""
    dominated = by_original = 0
    excess = []
    for g in gains:
        if len(g) < 2:
            continue
        order = sorted(range(len(g)), key=lambda j: g[j], reverse=True)
        if g[order[0]] - g[order[1]] >= margin:
            dominated += 1
            if order[0] == 0:
                by_original += 1
                excess.append(g[0] - g[order[1]])
    p0 = 1.0 / max(2, len(gains[0]) if gains else 2)
    p = binom_upper_tail(by_original, dominated, p0)
    effect = statistics.median(excess) if excess else 0.0
    return TestResult(
        name,
        float(by_original),
        p,
        effect,
        len(gains),
        f"{by_original} of {dominated} dominated items dominated by their original (null rate {p0:.3f})",
    )


def shift_test(name: str, gains: Sequence[Sequence[float]]) -> TestResult:
    """Sum over items of the original's rank among its texts (1 = lowest), against the uniform
    null (ties get the average rank); effect: the median of ``original - mean(controls)``."""
    total = mean = var = 0.0
    diffs = []
    for g in gains:
        if len(g) < 2:
            continue
        below = sum(x < g[0] for x in g[1:])
        ties = sum(x == g[0] for x in g[1:])
        total += 1 + below + ties / 2
        k = len(g)
        mean += (k + 1) / 2
        var += (k * k - 1) / 12
        diffs.append(g[0] - statistics.fmean(g[1:]))
    z = (total - mean) / math.sqrt(var) if var > 0 else 0.0
    effect = statistics.median(diffs) if diffs else 0.0
    return TestResult(name, z, normal_upper(z), effect, len(diffs), f"rank sum {total:.1f} (null mean {mean:.1f})")


def _excess(g: Sequence[float]) -> float:
    """How far the original's gain exceeds the best control's (negative: a control is higher)."""
    return g[0] - max(g[1:])


def dominance_vs_spares(
    name: str,
    gains: Sequence[Sequence[float]],
    spares: Sequence[Sequence[float]],
    margin: float,
    quantile: float = SPARE_QUANTILE,
) -> TestResult:
    """Items whose original beats every control by the threshold: their rate among the test
    items against their rate among *spare* items (same distribution, never evaluated, never
    allowed data), one-sided Fisher exact. The threshold is ``margin`` or the spares' own
    ``quantile`` of that excess, whichever is higher: the spares carry whatever honest training
    does to real items that perturbed copies lack (their typical numbers, their round answers)
    and the model's own noise, so the null is measured, not assumed. Effect: the median excess
    of the test items over the threshold."""
    ex = sorted(_excess(g) for g in spares if len(g) >= 2)
    threshold = max(margin, ex[min(len(ex) - 1, int(quantile * len(ex)))] if ex else margin)
    hit = [_excess(g) for g in gains if len(g) >= 2 and _excess(g) >= threshold]
    n = sum(len(g) >= 2 for g in gains)
    hit_s = sum(x >= threshold for x in ex)
    p = fisher_greater(len(hit), n - len(hit), hit_s, len(ex) - hit_s)
    return TestResult(
        name,
        float(len(hit)),
        p,
        statistics.median(hit) if hit else 0.0,
        n,
        f"{len(hit)}/{n} test items beat their controls by >= {threshold:.2f} nats, {hit_s}/{len(ex)} spare items",
    )


def shift_vs_spares(name: str, gains: Sequence[Sequence[float]], spares: Sequence[Sequence[float]]) -> TestResult:
    """``original - mean(controls)`` of the test items against the spare items' (one-sided
    Mann-Whitney U, normal approximation); effect: the difference of their medians."""
    d = [g[0] - statistics.fmean(g[1:]) for g in gains if len(g) >= 2]
    s = [g[0] - statistics.fmean(g[1:]) for g in spares if len(g) >= 2]
    if not d or not s:
        return TestResult(name, 0.0, 1.0, 0.0, len(d), "no items")
    pooled = sorted([(x, 0) for x in d] + [(x, 1) for x in s])
    ranks: list[float] = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for r in range(i, j + 1):
            ranks[r] = (i + j) / 2 + 1
        i = j + 1
    r_test = sum(r for r, (_, grp) in zip(ranks, pooled, strict=True) if grp == 0)
    n1, n2 = len(d), len(s)
    u = r_test - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    effect = statistics.median(d) - statistics.median(s)
    return TestResult(name, z, normal_upper(z), effect, n1, f"U={u:.0f} over {n1} test and {n2} spare items")
