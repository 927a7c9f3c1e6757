"""Inference backends behind the same Inspect tasks: ``hf`` (``ptb-hf``, transformers, CPU or
GPU, batched), ``vllm`` (``ptb-vllm``, GPU, the whole test set submitted at once) and ``openai``
(Inspect's ``openai-api`` provider pointed at any OpenAI-compatible server, e.g. ``vllm serve``;
``base_url``, which ``evaluate_model`` defaults to ``$PTB_OPENAI_BASE_URL``; key from
``$PTB_OPENAI_API_KEY`` or a named variable, read by name when the model is made).

With ``openai`` the server renders the chat (its own template) and holds the weights; the
harness still pins the decoding (temperature, top_p, max_tokens, stop) through the task's
``GenerateConfig``, and the result records ``chat_template`` as the server's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args

from inspect_ai.model import Model, get_model

from ..domain import EvalBackend as Backend
from ..settings import OPENAI_API_KEY_VAR, EvaluationSettings
from .hf_provider import PROVIDER
from .vllm_provider import VLLM_PROVIDER

BACKENDS: tuple[str, ...] = get_args(Backend)
BASE_URL_ENV = EvaluationSettings.env_name("openai_base_url")
API_KEY_ENV = OPENAI_API_KEY_VAR
SERVER_TEMPLATE = "server"
"""``EvalResult.chat_template`` when an OpenAI-compatible server applied its own template."""


def uses_model_folder(backend: str) -> bool:
    """Whether the backend loads the model folder itself (and the folder must be well formed)."""
    return backend in ("hf", "vllm")


def make_model(
    backend: str,
    model_path: Path,
    *,
    chat_template: str,
    batch_size: int,
    device: str | None = None,
    model_args: dict[str, Any] | None = None,
    base_url: str | None = None,
    served_model: str | None = None,
    api_key_env: str | None = None,
) -> Model:
    """The Inspect model for ``backend`` (raises with a clear message when it cannot be built)."""
    extra = dict(model_args or {})
    if backend == "hf":
        return get_model(
            f"{PROVIDER}/{model_path.name or 'model'}", memoize=False, model_path=str(model_path),
            chat_template=chat_template, batch_size=batch_size, device=device, **extra,
        )  # fmt: skip
    if backend == "vllm":
        return get_model(
            f"{VLLM_PROVIDER}/{model_path.name or 'model'}", memoize=False, model_path=str(model_path),
            chat_template=chat_template, batch_size=batch_size, **extra,
        )  # fmt: skip
    if backend == "openai":
        if not base_url:
            raise ValueError(f"the openai backend needs base_url (the server's .../v1 endpoint) or ${BASE_URL_ENV}")
        key = os.environ.get(api_key_env or API_KEY_ENV)
        return get_model(
            f"openai-api/ptb/{served_model or model_path.name or 'model'}", memoize=False,
            base_url=base_url, api_key=key or "EMPTY", **extra,
        )  # fmt: skip
    raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
