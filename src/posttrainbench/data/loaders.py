"""Dataset loaders: benchmark -> evaluation items and allowed training examples.

A local file under the data root comes first (``benchmark.local_test_file`` /
``local_train_file``); without one, the hub (``datasets.load_dataset`` at the pinned revision).
"""

from __future__ import annotations

import functools
import gzip
import json
import random
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

from ..domain import Benchmark
from .formats import (
    CHOICE_LETTERS,
    aime_prompt,
    gpqa_prompt,
    humaneval_prompt,
    calc_key,
    calc_prompt,
    calc_steps,
    gsm8k_completion,
    gsm8k_prompt,
    gsm8k_reference_answer,
)
from .items import DATA_DIR_ENV, ChatTurn, DataError, Item, data_root
from .provenance import DataProvenance, collecting_sources, note_source

GSM8K_FEWSHOT_SOURCE = "first N examples of the GSM8K train split"

# Set by load_test_items(local_only=True): the hub is not tried (no network, no waiting).
_LOCAL_ONLY: ContextVar[bool] = ContextVar("ptb_local_only", default=False)


class TestSet(NamedTuple):
    """A benchmark's evaluation items and where they came from (digest checked against the pin)."""

    items: list[Item]
    provenance: DataProvenance


def load_test_set(benchmark: Benchmark, root: Path | None = None, *, local_only: bool = False) -> TestSet:
    """The benchmark's full evaluation set (at most ``benchmark.full_size`` items, in file order)
    with its provenance. ``local_only``: raise DataError instead of trying the hub when no local
    file is found. The set is returned even when it differs from the pin: callers that score it
    as the benchmark call ``provenance.require()``."""
    loader = _TEST_LOADERS.get(benchmark.id)
    if loader is None:
        raise DataError(_not_yet(benchmark))
    token = _LOCAL_ONLY.set(local_only)
    try:
        with collecting_sources() as sources:
            items = loader(benchmark, Path(root) if root is not None else data_root())[: benchmark.full_size]
    finally:
        _LOCAL_ONLY.reset(token)
    return TestSet(items, DataProvenance.of(benchmark, items, sources))


def load_test_items(benchmark: Benchmark, root: Path | None = None, *, local_only: bool = False) -> list[Item]:
    """The items of ``load_test_set`` (no pin check: for previews, fixtures and contamination scans)."""
    return load_test_set(benchmark, root, local_only=local_only).items


def load_train_examples(benchmark: Benchmark, root: Path | None = None) -> list[dict[str, str]]:
    """Allowed training examples as ``{"prompt", "completion"}`` in the evaluator's exact wording."""
    loader = _TRAIN_LOADERS.get(benchmark.id)
    if loader is None:
        raise DataError(
            f"{benchmark.id}: the harness ships no training examples for this benchmark "
            f"(allowed data: {benchmark.allowed_training_data or 'see the benchmark card'})"
            if benchmark.id in _TEST_LOADERS
            else _not_yet(benchmark)
        )
    return loader(benchmark, Path(root) if root is not None else data_root())


def _not_yet(benchmark: Benchmark) -> str:
    return (
        f"{benchmark.id}: no loader for this benchmark "
        f"(implemented: {', '.join(sorted(_TEST_LOADERS))})"
    )


# ---------------------------------------------------------------------------------------------
# raw records


def _hub_source(benchmark: Benchmark) -> Benchmark:
    """The benchmark whose hub entry holds this one's raw data (gsm8k-calc derives from gsm8k)."""
    if benchmark.id == "gsm8k-calc":
        from ..catalog import get_benchmark

        return get_benchmark("gsm8k")
    return benchmark


