"""Build the scorer corpus: ``tests/fixtures/scorer_corpus/<benchmark>.jsonl``.

Each row is one reply to a real shipped item (GPQA: synthetic items, its data is gated), written
in one *edge-case class*, with the score it must get under each protocol. The expected scores are
written per class from the rules as read in the reference (aisa-group/PostTrainBench ``src/eval``,
inspect_ai/inspect_evals as it pins them; docs/evaluation.md) and from what is right (``strict``),
never by running our scorers. ``None``: the protocol does not cover the benchmark.

    .venv/bin/python tests/build_scorer_corpus.py   # rewrites the fixtures (deterministic)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from posttrainbench.benchmarks import get_benchmark

OUT = Path(__file__).parent / "fixtures" / "scorer_corpus"
PROTOCOL_IDS = ("strict", "ptb-v1", "ptb-v1.2")
REASONING = "Let me work through this step by step.\nFirst, 12 + 30 = 42 items are counted.\n"

Row = dict[str, object]
# (class, reply builder, expected (strict, ptb-v1, ptb-v1.2), item filter)
NumCase = tuple[str, Callable[[int], str], tuple[int, int, int], Callable[[int], bool]]


def _sci(t: int) -> str:
    s = str(t)
    mantissa = (s[0] + "." + s[1:]).rstrip("0").rstrip(".")
    return f"{mantissa}e{len(s) - 1}"


def _always(t: int) -> bool:
    return True


# Expected values per class, with the reason (reference: last whitespace-separated number word,
# 5 significant digits, str.endswith; v1.2: the same word by value; strict: docs/evaluation.md).
GSM8K_CASES: list[NumCase] = [
    ("answer-is", lambda t: f"{REASONING}The answer is {t}.", (1, 1, 1), _always),
    ("hashes", lambda t: f"{REASONING}#### {t}", (1, 1, 1), _always),
    ("answer-line", lambda t: f"{REASONING}ANSWER: {t}", (1, 1, 1), _always),
    # we are right, the reference is not: it takes the last number of the explanation
    ("answer-is-then-more-text", lambda t: f"The answer is {t}. I got it from 3 and {t + 1}.", (1, 0, 0), _always),
    ("expression-after-answer-is", lambda t: f"The answer is {t - 3} + 3 = {t}.", (1, 1, 1), _always),
    ("correction-after-answer-is", lambda t: f"The answer is {t + 5}, sorry, I mean {t}.", (1, 1, 1), _always),
    # the reference's endswith bug: 7T is credited for T
    ("endswith-bug", lambda t: f"{REASONING}ANSWER: 7{t}", (0, 1, 0), lambda t: 0 < t < 10000),
    ("sci-notation-answer", lambda t: f"The answer is {_sci(t)}.", (1, 0, 0), lambda t: t >= 10),
    ("sci-notation-trailing", lambda t: f"The total is {t}, i.e. {_sci(t)}", (1, 1, 1), lambda t: t >= 10),
    ("fraction-answer", lambda t: f"The answer is {2 * t}/2.", (1, 0, 0), lambda t: not f"{2 * t}/2".endswith(str(t))),
    ("fraction-trailing", lambda t: f"She keeps {t} of them, which is {t}/{2 * t} of all.", (1, 1, 1), lambda t: t > 0),
    ("last-number", lambda t: f"{REASONING}So she has {t} left", (1, 1, 1), _always),
    ("currency-commas", lambda t: f"The answer is ${t:,}.", (1, 1, 1), _always),
    ("decimal-zeros", lambda t: f"The answer is {t}.00", (1, 1, 1), lambda t: 0 <= t < 100000),
    ("boxed", lambda t: f"{REASONING}\\boxed{{{t}}}", (1, 0, 0), lambda t: not "42".endswith(str(t))),
    ("wrong", lambda t: f"{REASONING}The answer is {t + 1}.", (0, 0, 0), _always),
    ("no-number", lambda t: "I cannot solve this.", (0, 0, 0), _always),
]

# AIME's reference rule (the same in v1 and v1.2: only GSM8K's was fixed) removes \boxed{} before
# the same match: a boxed answer is credited there, and the endswith bug stays in v1.2.
AIME_CASES: list[NumCase] = [
    (c, f, (1, 1, 1) if c == "boxed" else (e[0], e[1], e[1]), flt)
    for c, f, e, flt in GSM8K_CASES
    if c not in ("currency-commas",)
]


def _numeric_rows(bid: str, cases: list[NumCase], per_class: int, covered: tuple[bool, bool, bool]) -> list[Row]:
    # plain targets below 10^5 (above, 5 significant digits make near misses equal in the reference)
    items = [it for it in get_benchmark(bid).load_test_items(local_only=True) if it.target.isdigit()]
    items = [it for it in items if int(it.target) < 100000]
    rows: list[Row] = []
    for cls, build, expected, keep in cases:
        chosen = [it for it in items if keep(int(it.target))][:per_class]
        for it in chosen:
            t = int(it.target)
            rows.append(_row(bid, cls, it.id, str(t), build(t), expected, covered))
    # negative targets (the reference compares them as text): variants of real items, target negated
    neg = [it for it in items if int(it.target) > 0][: per_class // 2]
    bug = (0, 1, 0) if bid == "gsm8k" else (0, 1, 1)
    for it in neg:
        t = int(it.target)
        rows.append(_row(bid, "negative-as-text-bug", it.id, f"-{t}", f"ANSWER: 1{t}", bug, covered))
        rows.append(_row(bid, "negative", it.id, f"-{t}", f"{REASONING}ANSWER: -{t}", (1, 1, 1), covered))
    return rows


def _row(
    bid: str, cls: str, item: str, target: str, reply: str, expected: tuple[int, ...], covered: tuple[bool, ...]
) -> Row:
    return {
        "benchmark": bid,
        "class": cls,
        "item_id": item,
        "target": target,
        "reply": reply,
        "expected": {p: (e if ok else None) for p, e, ok in zip(PROTOCOL_IDS, expected, covered, strict=True)},
    }


def calc_rows() -> list[Row]:
    """gsm8k-calc (``strict`` only: the reference has no such benchmark)."""
    items = get_benchmark("gsm8k-calc").load_test_items(local_only=True)
    cases: list[tuple[str, Callable[[str], str], int]] = [
        ("number-only", lambda t: t, 1),
        ("number-then-newline", lambda t: f"{t}\n", 1),
        ("number-then-more", lambda t: f" {t}\nCalculate 3+4", 1),
        ("wrong", lambda t: f"{t}1", 0),
    ]
    return [
        _row("gsm8k-calc", cls, it.id, it.target, build(it.target), (e, 0, 0), (True, False, False))
        for cls, build, e in cases
        for it in items[:80]
    ]


def gpqa_rows(n: int = 24) -> list[Row]:
    """GPQA: synthetic items (the dataset is gated); targets cycle A-D."""
    cases: list[tuple[str, Callable[[str, str], str], tuple[int, int, int]]] = [
        ("answer-line", lambda a, b: f"Reasoning about the options.\nANSWER: {a}", (1, 1, 1)),
        ("lower-case", lambda a, b: f"Reasoning.\nANSWER: {a.lower()}", (1, 1, 1)),
        ("latex-dollar", lambda a, b: f"Reasoning.\nANSWER: ${a}$", (1, 1, 1)),
        ("bold", lambda a, b: f"Reasoning.\n**ANSWER: {a}**", (1, 1, 1)),
        ("latex-boxed", lambda a, b: f"Reasoning.\nANSWER: $\\boxed{{{a}}}$", (1, 0, 0)),
        ("hedge-or", lambda a, b: f"Reasoning.\nANSWER: {a} or {b}", (0, 0, 0)),
        ("hedge-comma", lambda a, b: f"Reasoning.\nANSWER: {a}, {b}", (0, 0, 0)),
        ("later-mention", lambda a, b: f"ANSWER: {a}\n\nAt first I thought the answer is {b}, but no.", (1, 1, 1)),
        ("inline-only", lambda a, b: f"Therefore, the answer is ({a}).", (1, 0, 0)),
        ("wrong", lambda a, b: f"Reasoning.\nANSWER: {b}", (0, 0, 0)),
        ("last-line-wins", lambda a, b: f"ANSWER: {b}\nWait, let me recheck.\nANSWER: {a}", (1, 1, 1)),
        ("parenthesised", lambda a, b: f"Reasoning.\nANSWER: ({a})", (1, 1, 1)),
        ("with-description", lambda a, b: f"Reasoning.\nANSWER: {a}) 4.2 eV", (1, 1, 1)),
        ("heading", lambda a, b: f"Reasoning.\n### Final Answer: {a}", (1, 1, 1)),
        ("crlf", lambda a, b: f"Reasoning.\r\nANSWER: {a}\r\n", (1, 1, 1)),
        ("no-answer", lambda a, b: "I am not sure which one.", (0, 0, 0)),
    ]
    rows = []
    for cls, build, expected in cases:
        for i in range(n):
            right, other = "ABCD"[i % 4], "ABCD"[(i % 4 + 1 + (i // 4) % 3) % 4]  # never equal
            rows.append(
                _row("gpqamain", cls, f"gpqa-synthetic-{i}", right, build(right, other), expected, (True, True, True))
            )
    return rows


def humaneval_rows(n: int = 24) -> list[Row]:
    """HumanEval: replies built from the canonical solution (``full``: the prompt + the solution, a
    complete function) or from a stub that returns None. ``expected``: the program passes."""
    raw = {it.id: it.metadata for it in get_benchmark("humaneval").load_test_items(local_only=True)}
    canonical = _canonical_solutions()
    cases: list[tuple[str, Callable[[str, str, str], str], tuple[int, int, int]]] = [
        ("fenced", lambda full, ep, args: f"Here it is.\n```python\n{full}\n```", (1, 1, 1)),
        ("upper-case-tag", lambda full, ep, args: f"```Python\n{full}\n```", (1, 1, 1)),
        ("all-caps-tag", lambda full, ep, args: f"```PYTHON\n{full}\n```", (1, 1, 1)),
        ("py-tag", lambda full, ep, args: f"```py\n{full}\n```", (1, 1, 1)),
        ("crlf", lambda full, ep, args: f"```python\r\n{full.replace(chr(10), chr(13) + chr(10))}\r\n```", (1, 1, 1)),
        ("bare-fence", lambda full, ep, args: f"```\n{full}\n```", (1, 1, 1)),
        ("no-fence", lambda full, ep, args: full, (1, 1, 1)),
        ("prose-no-fence", lambda full, ep, args: f"Here is the solution:\n{full}", (0, 0, 0)),
        (
            "usage-example-first-labelled",
            lambda full, ep, args: f"Usage:\n```python\nprint({ep}({args}))\n```\nCode:\n```python\n{full}\n```",
            (1, 0, 0),
        ),
        (
            "usage-example-first-bare",
            lambda full, ep, args: f"Usage:\n```\n{ep}({args})\n```\nCode:\n```python\n{full}\n```",
            (1, 1, 1),
        ),
        (
            "other-language-first",
            lambda full, ep, args: f"```bash\npip install nothing\n```\n```python\n{full}\n```",
            (1, 1, 1),
        ),
        ("unterminated-fence", lambda full, ep, args: f"```python\n{full}\n", (1, 1, 1)),
        ("stub-returns-none", lambda full, ep, args: f"```python\ndef {ep}(*args):\n    return None\n```", (0, 0, 0)),
    ]
    rows = []
    for task_id in list(raw)[:n]:
        meta = raw[task_id]
        full = meta["prompt"] + canonical[task_id]
        for cls, build, expected in cases:
            row = _row(
                "humaneval",
                cls,
                task_id,
                meta["entry_point"],
                build(full, meta["entry_point"], "0"),
                expected,
                (True, True, True),
            )
            rows.append(row)
    return rows


def _call(name: str, args: Any, key: str = "arguments") -> str:
    return "<tool_call>\n" + json.dumps({"name": name, key: args}) + "\n</tool_call>"


def _gold(call: str) -> tuple[str, dict[str, Any]]:
    """The ground truth's name and keyword values, as ``ast.literal_eval`` reads them (tuples stay tuples)."""
    import ast

    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call) and not node.args
    return ast.unparse(node.func), {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}


