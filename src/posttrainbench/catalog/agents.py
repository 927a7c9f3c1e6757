"""Agent scaffolds known to the harness (their launch code lives in posttrainbench.agents)."""

from __future__ import annotations

from ..domain import AgentSpec

AGENTS: dict[str, AgentSpec] = {
    a.id: a
    for a in (
        AgentSpec(
            id="reference",
            display_name="Reference (scripted SFT)",
            llm=False,
            default_config="sft",
        ),
        AgentSpec(
            id="claude",
            display_name="Claude Code",
            secret_env=("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
            api_hosts=("api.anthropic.com",),
            default_config="claude-opus-4-5",
        ),
        AgentSpec(
            id="codex",
            display_name="Codex CLI",
            secret_env=("OPENAI_API_KEY",),
            api_hosts=("api.openai.com",),
            default_config="gpt-5.1-codex-max",
        ),
        AgentSpec(
            id="gemini",
            display_name="Gemini CLI",
            secret_env=("GEMINI_API_KEY",),
            api_hosts=("generativelanguage.googleapis.com",),
            default_config="gemini-3-pro-preview",
        ),
        AgentSpec(
            id="opencode",
            display_name="OpenCode",
            secret_env=("OPENCODE_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"),
            api_hosts=("opencode.ai", "api.anthropic.com", "api.openai.com"),
            default_config="anthropic/claude-opus-4-5",
        ),
    )
}
