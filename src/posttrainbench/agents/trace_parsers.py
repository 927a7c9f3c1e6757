"""Parsers that convert each scaffold's raw output into the common trace schema
(:mod:`posttrainbench.trace`): Claude Code's and Gemini CLI's stream JSON, Codex's and OpenCode's
JSON events, and plain log lines (the reference agent, scripted agents); :class:`TraceTail` reads a
growing output file with the same parsers for the live progress display."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..catalog.prices import cost_usd
from ..trace import ToolCall, ToolResult, Trace, TraceStep, Usage


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            _text_of(c.get("text", c.get("content", ""))) if isinstance(c, dict) else str(c) for c in content
        )
    return "" if content is None else str(content)


def _obj(container: dict[str, Any], key: str) -> dict[str, Any]:
    """``container[key]`` if it is a JSON object, else an empty one."""
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def split_lines(raw: str) -> list[str]:
    """``raw`` split on ``\\n`` only (a trailing ``\\r`` dropped).

    Never ``str.splitlines()``: it also breaks on ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``,
    ``\\x85``, ``\\u2028`` and ``\\u2029``, which JSON strings may carry raw, so one such character
    in a command would cut a tool call into fragments that no longer parse (a blinded audit)."""
    return [ln.removesuffix("\r") for ln in raw.split("\n")]


def parse_log_lines(raw: str, *, agent: str, model: str | None = None) -> Trace:
    """A plain-text agent (the reference agent): one ``log`` step per non-empty output line."""
    lines = [ln for ln in split_lines(raw) if ln.strip()]
    steps = [TraceStep(index=i, role="log", text=line) for i, line in enumerate(lines)]
    return Trace(agent=agent, model=model, steps=steps, lines=len(lines))


def parse_claude_stream_json(raw: str, *, agent: str = "claude-code", model: str | None = None) -> Trace:
    """Claude Code ``--output-format stream-json``: system / assistant / user / result events."""
    trace = Trace(agent=agent, model=model)
    for n, ev in _json_events(raw, trace):
        kind = ev.get("type")
        msg = _obj(ev, "message")
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
            step.input_tokens = (
                int(usage.get("input_tokens", 0))
                + int(usage.get("cache_read_input_tokens", 0))
                + int(usage.get("cache_creation_input_tokens", 0))
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
                        ToolResult(
                            call_id=c.get("tool_use_id"),
                            output=_text_of(c.get("content")),
                            is_error=bool(c.get("is_error")),
                        )
                    )
                elif isinstance(c, dict) and c.get("type") == "text":
                    step.text += c.get("text", "")
        elif kind == "result":
            # One result event per CLI invocation (several with re-prompting): totals add up.
            # Its usage is exact; the assistant events repeat one message's usage per block.
            if ev.get("total_cost_usd") is not None:
                trace.reported_cost_usd = (trace.reported_cost_usd or 0.0) + float(ev["total_cost_usd"])
            u = ev.get("usage")
            if isinstance(u, dict):
                trace.reported_input_tokens = (trace.reported_input_tokens or 0) + sum(
                    int(u.get(k) or 0)
                    for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
                )
                trace.reported_output_tokens = (trace.reported_output_tokens or 0) + int(u.get("output_tokens") or 0)
            step.text = f"result: {ev.get('subtype', '')} {_text_of(ev.get('result'))}".strip()
        else:
            _unknown(trace, n, ev)
            continue
        trace.steps.append(step)
    return trace


#: Most ``{`` positions tried per broken line when recovering events from inside junk.
_SALVAGE_TRIES = 64
_DECODER = json.JSONDecoder(strict=False)  # raw control characters inside strings are tolerated


def _salvage(line: str) -> list[dict[str, Any]]:
    """JSON objects found inside a line that is not JSON as a whole (junk a tool wrote into the
    CLI's output before or between events): each ``{`` is tried, a bounded number of times."""
    found: list[dict[str, Any]] = []
    i, tries = line.find("{"), 0
    while i >= 0 and tries < _SALVAGE_TRIES:
        tries += 1
        try:
            obj, end = _DECODER.raw_decode(line, i)
        except ValueError:
            i = line.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = line.find("{", end)
    return found


def _json_events(raw: str, trace: Trace) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, event object) of each JSON-object line, lines split on ``\\n`` only.

    A line that is not one JSON object is kept whole in ``trace.unparsed`` (the audit scans it
    as raw text) and counted in ``unreadable_lines``; events found inside it are still read. A
    last line without its newline that does not parse is the truncated tail (not counted)."""
    lines = split_lines(raw)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        trace.lines += 1
        try:
            ev = _DECODER.decode(line)
        except ValueError:
            ev = None
        if isinstance(ev, dict):
            yield n, ev
            continue
        events = _salvage(line) if ev is None else []
        trace.unparsed.append(line)
        if n == len(lines) and not events and ev is None:
            trace.truncated_tail = True
            trace.parse_errors.append(f"line {n}: not JSON (truncated last line)")
            continue
        trace.unreadable_lines += 1
        what = "not an object" if ev is not None else "not JSON"
        more = f" ({len(events)} events recovered from inside it)" if events else ""
        trace.parse_errors.append(f"line {n}: {what}{more}")
        for recovered in events:
            yield n, recovered


def _unknown(trace: Trace, n: int, ev: dict[str, Any]) -> None:
    """An event of a type the parser does not know: kept as raw text for the audit."""
    trace.parse_errors.append(f"line {n}: unknown event type {ev.get('type')!r}")
    trace.unparsed.append(json.dumps(ev, ensure_ascii=False))


def parse_codex_json(raw: str, *, agent: str = "codex", model: str | None = None) -> Trace:
    """Codex CLI ``exec --json``: thread / turn / item events.

    Each completed item is one step (agent message, reasoning, command execution with its
    output, file change, MCP or web-search call, error); each ``turn.completed`` is a system
    step carrying that turn's token usage (Codex reports usage per turn only)."""
    trace = Trace(agent=agent, model=model)
    for n, ev in _json_events(raw, trace):
        kind = ev.get("type")
        step = TraceStep(index=len(trace.steps), role="system")
        if kind == "thread.started":
            step.text = f"session start (thread {ev.get('thread_id', '?')})"
        elif kind in ("turn.started", "item.started", "item.updated"):
            continue  # the completed item / turn carries everything
        elif kind == "item.completed":
            item = _obj(ev, "item")
            itype = item.get("type")
            step.role = "assistant"
            if itype in ("agent_message", "reasoning"):
                step.text = str(item.get("text", ""))
            elif itype == "command_execution":
                step.tool_calls.append(
                    ToolCall(id=item.get("id"), name="shell", input={"command": item.get("command")})
                )
                code = item.get("exit_code")
                step.tool_results.append(
                    ToolResult(call_id=item.get("id"), output=str(item.get("aggregated_output") or ""),
                               is_error=code not in (0, None))
                )  # fmt: skip
            elif itype == "file_change":
                step.tool_calls.append(ToolCall(id=item.get("id"), name="apply_patch", input=item.get("changes")))
            elif itype == "mcp_tool_call":
                name = f"{item.get('server', '?')}.{item.get('tool', '?')}"
                step.tool_calls.append(ToolCall(id=item.get("id"), name=name, input=item.get("arguments")))
                if item.get("result") is not None or item.get("error") is not None:
                    step.tool_results.append(ToolResult(call_id=item.get("id"), output=_text_of(
                        json.dumps(item.get("result")) if item.get("result") is not None else item.get("error")),
                        is_error=item.get("error") is not None))  # fmt: skip
            elif itype == "web_search":
                step.tool_calls.append(
                    ToolCall(id=item.get("id"), name="web_search", input={"query": item.get("query")})
                )
            elif itype == "error":
                step.role, step.text = "log", f"error: {item.get('message', '')}"
            else:
                step.role, step.text = "log", f"{itype}: {json.dumps(item)[:2000]}"
        elif kind == "turn.completed":
            u = _obj(ev, "usage")
            step.text = "turn completed"
            step.input_tokens = int(u.get("input_tokens") or 0)
            step.output_tokens = int(u.get("output_tokens") or 0)
            step.cost_usd = cost_usd(trace.model, step.input_tokens, step.output_tokens)
        elif kind in ("turn.failed", "error"):
            err = _obj(ev, "error")
            step.role = "log"
            step.text = f"{kind}: {err.get('message') or ev.get('message', '')}"
        else:
            _unknown(trace, n, ev)
            continue
        trace.steps.append(step)
    return trace


