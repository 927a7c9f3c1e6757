"""``ptb view``: a local web server over a results folder that shows it as it is now."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .. import interrupts
from .common import ResultsOpt, console, fail, load_settings, results_index


def _can_open_browser() -> bool:
    """A graphical browser can be started (never a text browser that would take the terminal)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view(
    results: ResultsOpt = Path("results"),
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes the results).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    log: Annotated[bool, typer.Option("--log", help="Print one line per request.")] = False,
) -> None:
    """Serve a results folder live in the browser: leaderboard, runs in progress, traces, samples.

    Run pages show the trace, per-sample evaluation results, the training loss and the base and
    instruct scores.

    Pages are rendered from what is on disk at each request; a page of a run in progress reloads
    itself when the run changes. Nothing is written into the results folder (its index is kept
    in the cache folder). Runs until Ctrl-C, then exits 0.
    """
    from ..report.server import make_server
    from ..results.index import index_location

    results_index(results)  # a missing folder or a run folder is an error before anything starts
    db_path = index_location(results, load_settings().paths.cache_dir, in_tree=False)
    try:
        server = make_server(results, db_path, host, port, log=(lambda m: console.print(escape(m))) if log else None)
    except OSError as exc:
        fail(f"{host}:{port}", f"cannot listen ({exc.strerror or exc})", fix="choose another --port (0: any free one)")
    url = server.url
    console.print(f"serving {escape(str(results))} at {url} (Ctrl-C to stop)", soft_wrap=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] listening on {escape(host)}: anyone who can reach it can read the runs"
        )
    sys.stdout.flush()
    if not no_open and _can_open_browser():
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, interrupts.Interrupted):
        pass  # stopping is how a server ends: exit 0, nothing to resume
    finally:
        server.server_close()
        server.view.close()
    console.print("stopped")
