"""Reading and writing ``run.json`` atomically."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ..domain import RUN_RECORD_SCHEMA_VERSION, RunRecord
from ..fsutil import atomic_write_text


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
        raise RecordError(
            f"{path}: run.json schema_version {version!r}, this ptb reads {RUN_RECORD_SCHEMA_VERSION}"
        )
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        raise RecordError(f"{path}: invalid run.json: {exc}") from None
