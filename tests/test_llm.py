"""The LLM client layer (judge and graders) against a local server speaking the real OpenAI /
Anthropic wire protocols (``posttrainbench.testing.FakeLLMServer``), so the real SDK clients run:
config from the settings, the retry policy, the key's destination, counters."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from posttrainbench.evaluation.graders import GraderConfig, GraderError
from posttrainbench.llm import (
    Attempt,
    LLMClient,
    LLMConfig,
    LLMConfigError,
    LLMError,
    LLMKeyError,
    MalformedReply,
    RetryPolicy,
)
from posttrainbench.llm import config as llm_config
from posttrainbench.settings import Settings
from posttrainbench.testing import FakeLLMServer

KEY = "sk-llm-layer-test-key-42"
ENV = {"PTB_T_KEY": KEY}


def _config(url: str | None, provider: str = "openai", **kw) -> LLMConfig:
    return LLMConfig(
        **{"provider": provider, "model": "m-1", "base_url": url, "api_key_env": "PTB_T_KEY", "backoff_s": 0.0} | kw
    )


def _replies(*replies: str | int):
    """A responder: replies in order (the last repeats); an int is an HTTP status."""
    seen: list[int] = []

    def respond(body: dict) -> str | int:
        seen.append(1)
        return replies[min(len(seen), len(replies)) - 1]

    return respond


def test_config_from_settings_names_the_variables() -> None:
    env = {"PTB_GRADER_MODEL": "m", "PTB_GRADER_API_KEY_ENV": "MY_KEY", "PTB_GRADER_ATTEMPTS": "5",
           "PTB_GRADER_TEMPERATURE": "0.5", "PTB_GRADER_BASE_URL": ""}  # fmt: skip
    cfg = LLMConfig.from_settings(Settings.from_env(env).grader)
    assert (cfg.model, cfg.api_key_env, cfg.attempts, cfg.temperature, cfg.base_url) == ("m", "MY_KEY", 5, 0.5, None)
    assert cfg.endpoint == "https://api.openai.com/v1"
    anthropic = Settings.from_env(env | {"PTB_GRADER_PROVIDER": "anthropic"}).grader
    assert LLMConfig.from_settings(anthropic).endpoint == "https://api.anthropic.com"
    bad = Settings.from_env(env | {"PTB_GRADER_ATTEMPTS": "0", "PTB_GRADER_TIMEOUT_S": "soon"}).grader
    with pytest.raises(
        LLMConfigError,
        match=r"^PTB_GRADER_ATTEMPTS='0': expected an integer from 1 to 10; PTB_GRADER_TIMEOUT_S='soon': expected a positive number$",
    ):
        LLMConfig.from_settings(bad)
    # what the settings leave to the config (the base config has no default model or key) is named too
    with pytest.raises(
        LLMConfigError, match=r"^PTB_GRADER_MODEL: Field required; PTB_GRADER_API_KEY_ENV: Field required$"
    ):
        LLMConfig.from_settings(Settings.from_env({}).grader)


def test_grader_config_defaults_per_provider_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PROVIDER", "MODEL", "BASE_URL", "API_KEY_ENV", "ATTEMPTS", "TIMEOUT_S", "TEMPERATURE", "MAX_TOKENS"):
        monkeypatch.delenv(f"PTB_GRADER_{var}", raising=False)
    cfg = GraderConfig.from_settings(Settings.from_env().grader)
    assert (cfg.provider, cfg.model, cfg.api_key_env, cfg.attempts, cfg.temperature) == (
        "openai",
        "gpt-4.1-mini",
        "OPENAI_API_KEY",
        4,
        0.0,
    )
    monkeypatch.setenv("PTB_GRADER_PROVIDER", "anthropic")
    monkeypatch.setenv("PTB_GRADER_MAX_TOKENS", "512")
    cfg = GraderConfig.from_settings(Settings.from_env().grader)
    assert (cfg.model, cfg.api_key_env, cfg.max_tokens) == ("claude-sonnet-4-5", "ANTHROPIC_API_KEY", 512)
    assert cfg.describe()["temperature"] is None, "Anthropic is sent no temperature: none is recorded"
    assert GraderConfig(provider="anthropic").model == "claude-sonnet-4-5"  # type: ignore[call-arg]  # defaults from the provider
    monkeypatch.setenv("PTB_GRADER_PROVIDER", "gemini")
    grader = Settings.from_env().grader  # an invalid grader does not stop the settings: only the graded evaluations
    with pytest.raises(
        GraderError,
        match=r"^invalid grader configuration: PTB_GRADER_PROVIDER='gemini': expected `openai` or `anthropic`$",
    ):
        GraderConfig.from_settings(grader)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_retryable_errors_then_answer_counted_and_recorded(provider: str) -> None:
    seen: list[Attempt] = []
    with FakeLLMServer(_replies(500, 429, "the answer")) as srv:
        url = srv.base_url if provider == "openai" else srv.root_url
        client = LLMClient(_config(url, provider), env=ENV)
        assert client.ask("sys", "question", on_attempt=seen.append) == "the answer"
    assert len(srv.requests) == 3 and all(r["auth"].removeprefix("Bearer ") == KEY for r in srv.requests)
    assert [a.index for a in seen] == [0, 1, 2]
    assert "InternalServerError" in seen[0].error and "RateLimitError" in seen[1].error
    assert seen[2].error is None and seen[2].reply == "the answer"
    assert client.counters() == {"calls": 1, "failed_calls": 0, "retries": 2, "input_tokens": 1, "output_tokens": 1}


def test_client_errors_are_not_retried() -> None:
    with FakeLLMServer(_replies(401)) as srv:
        client = LLMClient(_config(srv.base_url, attempts=5), env=ENV)
        with pytest.raises(LLMError, match=r"after 1 attempt\(s\): AuthenticationError"):
            client.ask(None, "x")
    assert len(srv.requests) == 1 and client.counters()["failed_calls"] == 1 and client.retries == 0


def test_malformed_replies_are_asked_again_at_once_within_the_attempts() -> None:
    def parse(text: str) -> int:
        if not text.isdigit():
            raise MalformedReply(f"not a number: {text!r}")
        return int(text)

    seen: list[Attempt] = []
    with FakeLLMServer(_replies("seven", "7")) as srv:
        client = LLMClient(_config(srv.base_url, backoff_s=30.0), env=ENV)
        t0 = time.monotonic()
        assert client.ask(None, "x", parse, on_attempt=seen.append) == 7
        assert time.monotonic() - t0 < 10, "a malformed reply is not a transport error: no backoff"
    assert [(a.reply, a.value) for a in seen] == [("seven", None), ("7", 7)] and "not a number" in seen[0].error
    with FakeLLMServer(_replies("seven")) as srv:
        client = LLMClient(_config(srv.base_url, attempts=2), env=ENV)
        with pytest.raises(LLMError, match=r"after 2 attempt\(s\): MalformedReply: not a number"):
            client.ask(None, "x", parse)
    assert len(srv.requests) == 2 and client.counters()["failed_calls"] == 1


class _StatusError(Exception):
    """An SDK error as the retry policy reads it: ``status_code`` and the response's headers."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.response = SimpleNamespace(headers=headers or {})