def _records(benchmark: Benchmark, root: Path, which: str) -> list[dict[str, Any]]:
    rel = benchmark.local_test_file if which == "test" else benchmark.local_train_file
    if rel is not None:
        path = root / rel
        if path.is_file():
            return _read_jsonl(path)
    src = _hub_source(benchmark)
    split = src.test_split if which == "test" else "train"
    where = f"{root / rel}" if rel else f"a local {which} file"
    if src.hub_id is None or _LOCAL_ONLY.get():
        why = "the benchmark has no hub source" if src.hub_id is None else "only local files were asked for"
        raise DataError(
            f"{benchmark.id}: {where} not found and {why}. "
            f"Set {DATA_DIR_ENV} to a data root holding {rel or '<benchmark files>'}."
        )
    revision = src.hub_revision or _resolve_hub_revision(src.hub_id)
    try:
        import datasets

        ds = datasets.load_dataset(src.hub_id, src.hub_config, split=split, revision=revision)
    except Exception as exc:  # offline, gated, renamed: the fix is the same for the user
        raise DataError(
            f"{benchmark.id}: {where} not found, and loading {src.hub_id}"
            f"{'/' + src.hub_config if src.hub_config else ''} split {split!r} from the hub failed "
            f"({type(exc).__name__}: {exc}). Set {DATA_DIR_ENV} to a data root holding "
            f"{rel or 'the files'}, or make the hub reachable."
        ) from exc
    config = f"/{src.hub_config}" if src.hub_config else ""
    note_source(f"hub:{src.hub_id}{config}@{revision or 'unresolved'}:{split}")
    return [dict(r) for r in ds]


@functools.cache
def _resolve_hub_revision(hub_id: str) -> str | None:
    """The commit the hub's default branch points at (recorded with the result, so the
    evaluation names the exact data it used); None offline or for a local dataset folder.
    Resolved once per process: a benchmark's test and train splits, and every later load in
    the same process, come from the same commit."""
    if Path(hub_id).exists():
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(hub_id, timeout=30).sha
    except Exception:  # offline, gated without a token: load_dataset says why, or uses its cache
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    note_source(f"file:{path}")
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: invalid JSON ({exc})") from exc
    return out


def _field(rec: dict[str, Any], *names: str, where: str) -> str:
    for n in names:
        if n in rec and rec[n] is not None:
            return str(rec[n])
    raise DataError(f"{where}: record has none of the fields {names}: keys {sorted(rec)}")


# ---------------------------------------------------------------------------------------------
# gsm8k


def _gsm8k_train(benchmark: Benchmark, root: Path) -> list[dict[str, str]]:
    out = []
    for i, rec in enumerate(_records(benchmark, root, "train")):
        q = _field(rec, "question", where=f"{benchmark.id} train #{i}")
        a = _field(rec, "answer", where=f"{benchmark.id} train #{i}")
        out.append({"prompt": gsm8k_prompt(q), "completion": gsm8k_completion(a)})
    return out


def gsm8k_fewshot(benchmark: Benchmark, root: Path | None = None) -> tuple[ChatTurn, ...]:
    """The few-shot turns of GSM8K: the first ``benchmark.fewshot`` train examples."""
    if benchmark.fewshot <= 0:
        return ()
    examples = _gsm8k_train(benchmark, Path(root) if root is not None else data_root())
    turns: list[ChatTurn] = []
    for ex in examples[: benchmark.fewshot]:
        turns += [ChatTurn(role="user", content=ex["prompt"]), ChatTurn(role="assistant", content=ex["completion"])]
    return tuple(turns)


def _gsm8k_test(benchmark: Benchmark, root: Path) -> list[Item]:
    records = _records(benchmark, root, "test")
    fewshot = gsm8k_fewshot(benchmark, root)
    items = []
    for i, rec in enumerate(records):
        where = f"{benchmark.id} test #{i}"
        q, a = _field(rec, "question", where=where), _field(rec, "answer", where=where)
        try:
            target = gsm8k_reference_answer(a)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from exc
        items.append(
            Item(id=f"gsm8k-{i}", input=gsm8k_prompt(q), target=target, metadata={"index": i}, fewshot=fewshot)
        )
    return items


# ---------------------------------------------------------------------------------------------
# gsm8k-calc


def _unique_steps(records: list[dict[str, Any]], where: str) -> list[tuple[str, str, int]]:
    """Unique (by expr) calculator steps in file order: ``(expr, result, record index)``."""
    seen: set[str] = set()
    out = []
    for i, rec in enumerate(records):
        for expr, result in calc_steps(_field(rec, "answer", where=f"{where} #{i}")):
            key = calc_key(expr)
            if key not in seen:
                seen.add(key)
                out.append((expr, result, i))
    return out


