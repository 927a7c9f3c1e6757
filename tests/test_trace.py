"""The common trace schema and its parsers."""

from __future__ import annotations

import json

from posttrainbench.agents.trace_parsers import parse_claude_stream_json, parse_trace
from posttrainbench.catalog.prices import cost_usd, price_of
from posttrainbench.trace import load_trace, save_trace


def _claude_lines() -> str:
    events = [
        {"type": "system", "subtype": "init", "model": "claude-opus-4-5-20251101"},
        {
            "type": "assistant",
            "message": {
                "model": "claude-opus-4-5-20251101",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls task"}},
                ],
                "usage": {"input_tokens": 1000, "cache_read_input_tokens": 1000, "output_tokens": 200},
            },
        },
        {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "t1", "content": "dev.jsonl\ntask.json"}]},
        },
        "not json at all",
        {"type": "result", "subtype": "success", "result": "done", "total_cost_usd": 0.5},
    ]
    return "\n".join(e if isinstance(e, str) else json.dumps(e) for e in events)


def test_claude_stream_json_becomes_steps_with_tools_tokens_and_cost() -> None:
    t = parse_claude_stream_json(_claude_lines())
    assert [s.role for s in t.steps] == ["system", "assistant", "tool", "system"]
    assert t.model == "claude-opus-4-5-20251101"
    call = t.steps[1].tool_calls[0]
    assert (call.name, call.input, call.id) == ("Bash", {"command": "ls task"}, "t1")
    assert t.steps[2].tool_results[0].call_id == "t1"
    assert "task.json" in t.steps[2].tool_results[0].output
    assert t.steps[1].input_tokens == 2000 and t.steps[1].output_tokens == 200
    # step cost from the pinned table: 2000 * $5/M + 200 * $25/M
    assert abs(t.steps[1].cost_usd - (2000 * 5 + 200 * 25) / 1e6) < 1e-12
    u = t.usage()
    assert u.cost_usd == 0.5  # the scaffold's own total wins
    assert (u.steps, u.tool_calls, u.input_tokens) == (4, 1, 2000)
    assert t.parse_errors == ["line 4: not JSON"]
    texts = [txt for _, txt in t.iter_text()]
    assert any("ls task" in x for x in texts) and any("dev.jsonl" in x for x in texts)


def test_reference_log_lines_and_round_trip(tmp_path) -> None:
    raw = tmp_path / "solve_out.txt"
    raw.write_text("[reference_sft] start\n\n[reference_sft] step 10 loss 1.2\n")
    t = parse_trace("reference", raw)
    assert [s.text for s in t.steps] == ["[reference_sft] start", "[reference_sft] step 10 loss 1.2"]
    assert t.source == "solve_out.txt" and t.usage().cost_usd == 0.0
    save_trace(tmp_path / "trace.json", t)
    assert load_trace(tmp_path / "trace.json") == t


def test_missing_raw_output_gives_an_empty_trace(tmp_path) -> None:
    t = parse_trace("reference", tmp_path / "absent.txt")
    assert t.steps == [] and t.usage().steps == 0


def test_price_table_longest_prefix_and_unknown_model() -> None:
    assert price_of("anthropic/claude-opus-4-5-20251101") == (5.0, 25.0)
    assert price_of("gpt-5.1-codex-max") == (1.25, 10.0)
    assert price_of("some-local-model") is None
    assert cost_usd("some-local-model", 10**6, 10**6) == 0.0
    assert cost_usd("glm-5", 10**6, 10**6) == 1.0 + 3.2


def test_plain_text_given_to_a_json_parser_is_kept_as_log_lines(tmp_path) -> None:
    raw = tmp_path / "solve_out.txt"
    raw.write_text("Reading the task\nTraining\n")
    t = parse_trace("claude", raw)
    assert [s.text for s in t.steps] == ["Reading the task", "Training"]
    assert len(t.parse_errors) == 1 and "read as plain log lines" in t.parse_errors[0]
    # a JSON trace with a few bad lines keeps its parsed steps (no fallback)
    raw.write_text('{"type": "system", "subtype": "init"}\nnot json\n')
    t = parse_trace("claude", raw)
    assert [s.role for s in t.steps] == ["system"] and t.parse_errors == ["line 2: not JSON"]
