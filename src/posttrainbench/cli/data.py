"""``ptb data ...``: which evaluation sets are here, where they come from, and whether they are
the pinned ones."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from . import lookup
from .common import EXIT_FAILED, console, env_epilog, load_settings, print_wide

app = typer.Typer(help="Benchmark data: sources, digests and pins.", no_args_is_help=True)


@app.command("check", epilog=env_epilog("data"))
def check(
    benchmarks: Annotated[list[str], typer.Argument(help="Benchmark ids (default: all).")] = [],  # noqa: B006 - typer's default, never mutated
    local_only: Annotated[bool, typer.Option("--local-only", help="Never try the hub.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per benchmark.")] = False,
) -> None:
    """Load each benchmark's full evaluation set and compare its digest with the catalog's pin.

    Exit 1 when a set differs from its pin, or when a benchmark named on the command line cannot
    be loaded (unnamed ones that are not available here, e.g. gated GPQA, are listed as missing).
    """
    from ..data import DataError, data_root

    settings = load_settings()
    chosen = [lookup.benchmark(b, option=None) for b in benchmarks] if benchmarks else lookup.all_benchmarks()
    table = Table(title="evaluation sets")
    for col in ("benchmark", "items", "status", "sha256", "sources"):
        table.add_column(col, overflow="fold")
    bad = False
    for b in chosen:
        try:
            with console.status(f"loading {b.id} ..."):
                prov = b.load_test_set(local_only=local_only, settings=settings).provenance
        except DataError as exc:
            bad = bad or bool(benchmarks)
            if as_json:
                print(json.dumps({"benchmark": b.id, "status": "missing", "error": str(exc)}))
            else:
                table.add_row(b.id, "-", "[yellow]missing[/]", "", escape(str(exc)))
            continue
        bad = bad or prov.problem() is not None
        if as_json:
            print(prov.model_dump_json())
            continue
        style = {"pinned": "green", "unpinned": "yellow", "differs": "red"}[prov.status]
        status = prov.status + (" (allowed by env)" if prov.allowed_by_env else "")
        table.add_row(
            b.id, f"{prov.n_items}/{prov.full_size}", f"[{style}]{status}[/]", prov.items_sha256[:16],
            escape("\n".join(_short(s) for s in prov.sources)),
        )  # fmt: skip
    if not as_json:
        console.print(f"data root: {data_root(settings)}")
        print_wide(table)
    if bad:
        raise typer.Exit(EXIT_FAILED)


def _short(source: str) -> str:
    """``file:/long/path/gsm8k/test.jsonl`` -> ``file:…/gsm8k/test.jsonl`` (folder + name)."""
    kind, _, rest = source.partition(":")
    if kind != "file":
        return source
    parts = rest.rstrip("/").split("/")
    return f"file:…/{'/'.join(parts[-2:])}" if len(parts) > 2 else source
