"""``ptb import``: upstream PostTrainBench result folders (and baselines), or a Harbor job's
trials (``--harbor``), into our run records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import ResultsOpt, console, expected, fail, output_folder


def import_cmd(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="Upstream results folder (<method>/<bench>_<Org>_<Model>_<jobid>/; zero-shot baselines from "
            "baseline_zeroshot/)."
        ),
    ] = None,
    results: ResultsOpt = Path("results"),
    agent_map: Annotated[
        Path | None, typer.Option(help="JSON {agent name: [method folder, ...]} grouping methods as repeats.")
    ] = None,
    baselines: Annotated[
        Path | None, typer.Option(help="Published zero-shot baseline grid CSV (base and instruct rows).")
    ] = None,
    harbor: Annotated[
        Path | None, typer.Option("--harbor", help="A Harbor job folder of tasks made by `ptb export harbor`.")
    ] = None,
) -> None:
    """Import upstream PostTrainBench result folders (and baselines), or a Harbor job, into our run records."""
    from ..results.importer import import_baseline_grid, import_upstream
    from ..results.index import refresh

    if (source is None) == (harbor is None):
        fail("ptb import", "give either an upstream results folder or --harbor JOB_DIR")
    if harbor is not None:
        _import_harbor(harbor, results)
        return
    assert source is not None  # checked above

    if baselines is not None and not baselines.is_file():
        fail(str(baselines), "no such file (the --baselines grid)")
    output_folder(results, "results folder")
    amap = None if agent_map is None else _read_agent_map(agent_map)
    with expected(FileNotFoundError):
        rep = import_upstream(source, results, agent_map=amap)
    problems = list(rep.problems)
    n_base = rep.baselines  # from upstream zero-shot baseline folders (baseline_zeroshot/)
    if baselines is not None:
        n_grid, more = import_baseline_grid(baselines, results)
        n_base += n_grid
        problems += more
    refresh(results)
    console.print(
        f"imported {len(rep.imported)} runs ({len(rep.superseded)} superseded), {n_base} baselines into {results}"
    )
    for p in problems:
        console.print(f"[yellow]problem:[/yellow] {escape(p)}", soft_wrap=True)


def _import_harbor(job_dir: Path, results: Path) -> None:
    from ..launch.harbor_import import import_harbor_job
    from ..results.index import refresh

    output_folder(results, "results folder")
    with expected(FileNotFoundError, OSError, ValueError):
        rep = import_harbor_job(job_dir, results)
    refresh(results)
    console.print(f"imported {len(rep.imported)} Harbor trials into {results}")
    for p in rep.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(p)}", soft_wrap=True)


def _read_agent_map(path: Path) -> dict[str, list[str]]:
    """``{agent name: [method folder, ...]}`` from ``path``."""
    try:
        amap = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(str(path), f"bad agent map ({exc})")
    if not isinstance(amap, dict) or not all(isinstance(v, list) for v in amap.values()):
        fail(str(path), "bad agent map (expected {name: [method, ...]})")
    return amap
