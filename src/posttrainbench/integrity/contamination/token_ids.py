"""Token-id sequences as text: the base model's tokenizer, loaded from its local folder.

An agent can keep its training data pre-tokenised (``train.bin`` of int32 ids, an ``.npy`` or
parquet column of ids, a JSON list of ids); the scan reads such integer sequences back as text
with the tokenizer of the run's base model (the one the agent trains), via ``decode``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def load_id_decoder(model_path: Path) -> tuple[Callable[[np.ndarray], str], int]:
    """(ids -> text, vocabulary size) of the tokenizer in ``model_path`` (local files only)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    vocab = len(tok)

    def decode(ids: np.ndarray) -> str:
        ids = ids[(ids >= 0) & (ids < vocab)]
        return str(tok.decode(ids.tolist(), skip_special_tokens=True))

    return decode, vocab
