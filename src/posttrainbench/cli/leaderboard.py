"""``ptb leaderboard``: rank agents from the run folders."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..leaderboard.tables import FORMATS
from .common import (
    AGENT_MAX_WIDTH,
    EXIT_FAILED,
    RankProtocolOpt,
    ReindexOpt,
    ResultsOpt,
    SuiteOpt,
    WeightsOpt,
    choices,
    console,
    err_console,
    expected,
    fail,
    fit_columns,
    output_file,
    print_wide,
    results_index,
)

# Built from the registry at import time (typer reads it); a type checker sees a plain StrEnum.
if TYPE_CHECKING:
    OutputFormat = StrEnum
else:
    OutputFormat = choices("OutputFormat", ("table", *FORMATS))


def leaderboard(
    results: ResultsOpt = Path("results"),
    weights: WeightsOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="A terminal table, or text to pipe or save.")
    ] = OutputFormat("table"),  # noqa: B008 - a member lookup, not a call that builds anything
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of the terminal.")] = None,
    reindex: ReindexOpt = False,
    protocol: RankProtocolOpt = None,
    suite: SuiteOpt = None,
    published: Annotated[
        str | None,
        typer.Option(help="Rank your agents among the published ones of this leaderboard (v1, v1.2), under its suite."),
    ] = None,
) -> None:
    """Rank agents from the run folders: fallback policy, weights, mean ± std over repeats."""
    from ..fsutil import atomic_write_text
    from ..leaderboard import RankOptions, load_weights
    from ..leaderboard.tables import agent_table, build_report, model_table

    db_path = results_index(results)
    if out is not None:
        output_file(out)
    with expected(ValueError):
        options = RankOptions(
            weights=load_weights(weights) if weights else None, protocol=protocol, suite=suite, published=published,
            full=reindex, db_path=db_path,
        ).check()  # fmt: skip
    report = build_report(results, options)
    for problem in report.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {escape(problem)}", soft_wrap=True)
    for note in report.notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    if not report.agents:
        fail(
            str(results),
            "no runs",
            fix="run some (ptb run, ptb sweep run) or import them (ptb import)",
            code=EXIT_FAILED,
        )
    if fmt != OutputFormat("table"):
        text = FORMATS[fmt.value](report)
        if out:
            atomic_write_text(out, text)
            console.print(f"wrote {out}")
        else:
            print(text, end="")
        return
    header, rows = agent_table(report)
    suite_note = f"suite {report.suite}; " if report.suite else ""
    title = f"leaderboard ({len(report.cells)} runs; {suite_note}weights: {report.weights_source})"
    if report.published:
        title += f"; beside the {len(report.published)} agents of the published {report.suite} leaderboard"
    table = Table(title=title)
    # in a terminal: rank, agent, score, std and repeats always, the other columns while they fit
    keep = 6 if report.published else 5  # and the source column
    shown = fit_columns(header, rows, console.width, keep=keep) if console.is_terminal else list(range(len(header)))
    for i in shown:
        col = header[i]
        if col == "agent":
            table.add_column(col, overflow="fold", max_width=AGENT_MAX_WIDTH if console.is_terminal else None)
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    print_wide(table)
    hidden = [header[i] for i in range(len(header)) if i not in shown]
    if hidden:
        console.print(
            f"[dim]{len(hidden)} more column(s) not shown at this width ({', '.join(hidden)}): "
            "widen the terminal, or --format csv / markdown[/dim]",
            soft_wrap=True,
        )
    if len(report.models) > 1:
        mh, mrows = model_table(report)
        mt = Table(title="score per base model")
        for col in mh:
            mt.add_column(col)
        for row in mrows:
            mt.add_row(*row)
        print_wide(mt)
