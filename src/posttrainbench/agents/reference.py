"""The reference agent: a scripted, human-designed SFT recipe (no LLM).

It is copied into the workspace as ``reference_sft.py`` and run inside the sandbox like any
other agent, so it exercises the whole harness end to end and gives a baseline row.

Agent configs: ``sft`` (full fine-tune) and ``lora`` (LoRA, merged before saving); either may
carry overrides after a colon, e.g. ``sft:steps=40,bs=16,lr=1e-4``.
"""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

from ..domain import AgentSpec
from .base import AGENTS, Agent, AgentLaunchError, LaunchContext

SCRIPT = "reference_sft.py"
_OVERRIDES = {"steps": "--max-steps", "bs": "--batch-size", "lr": "--lr", "seed": "--seed"}


def parse_config(config: str) -> list[str]:
    """Turn an agent config like ``lora:steps=40,lr=1e-4`` into script arguments."""
    mode, _, rest = config.partition(":")
    if mode not in {"sft", "lora"}:
        raise AgentLaunchError(f"reference agent config {config!r}: mode must be 'sft' or 'lora'")
    args = ["--lora"] if mode == "lora" else []
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in _OVERRIDES or not value:
            raise AgentLaunchError(
                f"reference agent config {config!r}: bad override {item!r}; "
                f"use key=value with key in {sorted(_OVERRIDES)}"
            )
        args += [_OVERRIDES[key], value]
    return args


@AGENTS.register
class ReferenceAgent(Agent):
    """Scripted SFT with TRL, run inside the sandbox."""

    spec = AgentSpec(id="reference", display_name="Reference (scripted SFT)", llm=False, default_config="sft")

    def validate_config(self, config: str) -> None:
        parse_config(config)

    def setup_workspace(self, workspace: Path, ctx: LaunchContext) -> list[str]:
        with as_file(files("posttrainbench.agents").joinpath("templates", SCRIPT)) as src:
            shutil.copy2(src, workspace / SCRIPT)
        return [SCRIPT]

    def command(self, ctx: LaunchContext) -> list[str]:
        return [ctx.python, "-u", SCRIPT, "--workspace", str(ctx.workspace), *parse_config(ctx.spec.agent_config)]

    def version(self) -> str:
        from .. import __version__

        return f"reference-sft {__version__}"
