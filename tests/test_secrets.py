"""Secrets: what counts as one, refusing foreign secrets, redaction of text, files and traces."""

from __future__ import annotations

from pathlib import Path

from posttrainbench.sandbox.secrets import (
    foreign_secrets,
    redact,
    redact_file,
    redact_trace,
    redact_tree,
    secret_values,
)
from posttrainbench.trace import ToolCall, ToolResult, Trace, TraceStep

HOST = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-agentkey-0123456789",
    "PTB_JUDGE_API_KEY": "judge-value-abcdefghij",
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz0123456",
    "TOKENIZERS_PARALLELISM": "false",
    "HOME": "/root",
}


def test_secret_values_by_name() -> None:
    vals = secret_values(HOST, extra=["chatgpt-refresh-token-xyz"])
    assert vals["judge-value-abcdefghij"] == "PTB_JUDGE_API_KEY"
    assert "/root" not in vals and "false" not in vals  # not secret names / too short
    assert vals["chatgpt-refresh-token-xyz"] == "agent-credential"


def test_foreign_secrets_only_the_agents_own_key_passes() -> None:
    own = {"ANTHROPIC_API_KEY": HOST["ANTHROPIC_API_KEY"], "PATH": "/usr/bin"}
    assert foreign_secrets(own, HOST, allowed=["ANTHROPIC_API_KEY"]) == []
    assert foreign_secrets({**own, "X": "a" + HOST["PTB_JUDGE_API_KEY"]}, HOST, allowed=["ANTHROPIC_API_KEY"]) == ["X"]
    assert foreign_secrets({"OPENAI_API_KEY": "sk-something-else-123"}, HOST, allowed=["ANTHROPIC_API_KEY"]) == [
        "OPENAI_API_KEY"
    ]
    assert foreign_secrets({"ANTHROPIC_API_KEY": "other-value-123456"}, HOST, allowed=["ANTHROPIC_API_KEY"]) == [
        "ANTHROPIC_API_KEY (not the harness's value)"
    ]


def test_redact_known_values_and_key_patterns() -> None:
    vals = secret_values(HOST)
    text = (
        f"key={HOST['ANTHROPIC_API_KEY']} judge {HOST['PTB_JUDGE_API_KEY']} "
        "unknown sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX google AIzaSyA0123456789abcdefghijklmnopqrstu "
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345 gh ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    )
    red = redact(text, vals)
    for secret in (
        HOST["ANTHROPIC_API_KEY"],
        HOST["PTB_JUDGE_API_KEY"],
        "sk-proj-ABCDEF",
        "AIzaSyA0",
        "abcdefghijklmnopqrstuvwxyz012345",
        "ghp_",
    ):
        assert secret not in red, secret
    assert "[REDACTED:ANTHROPIC_API_KEY]" in red and "[REDACTED:PTB_JUDGE_API_KEY]" in red
    assert "[REDACTED:openai-key]" in red and "[REDACTED:google-key]" in red and "[REDACTED:bearer]" in red
    assert redact("nothing secret here: sk-short", vals) == "nothing secret here: sk-short"
    plain = "task-abcdefghijklmnopqrstuvwxyz mask-0123456789abcdefghijklmn"
    assert redact(plain, vals) == plain  # "sk-" inside a word is not a key


def test_redact_file_streams_and_keeps_invalid_bytes(tmp_path: Path) -> None:
    f = tmp_path / "out.txt"
    f.write_bytes(b"ok line\n\xff\xfe bad bytes " + HOST["HF_TOKEN"].encode() + b"\n" + b"x" * 100 + b"\n")
    assert redact_file(f, secret_values(HOST)) == 1
    data = f.read_bytes()
    assert HOST["HF_TOKEN"].encode() not in data and b"\xff\xfe bad bytes [REDACTED:HF_TOKEN]" in data
    assert redact_file(tmp_path / "absent", {}) == 0


def test_redact_trace_everywhere() -> None:
    k = HOST["ANTHROPIC_API_KEY"]
    t = Trace(agent="claude", steps=[TraceStep(
        index=0, role="assistant", text=f"my key {k}",
        tool_calls=[ToolCall(name="Bash", input={"command": f"echo {k}", "nested": [k]})],
        tool_results=[ToolResult(output=f"ANTHROPIC_API_KEY={k}")],
    )], parse_errors=[f"line 3: {k}"])  # fmt: skip
    red = redact_trace(t, secret_values(HOST))
    assert k not in red.model_dump_json()
    assert red.steps[0].tool_calls[0].input["nested"] == ["[REDACTED:ANTHROPIC_API_KEY]"]


def test_redact_tree_rewrites_only_files_holding_known_values(tmp_path: Path) -> None:
    k = HOST["ANTHROPIC_API_KEY"]
    (tmp_path / ".claude" / "projects").mkdir(parents=True)
    (tmp_path / ".claude" / "projects" / "s.jsonl").write_text(f'{{"out": "ANTHROPIC_API_KEY={k}"}}\n')
    (tmp_path / "test_keys.py").write_text('FAKE = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX"\n')  # shape only: kept
    (tmp_path / "big.bin").write_bytes(k.encode() + b"\0" * 100)
    (tmp_path / "link").symlink_to(tmp_path / "test_keys.py")
    changed = redact_tree(tmp_path, secret_values(HOST), max_file_bytes=64)
    assert changed == [".claude/projects/s.jsonl"]
    assert k not in (tmp_path / ".claude" / "projects" / "s.jsonl").read_text()
    assert "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX" in (tmp_path / "test_keys.py").read_text()
    assert (tmp_path / "big.bin").read_bytes().startswith(k.encode())  # above the size limit
