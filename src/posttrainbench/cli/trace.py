"""``ptb trace``: an agent's trace, human-readably."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from .common import console, expected, fail


def trace(
    run_dir: Annotated[str, typer.Argument(help="A run folder (with trace.json or solve_out.txt).")],
    width: Annotated[int, typer.Option(help="Characters shown of each text / tool output.")] = 400,
    agent: Annotated[str, typer.Option(help="Parser for a raw solve_out.txt without trace.json.")] = "",
) -> None:
    """Print an agent's trace human-readably: steps, tool calls and results, tokens, cost."""
    from ..agents.trace_parsers import parse_trace
    from ..trace import load_trace

    root = Path(run_dir)
    if (root / "trace.json").is_file():
        try:
            t = load_trace(root / "trace.json")
        except (ValueError, OSError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            fail(str(root / "trace.json"), f"unreadable trace ({why})", fix="the raw output is solve_out.txt")
    elif (root / "solve_out.txt").is_file():
        name = agent
        if not name and (root / "run.json").is_file():
            with expected(ValueError, OSError, AttributeError, what=f"{root / 'run.json'}: unreadable run.json"):
                name = json.loads((root / "run.json").read_text()).get("spec", {}).get("agent", "")
        t = parse_trace(name or "reference", root / "solve_out.txt")
    else:
        fail(str(root), "no trace.json or solve_out.txt", fix="pass a run folder (results/<group>/<run>)")

    def short(text: str) -> str:
        text = text.strip()
        return escape(text if len(text) <= width else text[:width] + f" … (+{len(text) - width} chars)")

    console.print(f"[bold]{t.agent}[/] model {t.model or '?'} · {len(t.steps)} steps · source {t.source}")
    style = {"assistant": "cyan", "tool": "green", "user": "magenta", "system": "dim", "log": "yellow"}
    for s in t.steps:
        tok = f" [dim]({s.input_tokens} in / {s.output_tokens} out)[/]" if s.input_tokens or s.output_tokens else ""
        ts = f" {s.timestamp:%H:%M:%S}" if s.timestamp else ""
        console.print(f"[{style.get(s.role, 'white')}]#{s.index} {s.role}[/]{ts}{tok}")
        if s.text:
            console.print("  " + short(s.text))
        for c in s.tool_calls:
            args = c.input if isinstance(c.input, str) else json.dumps(c.input, ensure_ascii=False)
            console.print(f"  [bold]→ {escape(c.name)}[/] {short(str(args))}")
        for r in s.tool_results:
            mark = "[red]✗[/]" if r.is_error else "←"
            console.print(f"  {mark} {short(r.output)}")
    u = t.usage()
    console.print(
        f"[bold]total[/]: {u.steps} steps, {u.tool_calls} tool calls, {u.input_tokens} input / "
        f"{u.output_tokens} output tokens, ${u.cost_usd:.4f}"
    )
    if t.parse_errors:
        console.print(f"[yellow]{len(t.parse_errors)} unparsed line(s)[/]: " + escape("; ".join(t.parse_errors[:5])))
