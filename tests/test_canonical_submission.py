"""The canonical submission: a final_model/ that means two models to two readers is refused,
an honest one is accepted in every ordinary layout, and the evaluator checks after loading that
it holds exactly the verified tensors.

Every attack here is a folder that today's libraries *would* read differently from the gates
(each test shows the discrepancy with the real library where it can), and each is refused by
:func:`posttrainbench.models.canonicalize` with a one-line reason. The honest controls build the
same folders without the trick and must pass.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.domain import BaseModelSpec
from posttrainbench.evaluation import evaluate_model
from posttrainbench.integrity import check_lineage, check_model_folder
from posttrainbench.models import SubmissionRejected, canonicalize, weights_digest
from posttrainbench.models.loaded_check import WeightsMismatchError, check_loaded_weights, folder_entries
from posttrainbench.models.safetensors_strict import SafetensorsError, read_header
from posttrainbench.models.tiny import build_tiny_model

TINY = BaseModelSpec(hub_id="ptb/tiny-random", family="tiny", chat_template="plain", demo=True)
LIMIT = 1 << 30


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("canon") / "base", seed=0)


@pytest.fixture(scope="module")
def instruct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distinct model of the same shape: what a forbidden checkpoint looks like to the gates."""
    return build_tiny_model(tmp_path_factory.mktemp("canon") / "instruct", seed=1)


def finetune(base: Path, dest: Path, *, scale: float = 0.01, seed: int = 3) -> Path:
    """The base moved a little, every tensor (as SFT does): what lineage accepts."""
    shutil.copytree(base, dest)
    g = torch.Generator().manual_seed(seed)
    t = load_file(str(base / "model.safetensors"))
    save_file(
        {k: v + scale * v.std() * torch.randn(v.shape, generator=g) for k, v in t.items()},
        str(dest / "model.safetensors"),
    )
    return dest


def shard(folder: Path, n: int = 2) -> None:
    """Rewrite folder/model.safetensors as n shards + index (as save_pretrained does)."""
    t = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(t)
    wm = {}
    for i in range(n):
        part = names[i::n]
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        save_file({k: t[k] for k in part}, str(folder / fname), metadata={"format": "pt"})
        wm.update(dict.fromkeys(part, fname))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))