def parse_gemini_stream_json(raw: str, *, agent: str = "gemini", model: str | None = None) -> Trace:
    """Gemini CLI ``--output-format stream-json``: init / message / tool_use / tool_result /
    error / result events; consecutive assistant ``delta`` messages are joined into one step."""
    trace = Trace(agent=agent, model=model)
    for n, ev in _json_events(raw, trace):
        kind = ev.get("type")
        last = trace.steps[-1] if trace.steps else None
        step = TraceStep(index=len(trace.steps), role="system")
        if kind == "init":
            trace.model = trace.model or ev.get("model")
            step.text = f"session start ({ev.get('session_id', '')})"
        elif kind == "message":
            role: Literal["assistant", "user"] = "assistant" if ev.get("role") == "assistant" else "user"
            text = _text_of(ev.get("content"))
            if ev.get("delta") and last is not None and last.role == role and not last.tool_calls:
                last.text += text
                continue
            step.role, step.text = role, text
        elif kind == "tool_use":
            step.role = "assistant"
            step.tool_calls.append(
                ToolCall(id=ev.get("tool_id"), name=str(ev.get("tool_name", "?")), input=ev.get("parameters"))
            )
        elif kind == "tool_result":
            step.role = "tool"
            out = ev.get("output") if ev.get("output") is not None else (ev.get("error") or {}).get("message", "")
            step.tool_results.append(
                ToolResult(call_id=ev.get("tool_id"), output=_text_of(out), is_error=ev.get("status") == "error")
            )
        elif kind == "error":
            step.role, step.text = "log", f"error: {ev.get('message', '')}"
        elif kind == "result":
            stats = _obj(ev, "stats")
            if "input_tokens" in stats or "output_tokens" in stats:
                trace.reported_input_tokens = (trace.reported_input_tokens or 0) + int(stats.get("input_tokens") or 0)
                trace.reported_output_tokens = (trace.reported_output_tokens or 0) + int(
                    stats.get("output_tokens") or 0
                )
            step.text = f"result: {ev.get('status', '')}"
        else:
            _unknown(trace, n, ev)
            continue
        trace.steps.append(step)
    return trace


