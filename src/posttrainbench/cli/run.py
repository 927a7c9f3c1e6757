"""``ptb run``: run (or resume) one run."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..domain import PHASES, NetworkPolicy, RunSpec, SandboxKind
from . import lookup
from .common import (
    EXIT_FAILED,
    LimitOpt,
    NetworkOpt,
    ProtocolOpt,
    ResultsOpt,
    SandboxOpt,
    choices,
    console,
    expected,
    load_settings,
    output_folder,
    phase_line,
)
from .show import print_record

# Built from the registry at import time (typer reads it); a type checker sees a plain StrEnum.
if TYPE_CHECKING:
    PhaseName = StrEnum
else:
    PhaseName = choices("PhaseName", PHASES)


def run(
    agent: Annotated[str, typer.Option(help="Agent id (see `ptb list`).")],
    model: Annotated[str, typer.Option(help="Base model, e.g. Qwen/Qwen3-4B-Base.")],
    benchmark: Annotated[str, typer.Option(help="Benchmark id, e.g. gsm8k.")],
    agent_config: Annotated[str | None, typer.Option(help="Agent config (model name for LLM agents).")] = None,
    hours: Annotated[float, typer.Option(min=0.001, help="Time budget in hours.")] = 10.0,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs visible to the agent.")] = 0,
    repeat: Annotated[int, typer.Option(min=0, help="Repeat index (part of the run id).")] = 0,
    sandbox: SandboxOpt = SandboxKind.bwrap,
    network: NetworkOpt = NetworkPolicy.none,
    limit: LimitOpt = None,
    suffix: Annotated[str, typer.Option(help="Suffix of the run group folder.")] = "",
    results: ResultsOpt = Path("results"),
    until: Annotated[PhaseName | None, typer.Option(help="Stop after this phase.")] = None,
    protocol: ProtocolOpt = "strict",
) -> None:
    """Run (or resume) one run: prepare, solve, collect, verify, evaluate, record."""
    from ..pipeline import Pipeline
    from ..results.run_lock import RunInUse

    settings = load_settings()
    config = agent_config or lookup.agent(agent).default_config
    with expected(lookup.UnknownNameError, ValueError, RuntimeError, what="cannot start the run"):
        spec = RunSpec(
            agent=agent,
            agent_config=config,
            base_model=model,
            benchmark=benchmark,
            hours=hours,
            gpus=gpus,
            repeat=repeat,
            sandbox=sandbox,
            network=network,
            eval_limit=limit,
            suffix=suffix,
            protocol=protocol,
        )
        lookup.benchmark(benchmark).require_protocol(protocol)  # refused before anything is written
        pipeline = Pipeline(spec, results, progress=phase_line(console), settings=settings, live=console)
        pipeline.preflight()
    output_folder(results, "results folder")
    with expected(RunInUse, what="cannot start the run"):
        record = pipeline.run(until=None if until is None else until.value)  # type: ignore[arg-type]  # PhaseName holds the phases
    print_record(record, pipeline.paths.root)
    # A recorded failure (a phase that failed, or one that finished but left a failure, e.g. an
    # evaluation whose every attempt failed) is an outcome failure: exit 1, never 0.
    if record.failure or any(s.status == "failed" for s in record.phases.values()):
        raise typer.Exit(EXIT_FAILED)
