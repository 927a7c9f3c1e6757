"""Evaluation items, the data root, and the items files (``task/dev.jsonl``) the agent's ``evaluate.py`` reads."""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..fsutil import atomic_write_text
from ..settings import DataSettings, Settings

DATA_DIR_ENV = DataSettings.env_name("data_dir")


class DataError(RuntimeError):
    """A benchmark's data cannot be loaded; the message names the file and how to fix it."""


class ChatTurn(BaseModel):
    """One chat message of an item's few-shot context."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class Item(BaseModel):
    """One evaluation item.

    ``input`` is the item's own user prompt (test content only, exactly what the model is asked);
    ``fewshot`` is context placed before it as chat turns (from the train split, never the test
    split); ``context`` holds the earlier turns of the item's *own* conversation (test content,
    e.g. HealthBench's multi-turn prompts), asked after the few-shot turns and before ``input``.
    Test content is therefore ``context`` + ``input``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    input: str
    target: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    fewshot: tuple[ChatTurn, ...] = ()
    context: tuple[ChatTurn, ...] = ()

    def test_text(self) -> str:
        """All of the item's test content (own earlier turns, prompt, target), for contamination checks."""
        return "\n".join([*(t.content for t in self.context), self.input, self.target])


def data_root(settings: Settings | None = None) -> Path:
    """The data root: ``settings.data.data_dir`` (``$PTB_DATA_DIR``; default: the settings read
    from the environment now) if set, else the files shipped in the package."""
    data_dir = (settings if settings is not None else Settings.from_env()).data.data_dir
    if data_dir is not None:
        return Path(data_dir)
    return Path(str(files("posttrainbench").joinpath("resources")))


def write_items_file(path: Path, items: list[Item]) -> None:
    """Write items as JSON lines (atomically)."""
    text = "".join(json.dumps(it.model_dump(mode="json"), ensure_ascii=False) + "\n" for it in items)
    atomic_write_text(Path(path), text)
    os.chmod(path, 0o644)  # readable inside the sandbox, whatever uid the agent runs as


def write_dev_file(path: Path, items: list[Item]) -> None:
    """Write the dev items the workspace ``evaluate.py`` reads (``task/dev.jsonl``)."""
    write_items_file(path, items)


def read_items_file(path: Path) -> list[Item]:
    """Read items written by :func:`write_items_file`; a bad line is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"items file {path} does not exist")
    out: list[Item] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(Item.model_validate_json(line))
            except ValueError as exc:
                raise DataError(f"{path}:{n}: not an item: {exc}") from exc
    return out
