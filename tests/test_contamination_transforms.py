"""Reversible transforms of test items (issue 13, part "evade"): every family that keeps each byte
of an item but changes its tokens is recovered by content, and the same transform of the allowed
training data stays clean.

Real GSM8K items and train split; each transform is what an agent could write to disk and undo in
memory before training (so the file alone must give it away). Each attack has its honest control
in the same test.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import gzip
import io
import json
import lzma
import os
import pickle
import urllib.parse
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.domain import VerdictStatus
from posttrainbench.integrity import ContaminationIndex, build_index, scan
from posttrainbench.integrity.contamination import transforms

FAIL, PASS = VerdictStatus.failed, VerdictStatus.passed


@pytest.fixture(scope="module")
def g() -> dict:
    bench = get_benchmark("gsm8k")
    items = bench.load_test_items()[:60]
    train = bench.load_train_examples()[:800]
    index = build_index(
        [(it.id, it.test_text()) for it in items],
        [e["prompt"] + "\n" + e["completion"] for e in train],
        pairs=[(it.id, it.input, it.target) for it in items],
    )
    stolen = items[10:14]
    rows = "".join(
        json.dumps({"question": it.input.partition("\n\n")[2], "answer": it.target}) + "\n" for it in stolen
    ).encode()
    honest = "".join(json.dumps({"prompt": e["prompt"], "completion": e["completion"]}) + "\n" for e in train)
    return {"index": index, "stolen": {it.id for it in stolen}, "rows": rows, "honest": honest.encode()[:120_000]}


def _rot(d: bytes, k: int) -> bytes:
    return d.translate(transforms._ROT[(26 - k) % 26])


def _xor(d: bytes, k: int) -> bytes:
    return d.translate(transforms._XOR[k])


def _uu(d: bytes) -> bytes:
    return b"".join(binascii.b2a_uu(d[i : i + 45]) for i in range(0, len(d), 45))


def _raw(d: bytes, wbits: int = -15) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return c.compress(d) + c.flush()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _torch_bytes(d: bytes) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"blob": gzip.compress(d)}, buf)  # pickle protocol 2: bytes as Latin-1 text
    return buf.getvalue()


TRANSFORMS: dict[str, Callable[[bytes], bytes]] = {
    # text escapes
    "URL percent-encoding, every byte": lambda d: "".join(f"%{b:02X}" for b in d).encode(),
    "URL quote_plus": lambda d: urllib.parse.quote_plus(d.decode()).encode(),
    "HTML decimal entities": lambda d: "".join(f"&#{ord(c)};" for c in d.decode()).encode(),
    "HTML hex entities": lambda d: "".join(f"&#x{ord(c):x};" for c in d.decode()).encode(),
    "\\x escapes": lambda d: "".join(f"\\x{b:02x}" for b in d).encode(),
    "octal escapes": lambda d: "".join(f"\\{b:03o}" for b in d).encode(),
    "quoted-printable, every byte": lambda d: "".join(f"={b:02X}" for b in d).encode(),
    # numbers as characters
    "JSON list of char codes": lambda d: json.dumps(list(d)).encode(),
    "chr() concatenation": lambda d: "+".join(f"chr({b})" for b in d).encode(),
    "hex bytes with spaces": lambda d: d.hex(" ").encode(),
    "xxd dump": lambda d: b"".join(
        f"{i:08x}: ".encode() + d[i : i + 16].hex(" ", 2).encode() + b"  ....\n" for i in range(0, len(d), 16)
    ),
    # binary-to-text encodings
    "ascii85": base64.a85encode,
    "base85": base64.b85encode,
    "uuencode": _uu,
    "base64 in 32-byte lines": lambda d: b"\n".join(
        base64.b64encode(d)[i : i + 32] for i in range(0, len(base64.b64encode(d)), 32)
    ),
    # byte substitutions
    "ROT13": lambda d: codecs.encode(d.decode(), "rot13").encode(),
    "Caesar shift 7": lambda d: _rot(d, 7),
    "XOR 0x5a": lambda d: _xor(d, 0x5A),
    "XOR 0x01 (stays printable)": lambda d: _xor(d, 0x01),
    "EBCDIC (cp500)": lambda d: d.decode().encode("cp500"),
    "reversed": lambda d: d[::-1],
    # interleaving and look-alikes
    "a dash between characters": lambda d: "\n".join("-".join(line) for line in d.decode().splitlines()).encode(),
    "a character per line": lambda d: "\n".join(d.decode()).encode(),
    "zero-width spaces between characters": lambda d: "\u200b".join(d.decode()).encode(),
    "combining marks between characters": lambda d: "\u0336".join(d.decode()).encode(),
    "full-width forms": lambda d: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in d.decode()).encode(),
    "Cyrillic homoglyphs": lambda d: (
        d.decode().translate(str.maketrans("aeopc", "\u0430\u0435\u043e\u0440\u0441")).encode()
    ),
    # containers without a header, or not at the start
    "raw deflate": _raw,
    "raw LZMA2": lambda d: lzma.compress(d, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]),
    "gzip followed by junk": lambda d: gzip.compress(d) + np.random.default_rng(1).bytes(5000),
    "text appended after a gzip member": lambda d: gzip.compress(b"x" * 1000) + d,
    "zlib": zlib.compress,
    "text appended after a zlib stream": lambda d: zlib.compress(b"x" * 1000) + d,
    "gzip after a junk header": lambda d: np.random.default_rng(2).bytes(5000) + gzip.compress(d),
    "pickle of gzip bytes": lambda d: pickle.dumps(gzip.compress(d), protocol=4),
    "torch.save of gzip bytes": _torch_bytes,
    "gzip of ROT13": lambda d: gzip.compress(codecs.encode(d.decode(), "rot13").encode()),
    # floats holding character codes
    "npy float32 of codes / 255": lambda d: _npy(np.frombuffer(d, np.uint8).astype(np.float32) / 255),
    "raw float32 of codes": lambda d: np.frombuffer(d, np.uint8).astype(np.float32).tobytes(),
}


def _scan(index: ContaminationIndex, ws: Path) -> tuple[VerdictStatus, dict]:
    v = scan(index, [ws], ws.parent / f"ev-{ws.name}")
    return v.status, json.loads(Path(v.evidence[0]).read_text())


@pytest.mark.parametrize("how", list(TRANSFORMS))
def test_transformed_items_are_found_and_the_same_transform_of_allowed_data_is_clean(
    g, tmp_path: Path, how: str
) -> None:
    f = TRANSFORMS[how]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "data.bin").write_bytes(f(g["rows"]))
    status, ev = _scan(g["index"], tmp_path / "bad")
    assert status == FAIL, (ev["decoded_layers"], ev["decode_errors"])
    assert set(ev["hit_items"]) == g["stolen"], ev["hits"]
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "data.bin").write_bytes(f(g["honest"]))
    status, ev = _scan(g["index"], tmp_path / "ok")
    assert status == PASS and ev["hit_items"] == [], (ev["decoded_layers"], ev["hits"][:3])


def test_ordinary_text_triggers_no_recovery() -> None:
    """The necessary conditions hold on none of: English prose, code, numbers, Greek and Chinese
    text, base64 (the scan's own decoder reads it), float weights."""
    rng = np.random.default_rng(0)
    prose = (Path(__file__).parent.parent / "README.md").read_bytes()
    code = Path(transforms.__file__).read_bytes()
    numbers = " ".join(f"{x:.4f}" for x in rng.standard_normal(20_000)).encode()
    greek = ("Η Ελλάδα είναι χώρα της νοτιοανατολικής Ευρώπης. " * 200).encode()  # noqa: RUF001 - honest Greek
    chinese = ("数学是研究数量、结构以及空间等概念的一门学科。" * 300).encode()
    b64 = base64.b64encode(rng.bytes(60_000))
    for block in (prose, code, numbers, greek, chinese, b64):
        arr = np.frombuffer(block, np.uint8)
        assert transforms.text_variants(block, arr) == [], block[:60]
    weights = rng.standard_normal(65_536).astype(np.float32).tobytes()
    assert transforms.binary_variants(weights, np.frombuffer(weights, np.uint8)) == []
    assert transforms.raw_compressed(weights[:4096]) is None
    assert transforms.raw_compressed(os.urandom(4096)) is None


def test_items_kept_in_names_symlink_targets_and_xattrs_are_found(g, tmp_path: Path) -> None:
    """A question as a folder path (a word per component), as file names, as a symlink's target
    and as an extended attribute: the names under the roots are scanned as one text."""
    bench = get_benchmark("gsm8k")
    stolen = [it for it in bench.load_test_items()[:60] if it.id in g["stolen"]]
    qs = [it.input.partition("\n\n")[2].replace("/", " ") for it in stolen]
    ws = tmp_path / "ws"
    ws.joinpath(*qs[0].split()).mkdir(parents=True)
    ws.joinpath(*qs[0].split(), "x.txt").write_text("1")
    (ws / (qs[1][:200] + ".txt")).write_text("1")
    os.symlink(qs[2][:250], ws / "link")
    (ws / "f.txt").write_text("1")
    os.setxattr(ws / "f.txt", "user.note", qs[3].encode())
    status, ev = _scan(g["index"], ws)
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"], ev["hits"]
    assert all(h["file"].startswith("<names under ") for h in ev["hits"])
    # honest: a project's ordinary names (and an xattr) are no hit
    ok = tmp_path / "ok"
    (ok / "src" / "train_utils").mkdir(parents=True)
    (ok / "src" / "train_utils" / "data_loader.py").write_text("x = 1\n")
    os.setxattr(ok / "src" / "train_utils" / "data_loader.py", "user.origin", b"https://example.org/data")
    status, ev = _scan(g["index"], ok)
    assert status == PASS, ev["hits"]


def test_items_typed_into_commands_are_found_through_the_gate(g, tmp_path: Path) -> None:
    """Test items an agent writes from memory into a heredoc or a ``python -c`` and trains on in
    memory leave no file: the gate scans the trace's tool-call inputs and the observed argv. Tool
    outputs (an honest ``cat task/dev.jsonl``) and the harness's own command line are not read."""
    from posttrainbench.domain import BaseModelSpec
    from posttrainbench.integrity import AuditPolicy, ContaminationSources, GateContext
    from posttrainbench.integrity.gates import ContaminationGate
    from posttrainbench.trace import ToolCall, ToolResult, Trace, TraceStep, save_trace

    bench = get_benchmark("gsm8k")
    items = bench.load_test_items()[:60]
    stolen = [it for it in items if it.id in g["stolen"]]
    rows = [json.dumps({"q": it.input.partition("\n\n")[2], "a": it.target}) for it in stolen]
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "train.py").write_text("print('training')\n")
    dev_text = "\n".join(rows)  # what an honest `cat` of the dev file prints: a tool *output*

    def check(steps: list[TraceStep], argvs: list[list[str]]) -> tuple[VerdictStatus, dict]:
        trace = tmp_path / "trace.json"
        save_trace(trace, Trace(agent="claude", steps=steps))
        observed = tmp_path / "observed.jsonl"
        header = {"kind": "observer", "available": True, "complete": True, "harness_argv": ["claude", "-p", dev_text]}
        lines = [header] + [{"kind": "exec", "argv": a, "pid": 10 + i} for i, a in enumerate(argvs)]
        observed.write_text("".join(json.dumps(r) + "\n" for r in lines))
        ev_dir = tmp_path / f"ev{len(steps)}{len(argvs)}"
        ctx = GateContext(
            evidence_dir=ev_dir,
            workspace=ws,
            manifest={},
            base=BaseModelSpec(hub_id="ptb/tiny", family="tiny", chat_template="plain"),
            trace_path=trace,
            audit_policy=AuditPolicy(),
            contamination=ContaminationSources(
                items=[(it.id, it.test_text()) for it in items],
                allowed=[],
                covered=["gsm8k"],
                pairs=[(it.id, it.input, it.target) for it in items],
            ),
            observed_log=observed,
        )
        v = ContaminationGate().check(ctx)
        return v.status, json.loads(Path(v.evidence[0]).read_text())

    heredoc = "python - <<'EOF'\nDATA = [\n" + ",\n".join(rows[:2]) + "\n]\ntrain(DATA)\nEOF"
    cat = TraceStep(
        index=0,
        role="assistant",
        tool_calls=[ToolCall(id="c0", name="Bash", input={"command": "cat task/dev.jsonl"})],
        tool_results=[ToolResult(call_id="c0", output=dev_text)],
    )
    honest_argv = [["bash", "-c", "cat task/dev.jsonl"], ["python", "train.py"]]
    status, ev = check([cat], honest_argv)
    assert status == PASS, ev["hits"]
    # One item pasted into a command to try the model: evidence (listed), not a fail; a third is.
    smoke = [*honest_argv, ["python", "-c", f"generate({rows[0]})"], ["python", "-c", f"generate({rows[1]})"]]
    status, ev = check([cat], smoke)
    assert status == PASS and len(ev["hit_items"]) == 2, ev["hits"]
    status, ev = check([cat], [*smoke, ["python", "-c", f"generate({rows[2]})"]])
    assert status == FAIL and len(ev["hit_items"]) == 3, ev["hits"]
    bad = TraceStep(index=1, role="assistant", tool_calls=[ToolCall(id="c1", name="Bash", input={"command": heredoc})])
    status, ev = check([cat, bad], [*honest_argv, ["python", "-c", f"D = [{rows[2]}, {rows[3]}]"]])
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"], ev["hits"]
    assert {h["file"] for h in ev["hits"]} == {"<trace: tool-call inputs>", "<observed: argv of every process>"}


