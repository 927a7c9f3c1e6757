"""Reading data files the way the scan reads them, as texts (for ``build_index(allowed_texts=...)``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .decode import Decoder, Limits, open_sparse_aware


class _Collect:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def text(self, data: bytes) -> None:
        self.parts.append(data)

    def ids(self, ids: np.ndarray) -> None:
        pass


def texts_from_files(paths: Iterable[Path]) -> Iterator[str]:
    """The text of each data file (jsonl/json/csv/txt/parquet/arrow, compressed or not), decoded
    by content like the scan does: a convenience for ``build_index(allowed_texts=...)``."""
    for p in paths:
        sink = _Collect()
        fh, _ = open_sparse_aware(str(p))
        with fh:
            report = Decoder(sink, Path(p).stat().st_size, Limits()).run(fh, str(p), seekable_path=str(p))
        if report.incomplete:
            raise ValueError(f"cannot read allowed data file {p}: {report.incomplete[0]}")
        yield b"".join(sink.parts).decode("utf-8", "replace")
