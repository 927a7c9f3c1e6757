"""Reading and writing ``run.json`` atomically."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ..domain import RUN_RECORD_SCHEMA_VERSION, BaseModelSpec, RunRecord
from ..fsutil import atomic_write_json, atomic_write_text
from .layout import baseline_dir


class RecordError(ValueError):
    """A ``run.json`` that cannot be read; the message names the file and the cause."""


def save_record(path: Path, record: RunRecord) -> None:
    """Atomically write ``record`` to ``path`` (a killed writer never leaves half a file)."""
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")


def load_record(path: Path) -> RunRecord:
    """Read a ``run.json``; raise RecordError with the path on any problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: no run.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable run.json ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != RUN_RECORD_SCHEMA_VERSION:
        raise RecordError(f"{path}: run.json schema_version {version!r}, this ptb reads {RUN_RECORD_SCHEMA_VERSION}")
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        raise RecordError(f"{path}: invalid run.json: {exc}") from None


def save_baseline(
    results_root: Path,
    *,
    benchmark: str,
    base_model: BaseModelSpec,
    score: float | None,
    status: str = "ok",
    checkpoint: str = "base",
    limit: int | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the ``baseline.json`` of a zero-shot score of ``base_model`` (``checkpoint="base"``)
    or of its instruct model (``"instruct"``); returns its folder."""
    folder = baseline_dir(results_root, benchmark, base_model, limit, checkpoint)
    atomic_write_json(
        folder / "baseline.json",
        {
            "benchmark": benchmark,
            "base_model": base_model.hub_id,
            "checkpoint": checkpoint,
            "limit": limit,
            "score": score,
            "status": status,
            **(extra or {}),
        },
    )
    return folder
