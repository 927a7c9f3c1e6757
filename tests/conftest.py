"""Shared fixtures: an isolated cache, and scripted agents for bad-input tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

# No test may reach the model/dataset hub: set before anything imports huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from posttrainbench.agents import AGENTS, Agent
from posttrainbench.domain import AgentSpec


@pytest.fixture(scope="session")
def ptb_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the session (tiny models are built once)."""
    return tmp_path_factory.mktemp("ptb-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(ptb_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_CACHE_DIR", str(ptb_cache))
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)


class ScriptAgent(Agent):
    """A test agent whose behaviour is a bash script run inside the real sandbox."""

    spec = AgentSpec(id="script-test", display_name="script", llm=False)
    script = ""

    @classmethod
    def with_script(cls, script: str) -> type[ScriptAgent]:
        """This agent class running ``script``."""
        return type(cls.__name__, (cls,), {"script": script})

    def setup_workspace(self, workspace: Path, ctx) -> list[str]:  # noqa: ANN001
        (workspace / "agent.sh").write_text(self.script)
        return ["agent.sh"]

    def command(self, ctx) -> list[str]:  # noqa: ANN001
        return ["bash", "agent.sh"]

    def version(self) -> str:
        return "script-test"


@pytest.fixture
def script_agent() -> Iterator[Callable[[str | type[ScriptAgent]], str]]:
    """Register a scripted agent named ``script-test`` in the agent registry: call the fixture
    with the bash script (or a ScriptAgent subclass); a later call replaces it. It is
    unregistered when the test ends."""
    with ExitStack() as stack:

        def register(script: str | type[ScriptAgent]) -> str:
            cls = script if isinstance(script, type) else ScriptAgent.with_script(script)
            stack.enter_context(AGENTS.registered(cls))
            return cls.spec.id

        yield register
