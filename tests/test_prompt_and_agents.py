"""Agent prompt, timer.sh and the reference agent's config parsing."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from posttrainbench.agents import AGENTS, Agent, AgentLaunchError, get_agent
from posttrainbench.agents.prompt import hours_text, render_prompt, render_timer
from posttrainbench.agents.reference import parse_config
from posttrainbench.benchmarks import get_benchmark
from posttrainbench.catalog import UnknownNameError, get_base_model
from posttrainbench.domain import RunSpec


def test_prompt_has_model_benchmark_hours_and_seven_rules() -> None:
    spec = RunSpec(agent="claude", base_model="Qwen/Qwen3-4B-Base", benchmark="gsm8k", hours=10, gpus=1)
    text = render_prompt(
        spec,
        get_benchmark("gsm8k"),
        get_base_model("Qwen/Qwen3-4B-Base"),
        base_model_path="/models/q",
        train_files=["train_data/gsm8k_train.jsonl"],
        gpu_name="H100",
    )
    assert "`Qwen/Qwen3-4B-Base`" in text and "GSM8K" in text and "10 hours" in text
    assert "1 x H100" in text and "/models/q" in text and "train_data/gsm8k_train.jsonl" in text
    rules = [line for line in text.splitlines() if line[:2] in {f"{i}." for i in range(1, 10)}]
    assert len(rules) == 7
    assert "bash timer.sh" in text and "evaluate.py" in text and "Qwen/Qwen3-4B" in text  # forbidden listed


def test_hours_text() -> None:
    assert hours_text(10) == "10 hours"
    assert hours_text(0.1) == "6 minutes"
    assert hours_text(1.5) == "1 hour 30 minutes"


def test_timer_counts_down(tmp_path: Path) -> None:
    script = tmp_path / "timer.sh"
    script.write_text(render_timer(time.time() + 2 * 3600 + 5 * 60 + 30))
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Remaining time (hours:minutes): 2:05"
    script.write_text(render_timer(time.time() - 100))
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("0:00")


def test_reference_config_parsing() -> None:
    assert parse_config("sft") == []
    assert parse_config("lora:steps=5,lr=1e-4") == ["--lora", "--max-steps", "5", "--lr", "1e-4"]
    for bad in ("dpo", "sft:steps", "sft:foo=1", "sft:steps="):
        with pytest.raises(AgentLaunchError):
            parse_config(bad)


def test_agent_registry() -> None:
    from posttrainbench.domain import AgentSpec

    with pytest.raises(UnknownNameError, match="unknown agent 'nope'"):
        get_agent("nope")
    assert AGENTS.names() == ["reference", "claude", "codex", "gemini", "opencode"]
    assert [get_agent(a).spec.id for a in AGENTS] == AGENTS.names()
    assert [n for n, cls in AGENTS.items() if cls.installable] == ["claude", "codex", "gemini", "opencode"]

    class Future(Agent):
        spec = AgentSpec(id="future-agent", display_name="Future")

        def command(self, ctx) -> list[str]:
            return ["true"]

        def version(self) -> str:
            return "0"

    with AGENTS.registered(Future):
        agent = get_agent("future-agent")
        # the optional hooks have defaults: nothing to install, bind, allow or redact
        assert agent.install() is None and agent.model("x") is None and agent.egress(None).allow == []
        with pytest.raises(ValueError, match="registered twice"):
            AGENTS.register(Future)
    with pytest.raises(UnknownNameError):
        get_agent("future-agent")  # unregistered again
    with AGENTS.registered(Future), AGENTS.registered(type("Other", (Future,), {})) as other:
        assert type(get_agent("future-agent")) is other  # the latest registration wins ...
    assert "future-agent" not in AGENTS  # ... and both are undone
    with pytest.raises(TypeError):
        type("Incomplete", (Agent,), {"spec": Future.spec})()  # command() and version() are required
