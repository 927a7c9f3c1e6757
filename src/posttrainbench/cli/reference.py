"""The generated parts of the reference pages: every ``ptb`` command with its options and help
(``docs/reference/cli.md``, from the typer app) and every ``PTB_*`` variable
(``docs/reference/environment.md``, from :mod:`posttrainbench.settings`). Each part sits in its
page between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; the prose around it is
written by hand.

    python -m posttrainbench.cli.reference [--docs DIR] [--check]

rewrites those parts from the code (``--check``: writes nothing, names the stale pages, exit 1).
``tests/test_docs.py`` fails when a committed page differs from what this produces.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from ..settings import markdown_table

_CODE = re.compile(r"(`[^`]*`)")
_PTB_NAME = re.compile(r"(\$?\bPTB_[A-Z0-9_]*[A-Z0-9*])")


def _markdown(text: str) -> str:
    """Help text as Markdown: code spans kept, ``PTB_*`` names set as code, ``&``, ``<`` and ``*`` escaped."""
    out = []
    text = re.sub(r"``([^`]+)``", r"`\1`", text)  # a docstring's reST literal
    for i, piece in enumerate(_CODE.split(text)):
        if i % 2:
            out.append(piece)
            continue
        piece = piece.replace("&", "&amp;").replace("<", "&lt;")
        out += [f"`{bit}`" if j % 2 else bit.replace("*", "\\*") for j, bit in enumerate(_PTB_NAME.split(piece))]
    return "".join(out)


def _help(command: Any) -> str:
    lines = [line for line in (command.help or "").strip().splitlines() if line.strip() != "\b"]
    return "\n".join(line.strip() for line in lines)


def _commands(group: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Each command under ``group`` with its context, in the order ``ptb --help`` lists them."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or getattr(command, "hidden", False):
            continue
        sub = type(ctx)(command, parent=ctx, info_name=name)
        yield command, sub
        if hasattr(command, "commands"):
            yield from _commands(command, sub)


def cli_markdown() -> str:
    """Every ``ptb`` command: a summary table, then per command its help, usage, arguments and
    options (as ``--help`` words them) and the variables it reads."""
    from .main import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="ptb")
    commands = list(_commands(root, ctx))
    rows = ["| command | what it does |", "|---|---|"]
    for command, sub in commands:
        summary = _help(command).split("\n\n")[0].replace("\n", " ")
        rows.append(f"| [`{sub.command_path}`](#{sub.command_path.replace(' ', '-')}) | {_markdown(summary)} |")
    out = ["\n".join(rows)]
    for command, sub in commands:
        level = "#" * (1 + sub.command_path.count(" "))
        out.append(f"{level} {sub.command_path}")
        out.append(_markdown(_help(command)))
        out.append(f"```\n{' '.join([sub.command_path, *command.collect_usage_pieces(sub)])}\n```")
        for title, kind in (("Arguments", "argument"), ("Options", "option")):
            records = [
                p.get_help_record(sub)
                for p in command.params
                if (p.param_type_name == kind) and not getattr(p, "hidden", False)
            ]
            items = [f"- `{name}`: {_markdown(' '.join(text.split()))}" for name, text in filter(None, records)]
            if items:
                out.append(f"**{title}**\n\n" + "\n".join(items))
        if command.epilog:
            out.append(_markdown(command.epilog))
    return "\n\n".join(out) + "\n"


#: page (relative to the docs folder) -> generated part -> the function that writes it
PAGES: dict[str, dict[str, Callable[[], str]]] = {
    "reference/cli.md": {"cli": cli_markdown},
    "reference/environment.md": {"settings": markdown_table},
}


def render(text: str, parts: dict[str, Callable[[], str]]) -> str:
    """``text`` with each generated part rewritten (its markers must each be there once)."""
    for name, make in parts.items():
        start, end = f"<!-- generated:{name} -->\n", f"<!-- /generated:{name} -->"
        if text.count(start) != 1 or text.count(end) != 1:
            raise ValueError(f"expected one '{start.strip()}' and one '{end}'")
        head, rest = text.split(start)
        tail = rest.split(end)[1]
        text = f"{head}{start}{make()}{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m posttrainbench.cli.reference``: rewrite (or ``--check``) the generated parts."""
    parser = argparse.ArgumentParser(
        prog="python -m posttrainbench.cli.reference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs folder (default: ./docs)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    stale = []
    for page, parts in PAGES.items():
        path = args.docs / page
        text = path.read_text(encoding="utf-8")
        new = render(text, parts)
        if new != text:
            stale.append(page)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for page in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {args.docs / page}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
