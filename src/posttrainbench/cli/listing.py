"""``ptb list``: the catalog."""

from __future__ import annotations

from rich.table import Table

from . import lookup
from .common import JsonOpt, console, print_json


def list_cmd(as_json: JsonOpt = False) -> None:
    """List the catalog: benchmarks, base models, agents."""
    if as_json:
        print_json(
            {
                "benchmarks": [
                    {"id": b.id, "name": b.display_name, "full_size": b.full_size, "dev_size": b.dev_size,
                     "max_tokens_ladder": list(b.max_tokens_ladder)}
                    for b in lookup.all_benchmarks()
                ],
                "base_models": [
                    {"id": m.hub_id, "chat_template": m.chat_template, "forbidden": list(m.forbidden)}
                    for m in lookup.all_base_models()
                ],
                "agents": [
                    {"id": a.id, "name": a.display_name, "default_config": a.default_config,
                     "secrets": list(a.secret_env)}
                    for a in lookup.all_agents()
                ],
            }
        )  # fmt: skip
        return
    t = Table(title="benchmarks")
    for c in ("id", "name", "full", "dev", "max-tokens ladder"):
        t.add_column(c)
    for b in lookup.all_benchmarks():
        t.add_row(b.id, b.display_name, str(b.full_size), str(b.dev_size), " → ".join(map(str, b.max_tokens_ladder)))
    console.print(t)
    t = Table(title="base models")
    for c in ("id", "chat template", "forbidden"):
        t.add_column(c)
    for m in lookup.all_base_models():
        t.add_row(m.hub_id, m.chat_template, ", ".join(m.forbidden))
    console.print(t)
    t = Table(title="agents")
    for c in ("id", "name", "default config", "secrets"):
        t.add_column(c)
    for a in lookup.all_agents():
        t.add_row(a.id, a.display_name, a.default_config, ", ".join(a.secret_env))
    console.print(t)
