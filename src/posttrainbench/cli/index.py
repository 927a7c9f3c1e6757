"""``ptb index``: bring the SQLite results index up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import ResultsOpt, console


def index(
    results: ResultsOpt = Path("results"),
    full: Annotated[bool, typer.Option("--full", help="Drop the index and read every run folder again.")] = False,
) -> None:
    """Bring the SQLite index (results.db) up to date with the run folders; list bad folders."""
    from ..results.index import DB_NAME, read_index, refresh

    stats = refresh(results, full=full)
    contents = read_index(results)
    console.print(
        f"{results / DB_NAME}: {len(contents.runs)} runs, {len(contents.baselines)} baselines "
        f"({stats.parsed} files read, {stats.removed} rows removed); {len(contents.problems)} problems"
    )
    for _path, cause in contents.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(cause)}", soft_wrap=True)
