"""The one LLM client: a system + user prompt to an endpoint, under the one retry policy.

Providers: OpenAI-compatible chat completions (``openai`` SDK) and Anthropic messages
(``anthropic`` SDK), the official clients with their own retries off, so that every attempt is
counted and can be recorded by the caller. The key is read from the harness's environment when
the client is built, kept only inside the SDK client, and sent only to ``config.endpoint``: a
missing ``base_url`` means the provider's own API (not the SDKs' ``*_BASE_URL`` variables) and
redirects are not followed (a redirect would carry the key's header to another host).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .config import LLMConfig
from .retry import RetryPolicy

if TYPE_CHECKING:
    from anthropic.types import MessageParam
    from openai.types.chat import ChatCompletionMessageParam

T = TypeVar("T")
Send = Callable[[str | None, str], str]
"""``(system, user) -> reply text``: one request to the endpoint."""


class LLMError(RuntimeError):
    """A call failed after its attempts (the last error is in the message)."""


class LLMKeyError(LLMError):
    """The variable that should hold the key is unset or empty."""


class MalformedReply(ValueError):
    """Raised by a caller's ``parse``: the endpoint answered, but not in the form asked for."""


class EmptyReply(RuntimeError):
    """The endpoint answered with no text (no choices, or empty content)."""


@dataclass(frozen=True)
class Attempt:
    """One request of a call, as the caller may record it."""

    index: int
    seconds: float
    reply: str | None = None
    """The raw reply text, when the endpoint answered."""
    error: str | None = None
    """``Type: message`` when the request failed or ``parse`` rejected the reply."""
    value: Any = None
    """What ``parse`` made of the reply, when it accepted it."""


def error_text(exc: BaseException, limit: int = 300) -> str:
    """``Type: message``, the message cut to ``limit`` characters."""
    return f"{type(exc).__name__}: {str(exc)[:limit]}"


