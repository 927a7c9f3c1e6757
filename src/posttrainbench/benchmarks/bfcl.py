"""BFCL exec_simple: one function offered as a tool, one call expected; the call's name and
arguments are compared with the ground truth by AST (no execution).

Data: the question and answer files shipped inside the PyPI package ``bfcl-eval`` (Apache-2.0).
Only its data files are used: the wheel is downloaded with ``pip download --no-deps`` (none of
its dependencies is installed) and the two files are extracted into the cache, once. Layout (the
package's own, relative to a data root or the cache folder)::

    bfcl/BFCL_v4_exec_simple.json                   questions + function docs (JSON lines)
    bfcl/possible_answer/BFCL_v4_exec_simple.json   ground-truth calls (JSON lines)

Scoring: the ground truth is a Python call string (``f(a=1, b=[2, 3])``), parsed with
:mod:`ast`. A reply matches when it makes exactly one call, to the right function, with every
ground-truth argument equal under the parameter's declared type (BFCL's rules: an integer is
accepted for a float, a string is compared lower-cased without spaces and ``,./-_*^``, a tuple is
a list), and no other argument unless it equals the declared default. Calls are read from the
model's structured tool calls, else parsed from its text (``tool_calls.parse_tool_calls``).

Under ``ptb-v1`` the reference's rule (:data:`REFERENCE_RULE`, inspect_evals' BFCL scorer as the reference pinned
it): the reply's tool calls as vLLM's ``hermes`` parser reads them (:func:`hermes_calls`: one unreadable block and
there is no call at all), exactly one call, its name and arguments ``==`` the ground truth's ``ast.literal_eval``
values passed through JSON (a tuple becomes a list). No BFCL normalisation: a string differing in case, an optional
argument sent with its default, a float off in the last digit are wrong; an integer for a float, ``1`` for ``True``
are right (Python's ``==``); docs/evaluation.md lists these reference bugs.
"""

from __future__ import annotations

import ast
import json
import math
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from inspect_ai.model import ChatMessage, ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolDef, ToolInfo, ToolParam, ToolParams

from ..data import DataError, Item, field, is_local_only, read_jsonl
from ..evaluation.graders import Grader
from ..evaluation.protocols import REF_V1, STRICT, Protocol, get_protocol
from ..evaluation.tool_calls import parse_tool_calls
from ..fsutil import atomic_write_text
from ..settings import DataSettings, Settings
from ..wheels import WheelDownloadError, pip_download
from .base import BenchmarkDefinition
from .registry import register_benchmark

BFCL_REQUIREMENT = "bfcl-eval==2026.3.23"
BFCL_WHEEL_ENV = DataSettings.env_name("bfcl_wheel")
QUESTIONS = "bfcl/BFCL_v4_exec_simple.json"
ANSWERS = "bfcl/possible_answer/BFCL_v4_exec_simple.json"
# Where the files sit inside the wheel (bfcl-eval keeps exec_* under unused_datasets/ since v4).
WHEEL_MEMBERS = {
    QUESTIONS: "bfcl_eval/data/unused_datasets/question/BFCL_v4_exec_simple.json",
    ANSWERS: "bfcl_eval/data/unused_datasets/possible_answer/BFCL_v4_exec_simple.json",
}


# ---------------------------------------------------------------------------------------------
# data: the files of the bfcl-eval wheel


def bfcl_cache_dir(cache_root: Path) -> Path:
    """``<cache root>/data/bfcl-eval-<version>`` (cache root: ``Settings.paths.cache_dir``)."""
    return Path(cache_root) / "data" / BFCL_REQUIREMENT.replace("==", "-")


