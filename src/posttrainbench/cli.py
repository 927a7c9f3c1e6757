"""``ptb``: the command-line interface."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .domain import NetworkPolicy, RunSpec, SandboxKind

app = typer.Typer(
    name="ptb",
    help="PostTrainBench: how well can an autonomous LLM agent post-train a base LLM?",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

from .cli_baseline import baseline as _baseline  # noqa: E402

app.command(name="baseline")(_baseline)

ResultsOpt = Annotated[Path, typer.Option("--results", help="Results root folder.")]


def _print_wide(table: Table) -> None:
    """Print a table; into a pipe or file, as wide as it needs rather than squashed to 80 columns."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.measure import Measurement

    need = Measurement.get(console, console.options.update_width(400), table).maximum
    Console(width=max(console.width, min(need, 400))).print(table)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def demo(
    results: ResultsOpt = Path("results"),
    sandbox: Annotated[SandboxKind, typer.Option(help="Sandbox backend.")] = SandboxKind.bwrap,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N items.")] = None,
    agent_config: Annotated[str, typer.Option(help="Reference agent config.")] = "sft",
) -> None:
    """Run the whole lifecycle on the CPU: SmolLM2-135M, GSM8K calculator steps, reference agent.

    Prints the base score vs the post-trained score, the verdicts and a one-line leaderboard.
    Re-running resumes: finished phases are not redone.
    """
    from .demo import run_demo

    try:
        out = run_demo(results, console=console, sandbox=sandbox, eval_limit=limit, agent_config=agent_config)
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
    if out.record.failure:
        raise typer.Exit(1)