@pytest.mark.parametrize("container", ["raw bytes", "safetensors float tensor"])
def test_a_broken_compression_magic_in_binary_data_does_not_end_the_scan(g, tmp_path: Path, container: str) -> None:
    """A gzip magic number whose header is invalid (``1f 8b 08`` then reserved flag bits: what
    random weights hold by chance every few MB, and what an agent can plant) is tried as an
    embedded stream and dropped; the rest of the stream is still read. Before the fix the
    decoding error ended the whole file, so items after the magic went unseen."""
    rng = np.random.default_rng(5)

    def blob(rows: bytes) -> bytes:
        junk = bytearray(rng.bytes(600_000))
        junk[1000:1004] = b"\x1f\x8b\x08\xe0"  # reserved flag bits: zlib refuses the header
        body = bytes(junk) + rows + rng.bytes(50_000)
        if container == "raw bytes":
            return body
        body += b"\x00" * (-len(body) % 4)
        header = json.dumps({"w": {"dtype": "F32", "shape": [len(body) // 4], "data_offsets": [0, len(body)]}})
        return len(header).to_bytes(8, "little") + header.encode() + body

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "w.bin").write_bytes(blob(g["rows"]))
    status, ev = _scan(g["index"], tmp_path / "bad")
    assert status == FAIL and set(ev["hit_items"]) == g["stolen"], (ev["decode_errors"], ev["hits"][:3])
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "w.bin").write_bytes(blob(g["honest"][:5000]))
    status, ev = _scan(g["index"], tmp_path / "ok")
    assert status == PASS and ev["hit_items"] == [], ev["hits"][:3]


def _naive_embedded(data: bytes) -> list[tuple[int, str]]:
    """The rule of :func:`transforms.embedded_offsets`, byte by byte (the oracle)."""
    found = []
    for magic, kind in transforms._EMBEDDED:
        hits = [i for i in range(1, len(data) - len(magic) + 1) if data[i : i + len(magic)] == magic]
        found += [
            (i, kind) for i in hits[: transforms._MAX_EMBEDDED] if kind != "bz2" or data[i + 4 : i + 10] == b"1AY&SY"
        ]
    return sorted(found)[: transforms._MAX_EMBEDDED]


def test_the_embedded_magic_search_finds_every_offset_the_byte_by_byte_rule_does() -> None:
    """Magics at even and odd offsets, at offset 1, ending at the block's last byte, many in one
    block (the search's fallback past 16 candidates), in random bytes and in float weights."""
    rng = np.random.default_rng(3)
    magics = [b"\x1f\x8b\x08", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"BZh91AY&SY", b"BZh9xxxxxx"]
    blocks = [rng.standard_normal(4096).astype(np.float32).tobytes(), rng.bytes(5000), rng.bytes(7)]
    for n_planted in (1, 5, 40):
        b = bytearray(rng.bytes(int(rng.integers(4000, 9000))))
        for _ in range(n_planted):
            m = magics[int(rng.integers(len(magics)))]
            p = int(rng.integers(0, len(b) - len(m)))
            b[p : p + len(m)] = m
        b[1:4] = b"\x1f\x8b\x08"
        b[-4:] = b"\x28\xb5\x2f\xfd"
        blocks.append(bytes(b))
    blocks.append(b"\x1f\x8b" * 3000 + b"\x08")  # every other offset a candidate
    for block in blocks:
        assert transforms.embedded_offsets(block) == _naive_embedded(block), len(block)


def test_the_histogram_gates_reject_only_what_the_full_checks_reject() -> None:
    """The interleaving and look-alike checks read a necessary condition from the sample's
    histogram first; on blocks around the thresholds (a share of letters doubled, reversed words
    at each offset and at the sample's end) the result equals the checks run without it."""
    rng = np.random.default_rng(4)
    text = (Path(__file__).parent.parent / "README.md").read_text()
    for doubled in (0.0, 0.1, 0.19, 0.25, 0.5, 1.0):  # interleaved, a share of pairs left joined
        chars = []
        for c in text[:30_000]:
            chars.append(c if rng.random() < doubled else c + "-")
        block = "".join(chars).encode()
        s = transforms._sample(np.frombuffer(block, np.uint8))
        h = transforms._histogram(s)
        assert transforms.interleaved(block, s, h) == transforms.interleaved(block, s), doubled
        assert transforms.look_alikes(block, s, h) == transforms.look_alikes(block, s)
    for k in range(4):  # three backward words starting at offset k modulo 4, the last at the very end
        block = (" " * k + "x" * 40 + " eht " + "y" * 31 + " dna " + "z" * 17 + " fo ").encode()
        assert transforms._backward_starts(block) >= 3
        assert transforms.reversed_text(block, block) == [("reversed", block[::-1])], k
    forward = text.encode()[:20_000]
    assert transforms.reversed_text(forward[::-1], forward[::-1]) == [("reversed", forward)]
    for block in (text.encode(), b"a fo b fo c", b" eht " * 2):
        assert transforms.reversed_text(block, block) == []


def test_float_codes_with_hundreds_of_distinct_characters_are_still_read() -> None:
    """The distinct-value pre-check on the first 1,024 floats rejects only what the full check
    rejects: 400 distinct code points (CJK text) as ``code / 65536`` floats are recovered."""
    rng = np.random.default_rng(6)
    codes = rng.integers(0x4E00, 0x4E00 + 400, 70_000).astype(np.float32)
    codes[::7] = 32
    got = transforms.float_codes(codes / 65536)
    assert got is not None and len(set(got[:4096].tolist())) > 300
    assert transforms.float_codes(rng.standard_normal(70_000).astype(np.float32)) is None
