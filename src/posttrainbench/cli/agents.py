"""``ptb agents ...``: install the pinned agent CLIs (outside every workspace)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import EXIT_FAILED, console, env_epilog, load_settings

app = typer.Typer(help="Agent scaffolds: install the pinned agent CLIs from npm.", no_args_is_help=True)


@app.command("install", epilog=env_epilog("agents"))
def install(
    names: Annotated[list[str], typer.Argument(help="Agent ids (default: every CLI agent).")] = [],  # noqa: B006 - typer's default, never mutated
) -> None:
    """Install the pinned npm release of each agent CLI into $PTB_AGENTS_DIR (idempotent)."""
    from ..agents import AGENTS, AgentLaunchError, get_agent
    from .lookup import UnknownNameError

    settings = load_settings()
    ids = names or [k for k, cls in AGENTS.items() if cls.installable]
    failed = False
    for name in ids:
        try:
            agent = get_agent(name, settings)
            if not agent.installable:
                console.print(f"{name}: nothing to install")
                continue
            with console.status(f"installing {agent.version()} ..."):
                prefix = agent.install()
            console.print(f"[green]{name}[/]: {agent.version()} in {prefix}")
        except (AgentLaunchError, UnknownNameError) as e:
            failed = True
            console.print(f"[red]{name}[/]: {e}")
    if failed:
        raise typer.Exit(EXIT_FAILED)
