"""``ptb list``: the catalog."""

from __future__ import annotations

from rich.table import Table

from . import lookup
from .common import console


def list_cmd() -> None:
    """List the catalog: benchmarks, base models, agents."""
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
