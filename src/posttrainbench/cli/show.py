"""``ptb show``: summarise a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from ..console import duration, limited, score, utc
from .common import JsonOpt, RunDirArg, console, expected, print_json

if TYPE_CHECKING:
    from ..domain import RunRecord


def show(run_dir: RunDirArg, as_json: JsonOpt = False) -> None:
    """Summarise a run folder: phases, verdicts, score, failure (--json: the whole record)."""
    from ..results import RecordError, load_record

    with expected(RecordError):
        record = load_record(run_dir / "run.json")
    if as_json:
        print_json({"folder": str(run_dir), "record": record.model_dump(mode="json")})
        return
    print_record(record, run_dir)


def print_record(record: RunRecord, root: Path) -> None:
    """Phases, verdicts, score, data pin and failure of a run (``ptb show``, ``ptb run``)."""
    table = Table(title=f"run {record.run_id}")
    table.add_column("phase", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("detail", overflow="fold")
    for name, st in record.phases.items():
        took = (st.finished_at - st.started_at).total_seconds() if st.started_at and st.finished_at else None
        table.add_row(name, st.status, utc(st.started_at), duration(took), escape(st.error or ""))
    console.print(table)
    for v in record.verdicts:
        console.print(f"  {v.gate:14s} {v.status.value:8s} {v.summary}")
    if record.metrics:
        shown = score(record.metrics.score) + limited(record.spec.eval_limit)
        console.print(f"score: {shown}  ({record.metrics.status})", soft_wrap=True)
        data = record.metrics.data or {}
        if data:
            style = {"pinned": "green", "differs": "red"}.get(str(data.get("status")), "yellow")
            console.print(
                f"data: [{style}]{data.get('status')}[/] sha256 {str(data.get('items_sha256', ''))[:16]} "
                f"({data.get('n_items')} items from {escape(', '.join(data.get('sources', [])))})"
            )
    if record.failure:
        console.print(f"[red]failure:[/red] {record.failure}")
    console.print(f"folder: {root}")
