"""Dataset loaders: shipped GSM8K files, gsm8k-calc derivation, dev subset, errors. No network."""

from __future__ import annotations

import json

import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.gsm8k import gsm8k_completion, gsm8k_reference_answer
from posttrainbench.benchmarks.gsm8k_calc import calc_key, calc_steps
from posttrainbench.data import DataError, Item, data_root, read_items_file, write_dev_file

GSM8K = get_benchmark("gsm8k")
CALC = get_benchmark("gsm8k-calc")


@pytest.fixture(scope="module")
def calc_items() -> list[Item]:
    return CALC.load_test_items()


@pytest.fixture(scope="module")
def calc_train() -> list[dict[str, str]]:
    return CALC.load_train_examples()


def test_data_root_defaults_to_shipped_resources_and_env_overrides(tmp_path, monkeypatch):
    root = data_root()
    assert (root / "gsm8k" / "test.jsonl").is_file()
    assert (root / "gsm8k" / "LICENSE").is_file()
    assert "shared" not in root.parts
    monkeypatch.setenv("PTB_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path


def test_gsm8k_test_items():
    items = GSM8K.load_test_items()
    assert len(items) == GSM8K.full_size == 1319
    assert len({it.id for it in items}) == len(items)
    first = items[0]
    assert first.target == "18"
    assert "Janet" in first.input and "The answer is N." in first.input
    assert "####" not in first.input
    # 10-shot from the train split, as chat turns in the train examples' exact wording
    train = GSM8K.load_train_examples()
    assert len(first.fewshot) == 2 * GSM8K.fewshot
    assert [t.role for t in first.fewshot[:2]] == ["user", "assistant"]
    assert first.fewshot[0].content == train[0]["prompt"]
    assert first.fewshot[1].content == train[0]["completion"]
    test_questions = {it.input for it in items}
    assert not any(t.content in test_questions for t in first.fewshot)


def test_gsm8k_train_examples_are_the_evaluated_format():
    train = GSM8K.load_train_examples()
    assert len(train) == 7473
    for ex in train:
        assert set(ex) == {"prompt", "completion"}
        assert "<<" not in ex["completion"] and "####" not in ex["completion"]
        assert ex["completion"].rsplit("\n", 1)[-1].startswith("The answer is ")
        assert ex["completion"].endswith(".")
    assert train[0]["completion"].endswith("The answer is 72.")
    # the prompt of a train example is built exactly like an evaluation item's input
    assert train[0]["prompt"].split("\n\n")[0] == GSM8K.load_test_items()[0].input.split("\n\n")[0]


def test_gsm8k_answer_parsing():
    sol = "He pays 2*500=<<2*500=1000>>1,000 dollars.\n#### 1,000"
    assert gsm8k_reference_answer(sol) == "1000"
    assert gsm8k_completion(sol) == "He pays 2*500=1,000 dollars.\nThe answer is 1000."
    assert gsm8k_reference_answer("x\n#### -3.5") == "-3.5"
    with pytest.raises(ValueError, match="####"):
        gsm8k_reference_answer("no final line")


def test_calc_steps_parsing():
    assert calc_steps("a <<48/2=24>>24 b <<24+48=72>>72") == [("48/2", "24"), ("24+48", "72")]
    assert calc_steps("<<3/4=3/4>>") == []  # result not a plain number: not an item
    assert calc_key(" 2 + 1 ") == calc_key("2+1")


def test_calc_items_are_unique_steps_in_file_order(calc_items):
    assert len(calc_items) == CALC.full_size == 200
    assert calc_items[0].input == "Calculate 16-3-4. Reply with the number only."
    assert calc_items[0].target == "9"
    assert calc_items[1].metadata["expr"] == "9*2" and calc_items[1].target == "18"
    keys = [calc_key(it.metadata["expr"]) for it in calc_items]
    assert len(set(keys)) == len(keys)
    indices = [it.metadata["gsm8k_test_index"] for it in calc_items]
    assert indices == sorted(indices)
    assert all(it.fewshot == () for it in calc_items)


def test_calc_train_has_no_test_item(calc_items, calc_train):
    assert len(calc_train) > 5000
    train_prompts = {ex["prompt"] for ex in calc_train}
    assert not train_prompts & {it.input for it in calc_items}
    # nor any other step of the whole test split
    test_keys = set()
    for line in (data_root() / "gsm8k" / "test.jsonl").read_text().splitlines():
        test_keys |= {calc_key(e) for e, _ in calc_steps(json.loads(line)["answer"])}
    train_keys = {
        calc_key(ex["prompt"][len("Calculate ") : -len(". Reply with the number only.")]) for ex in calc_train
    }
    assert not train_keys & test_keys
    assert len(train_keys) == len(calc_train)  # de-duplicated
    for ex in calc_train:
        float(ex["completion"].replace(",", ""))  # every target is a plain number
    assert calc_train[0]["prompt"].startswith("Calculate ") and calc_train[0]["prompt"].endswith(
        ". Reply with the number only."
    )


def test_dev_items_deterministic_subset(calc_items):
    dev = CALC.dev_items(calc_items)
    assert len(dev) == CALC.dev_size
    assert dev == CALC.dev_items(list(calc_items))
    ids = [it.id for it in calc_items]
    positions = [ids.index(it.id) for it in dev]
    assert positions == sorted(positions)
    assert dev != calc_items[: CALC.dev_size]
    assert len(CALC.dev_items(calc_items[:7])) == 7


def test_dev_file_round_trip(tmp_path):
    items = GSM8K.load_test_items()[:3]
    path = tmp_path / "task" / "dev.jsonl"
    write_dev_file(path, items)
    assert read_items_file(path) == items
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"dev\.jsonl:4"):
        read_items_file(path)
    with pytest.raises(DataError, match="does not exist"):
        read_items_file(tmp_path / "missing.jsonl")


