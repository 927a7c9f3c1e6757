"""``ptb``: the typer app. It only registers the commands; each lives in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from . import agents, data, export_harbor, sweep
from .baseline import baseline
from .common import ErrorHandlingGroup, env_epilog, quiet_third_party_progress
from .copy import copy_cmd
from .demo import demo
from .doctor import doctor
from .evaluate import eval_cmd
from .import_upstream import import_cmd
from .index import index
from .leaderboard import leaderboard
from .listing import list_cmd
from .report import report
from .run import run
from .settings import settings_cmd
from .show import show
from .trace import trace
from .verify import verify
from .view import view

app = typer.Typer(
    name="ptb",
    help="PostTrainBench: how well can an autonomous LLM agent post-train a base LLM?",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"ptb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """PostTrainBench: how well can an autonomous LLM agent post-train a base LLM?"""
    quiet_third_party_progress()


app.command(epilog=env_epilog("demo"))(demo)
app.command(epilog=env_epilog("run"))(run)
app.command()(show)
app.command(name="copy")(copy_cmd)
app.command(epilog=env_epilog("verify"))(verify)
app.command()(trace)
app.command()(leaderboard)
app.command()(index)
app.command(name="import")(import_cmd)
app.add_typer(export_harbor.app, name="export")
app.command()(report)
app.command()(view)
app.add_typer(sweep.app, name="sweep")
app.command(name="eval", epilog=env_epilog("eval"))(eval_cmd)
app.command(epilog=env_epilog("baseline"))(baseline)
app.command(name="list")(list_cmd)
app.add_typer(data.app, name="data")
app.command(epilog=env_epilog("doctor"))(doctor)
app.add_typer(agents.app, name="agents")
app.command(name="settings")(settings_cmd)


def main() -> None:  # pragma: no cover - console entry
    """Run ``ptb`` (the console script and ``python -m posttrainbench``)."""
    app(prog_name="ptb")


if __name__ == "__main__":  # pragma: no cover
    main()