def raw_safetensors(path: Path, header: dict, data: bytes) -> None:
    """A safetensors file written byte by byte (headers no library would write)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def canon(folder: Path, base: Path, tmp_path: Path, **kw):
    dest = tmp_path / f"canonical-{len(list(tmp_path.glob('canonical-*')))}"
    return canonicalize(
        folder, dest, base, allowed_root=kw.pop("root", folder.parent), max_weight_bytes=kw.pop("limit", LIMIT)
    ), dest


def rejected(folder: Path, base: Path, tmp_path: Path, **kw) -> str:
    with pytest.raises(SubmissionRejected) as exc:
        canon(folder, base, tmp_path, **kw)
    assert not any(tmp_path.glob("canonical-*")), "nothing half-written is left"
    assert "\n" not in str(exc.value), "one line"
    return str(exc.value)


def transformers_load(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# ------------------------------------------------------------------------- honest controls


def test_honest_single_file_is_accepted_and_loads_as_verified(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    (ft / "training_args.bin").write_bytes(b"pickle leftovers")
    (ft / "checkpoint-10").mkdir()
    res, dest = canon(ft, base, tmp_path)
    assert sorted(res.files) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert res.ignored_files == ["checkpoint-10/", "training_args.bin"]
    assert not (dest / "training_args.bin").exists()
    # same tensors, fresh bytes: the digest of the files equals the recorded one
    assert (
        weights_digest(folder_entries(dest).values())
        == res.weights_digest
        == weights_digest(read_header(ft / "model.safetensors"))
    )
    assert check_model_folder(dest).status.value == "pass"
    loaded = transformers_load(dest)
    for k, v in load_file(str(ft / "model.safetensors")).items():
        assert torch.equal(loaded[k], v)


def test_honest_sharded_bf16_and_prefixless_names_are_accepted(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    t = load_file(str(ft / "model.safetensors"))
    # bf16, and names without the "model." prefix (a base-model save): transformers maps them
    save_file({k.removeprefix("model."): v.to(torch.bfloat16) for k, v in t.items()}, str(ft / "model.safetensors"))
    shard(ft, 3)
    res, dest = canon(ft, base, tmp_path)
    assert res.dtypes == {"BF16": len(t)}
    assert res.renamed_tensors["layers.0.mlp.up_proj.weight"] == "model.layers.0.mlp.up_proj.weight"
    assert set(folder_entries(dest)) == set(t), "canonical names are the model's own"
    loaded = transformers_load(dest)
    assert torch.equal(loaded["model.norm.weight"], t["model.norm.weight"].to(torch.bfloat16).float())


def test_tied_copies_and_a_resized_vocabulary_are_accepted(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    t = load_file(str(ft / "model.safetensors"))
    cfg = json.loads((ft / "config.json").read_text())
    # resize the vocabulary by 2 rows, tie the head and keep a byte-identical copy of it
    emb = torch.cat([t["model.embed_tokens.weight"], torch.zeros(2, t["model.embed_tokens.weight"].shape[1])])
    t["model.embed_tokens.weight"] = emb
    t["lm_head.weight"] = emb.clone()
    save_file(t, str(ft / "model.safetensors"))
    (ft / "config.json").write_text(
        json.dumps({**cfg, "vocab_size": cfg["vocab_size"] + 2, "tie_word_embeddings": True})
    )
    res, dest = canon(ft, base, tmp_path)
    assert res.config_overrides == {"tie_word_embeddings": True, "vocab_size": cfg["vocab_size"] + 2}
    assert res.dropped_tensors == ["lm_head.weight"]
    out = json.loads((dest / "config.json").read_text())
    assert out["vocab_size"] == cfg["vocab_size"] + 2 and out["num_hidden_layers"] == cfg["num_hidden_layers"]


# ----------------------------------------------------------------- two readers, two models


def test_single_file_beside_an_index_is_refused(base, instruct, tmp_path) -> None:
    """transformers loads model.safetensors; a reader of the index sees the fine-tune."""
    ft = finetune(base, tmp_path / "ws" / "final_model")
    shard(ft)
    shutil.copy(instruct / "model.safetensors", ft / "model.safetensors")
    seen_by_index = load_file(str(ft / "model-00001-of-00002.safetensors"))
    loaded = transformers_load(ft)
    k = next(iter(seen_by_index))
    assert not torch.equal(loaded[k], seen_by_index[k]), "the library really reads the other weight set"
    assert "two weight sets" in rejected(ft, base, tmp_path)


@pytest.mark.parametrize("trick", ["unlisted", "extra-in-shard", "misplaced", "phantom"])
def test_index_and_shards_that_disagree_are_refused(base, instruct, tmp_path, trick) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    shard(ft)
    s1 = ft / "model-00001-of-00002.safetensors"
    idx = json.loads((ft / "model.safetensors.index.json").read_text())
    if trick == "unlisted":
        shutil.copy(instruct / "model.safetensors", ft / "model-extra.safetensors")
        want = "not named by model.safetensors.index.json"
    elif trick == "extra-in-shard":  # shard 1 also holds a tensor the index puts in shard 2
        t = load_file(str(s1))
        other = next(k for k, v in idx["weight_map"].items() if v.endswith("00002-of-00002.safetensors"))
        t[other] = load_file(str(instruct / "model.safetensors"))[other]
        save_file(t, str(s1))
        want = f"holds {other!r} but model.safetensors.index.json maps it"
    elif trick == "misplaced":
        k = next(iter(idx["weight_map"]))
        idx["weight_map"][k] = (
            "model-00002-of-00002.safetensors"
            if idx["weight_map"][k].startswith("model-00001")
            else "model-00001-of-00002.safetensors"
        )
        (ft / "model.safetensors.index.json").write_text(json.dumps(idx))
        want = "index and shards disagree"
    else:
        idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
        (ft / "model.safetensors.index.json").write_text(json.dumps(idx))
        want = "no shard holds"
    assert want in rejected(ft, base, tmp_path)
    assert check_model_folder(ft).status.value == "fail"


def test_peft_adapter_beside_the_model_is_refused(base, tmp_path) -> None:
    """transformers applies an adapter found next to a full model; the gates see the base weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    ft = finetune(base, tmp_path / "ws" / "final_model")
    m = AutoModelForCausalLM.from_pretrained(str(ft), local_files_only=True)
    lora = get_peft_model(m, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    lora.save_pretrained(str(tmp_path / "adapter"))
    for f in (tmp_path / "adapter").iterdir():
        shutil.copy(f, ft / f.name)
    cfg = json.loads((ft / "adapter_config.json").read_text())
    (ft / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": str(ft)}))
    assert "PEFT adapter" in rejected(ft, base, tmp_path)


@pytest.mark.parametrize(
    "change, want",
    [
        ({"num_hidden_layers": 1}, "changes num_hidden_layers"),
        ({"max_position_embeddings": 4096}, "changes max_position_embeddings"),
        ({"rope_parameters": {"rope_theta": 1.0, "rope_type": "default"}}, "changes rope_parameters"),
        ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}, "quantised weights"),
        ({"auto_map": {"AutoModelForCausalLM": "evil.Evil"}}, "custom model code"),
        ({"model_type": "qwen3"}, "model_type 'qwen3' is not the base model's 'llama'"),
        ({"hidden_act": "relu"}, "changes hidden_act"),
    ],
)
def test_config_that_changes_the_model_or_the_limits_is_refused(base, tmp_path, change, want) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    cfg = json.loads((ft / "config.json").read_text())
    (ft / "config.json").write_text(json.dumps({**cfg, **change}))
    assert want in rejected(ft, base, tmp_path)


