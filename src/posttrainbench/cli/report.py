"""``ptb report``: the static HTML site of a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import RankProtocolOpt, ReindexOpt, SuiteOpt, WeightsOpt, console, expected, output_folder, results_index


def report(
    results: Annotated[Path, typer.Argument(help="Results root folder (the run folders).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the site into.")] = Path("site"),
    weights: WeightsOpt = None,
    reindex: ReindexOpt = False,
    protocol: RankProtocolOpt = None,
    suite: SuiteOpt = None,
    published: Annotated[
        str | None,
        typer.Option(help="List the agents of this published leaderboard (v1, v1.2) beside yours, under its suite."),
    ] = None,
) -> None:
    """Write a self-contained HTML report: leaderboard, plots, per-benchmark/model views, run pages.

    `--suite` ranks on a suite's benchmarks and weights; `--published v1.2` lists the agents of the
    published leaderboard beside yours, marked (as `ptb leaderboard --published`).

    Like `ptb leaderboard`, it brings the results index (RESULTS/results.db, or one in the cache
    folder when RESULTS is read-only) up to date first.
    """
    from ..leaderboard import RankOptions, load_weights
    from ..report import build_site

    db_path = results_index(results)
    output_folder(out, "site folder")
    with expected(ValueError):
        options = RankOptions(
            weights=load_weights(weights) if weights else None,
            protocol=protocol,
            suite=suite,
            published=published,
            full=reindex,
            db_path=db_path,
        ).check()  # an invalid combination: one line, before the index is read
        site = build_site(results, out, options)
    for problem in site.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(problem)}", soft_wrap=True)
    console.print(
        f"wrote {len(site.pages)} pages, {len(site.plots)} plots ({site.n_agents} agents, "
        f"{site.n_runs} runs) to {escape(str(site.index))}"
    )