def parse_opencode_json(raw: str, *, agent: str = "opencode", model: str | None = None) -> Trace:
    """OpenCode ``run --format json``: step_start / text / reasoning / tool_use / step_finish /
    error events, each with a ``part``; ``step_finish`` carries tokens and cost."""
    trace = Trace(agent=agent, model=model)
    cost = 0.0
    for n, ev in _json_events(raw, trace):
        kind = ev.get("type")
        part = _obj(ev, "part")
        step = TraceStep(index=len(trace.steps), role="assistant")
        ts = ev.get("timestamp")
        if isinstance(ts, (int, float)):
            step.timestamp = datetime.fromtimestamp(ts / 1000 if ts > 1e11 else ts, tz=UTC)
        if kind == "step_start":
            continue
        if kind in ("text", "reasoning"):
            step.text = str(part.get("text", ""))
        elif kind == "tool_use":
            state = _obj(part, "state")
            cid = part.get("callID") or part.get("id")
            step.tool_calls.append(ToolCall(id=cid, name=str(part.get("tool", "?")), input=state.get("input")))
            if "output" in state or "error" in state:
                output = _text_of(state.get("output", state.get("error")))
                step.tool_results.append(
                    ToolResult(call_id=cid, output=output, is_error=state.get("status") == "error")
                )
        elif kind == "step_finish":
            tok = _obj(part, "tokens")
            cache = _obj(tok, "cache")
            step.role, step.text = "system", f"step finished ({part.get('reason', '')})"
            step.input_tokens = int(tok.get("input") or 0) + int(cache.get("read") or 0) + int(cache.get("write") or 0)
            step.output_tokens = int(tok.get("output") or 0) + int(tok.get("reasoning") or 0)
            step.cost_usd = float(part.get("cost") or 0.0) or cost_usd(
                trace.model, step.input_tokens, step.output_tokens
            )
            cost += float(part.get("cost") or 0.0)
        elif kind == "error":
            err = _obj(ev, "error")
            step.role, step.text = "log", f"error: {err.get('data', err) if err else ev.get('message', '')}"
        else:
            _unknown(trace, n, ev)
            continue
        trace.steps.append(step)
    if cost:
        trace.reported_cost_usd = cost
    return trace


#: agent id -> parser of its raw output. Catalog ids and the scaffolds' own names both work.
PARSERS: dict[str, Callable[..., Trace]] = {
    "reference": parse_log_lines,
    "claude": parse_claude_stream_json,
    "claude-code": parse_claude_stream_json,
    "codex": parse_codex_json,
    "gemini": parse_gemini_stream_json,
    "gemini-cli": parse_gemini_stream_json,
    "opencode": parse_opencode_json,
}


def read_raw(raw_file: Path) -> tuple[str, list[str]]:
    """The raw output as text and the lines that were not valid UTF-8 (decoded with U+FFFD)."""
    p = Path(raw_file)
    if not p.is_file():
        return "", []
    data = p.read_bytes()
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    lines, errors = [], []
    for n, line in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            errors.append(f"line {n}: invalid UTF-8 at byte {e.start} (replaced with U+FFFD)")
            lines.append(line.decode("utf-8", errors="replace"))
    return "\n".join(lines), errors