def _calc_test(benchmark: Benchmark, root: Path) -> list[Item]:
    steps = _unique_steps(_records(benchmark, root, "test"), f"{benchmark.id} test")
    return [
        Item(
            id=f"calc-{n}",
            input=calc_prompt(expr),
            target=result,
            metadata={"expr": expr, "gsm8k_test_index": i},
        )
        for n, (expr, result, i) in enumerate(steps[: benchmark.full_size])
    ]


def _calc_train(benchmark: Benchmark, root: Path) -> list[dict[str, str]]:
    # Exclude every step of the whole test split (a superset of the test items), so that
    # neither the items nor a larger --limit can ever meet an allowed training example.
    test_keys = {calc_key(e) for e, _, _ in _unique_steps(_records(benchmark, root, "test"), "test")}
    return [
        {"prompt": calc_prompt(expr), "completion": result}
        for expr, result, _ in _unique_steps(_records(benchmark, root, "train"), f"{benchmark.id} train")
        if calc_key(expr) not in test_keys
    ]


# ---------------------------------------------------------------------------------------------
# aime2025


def _aime_test(benchmark: Benchmark, root: Path) -> list[Item]:
    items = []
    for i, rec in enumerate(_records(benchmark, root, "test")):
        where = f"{benchmark.id} #{i}"
        problem = _field(rec, "problem", "question", where=where)
        answer = _field(rec, "answer", where=where).strip()
        items.append(Item(id=f"aime2025-{rec.get('id', i)}", input=aime_prompt(problem), target=answer, metadata={"index": i}))
    return items


# ---------------------------------------------------------------------------------------------
# humaneval


def _humaneval_test(benchmark: Benchmark, root: Path) -> list[Item]:
    items = []
    for i, rec in enumerate(_records(benchmark, root, "test")):
        where = f"{benchmark.id} #{i}"
        task_id = _field(rec, "task_id", where=where)
        meta = {k: _field(rec, k, where=where) for k in ("prompt", "test", "entry_point")}
        items.append(Item(id=task_id, input=humaneval_prompt(meta["prompt"]), target=meta["entry_point"], metadata=meta))
    return items


# ---------------------------------------------------------------------------------------------
# gpqamain

GPQA_SHUFFLE_SEED = "posttrainbench-gpqa-v1"
GPQA_WRONG = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def gpqa_choices(record_id: str, correct: str, wrong: list[str]) -> tuple[list[str], str]:
    """The four choices in their evaluation order and the correct letter. The order depends only
    on the record id (a seeded shuffle), so every evaluation of every model asks the same thing."""
    choices = [correct, *wrong]
    order = list(range(len(choices)))
    random.Random(f"{GPQA_SHUFFLE_SEED}:{record_id}").shuffle(order)
    shuffled = [choices[i] for i in order]
    return shuffled, CHOICE_LETTERS[order.index(0)]


def _gpqa_test(benchmark: Benchmark, root: Path) -> list[Item]:
    items = []
    for i, rec in enumerate(_records(benchmark, root, "test")):
        where = f"{benchmark.id} #{i}"
        rid = _field(rec, "Record ID", where=where)
        question = _field(rec, "Question", where=where)
        correct = _field(rec, "Correct Answer", where=where)
        wrong = [_field(rec, k, where=where) for k in GPQA_WRONG]
        choices, letter = gpqa_choices(rid, correct, wrong)
        items.append(
            Item(
                id=f"gpqa-{rid}",
                input=gpqa_prompt(question, choices),
                target=letter,
                metadata={"record_id": rid, "choices": choices},
            )
        )
    return items


# ---------------------------------------------------------------------------------------------
# bfcl (exec_simple)