class LLMClient:
    """A thread-safe client of one endpoint; counts calls, failures, retries and tokens.

    ``env``: where the key is read (default: this process's environment). ``max_connections``:
    concurrent requests (default: unlimited). ``send``: a stand-in for the endpoint (then no key
    is read); the retry policy and counters still apply.
    """

    def __init__(
        self,
        config: LLMConfig,
        *,
        env: Mapping[str, str] | None = None,
        max_connections: int | None = None,
        send: Send | None = None,
    ) -> None:
        self.config = config
        self.policy = RetryPolicy(attempts=config.attempts, backoff_s=config.backoff_s)
        if send is None:
            key = (os.environ if env is None else env).get(config.api_key_env)
            if not key:
                raise LLMKeyError(f"{config.api_key_env} is not set")
            send = self._sdk_sender(key)
        self._send = send
        self._slots = threading.BoundedSemaphore(max_connections) if max_connections else None
        self._lock = threading.Lock()
        self.calls = 0
        """Calls finished, answered or failed (a call is one :meth:`ask`, over all its attempts)."""
        self.failed_calls = 0
        self.retries = 0
        """Requests beyond each call's first."""
        self.input_tokens = 0
        self.output_tokens = 0

    def counters(self) -> dict[str, int]:
        """The call and token counters, to record with the result."""
        with self._lock:
            return {
                "calls": self.calls, "failed_calls": self.failed_calls, "retries": self.retries,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            }  # fmt: skip

    @overload
    def ask(self, system: str | None, user: str, *, on_attempt: Callable[[Attempt], None] | None = None) -> str: ...
    @overload
    def ask(
        self, system: str | None, user: str, parse: Callable[[str], T], *,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> T: ...  # fmt: skip
    def ask(
        self,
        system: str | None,
        user: str,
        parse: Callable[[str], Any] | None = None,
        *,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> Any:
        """The reply to one prompt (``parse``\\ d, when given), within ``config.attempts`` requests.

        A failed request is retried as :class:`RetryPolicy` says; a reply that ``parse`` rejects
        with :class:`MalformedReply` is asked again at once. ``on_attempt`` sees every request.
        Raises :class:`LLMError` with the last error when no attempt succeeded.
        """
        attempts = self.config.attempts
        last = ""
        tried = 0
        for i in range(attempts):
            tried = i + 1
            if i:
                with self._lock:
                    self.retries += 1
            t0 = time.monotonic()
            try:
                if self._slots is None:
                    text = self._send(system, user)
                else:
                    with self._slots:
                        text = self._send(system, user)
                if not text:
                    raise EmptyReply("the endpoint returned no text")
            except Exception as exc:  # noqa: BLE001 - SDK, transport or protocol error: policy decides
                last = error_text(exc)
                _report(on_attempt, Attempt(i, _since(t0), error=last))
                if not self.policy.retryable(exc) or i + 1 == attempts:
                    break
                time.sleep(self.policy.wait_s(i + 1, exc))
                continue
            try:
                value = text if parse is None else parse(text)
            except MalformedReply as exc:
                last = error_text(exc)
                _report(on_attempt, Attempt(i, _since(t0), reply=text, error=last))
                continue
            _report(on_attempt, Attempt(i, _since(t0), reply=text, value=value))
            with self._lock:
                self.calls += 1
            return value
        with self._lock:
            self.calls += 1
            self.failed_calls += 1
        cfg = self.config
        raise LLMError(f"{cfg.provider}:{cfg.model} call failed after {tried} attempt(s): {last}")

    # ------------------------------------------------------------------------- providers

    def _count_tokens(self, input_tokens: int | None, output_tokens: int | None) -> None:
        with self._lock:
            self.input_tokens += input_tokens or 0
            self.output_tokens += output_tokens or 0

    def _sdk_sender(self, key: str) -> Send:
        """A :data:`Send` through the provider's official SDK (its own retries off)."""
        cfg = self.config
        if cfg.provider == "openai":
            import openai

            oclient = openai.OpenAI(
                api_key=key, base_url=cfg.endpoint, timeout=cfg.timeout_s, max_retries=0,
                http_client=openai.DefaultHttpxClient(follow_redirects=False),
            )  # fmt: skip

            def send_openai(system: str | None, user: str) -> str:
                msgs: list[ChatCompletionMessageParam] = []
                if system:
                    msgs.append({"role": "system", "content": system})
                msgs.append({"role": "user", "content": user})
                extra: dict[str, Any] = {}
                if cfg.temperature is not None:  # None: the model's default (reasoning models take no other)
                    extra["temperature"] = cfg.temperature
                if cfg.reasoning_effort is not None:
                    extra["reasoning_effort"] = cfg.reasoning_effort
                resp = oclient.chat.completions.create(
                    model=cfg.model, messages=msgs, max_completion_tokens=cfg.max_tokens, **extra
                )
                if resp.usage is not None:
                    self._count_tokens(resp.usage.prompt_tokens, resp.usage.completion_tokens)
                if not resp.choices:
                    raise EmptyReply("the reply has no choices")
                return resp.choices[0].message.content or ""

            return send_openai

        import anthropic

        aclient = anthropic.Anthropic(
            api_key=key, base_url=cfg.endpoint, timeout=cfg.timeout_s, max_retries=0,
            http_client=anthropic.DefaultHttpxClient(follow_redirects=False),
        )  # fmt: skip

        def send_anthropic(system: str | None, user: str) -> str:
            # this SDK (2.x) has no temperature parameter: the model's default sampling applies
            messages: list[MessageParam] = [{"role": "user", "content": user}]
            if system:
                resp = aclient.messages.create(
                    model=cfg.model, max_tokens=cfg.max_tokens, messages=messages, system=system
                )
            else:
                resp = aclient.messages.create(model=cfg.model, max_tokens=cfg.max_tokens, messages=messages)
            usage = getattr(resp, "usage", None)
            if usage is not None:
                self._count_tokens(usage.input_tokens, usage.output_tokens)
            return "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", "") == "text")

        return send_anthropic


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)


def _report(on_attempt: Callable[[Attempt], None] | None, attempt: Attempt) -> None:
    if on_attempt is not None:
        on_attempt(attempt)