def parse_trace(agent: str, raw_file: Path, *, model: str | None = None) -> Trace:
    """Convert an agent's raw output file into the common schema (unknown agents: log lines).

    Never raises for bad content: malformed lines and invalid UTF-8 are kept in
    ``parse_errors`` and the trace holds every step that could be read."""
    raw, utf8_errors = read_raw(raw_file)
    parser = PARSERS.get(agent, parse_log_lines)
    trace = parser(raw, agent=agent, model=model)
    if not trace.steps and trace.parse_errors and parser is not parse_log_lines:
        # Not this scaffold's format at all (e.g. an upstream run's plain-text log): keep the
        # lines as log steps rather than losing them, and say so.
        # Every line is then a log step the audit reads: nothing is hidden from it.
        note = f"not {agent}'s output format ({len(trace.parse_errors)} lines unparsed): read as plain log lines"
        trace = parse_log_lines(raw, agent=agent, model=model)
        trace.parse_errors = [note]
    trace.parse_errors = utf8_errors + trace.parse_errors
    trace.source = Path(raw_file).name
    return trace


# ----------------------------------------------------------------- live tail (progress display only)
#: Most bytes one :meth:`TraceTail.poll` reads (an agent that floods its output is skipped ahead).
TAIL_MAX_READ = 4 << 20

_LOSS_DICT = re.compile(r"\{[^{}]*['\"]loss['\"]\s*:[^{}]*\}")


def training_progress(text: str) -> tuple[str, float] | None:
    """The latest ``(step, loss)`` in ``text``: HF Trainer's log dicts (``{'loss': 1.2, 'epoch':
    0.5}``, printed as Python or JSON, e.g. the reference agent's ``{"event": "train", "step": 40,
    "loss": 1.2}``); the step is ``step``/``global_step`` if given, else ``epoch N``."""
    for found in reversed(_LOSS_DICT.findall(text)):
        try:
            logs = json.loads(found)
        except ValueError:
            try:
                logs = ast.literal_eval(found)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if not isinstance(logs, dict) or not isinstance(logs.get("loss"), (int, float)):
            continue
        step = logs.get("step", logs.get("global_step"))
        if isinstance(step, (int, float)):
            where = f"step {int(step)}" + (f"/{logs['max_steps']}" if isinstance(logs.get("max_steps"), int) else "")
        elif isinstance(logs.get("epoch"), (int, float)):
            where = f"epoch {logs['epoch']:.2f}"
        else:
            where = "loss"
        return where, float(logs["loss"])
    return None


class TraceTail:
    """A growing raw output file read as it grows, by the scaffold's own parser (:data:`PARSERS`),
    for the live progress display: each :meth:`poll` parses the complete lines added since the last
    one. Keeps only what the display needs (the latest tool call, training step and log line, the
    usage so far); the trace of record is :func:`parse_trace` on the whole file after the run.
    Usage adds up as the whole file's would: steps' tokens summed, the scaffold's reported totals
    (which win) summed over its result events."""

    def __init__(self, agent: str, raw_file: Path, *, model: str | None = None) -> None:
        self.agent, self.raw_file, self.given_model = agent, Path(raw_file), model
        self.parser = PARSERS.get(agent, parse_log_lines)
        self._reset()

    def _reset(self) -> None:
        self.model, self.offset = self.given_model, 0
        agent, model = self.agent, self.model
        self._totals = Trace(agent=agent, model=model)  # steps without content: only their usage
        self.last_call: ToolCall | None = None
        self.last_log: str | None = None
        self.training: tuple[str, float] | None = None

    def poll(self) -> bool:
        """Read and parse what was added; whether anything new was read."""
        try:
            with open(self.raw_file, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # replaced or truncated: start over
                    self._reset()
                f.seek(self.offset)
                data = f.read(TAIL_MAX_READ)
        except OSError:
            return False
        end = data.rfind(b"\n") + 1
        if end == 0:
            if len(data) < TAIL_MAX_READ:
                return False  # a line still being written
            end = len(data)  # one huge line: skipped
            self.offset += end
            return False
        self.offset += end
        self._fold(self.parser(data[:end].decode("utf-8", errors="replace"), agent=self.agent, model=self.model))
        return True

    def _fold(self, chunk: Trace) -> None:
        self.model = self.model or chunk.model
        self._totals.model = self.model
        for attr in ("reported_cost_usd", "reported_input_tokens", "reported_output_tokens"):
            value = getattr(chunk, attr)
            if value is not None:
                setattr(self._totals, attr, (getattr(self._totals, attr) or 0) + value)
        for step in chunk.steps:
            self._totals.steps.append(
                TraceStep(index=len(self._totals.steps), role=step.role, input_tokens=step.input_tokens,
                          output_tokens=step.output_tokens, cost_usd=step.cost_usd)
            )  # fmt: skip
            if step.tool_calls:
                self.last_call = step.tool_calls[-1]
            texts = [step.text, *(r.output for r in step.tool_results)]
            for text in texts:
                found = training_progress(text) if "loss" in text else None
                if found:
                    self.training = found
            if step.role == "log" and step.text.strip():
                self.last_log = step.text.strip()

    def usage(self) -> Usage:
        """Tokens and cost so far."""
        return self._totals.usage()