def test_backoff_waits_grow_and_honour_retry_after() -> None:
    policy = RetryPolicy(attempts=4, backoff_s=2.0)
    assert [policy.wait_s(k) for k in (1, 2, 3)] == [2.0, 4.0, 8.0]

    def limited(after: str) -> _StatusError:
        return _StatusError(429, {"retry-after": after})

    assert policy.wait_s(1, limited("7")) == 7.0 and policy.wait_s(3, limited("7")) == 8.0
    assert (
        policy.wait_s(1, limited("3600")) == 60.0 and policy.wait_s(1, limited("Wed, 21 Oct 2015 07:28:00 GMT")) == 2.0
    )
    assert (
        policy.retryable(limited("1")) and policy.retryable(TimeoutError()) and not policy.retryable(_StatusError(400))
    )
    with FakeLLMServer(_replies(500, 500, "ok")) as srv:  # the client really waits 0.2 + 0.4 s
        client = LLMClient(_config(srv.base_url, backoff_s=0.2), env=ENV)
        t0 = time.monotonic()
        assert client.ask(None, "x") == "ok" and time.monotonic() - t0 >= 0.6


def test_the_key_goes_only_to_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LLMKeyError, match="PTB_T_KEY"):
        LLMClient(_config("http://127.0.0.1:9/v1"), env={})
    with FakeLLMServer(_replies("elsewhere")) as other, FakeLLMServer(_replies("here")) as own:
        # the SDKs' own base-URL variables are not consulted: no base_url means the provider's API
        monkeypatch.setenv("OPENAI_BASE_URL", other.base_url)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", other.root_url)
        monkeypatch.setitem(llm_config.DEFAULT_BASE_URLS, "openai", own.base_url)
        monkeypatch.setitem(llm_config.DEFAULT_BASE_URLS, "anthropic", own.root_url)
        for provider in ("openai", "anthropic"):
            assert LLMClient(_config(None, provider), env=ENV).ask(None, "x") == "here"

        # a redirect is not followed: it would carry the key's header to another host
        class Redirect(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(307)
                self.send_header("Location", other.root_url + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

        redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=redirector.serve_forever, daemon=True).start()
        try:
            root = f"http://127.0.0.1:{redirector.server_address[1]}"
            for provider, url in (("openai", root + "/v1"), ("anthropic", root)):
                with pytest.raises(LLMError, match=r"after 1 attempt\(s\): .*307"):
                    LLMClient(_config(url, provider, attempts=3), env=ENV).ask(None, "x")
        finally:
            redirector.shutdown()
            redirector.server_close()
    assert other.requests == [] and len(own.requests) == 2
