"""The one registry of benchmarks, filled by ``@register_benchmark`` in each benchmark's module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ..catalog import UnknownNameError
from .base import BenchmarkDefinition

D = TypeVar("D", bound=type[BenchmarkDefinition])


class BenchmarkRegistry(Mapping[str, BenchmarkDefinition]):
    """Benchmark id -> definition. Iterates paper benchmarks first, then demo ones, each by id
    (independent of import order); an unknown id is an :class:`UnknownNameError` naming the
    close and the known ids."""

    def __init__(self) -> None:
        self._by_id: dict[str, BenchmarkDefinition] = {}

    def __getitem__(self, name: str) -> BenchmarkDefinition:
        try:
            return self._by_id[name]
        except KeyError:
            raise UnknownNameError("benchmark", name, list(self._by_id)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_id, key=lambda i: (self._by_id[i].demo, i)))

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, definition: BenchmarkDefinition) -> None:
        """Register ``definition`` under its id; a second benchmark with the same id is refused."""
        if definition.id in self._by_id:
            other = type(self._by_id[definition.id])
            raise ValueError(
                f"benchmark {definition.id!r} is already registered by {other.__module__}.{other.__qualname__}"
            )
        self._by_id[definition.id] = definition

    @contextmanager
    def scoped(self) -> Iterator[BenchmarkRegistry]:
        """Registrations made while the block runs are undone when it ends (tests)."""
        saved = dict(self._by_id)
        try:
            yield self
        finally:
            self._by_id = saved


BENCHMARKS = BenchmarkRegistry()
"""Every registered benchmark (the built-in ones are registered when the package is imported)."""


def register_benchmark(**spec: Any) -> Callable[[D], D]:
    """Class decorator: instantiate the benchmark with its spec fields (those of
    ``domain.Benchmark``, validated) and register it::

        @register_benchmark(id="gsm8k", display_name="GSM8K", full_size=1319, dev_size=100,
                            max_tokens_ladder=(4000, 3000, 2000), ...)
        class Gsm8k(BenchmarkDefinition):
            def read_test_items(self, root): ...
    """

    def decorate(cls: D) -> D:
        BENCHMARKS.add(cls(**spec))
        return cls

    return decorate


def get_benchmark(name: str) -> BenchmarkDefinition:
    """Look up a benchmark by id (:class:`UnknownNameError` with close matches if unknown)."""
    return BENCHMARKS[name]
