"""Benchmarks as units: a new benchmark is one module (``toy_benchmark.py``) plus its data, and runs
end to end through ``evaluate_model``; the registry's lookups, refusals and scoping; every
built-in benchmark is one registered module; the machinery never imports the benchmarks."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model

import posttrainbench
from posttrainbench.benchmarks import BENCHMARKS, BenchmarkDefinition, get_benchmark, register_benchmark
from posttrainbench.catalog import UnknownNameError, get_base_model
from posttrainbench.data import Item
from posttrainbench.evaluation import build_task, check_log, evaluate_model
from posttrainbench.models.tiny import build_tiny_model

FIXTURES = Path(__file__).parent / "fixtures" / "data"
TINY = get_base_model("ptb/tiny-random")
SRC = Path(posttrainbench.__file__).parent
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}


@pytest.fixture
def toy() -> Iterator[BenchmarkDefinition]:
    """The toy benchmark, registered by importing its module, for the duration of one test."""
    with BENCHMARKS.scoped():
        sys.modules.pop("toy_benchmark", None)
        importlib.import_module("toy_benchmark")
        yield get_benchmark("toy-parity")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_a_new_benchmark_runs_end_to_end_on_the_tiny_model(
    toy: BenchmarkDefinition, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_DATA_DIR", str(FIXTURES))
    dev = toy.dev_items(toy.load_test_items())
    res = evaluate_model(tiny, toy, TINY, tmp_path, batch_size=4, heldout_exclude=[it.id for it in dev])
    assert res.status == "ok", res.error
    assert (res.benchmark, res.metric, res.n_scored, res.n_expected) == ("toy-parity", "accuracy", 12, 12)
    assert res.max_tokens_used == 8 and res.decoding.max_tokens == 8
    assert res.data is not None and res.data.status == "pinned"
    assert res.data.sources == [f"file:{FIXTURES / 'toy-parity' / 'test.jsonl'}"]
    assert (res.n_dev_excluded, res.n_heldout) == (4, 8)
    # every sample was scored by the toy's own rule, and the headline number is their mean
    samples = read_eval_log(res.log_path).samples
    verdicts = [toy.score_reply(s.output.completion, str(s.target))[0] for s in samples]
    assert [s.scores["ptb_answer"].value == "C" for s in samples] == verdicts
    assert res.score == pytest.approx(sum(verdicts) / 12)


def _mock_reply(items: list[Item], reply_for) -> Model:
    def reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        item = next(it for it in items if it.input == input[-1].text)
        out = ModelOutput.from_content("mockllm/model", reply_for(item))
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return out

    return get_model("mockllm/model", custom_outputs=reply, memoize=False)


def test_the_new_benchmark_is_scored_and_rescored_by_its_own_rule(toy: BenchmarkDefinition, tmp_path: Path) -> None:
    items = toy.load_test_items(FIXTURES)

    def reply_for(it: Item) -> str:
        # "Odd, since 17 = 2*8 + 1": right by the toy's rule, wrong by the default (final number) one
        n = it.metadata["n"]
        return "I cannot tell." if it is items[0] else f"{it.target.capitalize()}, since {n} = 2*{n // 2} + {n % 2}"

    model = _mock_reply(items, reply_for)
    elog = inspect_eval(build_task(toy, items), model=model, log_dir=str(tmp_path), **EVAL_KW)[0]
    assert elog.status == "success"
    check = check_log(elog.location, toy, [it.id for it in items])
    assert check.ok, check.problems
    assert check.score == check.reported_score == pytest.approx(11 / 12)
    assert toy.score_reply("Odd, since 17 = 2*8 + 1", "odd") == (True, "odd")
    assert not BenchmarkDefinition.score_reply(toy, "Odd, since 17 = 2*8 + 1", "odd")[0]  # the default rule


def test_the_new_benchmark_has_train_examples_and_a_dev_split(toy: BenchmarkDefinition) -> None:
    items = toy.load_test_items(FIXTURES)
    train = toy.load_train_examples(FIXTURES)
    assert train[0] == {"prompt": "Is 2 even or odd? Reply with one word: even or odd.", "completion": "even"}
    assert items[0].input == "Is 17 even or odd? Reply with one word: even or odd." and items[0].target == "odd"
    assert not {ex["prompt"] for ex in train} & {it.input for it in items}
    dev = toy.dev_items(items)
    assert len(dev) == toy.dev_size == 4 and dev == toy.dev_items(list(items))
    positions = [items.index(it) for it in dev]
    assert positions == sorted(positions)


def test_registry_lookups_and_refusals(toy: BenchmarkDefinition) -> None:
    assert BENCHMARKS["toy-parity"] is toy and isinstance(toy, BenchmarkDefinition)
    assert list(BENCHMARKS)[-1] == "gsm8k-calc"  # paper-style first, demo ones last, each by id
    with pytest.raises(UnknownNameError, match="Did you mean toy-parity"):
        get_benchmark("toy-parit")
    with pytest.raises(ValueError, match=r"'toy-parity' is already registered by toy_benchmark\.ToyParity"):

        @register_benchmark(id="toy-parity", display_name="again", full_size=1, dev_size=1, max_tokens_ladder=(4,))
        class Again(type(toy)):  # type: ignore[misc]  # a base class computed at run time
            pass

    with pytest.raises(ValueError, match="no prompts for protocol 'ptb-v1'; known: strict"):
        toy.messages(toy.load_test_items(FIXTURES)[0], "ptb-v1")


def test_a_benchmark_must_read_its_items() -> None:
    with BENCHMARKS.scoped(), pytest.raises(TypeError, match="read_test_items"):

        @register_benchmark(id="no-items", display_name="No items", full_size=1, dev_size=1, max_tokens_ladder=(4,))
        class NoItems(BenchmarkDefinition):
            pass

    assert "no-items" not in BENCHMARKS


def test_scoped_registration_is_undone() -> None:
    assert "toy-parity" not in BENCHMARKS
    with BENCHMARKS.scoped():
        sys.modules.pop("toy_benchmark", None)
        importlib.import_module("toy_benchmark")
        assert "toy-parity" in BENCHMARKS
    assert "toy-parity" not in BENCHMARKS


def test_every_builtin_benchmark_is_one_registered_module() -> None:
    from inspect_ai._util.registry import registry_lookup

    machinery = {"__init__", "base", "registry", "inspect_tasks"}
    modules = sorted(p.stem for p in (SRC / "benchmarks").glob("*.py") if p.stem not in machinery)
    assert sorted(b.id.replace("-", "_") for b in BENCHMARKS.values()) == modules
    for b in BENCHMARKS.values():
        assert type(b).__module__ == f"posttrainbench.benchmarks.{b.id.replace('-', '_')}"
        task = registry_lookup("task", f"posttrainbench/{b.id.replace('-', '_')}")
        assert task is not None, b.id
    calc = registry_lookup("task", "posttrainbench/gsm8k_calc")(limit=3)  # type: ignore[operator]  # an untyped task factory
    assert len(calc.dataset) == 3 and calc.metadata == {"benchmark": "gsm8k-calc"}
    (entry,) = [e for e in importlib.metadata.entry_points(group="inspect_ai") if e.name == "posttrainbench"]
    assert entry.value == "posttrainbench.benchmarks"


# Packages below the benchmarks: benchmarks import them, so they must never import the benchmarks
# (callers look a benchmark up and pass its definition down).
LOWER = ("domain.py", "catalog", "data", "evaluation", "sandbox", "integrity")
# A caller kept beside the machinery: the agent's evaluate.py, copied into the workspace as a
# file and run there as a script (never imported by the package).
CALLER_SCRIPTS = {"evaluation/workspace_evaluate.py"}


def _imports(path: Path) -> set[str]:
    package = ".".join(("posttrainbench", *path.relative_to(SRC).parent.parts))
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out |= {module} | {f"{module}.{a.name}" for a in node.names}
    return out


def test_the_machinery_never_imports_the_benchmarks() -> None:
    files = [p for name in LOWER for p in ([SRC / name] if name.endswith(".py") else (SRC / name).rglob("*.py"))]
    files = [p for p in files if str(p.relative_to(SRC)) not in CALLER_SCRIPTS]
    assert len(files) > 40
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith("posttrainbench.benchmarks"))
        for p in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    # the scan sees relative imports: a benchmark module's own import of the registry is found
    assert "posttrainbench.benchmarks.registry" in _imports(SRC / "benchmarks" / "gsm8k.py")
