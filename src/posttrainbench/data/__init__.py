"""Dataset loaders (local files first, then the hub) and the evaluation item type."""

from __future__ import annotations

from .formats import calc_prompt, gsm8k_completion, gsm8k_prompt, gsm8k_reference_answer
from .items import (
    DATA_DIR_ENV,
    ChatTurn,
    DataError,
    Item,
    data_root,
    dev_items,
    read_items_file,
    write_dev_file,
    write_items_file,
)
from .loaders import TestSet, gsm8k_fewshot, load_test_items, load_test_set, load_train_examples
from .provenance import ALLOW_UNPINNED_ENV, DataProvenance, fewshot_sha256, items_sha256

__all__ = [
    "ALLOW_UNPINNED_ENV",
    "DataProvenance",
    "TestSet",
    "fewshot_sha256",
    "items_sha256",
    "load_test_set",
    "DATA_DIR_ENV",
    "ChatTurn",
    "DataError",
    "Item",
    "calc_prompt",
    "data_root",
    "dev_items",
    "gsm8k_completion",
    "gsm8k_fewshot",
    "gsm8k_prompt",
    "gsm8k_reference_answer",
    "load_test_items",
    "load_train_examples",
    "read_items_file",
    "write_dev_file",
    "write_items_file",
]
