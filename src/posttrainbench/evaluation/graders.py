"""LLM graders (Arena-Hard pairwise judge, HealthBench rubric grader): the endpoint client.

The grader is an OpenAI-compatible chat-completions endpoint or Anthropic's messages API, called
through the shared client of :mod:`posttrainbench.llm` (official SDKs). Its key is read from the
**harness's** environment when the client is built (``GraderConfig.api_key_env``), sent only to
the configured endpoint, and never written to a file, a log or a workspace. A call follows the
one retry policy (``attempts``; timeouts, connection errors, HTTP 408/409/429/5xx retried with
exponential backoff); a call that still fails raises :class:`GraderError`, which the scorers count
and report instead of scoring the sample. A malformed reply is not asked again: the scorer marks
the sample :data:`UNSCORED`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from pydantic import Field, model_validator

from ..llm import LLMClient, LLMConfig, LLMConfigError, LLMError, LLMKeyError, neutralise
from ..settings import LLMEndpointSettings

DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}
DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class GraderError(LLMError):
    """A grader call failed after its retries, or the grader is not configured."""


class GraderConfig(LLMConfig):
    """Which endpoint grades, and how hard to try. Holds the *name* of the key variable only.

    ``model`` and ``api_key_env`` default to the provider's (``gpt-4.1-mini`` / ``OPENAI_API_KEY``,
    ``claude-sonnet-4-5`` / ``ANTHROPIC_API_KEY``); temperature 0 (OpenAI-compatible only)."""

    attempts: int = Field(4, ge=1, le=10, description="Tries per call: the first and 3 retries.")
    max_connections: int = Field(8, gt=0, description="Concurrent grader calls.")

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            provider = data.get("provider", "openai")
            provider = provider if provider in DEFAULT_MODELS else "openai"  # the provider's own error is reported
            data = {"model": DEFAULT_MODELS[provider], "api_key_env": DEFAULT_KEY_ENVS[provider], **data}
        return data

    @classmethod
    def from_settings(cls, endpoint: LLMEndpointSettings) -> Self:
        """The grader the ``PTB_GRADER_*`` settings configure (``Settings.grader``). Raises
        :class:`GraderError` naming each invalid variable."""
        try:
            return super().from_settings(endpoint)
        except LLMConfigError as exc:
            raise GraderError(f"invalid grader configuration: {exc}") from None


class Grader(LLMClient):
    """A thread-safe grader client (at most ``config.max_connections`` requests at a time) with
    the one retry policy; counts calls, failures, retries and tokens (:meth:`counters`)."""

    config: GraderConfig

    def __init__(self, config: GraderConfig) -> None:
        try:
            super().__init__(config, max_connections=config.max_connections)
        except LLMKeyError:
            raise GraderError(
                f"no grader key: set {config.api_key_env} in the harness's environment "
                f"(grader {config.provider}/{config.model}); it is never passed to the agent"
            ) from None

    def complete(self, system: str | None, user: str) -> str:
        """The grader's text reply to one prompt (temperature ``config.temperature`` where the API
        takes one). Raises :class:`GraderError`."""
        try:
            return self.ask(system, user)
        except LLMError as exc:
            raise GraderError(f"grader {exc}") from None


# ---------------------------------------------------------------------------------------------
# What graded scorers share: calling the grader for one sample, the "unscored" mark, bootstrap.

UNSCORED = "unscored"
"""Score metadata key: the cause why a sample has no score (grader failed or replied malformed).
Such a sample is left out of the metric and counted as not scored by ``runner.check_log``."""


DROPPED = "dropped"
"""Score metadata key: why a graded sample is left out of the metric *by the protocol's rule* (the reference drops an
Arena-Hard question whose judge reply has no verdict). Unlike :data:`UNSCORED`, it does not fail the evaluation:
``runner.check_log`` counts it as accounted for, not scored."""


class MalformedGrade(ValueError):
    """The grader replied, but not in the format asked for."""


def quote_reply(text: str) -> str:
    """A model's reply as it may appear inside a grader prompt: it is hostile data, so the marks
    that structure a grader prompt are broken up and it can neither close its own section, open
    another one, nor state a verdict label the grader might echo. ``[[``/``]]`` (verdict labels),
    ``<|``/``|>`` (section markers) and Markdown headings at the start of a line (the grader
    template's own sections) each get a separating character; an honest reply reads the same to a
    human or a judge. The one quoting helper of the LLM layer
    (:func:`posttrainbench.llm.quoting.neutralise`), shared with the integrity judge."""
    return neutralise(text)


async def ask_all(grader: Grader, prompts: Sequence[tuple[str | None, str]]) -> tuple[list[str | None], list[str]]:
    """Ask the grader every ``(system, user)`` prompt concurrently: ``(replies, errors)``; a reply
    is None where the call failed after its retries (its error is in ``errors``)."""
    import asyncio

    results = await asyncio.gather(
        *(asyncio.to_thread(grader.complete, s, u) for s, u in prompts), return_exceptions=True
    )
    replies: list[str | None] = []
    errors: list[str] = []
    for r in results:
        if isinstance(r, BaseException):
            if not isinstance(r, Exception):
                raise r
            replies.append(None)
            errors.append(str(r))
        else:
            replies.append(r)
    return replies, errors


_T = TypeVar("_T")


def bootstrap_stderr(values: list[_T], stat: Callable[[list[_T]], float], *, n: int = 1000, seed: int = 0) -> float:
    """Standard deviation of ``stat`` over ``n`` bootstrap resamples (fixed seed: reproducible)."""
    import random
    import statistics

    if len(values) < 2:
        return 0.0
    rng = random.Random(seed)
    k = len(values)
    stats = [stat([values[rng.randrange(k)] for _ in range(k)]) for _ in range(n)]
    return statistics.pstdev(stats)
