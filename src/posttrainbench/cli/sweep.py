"""``ptb sweep plan|run|status|cancel``: run a sweep file on a local pool, Slurm, HTCondor or SkyPilot."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..console import duration, score
from ..domain import LauncherKind
from .common import (
    EXIT_FAILED,
    JsonOpt,
    choices,
    console,
    env_epilog,
    err_console,
    expected,
    fit_columns,
    load_settings,
    print_json,
    print_wide,
)

if TYPE_CHECKING:
    from ..launch.driver import SweepState
    from ..launch.plan import Task
    from ..launch.sweep import Sweep

app = typer.Typer(
    help="Sweeps: agents × base models × benchmarks × repeats, on a local pool, Slurm, HTCondor or SkyPilot.",
    no_args_is_help=True,
)

# Built from the registry at import time (typer reads it); a type checker sees a plain StrEnum.
if TYPE_CHECKING:
    Launcher = StrEnum
else:
    Launcher = choices("Launcher", get_args(LauncherKind))
SweepArg = Annotated[Path, typer.Argument(help="Sweep file (.toml, .yaml).")]
ResultsOverrideOpt = Annotated[
    Path | None, typer.Option("--results", help="Results root (overrides the file's `results`).")
]
LauncherOpt = Annotated[
    Launcher | None, typer.Option("--launcher", help="Where the runs execute (overrides the file).")
]


def _load(path: Path, results: Path | None, launcher: Launcher | None) -> Sweep:
    from ..launch.sweep import SweepError, load_sweep

    with expected(SweepError, what=str(path)):
        return load_sweep(path, results=results, launcher=None if launcher is None else launcher.value)


def _launcher_errors(sweep: Sweep) -> AbstractContextManager[None]:
    """A launcher's failure (queue unreachable, submission refused) as the command's error."""
    from ..launch.base import LauncherError

    return expected(LauncherError, what=f"launcher {sweep.launcher}")


def _rows(state: SweepState) -> list[dict[str, Any]]:
    """One dict per task: what the status table shows (and ``--json`` prints)."""
    rows = []
    for t in state.tasks:
        st = state.statuses[t.key]
        shown: str = "running" if t.key in state.running else st.state
        if (
            shown in ("failed", "interrupted", "partial", "pending")
            and t.key not in state.running
            and state.ledger.attempts(t.key) >= state.max_attempts
        ):
            shown = f"gave up ({shown})"
        last = state.ledger.last_job(t.key)
        rows.append(
            {
                "task": t.label,
                "key": t.key,
                "folder": str(t.folder),
                "state": shown,
                "phase": st.phase,
                "time_used_s": st.time_used_s,
                "agent_time_s": st.agent_time_s,
                "attempts": state.ledger.attempts(t.key),
                "max_attempts": state.max_attempts,
                "job_ids": list(last["job_ids"]) if last else [],
                "score": st.score,
                "failure": st.failure,
            }
        )
    return rows


#: The sweep table's columns; in a terminal the first four are always shown, the others while they fit.
SWEEP_COLUMNS = ("task", "state", "phase", "score", "time used", "agent", "attempts", "job", "failure / cause")


def _table(state: SweepState, title: str) -> Table:
    """The per-task table; in a narrow terminal the key columns (task, state, phase, score) stay
    whole and a caption names the columns left out (piped: every column)."""
    rows = [
        [
            row["task"],
            row["state"],
            row["phase"],
            score(row["score"]),
            duration(row["time_used_s"]),
            duration(row["agent_time_s"]),
            f"{row['attempts']}/{row['max_attempts']}",
            ",".join(row["job_ids"]),
            row["failure"] or "",
        ]
        for row in _rows(state)
    ]
    header = list(SWEEP_COLUMNS)
    # the failure folds: it never decides whether the columns before it fit
    widths = [[*r[:-1], r[-1][:20]] for r in rows]
    shown = fit_columns(header, widths, console.width, keep=4) if console.is_terminal else list(range(len(header)))
    hidden = [header[i] for i in range(len(header)) if i not in shown]
    caption = f"{len(hidden)} column(s) not shown at this width: {', '.join(hidden)}" if hidden else None
    table = Table(title=title, caption=caption)
    for i in shown:
        table.add_column(header[i], overflow="fold", no_wrap=header[i] in ("state", "phase", "score", "time used"))
    for r in rows:
        style = {"done": "green", "running": "cyan", "pending": "white"}.get(r[1], "yellow")
        cells = [escape(r[0]), f"[{style}]{r[1]}[/]", *(escape(c) for c in r[2:])]
        table.add_row(*(cells[i] for i in shown))
    return table


def _summary(state: SweepState) -> str:
    counts = state.counts()
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


class _Bar:
    """The progress bar shown while waiting for jobs."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]sweep[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, state: SweepState) -> None:
        self.progress.update(self.task, completed=state.n_done, description=_summary(state))


