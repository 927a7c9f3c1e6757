"""Catalog lookups for the commands: the one place the CLI reads the registries of benchmarks,
base models and agents. An unknown name becomes a :class:`~.common.CliError` about the option
that named it (``option=None``: a positional argument; the message lists close and known names)."""

from __future__ import annotations

from ..agents import AGENTS
from ..benchmarks import BENCHMARKS, BenchmarkDefinition, get_benchmark
from ..catalog import BASE_MODELS, UnknownNameError, get_base_model
from ..domain import AgentSpec, BaseModelSpec
from .common import expected

__all__ = ["UnknownNameError", "agent", "all_agents", "all_base_models", "all_benchmarks", "base_model", "benchmark"]


def benchmark(name: str, option: str | None = "--benchmark") -> BenchmarkDefinition:
    """The benchmark ``name`` (given by ``option``)."""
    with expected(UnknownNameError, what=option):
        return get_benchmark(name)


def base_model(name: str, option: str | None = "--base-model") -> BaseModelSpec:
    """The base model ``name`` (hub id or bare name, given by ``option``)."""
    with expected(UnknownNameError, what=option):
        return get_base_model(name)


def agent(name: str, option: str | None = "--agent") -> AgentSpec:
    """The agent scaffold ``name`` (given by ``option``)."""
    with expected(UnknownNameError, what=option):
        return AGENTS.get(name).spec


def all_benchmarks() -> list[BenchmarkDefinition]:
    """Every benchmark, in catalog order."""
    return list(BENCHMARKS.values())


def all_base_models() -> list[BaseModelSpec]:
    """Every base model, in catalog order."""
    return list(BASE_MODELS.values())


def all_agents() -> list[AgentSpec]:
    """Every agent scaffold, in catalog order."""
    return [cls.spec for cls in AGENTS.values()]
