"""Evaluation sets are pinned by content: the shipped files are the pinned sets, and an edited,
truncated or re-ordered set (local file or hub) is refused by the harness with a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.benchmarks import BENCHMARKS, get_benchmark
from posttrainbench.catalog import get_base_model
from posttrainbench.cli import app
from posttrainbench.data import ALLOW_UNPINNED_ENV, DataError, data_root, items_sha256
from posttrainbench.evaluation import evaluate_model

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SHIPPED = ["aime2025", "arenahardwriting", "gsm8k", "gsm8k-calc", "healthbench", "humaneval"]


@pytest.mark.parametrize("bid", SHIPPED)
def test_shipped_data_is_the_pinned_full_set(bid: str) -> None:
    b = get_benchmark(bid)
    items, prov = b.load_test_set()
    assert prov.status == "pinned", prov
    assert prov.n_items == len(items) == b.full_size
    assert prov.items_sha256 == b.items_sha256 == items_sha256(items)
    assert all(s.startswith(f"file:{data_root()}") for s in prov.sources), prov.sources
    assert prov.require() is prov


def test_bfcl_wheel_files_are_the_pinned_set() -> None:
    prov = get_benchmark("bfcl").load_test_set(FIXTURES).provenance  # byte copies of the wheel's files
    assert prov.status == "pinned" and prov.n_items == 100
    assert {Path(s).name for s in prov.sources} == {"BFCL_v4_exec_simple.json"}


def test_every_benchmark_but_gated_gpqa_is_pinned() -> None:
    unpinned = {b.id for b in BENCHMARKS.values() if b.items_sha256 is None}
    assert unpinned == {"gpqamain"}
    prov = get_benchmark("gpqamain").load_test_set(FIXTURES).provenance
    assert prov.status == "unpinned" and prov.problem() is None  # recorded, not refused


def _copy_aime(root: Path) -> Path:
    (root / "aime2025").mkdir(parents=True)
    return Path(shutil.copy(data_root() / "aime2025" / "test.jsonl", root / "aime2025" / "test.jsonl"))


@pytest.mark.parametrize("edit", ["answer", "truncate", "reorder", "question"])
def test_edited_set_differs_from_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    lines = _copy_aime(tmp_path).read_text().splitlines(keepends=True)
    if edit == "answer":
        rec = json.loads(lines[7])
        rec["answer"] = str(int(rec["answer"]) + 1)
        lines[7] = json.dumps(rec) + "\n"
    elif edit == "truncate":
        lines = lines[:-1]
    elif edit == "reorder":
        lines[0], lines[1] = lines[1], lines[0]
    else:  # a changed prompt is a changed question
        rec = json.loads(lines[3])
        rec["problem"] = rec["problem"].replace("Find", "Compute", 1)
        assert rec["problem"] != json.loads(lines[3])["problem"]
        lines[3] = json.dumps(rec) + "\n"
    (tmp_path / "aime2025" / "test.jsonl").write_text("".join(lines))
    monkeypatch.delenv(ALLOW_UNPINNED_ENV, raising=False)
    prov = get_benchmark("aime2025").load_test_set(tmp_path).provenance
    assert prov.status == "differs" and prov.items_sha256 != prov.pinned_sha256
    with pytest.raises(DataError, match="is not the pinned one") as err:
        prov.require()
    assert ALLOW_UNPINNED_ENV in str(err.value) and str(tmp_path) in str(err.value)
    if edit == "truncate":
        assert "(29 items, the benchmark has 30)" in str(err.value)
    monkeypatch.setenv(ALLOW_UNPINNED_ENV, "1")  # an explicit, recorded override
    allowed = get_benchmark("aime2025").load_test_set(tmp_path).provenance
    assert allowed.status == "differs" and allowed.allowed_by_env and allowed.require() is allowed


def _copy_gsm8k(root: Path) -> Path:
    (root / "gsm8k").mkdir(parents=True)
    for split in ("test", "train"):
        shutil.copy(data_root() / "gsm8k" / f"{split}.jsonl", root / "gsm8k" / f"{split}.jsonl")
    return root / "gsm8k"


def test_few_shot_turns_are_pinned_when_used_and_a_zero_shot_baseline_is_not_refused(tmp_path: Path) -> None:
    gsm8k = get_benchmark("gsm8k")
    shipped = gsm8k.load_test_set().provenance
    assert shipped.fewshot_sha256 == gsm8k.fewshot_sha256 and shipped.status == "pinned"
    folder = _copy_gsm8k(tmp_path)
    lines = (folder / "train.jsonl").read_text().splitlines(keepends=True)
    rec = json.loads(lines[2])  # the third of the 10 few-shot examples
    rec["answer"] = rec["answer"].replace("####", "#### 1", 1)
    lines[2] = json.dumps(rec) + "\n"
    (folder / "train.jsonl").write_text("".join(lines))
    prov = gsm8k.load_test_set(tmp_path).provenance
    assert prov.items_sha256 == gsm8k.items_sha256  # the test items themselves are unchanged
    assert prov.status == "differs" and "few-shot turns" in (prov.problem() or "")
    # ptb baseline evaluates zero-shot: the same pinned test items, no few-shot turns to check
    zero = gsm8k.model_copy(update={"fewshot": 0})
    for root in (None, tmp_path):
        z = zero.load_test_set(root).provenance
        assert z.status == "pinned" and z.fewshot_sha256 is None and z.items_sha256 == gsm8k.items_sha256


def test_the_harness_refuses_to_score_an_edited_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy_aime(tmp_path / "data")
    path.write_text(path.read_text().replace('"answer":"70"', '"answer":"71"', 1))
    monkeypatch.setenv("PTB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(ALLOW_UNPINNED_ENV, raising=False)
    result = evaluate_model(
        tmp_path / "model", get_benchmark("aime2025"), get_base_model("Qwen/Qwen3-1.7B-Base"), tmp_path / "eval"
    )
    assert result.status == "failed" and result.error.startswith("data: aime2025:")
    assert "not the pinned one" in result.error
    assert result.data is not None and result.data.status == "differs"  # recorded with the failure
    assert result.to_metrics_json()["data"]["items_sha256"] == result.data.items_sha256


def test_hub_path_gives_the_same_pinned_set(tmp_path: Path) -> None:
    """The hub branch (``datasets.load_dataset``) on a dataset folder laid out like the hub's gives
    exactly the set the local files give: same digest, same pin."""
    repo = tmp_path / "gsm8k-hub"
    repo.mkdir()
    for split in ("test", "train"):
        shutil.copy(data_root() / "gsm8k" / f"{split}.jsonl", repo / f"{split}.jsonl")
    bench = get_benchmark("gsm8k").model_copy(update={"hub_id": str(repo), "hub_config": None})
    items, prov = bench.load_test_set(tmp_path / "no-local-files")
    assert prov.status == "pinned" and len(items) == 1319
    assert prov.sources == [f"hub:{repo}@unresolved:test", f"hub:{repo}@unresolved:train"]
    assert items == get_benchmark("gsm8k").load_test_items()


def test_ptb_data_check_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "check", "aime2025", "humaneval", "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [(r["benchmark"], r["status"]) for r in rows] == [("aime2025", "pinned"), ("humaneval", "pinned")]
    path = _copy_aime(tmp_path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:10]))
    monkeypatch.setenv("PTB_DATA_DIR", str(tmp_path))
    res = runner.invoke(app, ["data", "check", "aime2025"])
    assert res.exit_code == 1 and "differs" in res.output
    res = runner.invoke(app, ["data", "check", "gpqamain", "--local-only", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["status"] == "missing"
