"""Catalog of base models, chat templates and prices, looked up by name with clear errors.

Agents register themselves in :mod:`posttrainbench.agents`; benchmarks are units of their own in
:mod:`posttrainbench.benchmarks` (``get_benchmark``), both with the same :class:`UnknownNameError`."""

from __future__ import annotations

from ..domain import BaseModelSpec
from ..registry import UnknownNameError
from .base_models import DEMO_BASE_MODELS, PAPER_BASE_MODELS
from .chat_templates import (
    END_OF_TURN,
    REFERENCE_CHAT_TEMPLATES,
    TOOL_TEMPLATES,
    get_chat_template,
    reference_chat_template,
    render_chat,
    tools_system_prompt,
)

__all__ = [
    "BASE_MODELS",
    "END_OF_TURN",
    "REFERENCE_CHAT_TEMPLATES",
    "TOOL_TEMPLATES",
    "UnknownNameError",
    "get_base_model",
    "get_chat_template",
    "reference_chat_template",
    "render_chat",
    "tools_system_prompt",
]

BASE_MODELS: dict[str, BaseModelSpec] = {m.hub_id: m for m in (*PAPER_BASE_MODELS, *DEMO_BASE_MODELS)}


def get_base_model(name: str) -> BaseModelSpec:
    """Look up a base model by hub id (``Org/Name``) or by its bare name."""
    if name in BASE_MODELS:
        return BASE_MODELS[name]
    by_name = {m.name: m for m in BASE_MODELS.values()}
    if name in by_name:
        return by_name[name]
    raise UnknownNameError("base model", name, list(BASE_MODELS))