def _bfcl_test(benchmark: Benchmark, root: Path) -> list[Item]:
    from .bfcl import ANSWERS, QUESTIONS, bfcl_cache_dir, ensure_bfcl_files

    if (root / QUESTIONS).is_file():
        folder = root
    elif _LOCAL_ONLY.get():  # no pip download: only what is already cached
        folder = bfcl_cache_dir()
        if not (folder / QUESTIONS).is_file():
            raise DataError(f"{benchmark.id}: not in the local cache {folder} (local only)")
    else:
        folder = ensure_bfcl_files()
    if not (folder / ANSWERS).is_file():
        raise DataError(f"{benchmark.id}: {folder / QUESTIONS} has no answer file {folder / ANSWERS}")
    answers = {str(r.get("id")): r for r in _read_jsonl(folder / ANSWERS)}
    items = []
    for i, rec in enumerate(_read_jsonl(folder / QUESTIONS)):
        where = f"{benchmark.id} #{i}"
        qid = _field(rec, "id", where=where)
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


# ---------------------------------------------------------------------------------------------
# arenahardwriting, healthbench (graded by an LLM)

ARENA_BASELINE_FILE = "baseline_answers_Qwen3-1.7B.jsonl"


def _answer_text(content: Any) -> str:
    """Arena-Hard stores an answer as a string or as ``{"answer": ...}``."""
    if isinstance(content, dict):
        content = content.get("answer")
    if not isinstance(content, str):
        raise DataError(f"baseline answer is not text: {str(content)[:80]!r}")
    return content


def _arena_test(benchmark: Benchmark, root: Path) -> list[Item]:
    records = _records(benchmark, root, "test")
    rel = Path(benchmark.local_test_file or "arenahardwriting/question.jsonl").parent / ARENA_BASELINE_FILE
    path = root / rel
    if not path.is_file():
        raise DataError(f"{benchmark.id}: the baseline answers {path} are missing (needed by the pairwise judge)")
    baseline: dict[str, str] = {}
    for n, rec in enumerate(_read_jsonl(path)):
        msgs = rec.get("messages") or []
        if not msgs or msgs[-1].get("role") != "assistant":
            raise DataError(f"{path}:{n + 1}: no assistant message")
        baseline[str(rec.get("uid"))] = _answer_text(msgs[-1].get("content"))
    items = []
    for i, rec in enumerate(records):
        where = f"{benchmark.id} #{i}"
        uid = _field(rec, "uid", where=where)
        if uid not in baseline:
            raise DataError(f"{where}: no baseline answer for question {uid!r} in {path}")
        items.append(
            Item(
                id=f"arena-{uid}",
                input=_field(rec, "prompt", where=where),
                target="",
                metadata={"uid": uid, "baseline_answer": baseline[uid]},
            )
        )
    return items


def _healthbench_test(benchmark: Benchmark, root: Path) -> list[Item]:
    items = []
    for i, rec in enumerate(_records(benchmark, root, "test")):
        where = f"{benchmark.id} #{i}"
        pid = _field(rec, "prompt_id", where=where)
        turns = rec.get("prompt")
        rubrics = rec.get("rubrics")
        if not (isinstance(turns, list) and turns and turns[-1].get("role") == "user"):
            raise DataError(f"{where}: 'prompt' must be chat turns ending with a user turn")
        if not (isinstance(rubrics, list) and rubrics and all("criterion" in r and "points" in r for r in rubrics)):
            raise DataError(f"{where}: 'rubrics' must be a list of {{criterion, points}}")
        context = tuple(ChatTurn(role=t["role"], content=t["content"]) for t in turns[:-1])
        items.append(
            Item(
                id=f"healthbench-{pid}",
                input=str(turns[-1]["content"]),
                target="",
                context=context,
                metadata={
                    "conversation": [{"role": t["role"], "content": t["content"]} for t in turns],
                    "rubrics": [{"criterion": r["criterion"], "points": r["points"]} for r in rubrics],
                },
            )
        )
    return items


_TEST_LOADERS: dict[str, Callable[[Benchmark, Path], list[Item]]] = {
    "gsm8k": _gsm8k_test,
    "gsm8k-calc": _calc_test,
    "aime2025": _aime_test,
    "humaneval": _humaneval_test,
    "gpqamain": _gpqa_test,
    "bfcl": _bfcl_test,
    "arenahardwriting": _arena_test,
    "healthbench": _healthbench_test,
}
_TRAIN_LOADERS: dict[str, Callable[[Benchmark, Path], list[dict[str, str]]]] = {
    "gsm8k": _gsm8k_train,
    "gsm8k-calc": _calc_train,
}
