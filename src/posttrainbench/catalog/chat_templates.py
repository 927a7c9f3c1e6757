"""Chat templates (Jinja, the format ``tokenizer.apply_chat_template`` takes), chosen by name.

The harness picks the template from the run's *declared* base model, never from the
submission's tokenizer files or by matching substrings of a path.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from importlib.resources import files

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Qwen3 uses ChatML; thinking is disabled by an empty think block as in Qwen3's own template.
QWEN3 = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n\n</think>\n\n' }}{% endif %}"
)

GEMMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Plain "Question/Answer" text for tiny test models whose tokenizer has no special tokens.
PLAIN = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'Question: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Answer: ' + message['content'] + '\n' }}"
    "{% else %}{{ message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Answer:' }}{% endif %}"
)


def _packaged(name: str) -> str:
    return files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


# The reference protocols' templates (ptb-v1, ptb-v1.2): our transcriptions, shipped as package data
# (catalog/templates/), of the templates aisa-group/PostTrainBench evaluates each base model with.
REFERENCE_QWEN3 = "ptb-v1-qwen3"
REFERENCE_SMOLLM3 = "ptb-v1-smollm3"
REFERENCE_GEMMA3 = "ptb-v1-gemma3"

CHAT_TEMPLATES: dict[str, str] = {
    "chatml": CHATML,
    "qwen3": QWEN3,
    "smollm3": CHATML,
    "gemma3": GEMMA3,
    "plain": PLAIN,
    REFERENCE_QWEN3: _packaged("ptb_v1_qwen3.jinja"),
    REFERENCE_SMOLLM3: _packaged("ptb_v1_smollm3.jinja"),
    REFERENCE_GEMMA3: _packaged("ptb_v1_gemma3.jinja"),
}

REFERENCE_CHAT_TEMPLATES: dict[str, str] = {
    "Qwen/Qwen3-1.7B-Base": REFERENCE_QWEN3,
    "Qwen/Qwen3-4B-Base": REFERENCE_QWEN3,
    "HuggingFaceTB/SmolLM3-3B-Base": REFERENCE_SMOLLM3,
    "google/gemma-3-4b-pt": REFERENCE_GEMMA3,
}
"""Base model -> the reference protocols' template: the reference's ``evaluate.py`` picks it by the
model's name (``qwen3.jinja``, ``smollm.jinja``, ``gemma3.jinja`` under ``src/eval/templates``)."""

TOOL_TEMPLATES = frozenset({REFERENCE_QWEN3, REFERENCE_SMOLLM3, REFERENCE_GEMMA3})
"""Templates that offer tools themselves (``tools=`` of :func:`render_chat`, in the reference's wording for the
model: BFCL under the reference protocols); every other template gets them in the harness's system turn
(:func:`tools_system_prompt`)."""

# End-of-turn strings each template closes an assistant turn with (used as stop sequences).
END_OF_TURN: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_end|>",),
    "qwen3": ("<|im_end|>",),
    "smollm3": ("<|im_end|>",),
    "gemma3": ("<end_of_turn>",),
    "plain": ("\nQuestion:",),
    REFERENCE_QWEN3: ("<|im_end|>",),
    REFERENCE_SMOLLM3: ("<|im_end|>",),
    REFERENCE_GEMMA3: ("<end_of_turn>",),
}


# Tool calling (BFCL): the function signatures go into the system turn and calls come back as
# <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks. This is the wording of Qwen3's
# (and Hermes') own template; the harness uses it for every template, so a tool-calling prompt is
# rendered the same way whatever the submitted tokenizer says.
TOOLS_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def tools_system_prompt(tools: list[dict], system: str | None = None) -> str:
    """The system turn offering ``tools`` (OpenAI-style ``{"type": "function", "function": ...}``),
    after the task's own system text if any."""
    import json

    listing = "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
    head = f"{system}\n\n" if system else ""
    return head + TOOLS_HEADER + listing + TOOLS_FOOTER


def get_chat_template(name: str) -> str:
    """Return the Jinja chat template registered under ``name``."""
    try:
        return CHAT_TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown chat template {name!r}; known: {sorted(CHAT_TEMPLATES)}") from None


def reference_chat_template(hub_id: str) -> str | None:
    """The reference protocols' template of base model ``hub_id`` (None: the reference evaluated no
    such model, see :data:`REFERENCE_CHAT_TEMPLATES`)."""
    return REFERENCE_CHAT_TEMPLATES.get(hub_id)


def _raise(message: str) -> None:
    raise ValueError(message)


def _tojson(value: object, indent: int | None = None, separators: tuple[str, str] | None = None) -> str:
    """``transformers``' ``tojson`` filter: ``json.dumps`` keeping key order and non-ASCII text (Jinja's own
    sorts keys and escapes HTML characters, which would change the rendered functions)."""
    import json

    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)


def render_chat(
    name: str,
    turns: Sequence[Mapping[str, str]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    now: _dt.datetime | None = None,
    tools: Sequence[Mapping[str, object]] | None = None,
) -> str:
    """``turns`` (``{"role", "content"}``) rendered by the template registered as ``name``, in the
    Jinja environment ``transformers``' ``apply_chat_template`` uses (sandboxed, ``trim_blocks``,
    ``lstrip_blocks``, ``raise_exception``, ``strftime_now``, its ``tojson``). ``now``: the time ``strftime_now``
    reads (default: the local time now, as ``transformers``; SmolLM3's reference template writes
    today's date into its system block). ``tools``: the functions offered, as the OpenAI-style dicts a vLLM
    server passes its template (``{"type": "function", "function": {"name", "description", "parameters"}}``),
    for the templates of :data:`TOOL_TEMPLATES`."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: (now or _dt.datetime.now()).strftime(fmt)
    env.filters["tojson"] = _tojson
    template = env.from_string(get_chat_template(name))
    return template.render(
        messages=[dict(t) for t in turns],
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
        tools=[dict(t) for t in tools] if tools else None,
    )
