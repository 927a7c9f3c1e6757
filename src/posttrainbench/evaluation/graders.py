"""LLM graders (Arena-Hard pairwise judge, HealthBench rubric grader): the endpoint client.

The grader is an OpenAI-compatible chat-completions endpoint or Anthropic's messages API,
called with the official SDK. Its key is read from the **harness's** environment when the client
is built (``GraderConfig.api_key_env``); it is never written to a file, a log or a workspace.
A call is retried (``max_retries``, exponential backoff) on any error; a call that still fails
raises :class:`GraderError`, which the scorers count and report instead of scoring the sample.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GRADER_PROVIDER_ENV = "PTB_GRADER_PROVIDER"
GRADER_MODEL_ENV = "PTB_GRADER_MODEL"
GRADER_BASE_URL_ENV = "PTB_GRADER_BASE_URL"
GRADER_KEY_ENV_ENV = "PTB_GRADER_API_KEY_ENV"
DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}
DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class GraderError(RuntimeError):
    """A grader call failed after its retries, or the grader is not configured."""


class GraderConfig(BaseModel):
    """Which endpoint grades, and how hard to try. Holds the *name* of the key variable only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["openai", "anthropic"] = "openai"
    model: str = Field(DEFAULT_MODELS["openai"], description="Grader model name at the endpoint.")
    base_url: str | None = Field(None, description="Endpoint (None: the SDK's default).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the key.")
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(2.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    max_tokens: int = Field(2048, gt=0)
    max_connections: int = Field(8, gt=0, description="Concurrent grader calls.")

    @classmethod
    def from_env(cls) -> GraderConfig:
        """``$PTB_GRADER_PROVIDER`` (openai|anthropic), ``$PTB_GRADER_MODEL``, ``$PTB_GRADER_BASE_URL``,
        ``$PTB_GRADER_API_KEY_ENV`` (default ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``)."""
        provider = os.environ.get(GRADER_PROVIDER_ENV, "openai")
        if provider not in DEFAULT_MODELS:
            raise GraderError(f"{GRADER_PROVIDER_ENV}={provider!r}: expected one of {sorted(DEFAULT_MODELS)}")
        return cls(
            provider=provider,  # type: ignore[arg-type]
            model=os.environ.get(GRADER_MODEL_ENV) or DEFAULT_MODELS[provider],
            base_url=os.environ.get(GRADER_BASE_URL_ENV) or None,
            api_key_env=os.environ.get(GRADER_KEY_ENV_ENV) or DEFAULT_KEY_ENVS[provider],
        )

    def describe(self) -> dict[str, str | None]:
        """What to record about the grader (never the key)."""
        return {"provider": self.provider, "model": self.model, "base_url": self.base_url}


class Grader:
    """A thread-safe grader client with retries; counts calls and failures."""

    def __init__(self, config: GraderConfig) -> None:
        self.config = config
        key = os.environ.get(config.api_key_env)
        if not key:
            raise GraderError(
                f"no grader key: set {config.api_key_env} in the harness's environment "
                f"(grader {config.provider}/{config.model}); it is never passed to the agent"
            )
        if config.provider == "openai":
            import openai

            self._client = openai.OpenAI(
                api_key=key, base_url=config.base_url, max_retries=0, timeout=config.timeout_s
            )
        else:
            import anthropic

            self._client = anthropic.Anthropic(
                api_key=key, base_url=config.base_url, max_retries=0, timeout=config.timeout_s
            )
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._lock = threading.Lock()
        self.calls = 0
        self.failed_calls = 0
        self.retries = 0

    def complete(self, system: str | None, user: str) -> str:
        """The grader's text reply to one prompt (temperature 0 where the API takes one).
        Raises :class:`GraderError`."""
        last: Exception | None = None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                with self._lock:
                    self.retries += 1
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                with self._slots:
                    text = self._call(system, user)
                with self._lock:
                    self.calls += 1
                return text
            except Exception as exc:  # any SDK / transport / protocol error: retry
                last = exc
        with self._lock:
            self.calls += 1
            self.failed_calls += 1
        raise GraderError(
            f"grader call failed after {self.config.max_retries + 1} attempt(s): {type(last).__name__}: {last}"
        )

    def _call(self, system: str | None, user: str) -> str:
        cfg = self.config
        if cfg.provider == "openai":
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
            resp = self._client.chat.completions.create(
                model=cfg.model, messages=msgs, temperature=0.0, max_tokens=cfg.max_tokens
            )
            if not resp.choices:
                raise RuntimeError("grader returned no choices")
            text = resp.choices[0].message.content
        else:
            kw = {"system": system} if system else {}
            # this SDK (2.x) has no temperature parameter: the model's default sampling applies
            resp = self._client.messages.create(
                model=cfg.model, max_tokens=cfg.max_tokens,
                messages=[{"role": "user", "content": user}], **kw,
            )  # fmt: skip
            text = "".join(getattr(b, "text", "") for b in resp.content)
        if not text:
            raise RuntimeError("grader returned an empty reply")
        return text


# ---------------------------------------------------------------------------------------------
# What graded scorers share: calling the grader for one sample, the "unscored" mark, bootstrap.

UNSCORED = "unscored"
"""Score metadata key: the cause why a sample has no score (grader failed or replied malformed).
Such a sample is left out of the metric and counted as not scored by ``runner.check_log``."""


class MalformedGrade(ValueError):
    """The grader replied, but not in the format asked for."""


def quote_reply(text: str) -> str:
    """A model's reply as it may appear inside a grader prompt: it is hostile data, so the marks
    that structure a grader prompt are broken up and it can neither close its own section, open
    another one, nor state a verdict label the grader might echo. ``[[``/``]]`` (verdict labels),
    ``<|``/``|>`` (section markers) and Markdown headings at the start of a line (the grader
    template's own sections) each get a separating character; an honest reply reads the same to a
    human or a judge."""
    import re

    text = text.replace("[[", "[ [").replace("]]", "] ]").replace("<|", "< |").replace("|>", "| >")
    return re.sub(r"(?m)^(\s*)(#+)(?=\s)", r"\1\\\2", text)


async def ask_all(grader: Grader, prompts: list[tuple[str | None, str]]) -> tuple[list[str | None], list[str]]:
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


def bootstrap_stderr(values: list[float], stat, *, n: int = 1000, seed: int = 0) -> float:  # noqa: ANN001
    """Standard deviation of ``stat`` over ``n`` bootstrap resamples (fixed seed: reproducible)."""
    import random
    import statistics

    if len(values) < 2:
        return 0.0
    rng = random.Random(seed)
    k = len(values)
    stats = [stat([values[rng.randrange(k)] for _ in range(k)]) for _ in range(n)]
    return statistics.pstdev(stats)
