"""Tool calls in generated text: the one parser shared by the ``ptb-hf`` provider and the BFCL
scorer (which falls back to the reply's text when a backend returned no structured calls)."""

from __future__ import annotations

import json
import re
from typing import Any

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_tool_calls(text: str) -> tuple[str, list[tuple[str, dict[str, Any]]], list[str]]:
    """``(content outside the calls, [(name, arguments)], [problems])`` of a reply.

    Calls are ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (an unclosed
    last block counts: generation may stop at the end tag). A block that is not such a JSON
    object is reported in ``problems`` and yields no call.
    """
    calls: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for raw in _BLOCK.findall(text):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"tool call is not JSON ({exc.msg}): {raw[:200]!r}")
            continue
        args = obj.get("arguments", obj.get("parameters")) if isinstance(obj, dict) else None
        if isinstance(args, str):  # some models emit the arguments as a JSON string
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(args, dict):
            problems.append(f"tool call lacks a name and an arguments object: {raw[:200]!r}")
            continue
        calls.append((obj["name"], args))
    content = _BLOCK.sub("", text).strip()
    return content, calls, problems