def test_missing_local_file_without_hub_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PTB_DATA_DIR", str(tmp_path))
    bench = GSM8K.model_copy(update={"hub_id": None})
    with pytest.raises(DataError) as err:
        bench.load_test_items()
    msg = str(err.value)
    assert str(tmp_path / "gsm8k" / "test.jsonl") in msg and "PTB_DATA_DIR" in msg


def test_hub_fallback_uses_pinned_source(tmp_path, monkeypatch):
    import datasets

    calls = []
    rows = [{"question": "Q?", "answer": "1+1=<<1+1=2>>2\n#### 2"}]

    def fake_load_dataset(hub_id, config, split, revision):
        calls.append((hub_id, config, split, revision))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    pinned = GSM8K.model_copy(update={"hub_revision": "abc123"})
    items = pinned.load_test_items(root=tmp_path)
    assert [it.target for it in items] == ["2"]
    assert ("openai/gsm8k", "main", "test", "abc123") in calls
    assert ("openai/gsm8k", "main", "train", "abc123") in calls  # few-shot source
    calc = CALC.load_test_items(root=tmp_path)  # gsm8k-calc derives from the gsm8k hub entry
    assert [(it.input, it.target) for it in calc] == [("Calculate 1+1. Reply with the number only.", "2")]


def test_hub_failure_is_a_clear_error(tmp_path, monkeypatch):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="PTB_DATA_DIR") as err:
        GSM8K.load_test_items(root=tmp_path)
    assert "openai/gsm8k" in str(err.value) and "no network" in str(err.value)


def test_aime_local_file(tmp_path):
    (tmp_path / "aime2025").mkdir()
    (tmp_path / "aime2025" / "test.jsonl").write_text(
        json.dumps({"problem": "Find 2+2.", "answer": "4"})
        + "\n"
        + json.dumps({"problem": "P2", "answer": "70"})
        + "\n"
    )
    items = get_benchmark("aime2025").load_test_items(root=tmp_path)
    assert [it.target for it in items] == ["4", "70"]
    assert items[0].input.endswith("Find 2+2.")
    with pytest.raises(DataError, match="no training examples"):
        get_benchmark("aime2025").load_train_examples()


def test_corrupt_local_file(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{oops\n')
    (tmp_path / "gsm8k" / "train.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"test.jsonl:2: invalid JSON"):
        GSM8K.load_test_items(root=tmp_path)
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q"}\n')
    with pytest.raises(DataError, match="answer"):
        GSM8K.load_test_items(root=tmp_path)


# sha256 of openai/gsm8k main test/train as published (identical to ../shared/data/gsm8k).
GSM8K_SHA256 = {
    "test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    "train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
}


def test_shipped_files_are_the_published_gsm8k():
    import hashlib

    for name, digest in GSM8K_SHA256.items():
        assert hashlib.sha256((data_root() / "gsm8k" / name).read_bytes()).hexdigest() == digest, name