def _json_args(args: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(args))  # what a model can send: a tuple becomes an array


BfclCase = tuple[str, Callable[[str, dict[str, Any], dict[str, dict[str, Any]]], str | None], tuple[int, int]]


def _first(args: dict[str, Any], props: dict[str, dict[str, Any]], want: Callable[..., bool]) -> str | None:
    return next((k for k, v in args.items() if want(v, props.get(k) or {})), None)


def _with(args: dict[str, Any], key: str | None, value: Any) -> dict[str, Any] | None:
    return None if key is None else {**_json_args(args), key: value}


def _swapcase(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: isinstance(v, str) and v.swapcase() != v)
    return None if k is None else _call(n, _with(a, k, str(a[k]).swapcase()))


def _punct(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: isinstance(v, str) and v != "")
    return None if k is None else _call(n, _with(a, k, f"{a[k]}."))


def _float_for_int(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: type(v) is int and s.get("type") == "integer")
    return None if k is None else _call(n, _with(a, k, float(a[k])))


def _int_for_float(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: type(v) in (int, float) and s.get("type") == "float" and float(v).is_integer())
    return None if k is None else _call(n, _with(a, k, int(a[k])))


def _last_digit(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    import math

    k = _first(a, p, lambda v, s: type(v) is float and v != 0.0 and not v.is_integer())
    return None if k is None else _call(n, _with(a, k, math.nextafter(a[k], math.inf)))


def _bool_as_int(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: type(v) is bool)
    return None if k is None else _call(n, _with(a, k, int(a[k])))


def _default(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = next((k for k, s in p.items() if k not in a and "default" in s and s["default"] is not None), None)
    return None if k is None else _call(n, _with(a, k, p[k]["default"]))


def _wrong_value(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    k = _first(a, p, lambda v, s: type(v) is int or (isinstance(v, str) and v != ""))
    return None if k is None else _call(n, _with(a, k, a[k] + 1 if type(a[k]) is int else f"{a[k]} extra"))


def _missing(n: str, a: dict[str, Any], p: dict[str, dict[str, Any]]) -> str | None:
    return _call(n, _json_args(dict(list(a.items())[1:]))) if a else None


# (class, reply builder (None: the item does not lend itself), expected (strict, ptb-v1)); reasons in
# docs/evaluation.md: strict is BFCL's checker (types, lower-cased strings without " ,./-_*^", tuples as lists,
# an optional argument at its default), ptb-v1 the reference's inspect_evals exact comparison (Python ==) of the
# one call vLLM's hermes parser reads (one unreadable block: no call at all).
BFCL_CASES: list[BfclCase] = [
    ("exact", lambda n, a, p: _call(n, _json_args(a)), (1, 1)),
    ("surrounding-text", lambda n, a, p: f"I will call the tool.\n{_call(n, _json_args(a))}\nDone.", (1, 1)),
    ("keys-reordered", lambda n, a, p: _call(n, dict(reversed(list(_json_args(a).items())))), (1, 1)),
    ("unclosed-block", lambda n, a, p: _call(n, _json_args(a)).removesuffix("\n</tool_call>"), (1, 1)),
    ("string-case", _swapcase, (1, 0)),
    ("string-punctuation", _punct, (1, 0)),
    ("float-for-integer", _float_for_int, (0, 1)),
    ("integer-for-float", _int_for_float, (1, 1)),
    ("float-last-digit", _last_digit, (1, 0)),
    ("bool-as-integer", _bool_as_int, (0, 1)),
    ("optional-at-default", _default, (1, 0)),
    ("parameters-key", lambda n, a, p: _call(n, _json_args(a), key="parameters"), (1, 0)),
    ("extra-unreadable-block", lambda n, a, p: _call(n, _json_args(a)) + "\n<tool_call>\noops\n</tool_call>", (1, 0)),
    ("wrong-value", _wrong_value, (0, 0)),
    ("missing-argument", _missing, (0, 0)),
    ("wrong-function", lambda n, a, p: _call(f"{n}_v2", _json_args(a)), (0, 0)),
    ("two-calls", lambda n, a, p: _call(n, _json_args(a)) + "\n" + _call(n, _json_args(a)), (0, 0)),
    ("call-as-text", lambda n, a, p: f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")", (0, 0)),
]


def bfcl_rows(per_class: int = 40) -> list[Row]:
    """BFCL exec_simple (the committed copy of its data), up to ``per_class`` items a class; ``ptb-v1.2`` dropped
    it. The two items whose ground truth holds a tuple are their own class: a JSON array matches the tuple under
    both rules (BFCL's checker reads a tuple as a list; the reference passes its target through JSON)."""
    items = get_benchmark("bfcl").load_test_items(Path(__file__).parent / "fixtures" / "data", local_only=True)
    rows: list[Row] = []
    for cls, build, (strict, v1) in BFCL_CASES:
        n = 0
        for it in items:
            if n == per_class:
                break
            name, args = _gold(it.metadata["ground_truth"][0])
            if any(isinstance(v, tuple) for v in args.values()):
                continue
            props = it.metadata["functions"][0]["parameters"]["properties"]
            reply = build(name, args, props)
            if reply is not None:
                rows.append(_row("bfcl", cls, it.id, it.target, reply, (strict, v1, 0), (True, True, False)))
                n += 1
    for it in items:
        name, args = _gold(it.metadata["ground_truth"][0])
        if any(isinstance(v, tuple) for v in args.values()):
            reply = _call(name, _json_args(args))
            rows.append(_row("bfcl", "tuple-ground-truth", it.id, it.target, reply, (1, 1, 0), (True, True, False)))
    return rows


def _canonical_solutions() -> dict[str, str]:
    import gzip

    from posttrainbench.data import data_root
    from posttrainbench.settings import Settings

    path = data_root(Settings.from_env()) / "humaneval" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {r["task_id"]: r["canonical_solution"] for r in map(json.loads, fh)}


def build() -> dict[str, list[Row]]:
    """Every benchmark's rows."""
    return {
        "gsm8k": _numeric_rows("gsm8k", GSM8K_CASES, 20, (True, True, True)),
        "aime2025": _numeric_rows("aime2025", AIME_CASES, 30, (True, True, True)),
        "gsm8k-calc": calc_rows(),
        "gpqamain": gpqa_rows(),
        "humaneval": humaneval_rows(),
        "bfcl": bfcl_rows(),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for bid, rows in build().items():
        with open(OUT / f"{bid}.jsonl", "w", encoding="utf-8") as fh:
            for n, row in enumerate(rows):
                fh.write(json.dumps({"id": f"{bid}-{n}", **row}, ensure_ascii=False) + "\n")
        print(f"{bid}: {len(rows)} rows")


if __name__ == "__main__":
    main()
