"""One configuration model for an LLM endpoint (judge, graders), made from its settings group.

A config holds the *name* of the variable with the key, never the key itself.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..settings import LLMEndpointSettings, Provider

DEFAULT_BASE_URLS: dict[str, str] = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
"""Where a config without ``base_url`` sends its key: the provider's own API, never a URL taken
from the SDKs' environment variables (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``)."""


class LLMConfigError(ValueError):
    """An invalid configuration; the message names each offending variable and why."""


class LLMConfig(BaseModel):
    """Which endpoint and model, and how to call it. Subclasses set per-role defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider = "openai"
    model: str = Field(..., min_length=1, description="Model name at the endpoint.")
    base_url: str | None = Field(None, description="Endpoint (None: the provider's own API).")
    api_key_env: str = Field(..., min_length=1, description="Environment variable holding the key.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per call (timeouts, HTTP errors, malformed replies).")
    backoff_s: float = Field(2.0, ge=0, description="First wait before a retry; doubles on each.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds per request.")
    temperature: float | None = Field(
        0.0, ge=0, description="OpenAI-compatible only; Anthropic samples at its default. None: not sent."
    )
    max_tokens: int = Field(2048, gt=0)
    reasoning_effort: str | None = Field(
        None, description="OpenAI reasoning models' reasoning_effort (None: not sent; e.g. a protocol's judge)."
    )

    @classmethod
    def from_settings(cls, endpoint: LLMEndpointSettings) -> Self:
        """The config from an endpoint's settings group (``Settings.judge``, ``Settings.grader``);
        a value the group leaves unset (``None``) takes this class's default. Raises
        :class:`LLMConfigError` naming each invalid variable."""
        if endpoint.problems:
            raise LLMConfigError("; ".join(endpoint.problems))
        try:
            return cls(**endpoint.values())
        except ValidationError as exc:
            names = {field: type(endpoint).env_name(field) for field in endpoint.env_fields()}
            bad = "; ".join(
                f"{names.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'settings'}: {e['msg']}"
                for e in exc.errors()
            )
            raise LLMConfigError(bad) from None

    @property
    def endpoint(self) -> str:
        """The URL the key is sent to: ``base_url``, else the provider's own API."""
        return self.base_url or DEFAULT_BASE_URLS[self.provider]

    def describe(self) -> dict[str, str | float | int | None]:
        """What to record about the endpoint (never the key); ``temperature`` is None where it is
        not sent (Anthropic)."""
        return {
            "provider": self.provider, "model": self.model, "base_url": self.endpoint,
            "temperature": self.temperature if self.provider == "openai" else None, "max_tokens": self.max_tokens,
            **({"reasoning_effort": self.reasoning_effort} if self.reasoning_effort is not None else {}),
        }  # fmt: skip
