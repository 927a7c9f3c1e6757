"""Catalog of base models, agents, chat templates and prices, looked up by name with clear errors.

Benchmarks are not here: each is a unit of its own in ``posttrainbench.benchmarks`` (looked up
with ``posttrainbench.benchmarks.get_benchmark``, with the same :class:`UnknownNameError`)."""

from __future__ import annotations

from difflib import get_close_matches

from ..domain import AgentSpec, BaseModel
from .agents import AGENTS
from .base_models import DEMO_BASE_MODELS, PAPER_BASE_MODELS
from .chat_templates import END_OF_TURN, get_chat_template, tools_system_prompt

__all__ = [
    "AGENTS",
    "BASE_MODELS",
    "END_OF_TURN",
    "UnknownNameError",
    "get_agent",
    "get_base_model",
    "get_chat_template",
    "tools_system_prompt",
]

BASE_MODELS: dict[str, BaseModel] = {m.hub_id: m for m in (*PAPER_BASE_MODELS, *DEMO_BASE_MODELS)}


class UnknownNameError(KeyError):
    """A name that is not known (catalog or benchmark registry); the message lists the close and the
    known names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        close = get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}")

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def get_base_model(name: str) -> BaseModel:
    """Look up a base model by hub id (``Org/Name``) or by its bare name."""
    if name in BASE_MODELS:
        return BASE_MODELS[name]
    by_name = {m.name: m for m in BASE_MODELS.values()}
    if name in by_name:
        return by_name[name]
    raise UnknownNameError("base model", name, list(BASE_MODELS))


def get_agent(name: str) -> AgentSpec:
    """Look up an agent scaffold by id."""
    if name not in AGENTS:
        raise UnknownNameError("agent", name, list(AGENTS))
    return AGENTS[name]
