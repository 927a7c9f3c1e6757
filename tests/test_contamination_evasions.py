"""The contamination scan against hidden test items: every container, encoding and name an agent
could hide them under is decoded by content, and the same transforms of allowed data stay clean.

Real GSM8K items and train split, real compressors and archivers, a real (tiny, character-level)
tokenizer for token ids; each attack has its honest control in the same test.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zstandard

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.domain import VerdictStatus
from posttrainbench.integrity import ContaminationIndex, build_index, scan
from posttrainbench.integrity.contamination import IncrementalScan
from posttrainbench.integrity.contamination.decode import Limits
from posttrainbench.integrity.contamination.token_ids import load_id_decoder
from posttrainbench.models.tiny import build_tiny_model

FAIL, PASS, NOT_RUN = VerdictStatus.failed, VerdictStatus.passed, VerdictStatus.not_run


@pytest.fixture(scope="module")
def g(tmp_path_factory) -> dict:
    bench = get_benchmark("gsm8k")
    items = bench.load_test_items()[:120]
    train = bench.load_train_examples()[:1500]
    index = build_index(
        [(it.id, it.test_text()) for it in items],
        [e["prompt"] + "\n" + e["completion"] for e in train],
        pairs=[(it.id, it.input, it.target) for it in items],
    )
    stolen = items[10:14]
    rows = "".join(json.dumps({"question": _q(it), "answer": it.target}) + "\n" for it in stolen).encode()
    honest = "".join(json.dumps({"prompt": e["prompt"], "completion": e["completion"]}) + "\n" for e in train).encode()
    return {"index": index, "items": items, "stolen": {it.id for it in stolen}, "rows": rows, "honest": honest}


def _q(item) -> str:
    return item.input.partition("\n\n")[2]


def _scan(index: ContaminationIndex, ws: Path, **kw) -> tuple[VerdictStatus, dict]:
    ev = ws.parent / f"ev-{ws.name}"
    v = scan(index, [ws], ev, **kw)
    return v.status, json.loads(Path(v.evidence[0]).read_text())


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TRANSFORMS = {
    "gzip under a weights name (model.bin)": ("model.bin", lambda d: gzip.compress(d)),
    "bz2 (no suffix)": ("blob", bz2.compress),
    "xz (.safetensors name)": ("shard.safetensors", lzma.compress),
    "zstd": ("data.zst", lambda d: zstandard.ZstdCompressor().compress(d)),
    "zip, nested in tar.gz": ("bundle.tgz", lambda d: _tar({"inner.zip": _zip({"a/train.jsonl": d})})),
    "wheel": ("pkg-1.0-py3-none-any.whl", lambda d: _zip({"pkg/data.json": d, "pkg/__init__.py": b""})),
    "base64 inside JSON": ("cfg.json", lambda d: json.dumps({"blob": base64.b64encode(d).decode()}).encode()),
    "base64 of gzip, MIME lines": (
        "notes.txt",
        lambda d: base64.encodebytes(gzip.compress(d)),
    ),
    "hex": ("x.hex", lambda d: d.hex().encode()),
    "base32": ("x.b32", lambda d: base64.b32encode(d)),
    "UTF-16 with BOM": ("u16.txt", lambda d: d.decode().encode("utf-16")),
    "UTF-16-LE without BOM (.pt)": ("w.pt", lambda d: d.decode().encode("utf-16-le")),
    "UTF-32-BE": ("u32", lambda d: d.decode().encode("utf-32-be")),
    "JSON \\u escapes": ("esc.json", lambda d: json.dumps(d.decode(), ensure_ascii=False).encode()),
    "every char \\u-escaped": ("esc2.json", lambda d: "".join(f"\\u{ord(c):04x}" for c in d.decode()).encode()),
    "between random bytes (.bin)": ("noise.bin", lambda d: _noise(300_000) + d + _noise(300_000)),
    "an F32 tensor of a safetensors file": ("model.safetensors", lambda d: _safetensors_f32(d)),
    "npy of strings": ("arr.npy", lambda d: _npy(np.array(d.decode().splitlines()))),
    "npz of char codes (float32)": ("arr.npz", lambda d: _npz(np.frombuffer(d, np.uint8).astype(np.float32))),
}


def _noise(n: int) -> bytes:
    return np.random.default_rng(n).bytes(n)


def _safetensors_f32(d: bytes) -> bytes:
    d = d + b" " * (-len(d) % 4)
    noise = np.random.default_rng(0).standard_normal(100_000).astype(np.float32).tobytes()
    header = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [len(noise) // 4], "data_offsets": [0, len(noise)]},
            "b": {"dtype": "F32", "shape": [len(d) // 4], "data_offsets": [len(noise), len(noise) + len(d)]},
        }
    ).encode()
    return len(header).to_bytes(8, "little") + header + noise + d


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _npz(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, x=a)
    return buf.getvalue()


@pytest.mark.parametrize("how", list(TRANSFORMS))
def test_hidden_items_are_found_and_the_same_transform_of_allowed_data_is_clean(g, tmp_path: Path, how: str) -> None:
    name, f = TRANSFORMS[how]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / name).write_bytes(f(g["honest"][:200_000] + g["rows"]))
    status, ev = _scan(g["index"], tmp_path / "bad")
    assert status == FAIL, ev["decode_errors"]
    assert set(ev["hit_items"]) == g["stolen"], ev["hits"]
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / name).write_bytes(f(g["honest"]))
    status, ev = _scan(g["index"], tmp_path / "ok")
    assert status == PASS and ev["hit_items"] == [], ev["hits"][:3]


def test_parquet_rows_and_token_ids(g, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    model = build_tiny_model(tmp_path / "tiny")
    decode, vocab = load_id_decoder(model)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    stolen = [it for it in g["items"] if it.id in g["stolen"]]
    texts = [f"{_q(it)}\n{it.target}" for it in stolen]
    ids = [tok.encode(t) for t in texts]
    ws = tmp_path / "ws"
    ws.mkdir()
    # token ids: a parquet column of id lists, an int32 train.bin, a JSON list
    pq.write_table(pa.table({"input_ids": [ids[0]]}), ws / "tokens.parquet")
    np.array(ids[1], dtype=np.int32).tofile(ws / "train.bin")
    (ws / "ids.json").write_text(json.dumps({"ids": ids[2]}))
    # a question column and an answer column (rows keep them together)
    pq.write_table(pa.table({"q": [_q(stolen[3])], "a": [stolen[3].target]}), ws / "qa.parquet")
    status, ev = _scan(g["index"], ws, decode_ids=decode, vocab_size=vocab)
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"], ev["hits"]
    # without the tokenizer the ids are numbers only: the three id files are not hits
    status, ev = _scan(g["index"], ws)
    assert set(ev["hit_items"]) == {stolen[3].id}
    # honest: the allowed data tokenised the same ways
    honest_ids = tok.encode(g["honest"][:60_000].decode())
    ok = tmp_path / "ok"
    ok.mkdir()
    np.array(honest_ids, dtype=np.int32).tofile(ok / "train.bin")
    (ok / "ids.json").write_text(json.dumps(honest_ids))
    status, ev = _scan(g["index"], ok, decode_ids=decode, vocab_size=vocab)
    assert status == PASS and ev["hit_items"] == [] and ev["decoded_layers"]["token-id list"] >= 1


def test_a_table_of_question_prefixes_and_answers_is_a_hit(g, tmp_path: Path) -> None:
    items = g["items"][40:70]
    table = {" ".join(_q(it).split()[:12]): it.target for it in items}
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lookup.py").write_text("ANSWERS = " + json.dumps(table, indent=1) + "\n")
    status, ev = _scan(g["index"], ws)
    assert status == FAIL
    assert len(set(ev["pair_hit_items"]) & {it.id for it in items}) >= 27, ev["hits"]
    assert set(ev["hit_items"]) <= {it.id for it in items}
    # the prefixes with wrong answers, or the answers alone, are not hits
    (ws / "lookup.py").write_text(
        "ANSWERS = " + json.dumps({k: str(int(v) + 1) if v.isdigit() else "x" for k, v in table.items()}) + "\n"
    )
    (ws / "answers.txt").write_text("\n".join(it.target for it in items))
    status, ev = _scan(g["index"], ws)
    assert status == PASS, ev["hits"]


def test_bomb_limits_make_the_gate_not_run_never_pass(g, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "bomb.gz").write_bytes(gzip.compress(b"\n" * (8 << 20)))
    inc = IncrementalScan(g["index"], tmp_path / "ev", limits=Limits(max_ratio=10, min_budget=1 << 20))
    v = scan(g["index"], [ws], tmp_path / "ev", incremental=inc)
    assert v.status == NOT_RUN and "bomb.gz" in v.summary
    deep = g["rows"]
    for _ in range(10):
        deep = gzip.compress(deep)
    (ws / "bomb.gz").write_bytes(deep)
    v = scan(g["index"], [ws], tmp_path / "ev2")
    assert v.status == NOT_RUN and "nesting deeper" in v.summary
    # the same limits never hide a hit elsewhere: fail beats not_run
    (ws / "x.jsonl").write_bytes(g["rows"])
    assert scan(g["index"], [ws], tmp_path / "ev3").status == FAIL


def test_incremental_feed_sees_deleted_content_and_rescans_cost_what_changed(g, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "honest.jsonl").write_bytes(g["honest"])
    inc = IncrementalScan(g["index"], tmp_path / "ev")
    # the observer feeds a file written during the run, which the agent deletes before exiting
    doomed = ws / "tmp_data.bin"
    doomed.write_bytes(gzip.compress(g["rows"]))
    res = inc.feed_path(doomed)
    assert res is not None and {h["item_id"] for h in res.hits} == g["stolen"]
    doomed.unlink()
    with open(ws / "honest.jsonl", "rb") as fh:  # a stream (e.g. a pipe's content), no path
        assert inc.feed("pipe:1", fh).hits == []
    v = scan(g["index"], [ws], tmp_path / "ev", incremental=inc)
    assert v.status == FAIL and set(json.loads(Path(v.evidence[0]).read_text())["hit_items"]) == g["stolen"]
    # a second pass over the unchanged tree reads nothing; a changed file is read again
    before = inc.report()["bytes_scanned"]
    scan(g["index"], [ws], tmp_path / "ev", incremental=inc)
    assert inc.report()["bytes_scanned"] == before and inc.memo_hits >= 1
    (ws / "honest.jsonl").write_bytes(g["honest"] + g["rows"])
    scan(g["index"], [ws], tmp_path / "ev", incremental=inc)
    assert inc.report()["bytes_scanned"] == before + len(g["honest"]) + len(g["rows"])
    # honest control: the same feeds of allowed data alone pass
    clean = IncrementalScan(g["index"], tmp_path / "ev-clean")
    with open(ws / "honest.jsonl", "rb") as fh:
        clean.feed("pipe:1", io.BytesIO(fh.read()[: len(g["honest"])]))
    assert clean.verdict().status == PASS


def test_the_gate_scans_the_sandbox_tmp_and_copies_of_the_dev_items(g, tmp_path: Path) -> None:
    """Through the gate: the run folder's sandbox /tmp is a scan root; the untouched harness dev
    file is not scanned (its use in place is the memorisation probe's), a copy of it is a hit."""
    from posttrainbench.data import write_dev_file
    from posttrainbench.fsutil import sha256_file
    from posttrainbench.integrity import AuditPolicy, ContaminationSources, GateContext
    from posttrainbench.integrity.gates import ContaminationGate
    from posttrainbench.results.layout import RunPaths

    paths = RunPaths(tmp_path / "run")
    ws = paths.workspace
    (ws / "task").mkdir(parents=True)
    dev = g["items"][:20]
    write_dev_file(ws / "task" / "dev.jsonl", dev)
    (ws / "data").mkdir()
    (ws / "data" / "train.jsonl").write_bytes(g["honest"])
    model = build_tiny_model(tmp_path / "tiny")
    items = g["items"]
    sources = ContaminationSources(
        items=[(it.id, it.test_text()) for it in items],
        allowed=[json.loads(r)["prompt"] + "\n" + json.loads(r)["completion"] for r in g["honest"].splitlines()],
        covered=["gsm8k"],
        pairs=[(it.id, it.input, it.target) for it in items],
    )

    def check() -> tuple[VerdictStatus, dict]:
        ctx = GateContext(
            evidence_dir=paths.evidence,
            workspace=ws,
            manifest={"task/dev.jsonl": sha256_file(ws / "task" / "dev.jsonl")},
            base=g_base(),
            trace_path=paths.trace_json,
            audit_policy=AuditPolicy(),
            base_model_path=model,
            contamination=sources,
            sandbox_tmp=paths.sandbox_tmp,
            contamination_observed=paths.contamination_observed,
        )
        v = ContaminationGate().check(ctx)
        return v.status, json.loads(Path(v.evidence[0]).read_text()) if v.evidence else {}

    status, ev = check()
    assert status == PASS, ev.get("hits")
    assert str(ws / "task" / "dev.jsonl") not in ev["files_scanned"] and ev["token_ids_decoded"]
    paths.sandbox_tmp.mkdir()
    (paths.sandbox_tmp / "cache.bin").write_bytes(gzip.compress(g["rows"]))
    status, ev = check()
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"]
    assert all(h["file"].startswith(str(paths.sandbox_tmp)) for h in ev["hits"])
    (paths.sandbox_tmp / "cache.bin").unlink()
    # written and deleted during the run: what the observer fed and saved is loaded by the gate
    observer = IncrementalScan(build_index(sources.items, sources.allowed, pairs=sources.pairs))
    observer.feed("/workspace/data/gone.jsonl", io.BytesIO(g["rows"]))
    observer.save_results(paths.contamination_observed)
    status, ev = check()
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"]
    assert {h["file"] for h in ev["hits"]} == {"/workspace/data/gone.jsonl"}
    paths.contamination_observed.unlink()
    (ws / "data" / "more.jsonl").write_bytes((ws / "task" / "dev.jsonl").read_bytes())
    status, ev = check()
    assert status == FAIL and set(ev["hit_items"]) == {it.id for it in dev}


def g_base():
    from posttrainbench.domain import BaseModelSpec

    return BaseModelSpec(hub_id="ptb/tiny", family="tiny", chat_template="plain")
