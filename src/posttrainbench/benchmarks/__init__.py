"""Benchmarks as units: one module per benchmark, holding everything specific to it.

Each module defines one :class:`BenchmarkDefinition` subclass, registered with
``@register_benchmark(<spec fields>)``: its spec (pinned data digests included), loaders (test
set from a local file or the hub, training examples, few-shot turns), prompts per evaluation
protocol, solver, scorer, re-score from a raw log, aggregate, and dev split. Importing this
package imports every module in it, so adding a benchmark is adding a module (plus its data and
its tests); nothing else names it.

Callers look benchmarks up here (:func:`get_benchmark`, :data:`BENCHMARKS`) and pass the
definition down; the evaluation and data machinery never import this package.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import DEV_SEED, BenchmarkDefinition
from .inspect_tasks import ptb_benchmark, register_inspect_tasks
from .registry import BENCHMARKS, BenchmarkRegistry, get_benchmark, register_benchmark

__all__ = [
    "BENCHMARKS",
    "DEV_SEED",
    "BenchmarkDefinition",
    "BenchmarkRegistry",
    "get_benchmark",
    "ptb_benchmark",
    "register_benchmark",
]

_MACHINERY = {"base", "registry", "inspect_tasks"}
"""Modules of this package that are not benchmarks."""

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_module.name}")

register_inspect_tasks(BENCHMARKS.values())
