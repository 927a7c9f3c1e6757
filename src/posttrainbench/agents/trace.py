"""One trace schema for every agent, and the parsers that convert raw agent output into it.

A trace is what the agent did, step by step: who spoke (``role``), what it said, which tools
it called with which input, what came back, and the tokens and cost of each step. The
integrity gates (trace audit, LLM judge) and the report read this schema, never a scaffold's
raw format. Tokens and cost come from the scaffold when it reports them; otherwise the cost is
computed from the pinned price table in :mod:`posttrainbench.catalog.prices`.

Stored in the run folder as ``trace.json`` (written by the collect phase).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..catalog.prices import cost_usd

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
    parse_errors: list[str] = Field(default_factory=list, description="Raw lines that could not be parsed.")

    def usage(self) -> Usage:
        """Totals over all steps; the scaffold's own cost total wins where it gave one."""
        cost = sum(s.cost_usd for s in self.steps)
        return Usage(
            input_tokens=sum(s.input_tokens for s in self.steps),
            output_tokens=sum(s.output_tokens for s in self.steps),
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
                yield s.index, f"{c.name} {json.dumps(c.input, sort_keys=True) if not isinstance(c.input, str) else c.input}"
            for r in s.tool_results:
                if r.output:
                    yield s.index, r.output


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(c.get("text", c.get("content", ""))) if isinstance(c, dict) else str(c) for c in content)
    return "" if content is None else str(content)


def parse_log_lines(raw: str, *, agent: str, model: str | None = None) -> Trace:
    """A plain-text agent (the reference agent): one ``log`` step per non-empty output line."""
    steps = [
        TraceStep(index=i, role="log", text=line)
        for i, line in enumerate(ln for ln in raw.splitlines() if ln.strip())
    ]
    return Trace(agent=agent, model=model, steps=steps)


def parse_claude_stream_json(raw: str, *, agent: str = "claude-code", model: str | None = None) -> Trace:
    """Claude Code ``--output-format stream-json``: system / assistant / user / result events."""
    trace = Trace(agent=agent, model=model)
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            trace.parse_errors.append(f"line {n}: not JSON")
            continue
        if not isinstance(ev, dict):
            trace.parse_errors.append(f"line {n}: not an object")
            continue
        kind = ev.get("type")
        msg = ev.get("message") if isinstance(ev.get("message"), dict) else {}
        step = TraceStep(index=len(trace.steps), role="system")
        if kind == "system":
            trace.model = trace.model or ev.get("model")
            step.text = f"session start ({ev.get('subtype', '')})".strip()
        elif kind == "assistant":
            step.role = "assistant"
            texts = []
            for c in msg.get("content", []) or []:
                if not isinstance(c, dict):
                    continue
                if c.get("type") == "text":
                    texts.append(c.get("text", ""))
                elif c.get("type") == "thinking":
                    texts.append(c.get("thinking", ""))
                elif c.get("type") == "tool_use":
                    step.tool_calls.append(ToolCall(id=c.get("id"), name=str(c.get("name", "?")), input=c.get("input")))
            step.text = "\n".join(t for t in texts if t)
            usage = msg.get("usage") or {}
            step.input_tokens = int(usage.get("input_tokens", 0)) + int(usage.get("cache_read_input_tokens", 0)) + int(
                usage.get("cache_creation_input_tokens", 0)
            )
            step.output_tokens = int(usage.get("output_tokens", 0))
            step.cost_usd = cost_usd(msg.get("model") or trace.model, step.input_tokens, step.output_tokens)
        elif kind == "user":
            step.role = "tool"
            content = msg.get("content", [])
            if isinstance(content, str):
                step.role, step.text = "user", content
            for c in content if isinstance(content, list) else []:
                if isinstance(c, dict) and c.get("type") == "tool_result":
                    step.tool_results.append(
                        ToolResult(call_id=c.get("tool_use_id"), output=_text_of(c.get("content")), is_error=bool(c.get("is_error")))
                    )
                elif isinstance(c, dict) and c.get("type") == "text":
                    step.text += c.get("text", "")
        elif kind == "result":
            if ev.get("total_cost_usd") is not None:
                trace.reported_cost_usd = float(ev["total_cost_usd"])
            step.text = f"result: {ev.get('subtype', '')} {_text_of(ev.get('result'))}".strip()
        else:
            trace.parse_errors.append(f"line {n}: unknown event type {kind!r}")
            continue
        trace.steps.append(step)
    return trace


PARSERS: dict[str, Callable[..., Trace]] = {
    "reference": parse_log_lines,
    "claude-code": parse_claude_stream_json,
}


def parse_trace(agent: str, raw_file: Path, *, model: str | None = None) -> Trace:
    """Convert an agent's raw output file into the common schema (unknown agents: log lines)."""
    raw = Path(raw_file).read_text(encoding="utf-8", errors="replace") if Path(raw_file).is_file() else ""
    parser = PARSERS.get(agent, parse_log_lines)
    trace = parser(raw, agent=agent, model=model)
    trace.source = Path(raw_file).name
    return trace


def save_trace(path: Path, trace: Trace) -> None:
    """Write ``trace.json`` atomically."""
    from ..fsutil import atomic_write_text

    atomic_write_text(Path(path), trace.model_dump_json(indent=1) + "\n")


def load_trace(path: Path) -> Trace:
    """Read a stored ``trace.json``."""
    return Trace.model_validate_json(Path(path).read_text())

