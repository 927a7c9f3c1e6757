"""The one retry policy of LLM calls: which failures are retried, and how long to wait first.

Retried: timeouts, connection errors, replies the SDK cannot read, empty replies, and HTTP 408,
409, 425, 429 and 5xx. Any other HTTP status (400, 401, 403, 404, 422, a redirect) fails at once:
asking again would get the same answer. Waits grow exponentially from ``backoff_s``; a rate
limit's ``Retry-After`` (seconds, capped) is honoured when it asks for longer. A reply the caller
rejects (:class:`~.client.MalformedReply`) is asked again at once, within the same attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRY_STATUSES = frozenset({408, 409, 425, 429})
MAX_RETRY_AFTER_S = 60.0


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error (``APIStatusError.status_code``), None for other errors."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries per call; the k-th retry waits ``backoff_s * 2**(k-1)`` seconds."""

    attempts: int = 3
    backoff_s: float = 2.0

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failed request may succeed when sent again."""
        status = status_of(exc)
        return status is None or status in RETRY_STATUSES or status >= 500

    def wait_s(self, retry: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) after ``exc``."""
        wait = self.backoff_s * 2 ** (retry - 1)
        response = getattr(exc, "response", None)
        header = getattr(response, "headers", {}).get("retry-after") if response is not None else None
        try:
            asked = float(header) if header is not None else 0.0
        except ValueError:  # an HTTP date: fall back to the exponential wait
            asked = 0.0
        return max(wait, min(max(asked, 0.0), MAX_RETRY_AFTER_S))
