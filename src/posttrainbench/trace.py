"""One trace schema for every agent: what the agent did, step by step.

A trace is who spoke (``role``), what it said, which tools it called with which input, what came
back, and the tokens and cost of each step. The integrity gates (trace audit, LLM judge) and the
report read this schema, never a scaffold's raw format (the parsers that convert raw agent output
into it live with the agents, :mod:`posttrainbench.agents.trace_parsers`). Tokens and cost come
from the scaffold when it reports them; otherwise the cost is computed from the pinned price table
in :mod:`posttrainbench.catalog.prices`.

Stored in the run folder as ``trace.json`` (written by the collect phase).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .catalog.prices import cost_usd
from .fsutil import atomic_write_text

TRACE_SCHEMA_VERSION = 1

Role = Literal["system", "user", "assistant", "tool", "log"]


class ToolCall(BaseModel):
    """A tool the agent asked to run (e.g. ``Bash`` with ``{"command": "ls"}``)."""

    id: str | None = None
    name: str
    input: Any = None


class ToolResult(BaseModel):
    """What a tool call returned."""

    call_id: str | None = None
    output: str = ""
    is_error: bool = False


class TraceStep(BaseModel):
    """One step of a trace."""

    index: int
    role: Role
    text: str = ""
    timestamp: datetime | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_results: list[ToolResult] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class Usage(BaseModel):
    """Token and cost totals of a trace."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    steps: int = 0
    tool_calls: int = 0


class Trace(BaseModel):
    """An agent's whole trace in the common schema."""

    schema_version: int = TRACE_SCHEMA_VERSION
    agent: str
    model: str | None = None
    source: str = Field("", description="Raw file the trace was parsed from.")
    steps: list[TraceStep] = Field(default_factory=list)
    reported_cost_usd: float | None = Field(None, description="Total cost the scaffold itself reported.")
    reported_input_tokens: int | None = Field(
        None, description="Total input tokens the scaffold itself reported (wins over the step sum)."
    )
    reported_output_tokens: int | None = Field(
        None, description="Total output tokens the scaffold itself reported (wins over the step sum)."
    )
    parse_errors: list[str] = Field(default_factory=list, description="Raw lines that could not be parsed.")
    lines: int = Field(0, description="Non-empty lines of the raw output (split on '\\n' only).")
    unreadable_lines: int = Field(
        0,
        description="Lines that were not wholly one event of the scaffold's format (junk, broken JSON, a "
        "line with events recovered from inside junk); a truncated last line is not counted.",
    )
    truncated_tail: bool = Field(False, description="The output ended inside an event (no final newline).")
    unparsed: list[str] = Field(
        default_factory=list,
        description="Raw text of every fragment not read as an event (junk, broken JSON, unknown event types): "
        "never dropped, the trace audit scans it as raw text.",
    )

    def unreadable_rate(self) -> float:
        """Share of the raw output's lines that could not be read as events (0 for an empty trace)."""
        return self.unreadable_lines / self.lines if self.lines else 0.0

    def usage(self) -> Usage:
        """Totals over all steps; the scaffold's own cost total wins where it gave one."""
        cost = sum(s.cost_usd for s in self.steps)
        inp = sum(s.input_tokens for s in self.steps)
        out = sum(s.output_tokens for s in self.steps)
        if self.reported_input_tokens is not None:
            inp = self.reported_input_tokens
        if self.reported_output_tokens is not None:
            out = self.reported_output_tokens
        if self.reported_cost_usd is None and (
            self.reported_input_tokens is not None or self.reported_output_tokens is not None
        ):
            cost = cost_usd(self.model, inp, out) or cost
        return Usage(
            input_tokens=inp,
            output_tokens=out,
            cost_usd=self.reported_cost_usd if self.reported_cost_usd is not None else cost,
            steps=len(self.steps),
            tool_calls=sum(len(s.tool_calls) for s in self.steps),
        )

    def iter_text(self) -> Iterable[tuple[int, str]]:
        """(step index, text) for every piece of text in the trace: messages, tool inputs, outputs."""
        for s in self.steps:
            if s.text:
                yield s.index, s.text
            for c in s.tool_calls:
                yield (
                    s.index,
                    f"{c.name} {json.dumps(c.input, sort_keys=True) if not isinstance(c.input, str) else c.input}",
                )
            for r in s.tool_results:
                if r.output:
                    yield s.index, r.output
        for frag in self.unparsed:
            yield -1, frag


def save_trace(path: Path, trace: Trace) -> None:
    """Write ``trace.json`` atomically."""
    atomic_write_text(Path(path), trace.model_dump_json(indent=1) + "\n")


def load_trace(path: Path) -> Trace:
    """Read a stored ``trace.json``."""
    return Trace.model_validate_json(Path(path).read_text())
