"""Pinned API prices (USD per million tokens) for the cost column of traces and the leaderboard.

Prices change; these are the list prices we pin for comparability, with the date they were
read. A model not in the table costs 0 and the leaderboard shows its cost as unknown.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-11-01"

# model id (or prefix) -> (input USD / 1M tokens, output USD / 1M tokens)
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "gpt-5.1-codex-max": (1.25, 10.0),
    "gpt-5.1-codex": (1.25, 10.0),
    "gpt-5": (1.25, 10.0),
    "gemini-3-pro": (2.0, 12.0),
    "gemini-2.5-pro": (1.25, 10.0),
    "glm-5": (1.0, 3.2),
}


def price_of(model: str | None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens; the longest matching prefix wins."""
    if not model:
        return None
    name = model.split("/")[-1]
    matches = [k for k in PRICES if name == k or name.startswith(k)]
    return PRICES[max(matches, key=len)] if matches else None


def cost_usd(model: str | None, input_tokens: int, output_tokens: int) -> float:
    """Cost of a call at the pinned prices (0.0 for an unknown model)."""
    price = price_of(model)
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1e6