@app.command()
def run(
    agent: Annotated[str, typer.Option(help="Agent id (see `ptb list`).")],
    model: Annotated[str, typer.Option(help="Base model, e.g. Qwen/Qwen3-4B-Base.")],
    benchmark: Annotated[str, typer.Option(help="Benchmark id, e.g. gsm8k.")],
    agent_config: Annotated[Optional[str], typer.Option(help="Agent config (model name for LLM agents).")] = None,
    hours: Annotated[float, typer.Option(min=0.001, help="Time budget in hours.")] = 10.0,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs visible to the agent.")] = 0,
    repeat: Annotated[int, typer.Option(min=0, help="Repeat index (part of the run id).")] = 0,
    sandbox: Annotated[SandboxKind, typer.Option(help="Sandbox backend.")] = SandboxKind.bwrap,
    network: Annotated[NetworkPolicy, typer.Option(help="Network policy inside the sandbox.")] = NetworkPolicy.none,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N test items.")] = None,
    suffix: Annotated[str, typer.Option(help="Suffix of the run group folder.")] = "",
    results: ResultsOpt = Path("results"),
    until: Annotated[Optional[str], typer.Option(help="Stop after this phase.")] = None,
) -> None:
    """Run (or resume) one run: prepare, solve, collect, verify, evaluate, record."""
    from .agents import AGENTS
    from .catalog import UnknownNameError
    from .pipeline import Pipeline

    try:
        spec = RunSpec(
            agent=agent,
            agent_config=agent_config or AGENTS.get(agent).spec.default_config,
            base_model=model,
            benchmark=benchmark,
            hours=hours,
            gpus=gpus,
            repeat=repeat,
            sandbox=sandbox,
            network=network,
            eval_limit=limit,
            suffix=suffix,
        )
        pipeline = Pipeline(spec, results, progress=lambda p, m: console.log(f"[bold]{p}[/bold] {m}"))
    except (UnknownNameError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    if until is not None and until not in ("prepare", "solve", "collect", "verify", "evaluate", "record"):
        _fail(f"--until must be a phase name, not {until!r}")
    record = pipeline.run(until=until)  # type: ignore[arg-type]
    _print_record(record, pipeline.paths.root)
    if any(s.status == "failed" for s in record.phases.values()):
        raise typer.Exit(1)


@app.command()
def show(run_dir: Annotated[Path, typer.Argument(help="A run folder (with run.json).")]) -> None:
    """Summarise a run folder: phases, verdicts, score, failure."""
    from .results import RecordError, load_record

    try:
        record = load_record(run_dir / "run.json")
    except RecordError as exc:
        _fail(str(exc))
    _print_record(record, run_dir)


def _print_record(record, root: Path) -> None:  # noqa: ANN001 (RunRecord, imported lazily)
    table = Table(title=f"run {record.run_id}")
    table.add_column("phase")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for name, st in record.phases.items():
        table.add_row(name, st.status, st.error or "")
    console.print(table)
    for v in record.verdicts:
        console.print(f"  {v.gate:14s} {v.status.value:8s} {v.summary}")
    if record.metrics:
        console.print(f"score: {record.metrics.score}  ({record.metrics.status})")
        data = record.metrics.data or {}
        if data:
            style = {"pinned": "green", "differs": "red"}.get(data.get("status"), "yellow")
            console.print(
                f"data: [{style}]{data.get('status')}[/] sha256 {str(data.get('items_sha256', ''))[:16]} "
                f"({data.get('n_items')} items from {escape(', '.join(data.get('sources', [])))})"
            )
    if record.failure:
        console.print(f"[red]failure:[/red] {record.failure}")
    console.print(f"folder: {root}")


@app.command(name="eval")
def eval_cmd(
    model_path: Annotated[Path, typer.Argument(help="Model folder (config + safetensors + tokenizer).")],
    benchmark: Annotated[str, typer.Option(help="Benchmark id.")],
    base_model: Annotated[str, typer.Option(help="Declared base model (picks the chat template).")],
    limit: Annotated[Optional[int], typer.Option(help="Only the first N items.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the Inspect log.")] = Path("results/eval"),
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
) -> None:
    """Evaluate a model folder with the harness's pinned evaluator."""
    from .benchmarks import get_benchmark
    from .catalog import UnknownNameError, get_base_model
    from .evaluation import evaluate_model

    try:
        bench, base = get_benchmark(benchmark), get_base_model(base_model)
    except UnknownNameError as exc:
        _fail(str(exc))
    result = evaluate_model(model_path, bench, base, out, limit=limit, batch_size=batch_size)
    if result.status != "ok":
        _fail(f"evaluation failed: {result.error}", 1)
    console.print(f"{bench.id}: {result.metric} = {result.score:.4f} ({result.n_scored} items)")
    if result.data is not None:
        console.print(f"data: {result.data.status}, sha256 {result.data.items_sha256[:16]}")


@app.command(name="list")
def list_cmd() -> None:
    """List the catalog: benchmarks, base models, agents."""
    from .agents import AGENTS
    from .benchmarks import BENCHMARKS
    from .catalog import BASE_MODELS

    t = Table(title="benchmarks")
    for c in ("id", "name", "full", "dev", "max-tokens ladder"):
        t.add_column(c)
    for b in BENCHMARKS.values():
        t.add_row(b.id, b.display_name, str(b.full_size), str(b.dev_size), " → ".join(map(str, b.max_tokens_ladder)))
    console.print(t)
    t = Table(title="base models")
    for c in ("id", "chat template", "forbidden"):
        t.add_column(c)
    for m in BASE_MODELS.values():
        t.add_row(m.hub_id, m.chat_template, ", ".join(m.forbidden))
    console.print(t)
    t = Table(title="agents")
    for c in ("id", "name", "default config", "secrets"):
        t.add_column(c)
    for a in (cls.spec for cls in AGENTS.values()):
        t.add_row(a.id, a.display_name, a.default_config, ", ".join(a.secret_env))
    console.print(t)


@app.command()
def leaderboard(
    results: ResultsOpt = Path("results"),
    weights: Annotated[Optional[Path], typer.Option(help="factors.json with benchmark weights (default: from recorded base+instruct baselines, else equal).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | markdown | csv | json")] = "table",
    out: Annotated[Optional[Path], typer.Option(help="Write to this file instead of the terminal.")] = None,
    reindex: Annotated[bool, typer.Option("--reindex", help="Rebuild the whole index first.")] = False,
) -> None:
    """Rank agents from the run folders: fallback policy, weights, mean ± std over repeats."""
    from .fsutil import atomic_write_text
    from .leaderboard import load_weights
    from .leaderboard.tables import FORMATS, agent_table, build_report, model_table

    if fmt not in ("table", *FORMATS):
        _fail(f"unknown format {fmt!r}; use table, markdown, csv or json")
    report = build_report(results, load_weights(weights) if weights else None, full=reindex)
    for problem in report.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {escape(problem)}", soft_wrap=True)
    if not report.agents:
        _fail(f"no runs under {results}", 1)
    if fmt != "table":
        text = FORMATS[fmt](report)
        if out:
            atomic_write_text(out, text)
            console.print(f"wrote {out}")
        else:
            print(text, end="")
        return
    header, rows = agent_table(report)
    table = Table(title=f"leaderboard ({len(report.cells)} runs; weights: {report.weights_source})")
    for col in header:
        table.add_column(col, justify="left" if col == "agent" else "right", no_wrap=col == "agent")
    for row in rows:
        table.add_row(*row)
    _print_wide(table)
    if len(report.models) > 1:
        mh, mrows = model_table(report)
        mt = Table(title="score per base model")
        for col in mh:
            mt.add_column(col)
        for row in mrows:
            mt.add_row(*row)
        _print_wide(mt)


@app.command()
def index(
    results: ResultsOpt = Path("results"),
    full: Annotated[bool, typer.Option("--full", help="Drop the index and read every run folder again.")] = False,
) -> None:
    """Bring the SQLite index (results.db) up to date with the run folders; list bad folders."""
    from .results.index import DB_NAME, read_index, refresh

    stats = refresh(results, full=full)
    contents = read_index(results)
    console.print(
        f"{results / DB_NAME}: {len(contents.runs)} runs, {len(contents.baselines)} baselines "
        f"({stats.parsed} files read, {stats.removed} rows removed); {len(contents.problems)} problems"
    )
    for path, cause in contents.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(cause)}", soft_wrap=True)


