"""``ptb copy``: copy a run folder (or any folder, e.g. a ``final_model/``) to another folder,
streamed, resumable, hash-checked, appearing whole (``results/transfer.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, expected


def copy_cmd(
    src: Annotated[Path, typer.Argument(help="The folder to copy: a run folder, a final_model/, a results tree.")],
    dest: Annotated[Path, typer.Argument(help="The new folder (must not exist; an interrupted copy resumes).")],
    chunk_mb: Annotated[int, typer.Option("--chunk-mb", min=1, help="Chunk size: memory used, resume unit.")] = 16,
) -> None:
    """Copy a run folder (or any folder) streamed, resumable and sha256-checked; DEST appears whole.

    For moving results between machines' folders (mounts, synced buckets): an interrupted copy
    resumes where it stopped, every chunk is checked on arrival, a run folder's final_model/ is held
    to the hashes its run.json recorded, and DEST appears complete or not at all."""
    from ..results.transfer import TransferError, copy_run_folder

    with expected(TransferError, FileExistsError, OSError):
        manifest = copy_run_folder(src, dest, chunk_size=chunk_mb << 20)
    console.print(f"copied {len(manifest.files)} files, {manifest.total_bytes:,} bytes, to {dest}")
