"""One LLM client layer for the integrity judge and the evaluation graders.

:class:`LLMConfig` (one config model, made from a settings group: ``PTB_JUDGE_*``, ``PTB_GRADER_*``), :class:`LLMClient`
(official ``openai`` / ``anthropic`` SDKs, key read from the harness's environment, sent only to
the configured endpoint), :class:`RetryPolicy` (the one retry policy) and the call / token
counters, and the one quoting helper for hostile text inside a prompt (:mod:`.quoting`).
A low layer: it imports nothing else of this package but the settings.
"""

from .client import Attempt, EmptyReply, LLMClient, LLMError, LLMKeyError, MalformedReply, Send, error_text
from .config import DEFAULT_BASE_URLS, LLMConfig, LLMConfigError, Provider
from .quoting import neutralise, outside_data, quote_data
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URLS",
    "Attempt",
    "EmptyReply",
    "LLMClient",
    "LLMConfig",
    "LLMConfigError",
    "LLMError",
    "LLMKeyError",
    "MalformedReply",
    "Provider",
    "RetryPolicy",
    "Send",
    "error_text",
    "neutralise",
    "outside_data",
    "quote_data",
]
