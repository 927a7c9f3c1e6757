"""What every command shares: the two consoles, the one error handler and its exit codes, the
shared options, choices built from the registries they validate, the settings (read once per
command, :func:`load_settings`, and named in its ``--help``, :func:`env_epilog`), and wide
table printing.

Errors: a command raises :class:`CliError` (through :func:`fail`, or :func:`expected` around a
call whose exceptions are expected, e.g. an unknown name or an unreadable file); the ``ptb``
group (:class:`ErrorHandlingGroup`) prints it as one line ``error: <what>: <why>[; <fix>]`` on
stderr and exits with its code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .. import interrupts
from ..console import console, err_console
from ..domain import NetworkPolicy, SandboxKind
from ..settings import Settings, SettingsError, command_variables

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "BatchSizeOpt",
    "CliError",
    "ErrorHandlingGroup",
    "JsonOpt",
    "LimitOpt",
    "NetworkOpt",
    "ProtocolOpt",
    "RankProtocolOpt",
    "ReindexOpt",
    "ResultsOpt",
    "RunDirArg",
    "SandboxOpt",
    "SuiteOpt",
    "WeightsOpt",
    "choices",
    "console",
    "env_epilog",
    "err_console",
    "expected",
    "fail",
    "fit_columns",
    "load_settings",
    "output_file",
    "output_folder",
    "phase_line",
    "print_json",
    "print_wide",
    "quiet_third_party_progress",
    "results_index",
]

EXIT_FAILED = 1
"""The command ran and what it checked or ran failed (a run, an evaluation, a verdict)."""
EXIT_USAGE = 2
"""The command could not do its work: bad input (unknown name, unreadable file, invalid option) or
an environment that cannot serve it (unreachable scheduler)."""


# ----------------------------------------------------------------- errors
class CliError(Exception):
    """An expected failure, shown as ``error: <what>: <why>[; <fix>]`` and exit code ``code``.

    ``what`` names what failed (a file, a folder, an option, a step); ``why`` says why (empty when
    ``what`` is a whole message that names its subject); ``fix``, when there is one, says what to
    do about it.
    """

    def __init__(self, what: str, why: str = "", *, fix: str | None = None, code: int = EXIT_USAGE) -> None:
        super().__init__(f"{what}: {why}" if why else what)
        self.what, self.why, self.fix, self.code = what, why, fix, code

    def render(self) -> Text:
        """The message as one line; the further lines of a multi-line message (a list of
        problems) follow it, indented."""
        first, *rest = str(self).splitlines() or [""]
        text = Text("error:", style="red")
        text.append(f" {first}" + (f"; {self.fix}" if self.fix else ""))
        for line in rest:
            text.append(f"\n  {line}")
        return text


def fail(what: str, why: str = "", *, fix: str | None = None, code: int = EXIT_USAGE) -> NoReturn:
    """Stop the command with an expected error (see :class:`CliError`)."""
    raise CliError(what, why, fix=fix, code=code)


@contextmanager
def expected(
    *errors: type[BaseException], what: str | None = None, fix: str | None = None, code: int = EXIT_USAGE
) -> Iterator[None]:
    """Turn the listed exceptions raised in the block into a :class:`CliError`: about ``what``
    with the exception's message as the why, or, without ``what``, the message alone (for
    exceptions whose message names its subject, e.g. a file)."""
    try:
        yield
    except errors as exc:
        if what is None:
            raise CliError(str(exc), fix=fix, code=code) from exc
        raise CliError(what, str(exc), fix=fix, code=code) from exc


def report_error(error: CliError) -> None:
    """Print ``error`` on stderr, never wrapped."""
    err_console.print(error.render(), soft_wrap=True)


class ErrorHandlingGroup(TyperGroup):
    """The ``ptb`` group: the one place where an expected error becomes a message and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer passes its own Context subclass
        try:
            with interrupts.handling():
                return super().invoke(ctx)
        except CliError as error:
            report_error(error)
            raise typer.Exit(error.code) from None
        except (interrupts.Interrupted, KeyboardInterrupt) as exc:
            signal = exc.signal if isinstance(exc, interrupts.Interrupted) else interrupts.signal_name() or "SIGINT"
            detail = exc.detail if isinstance(exc, interrupts.Interrupted) else None
            err_console.print(
                Text(f"interrupted ({signal}): " + (detail or "what was running is recorded as interrupted; "
                     "run the same command again to resume")),
                soft_wrap=True,
            )  # fmt: skip
            raise typer.Exit(interrupts.EXIT_INTERRUPTED) from None