@app.command(name="import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Upstream results folder (<method>/<bench>_<Org>_<Model>_<jobid>/).")],
    results: ResultsOpt = Path("results"),
    agent_map: Annotated[Optional[Path], typer.Option(help="JSON {agent name: [method folder, ...]} grouping methods as repeats.")] = None,
    baselines: Annotated[Optional[Path], typer.Option(help="Published zero-shot baseline grid CSV (base and instruct rows).")] = None,
) -> None:
    """Import upstream PostTrainBench result folders (and baselines) into our run records."""
    import json

    from .results.importer import import_baseline_grid, import_upstream
    from .results.index import refresh

    amap = None
    if agent_map is not None:
        try:
            amap = json.loads(agent_map.read_text())
            if not isinstance(amap, dict) or not all(isinstance(v, list) for v in amap.values()):
                raise ValueError("expected {name: [method, ...]}")
        except (OSError, ValueError) as exc:
            _fail(f"{agent_map}: bad agent map ({exc})")
    try:
        rep = import_upstream(source, results, agent_map=amap)
    except FileNotFoundError as exc:
        _fail(str(exc))
    problems = list(rep.problems)
    n_base = 0
    if baselines is not None:
        n_base, more = import_baseline_grid(baselines, results)
        problems += more
    refresh(results)
    console.print(f"imported {len(rep.imported)} runs ({len(rep.superseded)} superseded), {n_base} baselines into {results}")
    for p in problems:
        console.print(f"[yellow]problem:[/yellow] {escape(p)}", soft_wrap=True)


@app.command()
def doctor(results: ResultsOpt = Path("results")) -> None:
    """Check this machine: sandbox, GPU, disk, keys, package versions. Says exactly what is missing."""
    from .doctor import run_checks

    checks = run_checks(results)
    table = Table(title="ptb doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    style = {"ok": "green", "warn": "yellow", "missing": "red"}
    for c in checks:
        table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", escape(c.detail))
    console.print(table)
    if any(c.status == "missing" and c.required for c in checks):
        raise typer.Exit(1)


from .cli_report import report as _report  # noqa: E402

app.command(name="report")(_report)

from .cli_sweep import app as _sweep_app  # noqa: E402

app.add_typer(_sweep_app, name="sweep")

from .cli_integrity import verify  # noqa: E402

app.command()(verify)

from .cli_data import app as _data_app  # noqa: E402

app.add_typer(_data_app, name="data")

from .cli_agents import app as _agents_app  # noqa: E402
from .cli_agents import trace as _trace  # noqa: E402

app.add_typer(_agents_app, name="agents")
app.command("trace")(_trace)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
