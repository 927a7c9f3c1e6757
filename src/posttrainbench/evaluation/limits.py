"""The harness's own generation limits, taken from the declared base model, never the submission.

A submitted model could otherwise move the harness's limits by editing its own files: a larger
``max_position_embeddings`` lets it generate past what the base model was trained for (or the
max-token ladder's refusal), a different ``eos_token`` in its tokenizer ends or prolongs every
reply. The evaluator therefore reads the context length and the end-of-sequence token from the
*base model's* folder and passes them to the provider (``context_length``, ``eos_token`` model
args); the submission's tokenizer only turns text into ids and back.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel as _Model


class HarnessLimits(_Model):
    """Context length and end-of-sequence text the evaluator enforces, and where they came from."""

    context_length: int | None = None
    eos_token: str | None = None
    source: str


def _token_text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str) and value["content"]:
        return str(value["content"])
    return None


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def limits_from_folder(folder: Path) -> HarnessLimits:
    """The limits of the model folder ``folder`` (the base model's: see the module docstring)."""
    folder = Path(folder)
    cfg = _json(folder / "config.json")
    text_config = cfg.get("text_config")
    text = text_config if isinstance(text_config, dict) else cfg
    ctx = text.get("max_position_embeddings", cfg.get("max_position_embeddings"))
    eos = None
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        eos = _token_text(_json(folder / name).get("eos_token"))
        if eos:
            break
    if eos is None and (folder / "tokenizer.json").is_file():
        # No declared eos: the token of config.eos_token_id in the fast tokenizer's vocabulary.
        eos_id = text.get("eos_token_id", cfg.get("eos_token_id"))
        eos_id = eos_id[0] if isinstance(eos_id, list) and eos_id else eos_id
        tok = _json(folder / "tokenizer.json")
        for added in tok.get("added_tokens") or []:
            if isinstance(added, dict) and added.get("id") == eos_id:
                eos = _token_text(added.get("content"))
    return HarnessLimits(
        context_length=ctx if isinstance(ctx, int) and ctx > 0 else None,
        eos_token=eos,
        source=str(folder),
    )