def test_bookkeeping_config_keys_are_ignored(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    cfg = json.loads((ft / "config.json").read_text())
    cfg.update(transformers_version="4.0.0", _name_or_path="/somewhere", use_cache=False, dtype="bfloat16")
    (ft / "config.json").write_text(json.dumps(cfg))
    res, dest = canon(ft, base, tmp_path)
    assert res.config_overrides == {}
    assert json.loads((dest / "config.json").read_text()) == json.loads((base / "config.json").read_text())


def test_tied_head_that_differs_from_the_embedding_is_refused(base, instruct, tmp_path) -> None:
    """With tie_word_embeddings, a reader of lm_head.weight and the loader disagree."""
    ft = finetune(base, tmp_path / "ws" / "final_model")
    t = load_file(str(ft / "model.safetensors"))
    t["lm_head.weight"] = load_file(str(instruct / "model.safetensors"))["lm_head.weight"]
    save_file(t, str(ft / "model.safetensors"))
    cfg = json.loads((ft / "config.json").read_text())
    (ft / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": True}))
    assert "both load into 'model.embed_tokens.weight' with different values" in rejected(ft, base, tmp_path)


def test_two_names_for_one_parameter_are_refused(base, instruct, tmp_path) -> None:
    """'layers.0...' and 'model.layers.0...' both load into the same parameter."""
    ft = finetune(base, tmp_path / "ws" / "final_model")
    t = load_file(str(ft / "model.safetensors"))
    t["layers.0.mlp.up_proj.weight"] = load_file(str(instruct / "model.safetensors"))[
        "model.layers.0.mlp.up_proj.weight"
    ]
    save_file(t, str(ft / "model.safetensors"))
    msg = rejected(ft, base, tmp_path)
    assert "both load into 'model.layers.0.mlp.up_proj.weight'" in msg


@pytest.mark.parametrize("trick", ["unknown", "missing", "shape", "int8", "fp8"])
def test_tensors_that_are_not_the_architecture_are_refused(base, tmp_path, trick) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    t = load_file(str(ft / "model.safetensors"))
    if trick == "unknown":
        t["model.layers.2.mlp.up_proj.weight"] = t["model.layers.1.mlp.up_proj.weight"].clone()
        want = "is not a parameter of the base architecture"
    elif trick == "missing":
        del t["model.layers.1.mlp.up_proj.weight"]
        want = "lack 1 parameter"
    elif trick == "shape":
        t["model.norm.weight"] = torch.ones(7)
        want = "has shape [7]"
    elif trick == "int8":
        t["model.norm.weight"] = torch.ones(32, dtype=torch.int8)
        want = "dtype I8"
    else:
        t["model.norm.weight"] = torch.ones(32).to(torch.float8_e4m3fn)
        want = "dtype F8_E4M3"
    save_file(t, str(ft / "model.safetensors"))
    assert want in rejected(ft, base, tmp_path)


# ------------------------------------------------------------------ the safetensors headers


def _tensor_bytes(n: int) -> bytes:
    return torch.arange(n, dtype=torch.float32).numpy().tobytes()


@pytest.mark.parametrize(
    "header, data, want",
    [
        (
            b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}',
            _tensor_bytes(4),
            "duplicate key 'a'",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            },
            _tensor_bytes(2),
            "overlaps another tensor",
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, _tensor_bytes(3), "leaves a gap of 4 bytes"),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
            _tensor_bytes(3),
            "4 bytes after the last tensor",
        ),
        (
            {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            _tensor_bytes(2),
            "its dtype and shape need 12",
        ),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}},
            _tensor_bytes(2),
            "exactly dtype, shape and data_offsets",
        ),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, _tensor_bytes(2), "invalid shape"),
        ({"a\nb": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, _tensor_bytes(2), "control characters"),
        (
            {"__metadata__": {"x": 1}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
            _tensor_bytes(2),
            "__metadata__",
        ),
    ],
)
def test_the_strict_reader_refuses_ambiguous_headers(tmp_path, header, data, want) -> None:
    f = tmp_path / "x.safetensors"
    raw_safetensors(f, header, data)
    with pytest.raises(SafetensorsError, match=want.replace("[", r"\[").replace("(", r"\(")):
        read_header(f)