# ----------------------------------------------------------------- settings
def load_settings() -> Settings:
    """The command's settings: every ``PTB_*`` variable, read from the environment once, where
    the command starts, and passed down. An invalid one stops the command (exit 2), each named
    with what it expects; the judge's and graders' are reported where they are used."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError("invalid settings", "\n".join(exc.problems), fix="see `ptb settings`") from exc


def output_folder(path: Path, what: str = "output folder") -> Path:
    """Make sure the command can write into the folder ``path`` (created if missing) before it
    starts any work: a file in its place, a folder that cannot be created or a read-only one stops
    the command with one line."""
    if path.exists() and not path.is_dir():
        fail(str(path), f"not a folder (the {what})")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(str(path), f"cannot create the {what} ({exc.strerror or exc})")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(str(path), f"the {what} is read-only", fix="choose a folder you can write")
    return path


def output_file(path: Path, what: str = "output file") -> Path:
    """Like :func:`output_folder` for a file to be written: its folder must be writable and the
    path must not be a folder."""
    if path.is_dir():
        fail(str(path), f"a folder, not a file (the {what})")
    output_folder(path.parent, f"folder of the {what}")
    return path


def results_index(results: Path) -> Path:
    """Where the index of the results folder ``results`` lives (in it, or in the cache folder when
    it is read-only); a path that is not a folder stops the command, and nothing is created."""
    from ..results.index import ResultsIndexError, index_location

    if (results / "run.json").is_file():
        fail(
            str(results), "a run folder, not a results root", fix=f"pass the results root, e.g. {results.parent.parent}"
        )
    with expected(ResultsIndexError, fix="pass the results root (the folder of run groups)"):
        return index_location(results, load_settings().paths.cache_dir)


def env_epilog(command: str) -> str:
    """The ``--help`` epilog naming the ``PTB_*`` variables ``ptb <command>`` reads (the judge's
    and the graders' as ``PTB_JUDGE_*`` / ``PTB_GRADER_*``)."""
    names: list[str] = []
    for name in command_variables(command):
        prefix = next((p for p in ("PTB_JUDGE_", "PTB_GRADER_") if name.startswith(p)), None)
        shown = f"{prefix}*" if prefix else name
        if shown not in names:
            names.append(shown)
    return f"Environment: {', '.join(names)} (`ptb settings` shows each)." if names else ""


# ----------------------------------------------------------------- choices
def choices(name: str, values: Iterable[str]) -> type[StrEnum]:
    """A string enum of ``values`` (read from the registry that validates them) for an option:
    typer checks the value and lists the choices in ``--help``; members compare equal to their
    strings."""
    return StrEnum(name, {value: value for value in values})  # type: ignore[return-value]  # the functional API makes a class


# ----------------------------------------------------------------- shared options
ResultsOpt = Annotated[Path, typer.Option("--results", help="Results root folder.")]
RunDirArg = Annotated[Path, typer.Argument(help="A run folder (with run.json).")]
SandboxOpt = Annotated[SandboxKind, typer.Option(help="Sandbox backend.")]
NetworkOpt = Annotated[NetworkPolicy, typer.Option(help="Network policy inside the sandbox.")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N test items.")]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Inference batch size.")]
ProtocolOpt = Annotated[
    str, typer.Option(help="Evaluation protocol: strict (ours), ptb-v1 or ptb-v1.2 (the reference's; see docs).")
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        help="factors.json with benchmark weights (default: from recorded base+instruct baselines, else equal)."
    ),
]
ReindexOpt = Annotated[bool, typer.Option("--reindex", help="Rebuild the whole results index first.")]
RankProtocolOpt = Annotated[
    str | None,
    typer.Option(help="Rank the runs of this protocol (default: the runs' only one; strict if they mix)."),
]
SuiteOpt = Annotated[
    str | None,
    typer.Option(
        help="Rank on this suite's benchmarks (v1: 7, v1.2: 6); weights from recorded baselines, else the "
        "suite's published factors (default: the benchmarks present)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (plain ``print``: no markup, no wrapping)."""
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))


# ----------------------------------------------------------------- output
WIDE_MAX = 400
"""Widest a table gets when printed into a pipe or file."""


AGENT_MAX_WIDTH = 36
"""Widest the agent column gets in a terminal (a longer label folds onto more lines)."""


def fit_columns(header: list[str], rows: list[list[str]], width: int, keep: int) -> list[int]:
    """Indices of the columns to show in a terminal ``width`` wide: the first ``keep`` always (the
    agent column counted at most :data:`AGENT_MAX_WIDTH`), then the others in order while they fit,
    so that the key columns are never squeezed out of sight by many narrow ones."""

    def need(i: int) -> int:
        cells = [header[i], *(r[i] for r in rows)]
        w = max(len(c) for c in cells)
        return min(w, AGENT_MAX_WIDTH) + 3 if header[i] == "agent" else w + 3  # padding and border

    shown = list(range(min(keep, len(header))))
    used = sum(need(i) for i in shown) + 1
    for i in range(len(shown), len(header)):
        if used + need(i) <= width:
            shown.append(i)
            used += need(i)
    return shown


def phase_line(out: Console) -> Callable[[str, str], None]:
    """A pipeline progress callback: ``HH:MM:SS phase message`` lines (no source-file suffixes)."""

    def progress(phase: str, message: str) -> None:
        out.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] [bold]{phase}[/bold] {escape(message)}", soft_wrap=True)

    return progress


def quiet_third_party_progress() -> None:
    """Third-party progress bars off (huggingface_hub downloads, datasets, transformers' weight
    loading): ptb shows its own progress. Set before those libraries are imported (they read the
    variables at import); a value the user set is kept."""
    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def print_wide(table: Table) -> None:
    """Print a table; into a pipe or file, as wide as it needs (up to :data:`WIDE_MAX` columns)
    rather than squashed to 80."""
    if console.is_terminal:
        console.print(table)
        return
    need = Measurement.get(console, console.options.update_width(WIDE_MAX), table).maximum
    width = max(console.width, min(need, WIDE_MAX))
    console.print(Segments(console.render(table, console.options.update_width(width))), crop=False)
