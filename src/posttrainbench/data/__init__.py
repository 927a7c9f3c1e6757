"""Benchmark-agnostic data helpers: evaluation items, the data root, where raw records come from
(local files first, then the hub), and the provenance of an evaluation set against its pin. Each
benchmark's own loaders live in its module under ``posttrainbench.benchmarks``."""

from __future__ import annotations

from .items import (
    DATA_DIR_ENV,
    ChatTurn,
    DataError,
    Item,
    data_root,
    read_items_file,
    write_dev_file,
    write_items_file,
)
from .provenance import ALLOW_UNPINNED_ENV, DataProvenance, fewshot_sha256, items_sha256
from .sources import (
    TestSet,
    field,
    is_local_only,
    local_files_only,
    read_jsonl,
    records,
    resolve_hub_revision,
)

__all__ = [
    "ALLOW_UNPINNED_ENV",
    "DATA_DIR_ENV",
    "ChatTurn",
    "DataError",
    "DataProvenance",
    "Item",
    "TestSet",
    "data_root",
    "fewshot_sha256",
    "field",
    "is_local_only",
    "items_sha256",
    "local_files_only",
    "read_items_file",
    "read_jsonl",
    "records",
    "resolve_hub_revision",
    "write_dev_file",
    "write_items_file",
]