# ---------------------------------------------------------------- files that are not weights


@pytest.mark.parametrize(
    "trick", ["symlink-out", "fifo", "pickle", "gguf", "tokenizer-code", "no-tokenizer", "dangling"]
)
def test_unsafe_or_redirecting_files_are_refused(base, tmp_path, trick) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    if trick == "symlink-out":
        (ft / "tokenizer.json").unlink()
        (ft / "tokenizer.json").symlink_to("/etc/passwd")
        want = "outside the workspace"
    elif trick == "dangling":
        (ft / "vocab.json").symlink_to(tmp_path / "ws" / "nothing")
        want = "dangling symlink"
    elif trick == "fifo":
        os.mkfifo(ft / "merges.txt")
        want = "special file"
    elif trick == "pickle":
        torch.save({}, ft / "pytorch_model.bin")
        want = "pickled weights"
    elif trick == "gguf":
        (ft / "model.gguf").write_bytes(b"GGUF")
        want = "GGUF"
    elif trick == "tokenizer-code":
        tc = json.loads((ft / "tokenizer_config.json").read_text())
        (ft / "tokenizer_config.json").write_text(json.dumps({**tc, "auto_map": {"AutoTokenizer": ["evil.Tok", None]}}))
        want = "custom tokenizer code"
    else:
        (ft / "tokenizer.json").unlink()
        want = "no tokenizer"
    assert want in rejected(ft, base, tmp_path, root=tmp_path / "ws")


def test_symlinks_inside_the_workspace_are_followed(base, tmp_path) -> None:
    ws = tmp_path / "ws"
    ft = finetune(base, ws / "elsewhere")
    (ws / "final_model").symlink_to(ft)
    res, _ = canon(ws / "final_model", base, tmp_path, root=ws)
    assert res.n_tensors == len(load_file(str(ft / "model.safetensors")))


def test_chat_template_and_model_max_length_of_the_submission_are_not_kept(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    tc = json.loads((ft / "tokenizer_config.json").read_text())
    (ft / "tokenizer_config.json").write_text(
        json.dumps({**tc, "chat_template": "{{ 'x' }}", "model_max_length": 10**9})
    )
    _, dest = canon(ft, base, tmp_path)
    out = json.loads((dest / "tokenizer_config.json").read_text())
    assert "chat_template" not in out
    assert out["model_max_length"] == json.loads((base / "tokenizer_config.json").read_text())["model_max_length"]


# ------------------------------------------------------------------------------- bombs


def test_a_sparse_weight_bomb_is_refused_before_anything_is_read(base, tmp_path) -> None:
    ft = finetune(base, tmp_path / "ws" / "final_model")
    bomb = ft / "model.safetensors"
    header = json.dumps(
        {"model.norm.weight": {"dtype": "F32", "shape": [1 << 38], "data_offsets": [0, 1 << 40]}}
    ).encode()
    with open(bomb, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + (1 << 40))  # 1 TiB apparent, a few blocks on disk
    assert bomb.stat().st_blocks * 512 < 1 << 20
    msg = rejected(ft, base, tmp_path, limit=3 * (base / "model.safetensors").stat().st_size)
    assert "above the limit" in msg and "1024.00 GiB" in msg
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and p != bomb) < 10 << 20