def extract_bfcl_files(wheel: Path, dest: Path) -> Path:
    """Extract the exec_simple files of a ``bfcl-eval`` wheel into ``dest`` (atomically per file)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for rel, member in WHEEL_MEMBERS.items():
                try:
                    data = zf.read(member)
                except KeyError:
                    raise DataError(f"{wheel} has no {member}; is it {BFCL_REQUIREMENT}?") from None
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(dest / rel, data.decode("utf-8"))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{wheel} is not a valid wheel (zip): {exc}") from exc
    return dest


def ensure_bfcl_files(cache_dir: Path | None = None, *, settings: Settings | None = None) -> Path:
    """A folder holding ``QUESTIONS`` and ``ANSWERS``: the cache (``cache_dir``, default under
    the settings' cache root), filled from the wheel if needed (``settings.data.bfcl_wheel`` if
    set, else ``pip download --no-deps bfcl-eval==...``). ``settings``: default read from the
    environment now."""
    settings = settings if settings is not None else Settings.from_env()
    dest = Path(cache_dir) if cache_dir is not None else bfcl_cache_dir(settings.paths.cache_dir)
    if all((dest / rel).is_file() for rel in WHEEL_MEMBERS):
        return dest
    if settings.data.bfcl_wheel is not None:
        return extract_bfcl_files(settings.data.bfcl_wheel, dest)
    with tempfile.TemporaryDirectory(prefix="ptb-bfcl-") as tmp:
        try:
            wheel = pip_download(BFCL_REQUIREMENT, Path(tmp), timeout_s=600)
        except WheelDownloadError as exc:
            raise DataError(
                f"bfcl: {exc}\nDownload it where the index is reachable (`pip download --no-deps "
                f"{BFCL_REQUIREMENT}`) and set {BFCL_WHEEL_ENV} to the .whl file, or put {QUESTIONS} "
                f"and {ANSWERS} under PTB_DATA_DIR."
            ) from exc
        return extract_bfcl_files(wheel, dest)


# ---------------------------------------------------------------------------------------------
# scoring

SCORER = "ptb_bfcl"
REFERENCE_RULE = "inspect-bfcl-exact"
"""The scoring rule of ``ptb-v1``'s BFCL: the exact comparison of the reference's pinned inspect_evals scorer."""
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


# The reference's functions (ptb-v1): inspect_evals' BFCL turns each BFCL doc into an Inspect ToolInfo, whose
# parameters Inspect's OpenAI client sends as JSON Schema (None fields left out) and vLLM hands the template.
_REFERENCE_TYPE = {"dict": "object", "float": "number", "tuple": "array"}


def reference_tool_param(spec: dict[str, Any]) -> ToolParam:
    """One BFCL parameter as the reference's Inspect tool parameter: BFCL's ``dict``/``float``/``tuple`` read as
    ``object``/``number``/``array``, other types as written, and only the fields the parameter has (no description
    made up where BFCL has none, unlike :func:`tool_defs`)."""
    t = spec.get("type")
    props = spec.get("properties")
    items = spec.get("items")
    return ToolParam(
        type=_REFERENCE_TYPE.get(t, t) if isinstance(t, str) else None,
        description=spec.get("description"),
        default=spec.get("default"),
        enum=spec.get("enum"),
        items=reference_tool_param(items) if isinstance(items, dict) and items else None,
        properties={k: reference_tool_param(v) for k, v in props.items()} if isinstance(props, dict) else None,
        additionalProperties=spec.get("additionalProperties"),
        required=spec.get("required"),
    )


def reference_tool_info(function: dict[str, Any]) -> ToolInfo:
    """A BFCL function doc as the reference offers it (name with dots as underscores, its description, the
    parameters' properties and required list). A ToolInfo, as inspect_evals puts in the task state: Inspect passes
    it to the model as is, without the description check a ToolDef makes (several BFCL parameters have none)."""
    params = reference_tool_param(function.get("parameters") or {})
    return ToolInfo(
        name=str(function["name"]).replace(".", "_"),
        description=str(function.get("description", "")),
        parameters=ToolParams(properties=params.properties or {}, required=params.required or []),
    )


@solver
def bfcl_solver(protocol: str | Protocol = STRICT) -> Solver:
    """Offer the item's functions as tools and generate once; calls are recorded, not run. Under the reference
    protocols the functions are written as the reference writes them (:func:`reference_tool_info`)."""
    reference = get_protocol(protocol).prompt_variant("bfcl") == REF_V1

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        functions = state.metadata["functions"]
        if reference:
            # as inspect_evals: ToolInfo appended to the list (the tools setter would make each a ToolDef)
            state.tools.clear()
            state.tools.extend([reference_tool_info(f) for f in functions])  # type: ignore[misc]  # ToolInfo where Tool is declared: Inspect takes both
        else:
            state.tools = [t.as_tool() for t in tool_defs(functions)]
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
        return (
            isinstance(got, dict)
            and set(got) == set(want)
            and all(values_match(got[k], want[k], props.get(k)) for k in want)
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


def score_calls(message: Any, completion: str, metadata: dict[str, Any]) -> tuple[bool, str]:
    return match_calls(calls_of(message, completion), metadata)


# ---------------------------------------------------------------------------------------------
# the reference's rule (ptb-v1)

_HERMES = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.S)
RAW_TEXT_KEY = "tool_call_text"
"""Message metadata key where the ``ptb-hf`` provider keeps the generated text it split into tool calls."""


def hermes_calls(text: str) -> list[tuple[str, Any]]:
    """The tool calls vLLM's ``hermes`` parser (the reference's ``tool_call_parser``) reads in ``text``: every
    ``<tool_call>`` block (an unclosed last one too) must be a JSON object with ``name`` and ``arguments``, or the
    parser reports no call at all; the arguments are whatever JSON value was sent."""
    if "<tool_call>" not in text:
        return []
    calls: list[tuple[str, Any]] = []
    for closed, unclosed in _HERMES.findall(text):
        try:
            obj = json.loads(closed or unclosed)
            name, args = obj["name"], obj["arguments"]
        except (ValueError, TypeError, KeyError):  # the parser's blanket except: the whole reply has no call
            return []
        if not isinstance(name, str):  # vLLM's FunctionCall refuses it: the same blanket except
            return []
        calls.append((name, args))
    return calls


def reference_calls(message: Any, completion: str) -> list[tuple[str, Any]]:
    """The calls the reference would have scored: the generated text read as :func:`hermes_calls` reads it (the
    ``ptb-hf`` provider keeps that text in the message's metadata), else the backend's structured calls."""
    raw = ((getattr(message, "metadata", None) or {}).get(RAW_TEXT_KEY)) if message is not None else None
    text = raw if isinstance(raw, str) else completion
    if "<tool_call>" in text:
        return hermes_calls(text)
    structured = getattr(message, "tool_calls", None) or []
    return [(c.function, c.arguments) for c in structured]


def reference_match(calls: list[tuple[str, Any]], metadata: dict[str, Any]) -> tuple[bool, str]:
    """inspect_evals' exact comparison: one call, ``name == gold name and arguments == gold arguments``, the gold
    arguments passed through JSON as its ``record_to_sample`` does (tuples become lists)."""
    if len(calls) != 1:
        return False, f"{len(calls)} tool call(s), expected 1"
    name, args = calls[0]
    gname, literal = parse_call(metadata["ground_truth"][0])
    gargs = json.loads(json.dumps(literal))
    if name != gname:
        return False, f"called {name!r}, expected {gname!r}"
    if args != gargs:
        return False, f"arguments {args!r} != {gargs!r}"
    return True, "match"


def score_reply(
    message: Any, completion: str, metadata: dict[str, Any], *, reference: bool = False
) -> tuple[bool, str, list[tuple[str, Any]]]:
    """``(correct, why, calls)`` of one reply under the reference's rule or ours."""
    if reference:
        calls = reference_calls(message, completion)
        return (*reference_match(calls, metadata), calls)
    found = calls_of(message, completion)
    return (*match_calls(found, metadata), found)


def rescore(samples: Sequence[Any], *, reference: bool = False) -> dict[str, float]:
    """Per-sample match recomputed from the logged reply."""
    return {
        str(s.id): float(score_reply(s.output.message, s.output.completion, s.metadata, reference=reference)[0])
        for s in samples
    }


@scorer(metrics=[accuracy(), stderr()], name=SCORER)
def bfcl_scorer(reference: bool = False) -> Scorer:
    """AST match of the reply's function call with the ground truth (``reference``: the reference's exact one)."""

    async def score(state: TaskState, target: Target) -> Score:
        ok, why, calls = score_reply(state.output.message, state.output.completion, state.metadata, reference=reference)
        return Score(value=CORRECT if ok else INCORRECT, answer=repr(calls)[:500], explanation=why)

    return score


# ---------------------------------------------------------------------------------------------
# the benchmark


@register_benchmark(
    id="bfcl",
    display_name="BFCL exec_simple",
    local_test_file=QUESTIONS,  # else from the bfcl-eval wheel
    items_sha256="a875c1876719d9bb1f2daebedabad29349c94e5930ac682eadd050e8f70dfb97",
    full_size=100,
    dev_size=20,
    max_tokens_ladder=(4000, 3000, 2000),
    allowed_training_data="Function-calling data other than BFCL (e.g. xLAM, glaive).",
)
class Bfcl(BenchmarkDefinition):
    """BFCL exec_simple, AST match of the tool call."""

    scorer_name = SCORER
    protocols: ClassVar[tuple[str, ...]] = (STRICT, REF_V1)

    def test_data_root(self, root: Path, settings: Settings) -> Path:
        """The data root if it holds the files, else the cache filled from the bfcl-eval wheel."""
        if (root / QUESTIONS).is_file():
            return root
        if is_local_only():  # no pip download: only what is already cached
            folder = bfcl_cache_dir(settings.paths.cache_dir)
            if not (folder / QUESTIONS).is_file():
                raise DataError(f"{self.id}: not in the local cache {folder} (local only)")
            return folder
        return ensure_bfcl_files(settings=settings)

    def read_test_items(self, root: Path) -> list[Item]:
        folder = root
        if not (folder / ANSWERS).is_file():
            raise DataError(f"{self.id}: {folder / QUESTIONS} has no answer file {folder / ANSWERS}")
        answers = {str(r.get("id")): r for r in read_jsonl(folder / ANSWERS)}
        items = []
        for i, rec in enumerate(read_jsonl(folder / QUESTIONS)):
            where = f"{self.id} #{i}"
            qid = field(rec, "id", where=where)
            turns = rec.get("question")
            if not (isinstance(turns, list) and turns and isinstance(turns[0], list) and turns[0]):
                raise DataError(f"{where}: 'question' is not a list of chat turns")
            users = [t for t in turns[0] if isinstance(t, dict) and t.get("role") == "user"]
            functions = rec.get("function")
            gold = answers.get(qid, {}).get("ground_truth")
            if len(users) != 1 or not isinstance(functions, list) or not functions:
                raise DataError(f"{where}: expected one user turn and a list of functions")
            if not isinstance(gold, list) or not gold:
                raise DataError(f"{where}: no ground truth for {qid!r} in {folder / ANSWERS}")
            items.append(
                Item(
                    id=qid,
                    input=str(users[0]["content"]),
                    target=gold[0],
                    metadata={"functions": functions, "ground_truth": gold},
                )
            )
        return items

    def reference_messages(self, item: Item) -> list[ChatMessage]:
        """The reference's chat: the question as the one user turn (inspect_evals' BFCL adds no system prompt;
        the functions are offered as tools by :meth:`solver`)."""
        return [ChatMessageUser(content=item.input)]

    def solver(self, protocol: str | Protocol = STRICT) -> Solver:
        return bfcl_solver(protocol)

    def reference_scoring(self, protocol: str | Protocol) -> bool:
        """Whether ``protocol`` scores BFCL with the reference's rule (:data:`REFERENCE_RULE`)."""
        p = get_protocol(protocol)
        return self.id in p.benchmarks and p.settings_for(self.id).scoring_rule == REFERENCE_RULE

    def scorer(
        self, *, grader: Grader | None = None, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> Scorer:
        return bfcl_scorer(reference=self.reference_scoring(protocol))

    def rescore(
        self, samples: Sequence[Any], *, code_sandbox: str = "bwrap", protocol: str | Protocol = STRICT
    ) -> dict[str, float]:
        return rescore(samples, reference=self.reference_scoring(protocol))
