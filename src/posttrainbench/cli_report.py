"""``ptb report``: the static HTML site of a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def report(
    results: Annotated[Path, typer.Argument(help="Results root folder (the run folders).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the site into.")] = Path("site"),
    weights: Annotated[Optional[Path], typer.Option(help="factors.json with benchmark weights (default: from recorded base+instruct baselines, else equal).")] = None,
    reindex: Annotated[bool, typer.Option("--reindex", help="Rebuild the whole results index first.")] = False,
) -> None:
    """Write a self-contained HTML report: leaderboard, plots, per-benchmark/model views, run pages.

    Like `ptb leaderboard`, it brings the results index (RESULTS/results.db) up to date first.
    """
    from .leaderboard import load_weights
    from .report import build_site

    if not results.is_dir():
        console.print(f"[red]error:[/red] {escape(str(results))}: not a folder", soft_wrap=True)
        raise typer.Exit(2)
    try:
        site = build_site(results, out, load_weights(weights) if weights else None, full=reindex)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    for problem in site.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(problem)}", soft_wrap=True)
    console.print(
        f"wrote {len(site.pages)} pages, {len(site.plots)} plots ({site.n_agents} agents, "
        f"{site.n_runs} runs) to {escape(str(site.index))}"
    )