# --------------------------------------------------------------------- after loading


def test_evaluator_refuses_weights_that_are_not_the_verified_ones(base, instruct, tmp_path) -> None:
    """A canonical folder whose weights were swapped after collect (bypassing the transfer gate)
    is refused by the post-load digest, and the recorded digest passes."""
    ft = finetune(base, tmp_path / "ws" / "final_model")
    res, dest = canon(ft, base, tmp_path)
    items = get_benchmark("gsm8k-calc").load_test_items()[:2]
    ok = evaluate_model(
        dest,
        get_benchmark("gsm8k-calc"),
        TINY,
        tmp_path / "ok",
        items=items,
        base_model_path=base,
        weights_digest=res.weights_digest,
    )
    assert ok.status == "ok", ok.error
    assert ok.weights_check["digest"] == res.weights_digest and ok.weights_check["compared_with"] == "recorded digest"
    assert ok.limits.context_length == 512 and ok.limits.eos_token == "</s>"
    shutil.copy(instruct / "model.safetensors", dest / "model.safetensors")
    bad = evaluate_model(
        dest,
        get_benchmark("gsm8k-calc"),
        TINY,
        tmp_path / "bad",
        items=items,
        base_model_path=base,
        weights_digest=res.weights_digest,
    )
    assert bad.status == "failed" and "are not the verified ones" in bad.error


def test_loaded_check_catches_a_loader_that_changed_a_tensor(base, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=torch.float32)
    assert check_loaded_weights(m, base)["tensors"] == 21
    with torch.no_grad():
        m.model.layers[1].mlp.up_proj.weight[0, 0] += 1e-3
    with pytest.raises(WeightsMismatchError, match="not the verified ones"):
        check_loaded_weights(m, base)


def test_loaded_check_in_narrower_and_wider_dtypes(base, tmp_path) -> None:
    """F32 stored, BF16 loaded (a GPU run): compared against the file cast the same way;
    BF16 stored, F32 loaded (CPU): cast back and compared with the recorded digest."""
    from transformers import AutoModelForCausalLM

    m16 = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=torch.bfloat16)
    assert check_loaded_weights(m16, base)["narrowed"] == 21
    bf = tmp_path / "bf16"
    shutil.copytree(base, bf)
    save_file(
        {k: v.to(torch.bfloat16) for k, v in load_file(str(base / "model.safetensors")).items()},
        str(bf / "model.safetensors"),
    )
    m32 = AutoModelForCausalLM.from_pretrained(str(bf), local_files_only=True, dtype=torch.float32)
    digest = weights_digest(read_header(bf / "model.safetensors"))
    assert check_loaded_weights(m32, bf, digest) == {
        "digest": digest,
        "compared_with": "recorded digest",
        "tensors": 21,
        "narrowed": 0,
    }
    with pytest.raises(WeightsMismatchError):
        check_loaded_weights(m32, bf, weights_digest(read_header(base / "model.safetensors")))


def test_lineage_reads_the_canonical_folder_the_evaluator_loads(base, instruct, tmp_path) -> None:
    """The index-only view of the 'two weight sets' folder passes lineage: which is why the
    gates may only ever read the canonical folder."""
    ft = finetune(base, tmp_path / "ws" / "final_model")
    shard(ft)
    assert check_lineage(ft, base, tmp_path / "ev").status.value == "pass"
    shutil.copy(instruct / "model.safetensors", ft / "model.safetensors")
    loaded = transformers_load(ft)
    ref = load_file(str(instruct / "model.safetensors"))
    assert all(torch.equal(loaded[k], ref[k]) for k in ref), "the evaluator would have scored the forbidden model"
    with pytest.raises(SubmissionRejected):
        canon(ft, base, tmp_path)
