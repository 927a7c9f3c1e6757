"""Trace parsers of Codex, Gemini CLI and OpenCode output, and bad raw output of any agent."""

from __future__ import annotations

import json
from pathlib import Path

from posttrainbench.agents.trace_parsers import (
    PARSERS,
    parse_codex_json,
    parse_gemini_stream_json,
    parse_opencode_json,
    parse_trace,
)


def _lines(*events: object) -> str:
    return "\n".join(e if isinstance(e, str) else json.dumps(e) for e in events)


def test_codex_items_and_turn_usage() -> None:
    raw = _lines(
        {"type": "thread.started", "thread_id": "t1"},
        {"type": "turn.started"},
        {"type": "item.started", "item": {"id": "i1", "type": "command_execution", "command": "ls"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution", "command": "bash -lc ls",
                                            "aggregated_output": "a\nb\n", "exit_code": 0}},
        {"type": "item.completed", "item": {"id": "i2", "type": "command_execution", "command": "false",
                                            "aggregated_output": "", "exit_code": 1}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "Done."}},
        {"type": "item.completed", "item": {"id": "i4", "type": "file_change", "changes": [{"path": "x.py", "kind": "add"}]}},
        {"type": "turn.completed", "usage": {"input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 100}},
        {"type": "turn.completed", "usage": {"input_tokens": 500, "output_tokens": 50}},
        {"type": "turn.failed", "error": {"message": "rate limited"}},
        "{broken",
        {"type": "mystery"},
    )  # fmt: skip
    t = parse_codex_json(raw, model="gpt-5.1-codex")
    calls = [c for s in t.steps for c in s.tool_calls]
    assert [c.name for c in calls] == ["shell", "shell", "apply_patch"]
    assert calls[0].input == {"command": "bash -lc ls"}
    results = [r for s in t.steps for r in s.tool_results]
    assert results[0].output == "a\nb\n" and not results[0].is_error and results[1].is_error
    u = t.usage()
    assert (u.input_tokens, u.output_tokens) == (1500, 150)
    assert abs(u.cost_usd - (1500 * 1.25 + 150 * 10) / 1e6) < 1e-12  # pinned gpt-5.1-codex price
    assert any(s.text == "turn.failed: rate limited" for s in t.steps)
    assert t.parse_errors == ["line 11: not JSON", "line 12: unknown event type 'mystery'"]


def test_gemini_stream_json() -> None:
    raw = _lines(
        {"type": "init", "session_id": "s", "model": "gemini-2.5-pro"},
        {"type": "message", "role": "user", "content": "task"},
        {"type": "message", "role": "assistant", "content": "Let me ", "delta": True},
        {"type": "message", "role": "assistant", "content": "look.", "delta": True},
        {"type": "tool_use", "tool_name": "run_shell_command", "tool_id": "c1", "parameters": {"command": "ls"}},
        {"type": "tool_result", "tool_id": "c1", "status": "success", "output": "files"},
        {"type": "result", "status": "success", "stats": {"input_tokens": 300, "output_tokens": 20, "total_tokens": 320}},
    )  # fmt: skip
    t = parse_gemini_stream_json(raw)
    assert t.model == "gemini-2.5-pro"
    assert [s.role for s in t.steps] == ["system", "user", "assistant", "assistant", "tool", "system"]
    assert t.steps[2].text == "Let me look."
    assert t.steps[3].tool_calls[0].input == {"command": "ls"} and t.steps[4].tool_results[0].output == "files"
    assert (t.usage().input_tokens, t.usage().output_tokens) == (300, 20)


def test_opencode_json() -> None:
    raw = _lines(
        {"type": "step_start", "timestamp": 1764200000000, "part": {}},
        {"type": "text", "timestamp": 1764200000100, "part": {"text": "Listing."}},
        {"type": "tool_use", "part": {"tool": "bash", "callID": "c1",
                                      "state": {"status": "completed", "input": {"command": "ls"}, "output": "x"}}},
        {"type": "step_finish", "part": {"reason": "tool-calls", "cost": 0.01,
                                         "tokens": {"input": 100, "output": 10, "reasoning": 5, "cache": {"read": 50, "write": 0}}}},
    )  # fmt: skip
    t = parse_opencode_json(raw)
    assert t.steps[0].text == "Listing." and t.steps[0].timestamp is not None
    assert t.steps[1].tool_calls[0].name == "bash" and t.steps[1].tool_results[0].output == "x"
    u = t.usage()
    assert (u.input_tokens, u.output_tokens, u.cost_usd) == (150, 15, 0.01)


def test_parsers_registered_for_catalog_ids() -> None:
    assert {"reference", "claude", "codex", "gemini", "opencode"} <= set(PARSERS)


def test_malformed_and_non_utf8_raw_output_keeps_what_it_can(tmp_path: Path) -> None:
    raw = tmp_path / "solve_out.txt"
    good = json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": "caf\u00e9 ok"}]}})
    raw.write_bytes(
        good.encode()
        + b"\n"
        + b"\xff\xfe{not json\n"
        + b'{"type": "result", "subtype": "success", "result": "\xe9t\xe9"}\n'
        + b"[1, 2]\n"
    )
    t = parse_trace("claude", raw)
    assert t.steps[0].text == "caf\u00e9 ok"
    assert t.steps[-1].text.startswith("result: success")  # the line with bad bytes still parsed
    assert t.parse_errors[:2] == [
        "line 2: invalid UTF-8 at byte 0 (replaced with U+FFFD)",
        "line 3: invalid UTF-8 at byte 52 (replaced with U+FFFD)",
    ]
    assert "line 2: not JSON" in t.parse_errors and "line 4: not an object" in t.parse_errors
    for agent in ("codex", "gemini", "opencode"):
        assert parse_trace(agent, raw).parse_errors  # never raises, records the cause
