"""``ptb export harbor``: Harbor task folders for agents × base models × benchmarks × protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import console, expected, load_settings, output_folder

app = typer.Typer(help="Export cells for other runners (Harbor).", no_args_is_help=True)


@app.command()
def harbor(
    agent: Annotated[list[str], typer.Option("--agent", help="Our agent id (repeatable); Harbor runs its own.")],
    model: Annotated[list[str], typer.Option("--model", help="Base model (repeatable).")],
    benchmark: Annotated[list[str], typer.Option("--benchmark", help="Benchmark (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the task folders (one per cell).")],
    agent_config: Annotated[str, typer.Option(help="The agents' config.")] = "default",
    protocol: Annotated[str, typer.Option(help="Evaluation protocol.")] = "strict",
    hours: Annotated[float, typer.Option(min=0.001, help="The agent's time limit (Harbor's agent timeout).")] = 10.0,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs per task.")] = 0,
    eval_limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N test items.")] = None,
    base_image: Annotated[
        str | None, typer.Option(help="Image with Python, torch and posttrainbench installed (for any runner).")
    ] = None,
    host_runtime: Annotated[
        bool, typer.Option(help="This machine's Python and harness bound into an empty local image (local docker).")
    ] = False,
    agent_network: Annotated[str, typer.Option(help="The agent's network: public or no-network.")] = "public",
    cpus: Annotated[int, typer.Option(min=1, help="CPUs of each container.")] = 4,
    memory_mb: Annotated[int, typer.Option(min=256, help="Memory of each container (MiB).")] = 16384,
    solution: Annotated[
        Path | None, typer.Option(help="A solve.sh for Harbor's oracle agent, copied into every task.")
    ] = None,
    check: Annotated[bool, typer.Option(help="Load every folder with the real harbor package.")] = True,
    harbor_python: Annotated[
        str | None, typer.Option(help="Harbor's interpreter (default: the one `harbor` on PATH runs with).")
    ] = None,
) -> None:
    """Write Harbor task folders: our prompt, the agent's image, a verifier running our gates and evaluator."""
    from ..launch.harbor import HarborExportError, HarborExportOptions, check_with_harbor, export_tasks
    from ..launch.harbor import harbor_python as find_python

    settings = load_settings()
    output_folder(out, "export folder")
    opts = HarborExportOptions(
        agents=agent, base_models=model, benchmarks=benchmark, out_dir=out, agent_config=agent_config,
        protocol=protocol, hours=hours, gpus=gpus, eval_limit=eval_limit, base_image=base_image,
        host_runtime=host_runtime, agent_network=agent_network, cpus=cpus, memory_mb=memory_mb,
        solution=solution.read_text() if solution is not None else None,
    )  # fmt: skip
    with expected(HarborExportError, KeyError, ValueError, OSError):
        dirs = export_tasks(opts, settings)
        checked = check_with_harbor(dirs, find_python(harbor_python)) if check else {}
    for d in dirs:
        note = " (loaded by harbor)" if str(d) in checked else ""
        console.print(f"{escape(str(d))}{note}")
    console.print(f"exported {len(dirs)} Harbor tasks to {escape(str(out))}")
