"""``ptb verify``: run the integrity gates (and the LLM judge, if configured) again on a run."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from .common import EXIT_FAILED, RunDirArg, console, fail, load_settings


def verify(run_dir: RunDirArg) -> None:
    """Re-run the verify phase of a run (gates, trace audit, LLM judge when PTB_JUDGE_MODEL is set).

    Exit status 0 when the final verdict is pass, 1 when fail or not_run, 2 on bad input.
    """
    from ..domain import VerdictStatus
    from ..pipeline import Pipeline
    from ..results import load_record

    run_dir = Path(run_dir)
    settings = load_settings()
    try:
        record = load_record(run_dir / "run.json")
        pipe = Pipeline(record.spec, run_dir.resolve().parent.parent, settings=settings)
    except Exception as exc:  # noqa: BLE001 - any bad folder ends the same way (the message names it)
        fail(f"{type(exc).__name__}: {exc}")
    if pipe.paths.root.resolve() != run_dir.resolve():
        fail(str(run_dir), f"not where its run.json places it ({pipe.paths.root})")
    try:
        record = pipe.reverify()
    except Exception as exc:  # noqa: BLE001 - any failure ends as one message naming the folder
        fail(str(run_dir), str(exc))
    table = Table(title=f"verify {record.run_id}")
    for col in ("gate", "required", "status", "summary"):
        table.add_column(col, overflow="fold")
    colour = {"pass": "green", "fail": "red", "not_run": "yellow"}
    for v in record.verdicts:
        req = "yes" if v.gate in record.required_gates else ""
        table.add_row(v.gate, req, f"[{colour[v.status.value]}]{v.status.value}[/]", escape(v.summary))
    console.print(table)
    final = record.final_verdict.value if record.final_verdict else "not_run"
    console.print(f"final verdict: [{colour[final]}]{final}[/]   evidence: {pipe.paths.evidence}")
    raise typer.Exit(0 if record.final_verdict == VerdictStatus.passed else EXIT_FAILED)