@app.command()
def plan(sweep_file: SweepArg, results: ResultsOverrideOpt = None, launcher: LauncherOpt = None) -> None:
    """Show what the sweep would run and what is already done (validates the file; submits nothing)."""
    from ..launch.driver import sweep_state

    sweep = _load(sweep_file, results, launcher)
    state = sweep_state(sweep)
    print_wide(
        _table(
            state, f"sweep {sweep.name}: {len(state.tasks)} tasks, launcher {sweep.launcher}, results {sweep.results}"
        )
    )
    todo, gave_up = state.to_launch(), state.gave_up()
    console.print(f"{state.n_done} done, {len(todo)} to launch, {len(gave_up)} out of attempts ({_summary(state)})")


@app.command(epilog=env_epilog("sweep"))
def run(
    sweep_file: SweepArg,
    results: ResultsOverrideOpt = None,
    launcher: LauncherOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the jobs (and retry infra failures).")
    ] = True,
    retry_failed_evals: Annotated[
        bool,
        typer.Option(
            "--retry-failed-evals", help="Re-evaluate completed runs whose evaluation failed (agent phases kept)."
        ),
    ] = False,
    rerun_failed_agents: Annotated[
        bool,
        typer.Option(
            "--rerun-failed-agents",
            help=(
                "Run the agent again (fresh workspace) for completed runs whose agent failed; the old run.json is "
                "kept as run.failed-<time>.json."
            ),
        ),
    ] = False,
    reset_attempts: Annotated[
        bool,
        typer.Option("--reset-attempts", help="Forget past attempts (give failed tasks a full retry budget again)."),
    ] = False,
    poll: Annotated[float, typer.Option(min=0.2, help="Seconds between queue polls while waiting.")] = 5.0,
) -> None:
    """Launch (or resume) a sweep: skips completed runs, retries infra failures up to max_retries.

    Each job reads the ``PTB_*`` settings from its own environment (the local pool's and Slurm's
    inherit this one); they are checked here first, so that an invalid one stops the sweep before
    anything is submitted."""
    from ..launch.driver import run_sweep

    load_settings()
    sweep = _load(sweep_file, results, launcher)

    def launched(tasks: list[Task]) -> None:
        console.print(
            f"launching {len(tasks)} task(s) on {sweep.launcher}: "
            + ", ".join(t.label for t in tasks[:8])
            + (" …" if len(tasks) > 8 else ""),
            soft_wrap=True,
        )

    with _launcher_errors(sweep):
        if wait:
            from ..launch.plan import plan_tasks

            with _Bar(len(plan_tasks(sweep))) as bar:
                state = run_sweep(
                    sweep,
                    wait=True,
                    retry_failed_evals=retry_failed_evals,
                    rerun_failed_agents=rerun_failed_agents,
                    reset_attempts=reset_attempts,
                    on_tick=bar.update,
                    on_launch=launched,
                    poll_s=poll,
                )
                bar.update(state)
        else:
            state = run_sweep(
                sweep,
                wait=False,
                retry_failed_evals=retry_failed_evals,
                rerun_failed_agents=rerun_failed_agents,
                reset_attempts=reset_attempts,
                on_launch=launched,
                poll_s=poll,
            )
    print_wide(_table(state, f"sweep {sweep.name}"))
    console.print(_summary(state))
    if wait and state.n_done < len(state.tasks):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def status(
    sweep_file: SweepArg,
    results: ResultsOverrideOpt = None,
    launcher: LauncherOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show a progress bar until no job is queued or running.")
    ] = False,
    poll: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Per run: state, phase, time used, attempts, job, score, failure with its cause."""
    from ..launch.base import LauncherError
    from ..launch.driver import make_launcher, sweep_state

    sweep = _load(sweep_file, results, launcher)
    launch = make_launcher(sweep)
    try:
        state = sweep_state(sweep, launch)
    except LauncherError as exc:  # the folders still say what happened; the queue is unknown
        err_console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; job states unknown", soft_wrap=True)
        state = sweep_state(sweep)
        wait = False
    with _launcher_errors(sweep):
        if wait and state.running:
            with _Bar(len(state.tasks)) as bar:
                while state.running:
                    bar.update(state)
                    time.sleep(poll)
                    state = sweep_state(sweep, launch)
                bar.update(state)
    if as_json:
        print_json({"sweep": sweep.name, "launcher": sweep.launcher, "counts": state.counts(), "tasks": _rows(state)})
        return
    print_wide(_table(state, f"sweep {sweep.name} ({sweep.launcher})"))
    console.print(_summary(state))


@app.command()
def cancel(sweep_file: SweepArg, results: ResultsOverrideOpt = None, launcher: LauncherOpt = None) -> None:
    """Cancel the sweep's queued and running jobs (their runs resume on the next `ptb sweep run`)."""
    from ..launch.driver import live_jobs, make_launcher
    from ..launch.plan import Ledger, plan_tasks

    sweep = _load(sweep_file, results, launcher)
    with _launcher_errors(sweep):
        launch = make_launcher(sweep)
        _, job_ids = live_jobs(launch, Ledger(sweep), plan_tasks(sweep))
        launch.cancel(job_ids)
    console.print(f"cancelled {len(job_ids)} job(s)")
