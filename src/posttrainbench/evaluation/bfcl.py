"""BFCL exec_simple: one function offered as a tool, one call expected; the call's name and
arguments are compared with the ground truth by AST (no execution).

The ground truth is a Python call string (``f(a=1, b=[2, 3])``), parsed with :mod:`ast`. A reply
matches when it makes exactly one call, to the right function, with every ground-truth argument
equal under the parameter's declared type (BFCL's rules: an integer is accepted for a float, a
string is compared lower-cased without spaces and ``,./-_*^``, a tuple is a list), and no other
argument unless it equals the declared default. Calls are read from the model's structured tool
calls, else parsed from its text (``tool_calls.parse_tool_calls``).
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolDef, ToolParam, ToolParams

from .tool_calls import parse_tool_calls

SCORER = "ptb_bfcl"
_JSON_TYPE = {
    "dict": "object", "float": "number", "tuple": "array", "integer": "integer", "int": "integer",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array", "string": "string",
    "any": None, "object": "object", "number": "number",
}  # fmt: skip
_STRIP = re.compile(r"[ ,./\-_*^]")


def _json_schema(p: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter spec as JSON Schema (BFCL says "dict", "float", "tuple", ...)."""
    out: dict[str, Any] = {}
    for k, v in p.items():
        if k == "type":
            t = _JSON_TYPE.get(str(v), "string")
            if t:
                out["type"] = t
        elif k == "properties" and isinstance(v, dict):
            out["properties"] = {name: _json_schema(sub) for name, sub in v.items()}
        elif k == "items" and isinstance(v, dict):
            out["items"] = _json_schema(v)
        elif k in ("description", "enum", "required", "default"):
            out[k] = v
    return out


def _noop(**kwargs: Any) -> str:  # the tools are offered, never executed (tool_calls="none")
    raise RuntimeError("BFCL tools are not executed")


def tool_defs(functions: list[dict[str, Any]]) -> list[ToolDef]:
    """Inspect tool definitions for BFCL function docs."""
    out = []
    for f in functions:
        schema = _json_schema(f.get("parameters") or {"type": "dict", "properties": {}})
        props = {}
        for k, v in (schema.get("properties") or {}).items():
            # Inspect requires a description per parameter; some BFCL docs put it on the items only
            v.setdefault("description", (v.get("items") or {}).get("description") or k)
            props[k] = ToolParam(**v)
        params = ToolParams(
            properties=props,
            required=list(schema.get("required") or []),
        )
        out.append(ToolDef(_noop, name=f["name"], description=f.get("description", ""), parameters=params))
    return out


@solver
def bfcl_solver() -> Solver:
    """Offer the item's functions as tools and generate once; calls are recorded, not run."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.tools = [t.as_tool() for t in tool_defs(state.metadata["functions"])]
        return await generate(state, tool_calls="none")

    return solve


# ---------------------------------------------------------------------------------------------
# AST match


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``"f(a=1, b='x')"`` -> ``("f", {"a": 1, "b": "x"})`` (literals only)."""
    node = ast.parse(text.strip(), mode="eval").body
    if not isinstance(node, ast.Call):
        raise ValueError(f"not a call: {text!r}")
    name = ast.unparse(node.func)
    if node.args:
        raise ValueError(f"positional arguments are not supported: {text!r}")
    return name, {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}


def _std(s: str) -> str:
    return _STRIP.sub("", s.lower())


def values_match(got: Any, want: Any, spec: dict[str, Any] | None = None) -> bool:
    """BFCL-style equality of one argument under its declared type."""
    t = (spec or {}).get("type")
    if isinstance(want, bool) or t in ("boolean", "bool"):
        return isinstance(got, bool) and got == want
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        if t in ("integer", "int") and not isinstance(got, int):
            return False
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, str):
        return isinstance(got, str) and _std(got) == _std(want)
    if isinstance(want, (list, tuple)):
        items = (spec or {}).get("items")
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(want)
            and all(values_match(g, w, items) for g, w in zip(got, want))
        )
    if isinstance(want, dict):
        props = (spec or {}).get("properties") or {}
        return isinstance(got, dict) and set(got) == set(want) and all(
            values_match(got[k], want[k], props.get(k)) for k in want
        )
    return got == want


def match_calls(calls: list[tuple[str, dict[str, Any]]], metadata: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``calls`` match the item's ground truth, and why not."""
    gold = [parse_call(g) for g in metadata["ground_truth"]]
    if len(calls) != len(gold):
        return False, f"{len(calls)} call(s), expected {len(gold)}"
    docs = {f["name"]: f for f in metadata["functions"]}
    for (name, args), (gname, gargs) in zip(calls, gold):
        if name != gname:
            return False, f"called {name!r}, expected {gname!r}"
        props = ((docs.get(gname) or {}).get("parameters") or {}).get("properties") or {}
        for k, want in gargs.items():
            if k not in args:
                return False, f"argument {k!r} missing"
            if not values_match(args[k], want, props.get(k)):
                return False, f"argument {k!r} = {args[k]!r}, expected {want!r}"
        for k in set(args) - set(gargs):
            spec = props.get(k)
            if spec is None:
                return False, f"unknown argument {k!r}"
            if "default" not in spec or not values_match(args[k], spec["default"], spec):
                return False, f"unexpected argument {k!r} = {args[k]!r}"
    return True, "match"


def calls_of(message: Any, completion: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls a reply made: structured tool calls if any, else ``<tool_call>`` blocks in its text."""
    structured = getattr(message, "tool_calls", None) or []
    if structured:
        return [(c.function, dict(c.arguments or {})) for c in structured]
    return parse_tool_calls(completion)[1]


def score_reply(message: Any, completion: str, metadata: dict[str, Any]) -> tuple[bool, str]:
    return match_calls(calls_of(message, completion), metadata)


def rescore(samples: list[Any]) -> dict[str, float]:
    """Per-sample match recomputed from the logged reply."""
    return {
        str(s.id): float(score_reply(s.output.message, s.output.completion, s.metadata)[0]) for s in samples
    }


@scorer(metrics=[accuracy(), stderr()], name=SCORER)
def bfcl_scorer() -> Scorer:
    """AST match of the reply's function call with the ground truth."""

    async def score(state: TaskState, target: Target) -> Score:
        ok, why = score_reply(state.output.message, state.output.completion, state.metadata)
        calls = calls_of(state.output.message, state.output.completion)
        return Score(value=CORRECT if ok else INCORRECT, answer=repr(calls)[:500], explanation=why)

    return score
