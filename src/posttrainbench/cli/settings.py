"""``ptb settings``: every ``PTB_*`` variable, its value here and whether it is valid; with
``--markdown``, the docs' table (:func:`posttrainbench.settings.markdown_table`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..settings import Settings, markdown_table
from .common import EXIT_FAILED, print_wide


def settings_cmd(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown table of every variable (as in the docs) and exit.")
    ] = False,
) -> None:
    """Show every PTB_* setting: its value in this environment (or its default), and each invalid one.

    Exit 1 when a variable is invalid (the judge's and graders' included). Secrets are never shown.
    """
    if markdown:
        print(markdown_table(), end="")
        return
    settings, problems = Settings.parse()
    bad = {p.split("=", 1)[0]: p for group in problems.values() for p in group}
    table = Table(title="PTB_* settings (`ptb settings --markdown` documents each)")
    for col in ("group", "variable", "value", "status"):
        table.add_column(col, overflow="fold")
    for name, group_cls in Settings.groups().items():
        group = getattr(settings, name)
        for field, decl in group_cls.env_fields().items():
            var = str(decl["env"])
            value = getattr(group, field)
            shown = "(invalid)" if var in bad else "unset" if value is None else str(value)
            status = f"[red]{escape(bad[var])}[/]" if var in bad else "[green]ok[/]"
            table.add_row(group_cls.title, var, escape(shown), status)
    print_wide(table)
    if bad:
        raise typer.Exit(EXIT_FAILED)
