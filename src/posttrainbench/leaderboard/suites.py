"""Suites: named, versioned sets of benchmarks with the published weights (``factors``).

``v1``: the seven benchmarks of the v1 paper, weighted by its ``factors.json``. ``v1.2``: the current published
leaderboard's six (BFCL dropped), weighted by ``factors-v1.2.json``. The factor files are package data
(``resources/leaderboard/<suite>/``), copied from the published leaderboard (see each folder's SOURCE.md).

A suite fixes *which* benchmarks an agent is ranked on and the fallback weights; the weights actually used come
from recorded base+instruct baselines when there are some for every benchmark and base model of the suite
(``from_results.resolve_weights``), else from the suite's published factors. A suite is not a protocol: the
``v1.2`` suite goes with runs evaluated under ``ptb-v1.2`` (and ``v1`` with ``ptb-v1``) for a comparison with the
published numbers to mean anything, and the leaderboard still ranks one protocol at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from .weights import parse_weights

__all__ = ["SUITES", "Suite", "get_suite", "suite_dir"]


@dataclass(frozen=True)
class Suite:
    """A named set of benchmarks, the file of its published weights, and the protocol it goes with."""

    name: str
    benchmarks: tuple[str, ...]
    factors_file: str
    protocol: str
    description: str

    @property
    def factors(self) -> dict[str, float]:
        """The published weights, one per benchmark of the suite (checked: sum to 1, same benchmarks)."""
        return dict(_factors(self.name))


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            name="v1",
            benchmarks=("aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval"),
            factors_file="factors.json",
            protocol="ptb-v1",
            description="the v1 paper: 7 benchmarks, factors.json",
        ),
        Suite(
            name="v1.2",
            benchmarks=("aime2025", "arenahardwriting", "gpqamain", "gsm8k", "healthbench", "humaneval"),
            factors_file="factors-v1.2.json",
            protocol="ptb-v1.2",
            description="the v1.2 leaderboard (30 Sep 2026): 6 benchmarks (no BFCL), factors-v1.2.json",
        ),
    )
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r} (known: {', '.join(SUITES)})") from None


def suite_dir(name: str) -> Traversable:
    """The package folder holding a suite's published files (factors, published leaderboard)."""
    return files("posttrainbench").joinpath("resources", "leaderboard", get_suite(name).name)


@cache
def _factors(name: str) -> dict[str, float]:
    suite = get_suite(name)
    where = f"resources/leaderboard/{name}/{suite.factors_file}"
    weights = parse_weights(suite_dir(name).joinpath(suite.factors_file).read_text(encoding="utf-8"), where)
    if set(weights) != set(suite.benchmarks):
        raise ValueError(f"{where}: weights for {sorted(weights)}, suite {name} has {sorted(suite.benchmarks)}")
    return dict(weights)
