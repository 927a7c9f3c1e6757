"""Shared fixtures: an isolated cache, and scripted agents for bad-input tests."""

from __future__ import annotations

import os
from pathlib import Path

# No test may reach the model/dataset hub: set before anything imports huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from posttrainbench import agents as agents_pkg
from posttrainbench.catalog import AGENTS
from posttrainbench.domain import AgentSpec


@pytest.fixture(scope="session")
def ptb_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the session (tiny models are built once)."""
    return tmp_path_factory.mktemp("ptb-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(ptb_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(ptb_cache))
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)


class ScriptAgent:
    """A test agent whose behaviour is a bash script run inside the real sandbox."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.spec = AGENTS["script-test"]

    def validate_config(self, config: str) -> None:
        return None

    def setup_workspace(self, workspace: Path, ctx) -> list[str]:  # noqa: ANN001
        (workspace / "agent.sh").write_text(self.script)
        return ["agent.sh"]

    def command(self, ctx) -> list[str]:  # noqa: ANN001
        return ["bash", "agent.sh"]

    def environment(self, ctx) -> dict[str, str]:  # noqa: ANN001
        return {}

    def version(self) -> str:
        return "script-test"


@pytest.fixture
def script_agent(monkeypatch: pytest.MonkeyPatch):
    """Register a scripted agent named ``script-test``; call the fixture with the bash script."""

    monkeypatch.setitem(AGENTS, "script-test", AgentSpec(id="script-test", display_name="script", llm=False))

    def register(script: str) -> str:
        monkeypatch.setitem(agents_pkg._RUNNERS, "script-test", lambda: ScriptAgent(script))
        return "script-test"

    return register
