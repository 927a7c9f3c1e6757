"""``ptb index``: bring the SQLite results index up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import ResultsOpt, console, results_index


def index(
    results: ResultsOpt = Path("results"),
    full: Annotated[bool, typer.Option("--full", help="Drop the index and read every run folder again.")] = False,
) -> None:
    """Bring the SQLite index (results.db) up to date with the run folders; list bad folders.

    The index of a results folder that cannot be written is kept in the cache folder."""
    from ..results.index import read_index, refresh

    db_path = results_index(results)
    stats = refresh(results, full=full, db_path=db_path)
    contents = read_index(results, db_path=db_path)
    console.print(
        f"{db_path}: {len(contents.runs)} runs, {len(contents.baselines)} baselines "
        f"({stats.parsed} files read, {stats.removed} rows removed); {len(contents.problems)} problems"
    )
    for _path, cause in contents.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(cause)}", soft_wrap=True)
