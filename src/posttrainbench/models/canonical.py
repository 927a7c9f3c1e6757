"""The canonical submission: the harness, not a library's loading rules, decides what the model is.

An agent's ``final_model/`` can mean two different models to two readers: a loader that
prefers ``model.safetensors`` over an index, a PEFT adapter that transformers applies on top,
tensors that one reader ignores and another loads, a renamed tensor that a loader maps onto a
parameter, a ``config.json`` that drops layers or adds quantisation. :func:`canonicalize`
reads the folder once, refuses everything ambiguous with a one-line reason, and writes a fresh
folder that every gate *and* the evaluator then consume:

- **weights**: exactly one weight set, ``model.safetensors`` or an index with the shards it
  names (shards and index agreeing tensor for tensor); every tensor is a parameter of the base
  architecture (names as the model's own ``state_dict``; transformers' renaming rules for its
  checkpoints are applied here, once, and any two tensors that land on the same parameter are
  refused), with the shape the architecture needs, in F32/F16/BF16; tied duplicates must be
  byte-identical and are kept once; nothing is missing. They are re-written by the strict writer
  (:mod:`.safetensors_strict`), and their digest is recorded;
- **config.json**: the base model's own, with only :data:`OVERRIDABLE_CONFIG_KEYS` taken from the
  submission; any other difference (architecture, context length, rope, quantisation, custom
  code) is refused. The architecture and the harness's limits come from the declared base model;
- **tokenizer**: the files of :data:`TOKENIZER_FILES` (JSON ones must parse; no ``auto_map``);
  its ``chat_template`` is dropped (the harness renders prompts with its own template) and its
  ``model_max_length`` is the base model's;
- **generation_config.json**: kept for the record with the keys of :data:`GENERATION_KEYS`;
- everything else (training leftovers, code, sub-folders) is ignored, listed in the result and
  never read by anything; files that would select or redirect weights in some loader (a second
  weight set, a PEFT adapter, pickled weights) are refused instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel as _Model
from pydantic import Field

from ..fsutil import sha256_file
from .safetensors_strict import (
    WEIGHT_DTYPES,
    SafetensorsError,
    TensorEntry,
    iter_bytes,
    no_duplicate_keys,
    read_header,
    write_canonical,
)

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
GENERATION_CONFIG = "generation_config.json"
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "vocab.json", "merges.txt", "added_tokens.json",
)  # fmt: skip
#: config.json keys a submission may change (a resized vocabulary, its special token ids, and
#: whether the output embedding is tied); everything else must equal the base model's.
OVERRIDABLE_CONFIG_KEYS: frozenset[str] = frozenset(
    {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"}
)
#: config.json keys that do not change the model (bookkeeping written by the saving library).
IGNORED_CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "transformers_version", "_name_or_path", "name_or_path", "torch_dtype", "dtype", "use_cache",
        "output_attentions", "output_hidden_states", "return_dict", "_commit_hash",
        "_attn_implementation_autoset",
    }
)  # fmt: skip
#: config.json keys refused outright, with the reason.
REFUSED_CONFIG_KEYS: dict[str, str] = {
    "auto_map": "custom model code (auto_map) is not run by the harness",
    "quantization_config": "quantised weights are not accepted: submit F32/F16/BF16 safetensors",
}
GENERATION_KEYS: frozenset[str] = frozenset(
    {"temperature", "top_p", "top_k", "min_p", "do_sample", "repetition_penalty", "bos_token_id",
     "eos_token_id", "pad_token_id"}
)  # fmt: skip
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PICKLE_WEIGHT_PREFIXES = ("pytorch_model", "consolidated", "adapter_model", "model.", "model-")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
MAX_SMALL_FILE_BYTES = 128 << 20


class SubmissionRejected(Exception):
    """The submitted folder is not one unambiguous model; the message says why (one line)."""


class CanonicalSubmission(_Model):
    """What :func:`canonicalize` made of a submitted ``final_model/`` (recorded in ``run.json``)."""

    files: dict[str, str] = Field(..., description="canonical file -> sha256 (what every reader reads)")
    weights_digest: str = Field(..., description="digest of the tensors (name, dtype, shape, bytes)")
    n_tensors: int
    weight_bytes: int
    source_files: dict[str, int] = Field(..., description="submitted files used -> size in bytes")
    ignored_files: list[str] = Field(default_factory=list, description="submitted files no reader sees")
    renamed_tensors: dict[str, str] = Field(default_factory=dict, description="submitted name -> parameter")
    dropped_tensors: list[str] = Field(default_factory=list, description="byte-identical tied copies, unused keys")
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    dtypes: dict[str, int] = Field(default_factory=dict, description="dtype -> number of tensors")


# ---------------------------------------------------------------------------------- listing


def list_folder(src: Path, allowed_root: Path) -> tuple[dict[str, Path], list[str]]:
    """Top-level regular files of ``src`` (name -> real path) and the ignored entries.

    A symlink is followed only to a regular file inside ``allowed_root``; a symlink elsewhere,
    a dangling one, a FIFO, socket or device is refused (reading it could leave the workspace
    or hang the harness). Sub-folders are not part of a model (no loader reads them)."""
    root = os.path.realpath(allowed_root)
    if os.path.islink(src) and not os.path.realpath(src).startswith(root + os.sep):
        raise SubmissionRejected(f"{src.name} is a symlink leaving the workspace")
    real_src = os.path.realpath(src)
    if not (real_src == root or real_src.startswith(root + os.sep)):
        raise SubmissionRejected(f"{src} resolves outside the workspace")
    if not os.path.isdir(real_src):
        raise SubmissionRejected("final_model/ is not a folder")
    files: dict[str, Path] = {}
    ignored: list[str] = []
    for entry in sorted(os.scandir(real_src), key=lambda e: e.name):
        st = os.lstat(entry.path)
        if stat.S_ISDIR(st.st_mode):
            ignored.append(entry.name + "/")
            continue
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(entry.path)
            if not real.startswith(root + os.sep):
                raise SubmissionRejected(
                    f"final_model/{entry.name} is a symlink to {os.readlink(entry.path)!r}, outside the workspace"
                )
            try:
                st = os.stat(real)
            except OSError:
                raise SubmissionRejected(f"final_model/{entry.name} is a dangling symlink") from None
            if stat.S_ISDIR(st.st_mode):
                ignored.append(entry.name + "/")
                continue
            if not stat.S_ISREG(st.st_mode):
                raise SubmissionRejected(f"final_model/{entry.name} points to a special file")
            files[entry.name] = Path(real)
        elif stat.S_ISREG(st.st_mode):
            files[entry.name] = Path(entry.path)
        else:
            raise SubmissionRejected(f"final_model/{entry.name} is a special file ({stat.filemode(st.st_mode)})")
    return files, ignored


def read_json_object(path: Path, label: str) -> dict[str, Any]:
    """A small JSON object file of a submission, strictly (size cap, no duplicate keys)."""
    if path.stat().st_size > MAX_SMALL_FILE_BYTES:
        raise SubmissionRejected(f"{label} is larger than {MAX_SMALL_FILE_BYTES >> 20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicate_keys)
    except SafetensorsError as exc:  # a duplicate key: readers disagree on which value counts
        raise SubmissionRejected(f"{label}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SubmissionRejected(f"{label} does not parse: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise SubmissionRejected(f"{label} is not a JSON object")
    return data


# ----------------------------------------------------------------------------------- config


def _config_dict(config_json: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """``config_json`` as transformers normalises it (defaults filled, old keys converted)."""
    from transformers import AutoConfig

    d = Path(tempfile.mkdtemp(dir=workdir, prefix="cfg-"))
    (d / CONFIG).write_text(json.dumps(config_json), encoding="utf-8")
    try:
        cfg = AutoConfig.from_pretrained(str(d), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - any error on a hostile config is a rejection
        raise SubmissionRejected(f"config.json cannot be read: {type(exc).__name__}: {exc}") from None
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return cfg.to_dict()


def _differences(base: Any, sub: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, Any]]:
    if isinstance(base, dict) and isinstance(sub, dict):
        out = []
        for key in sorted(set(base) | set(sub)):
            if key in IGNORED_CONFIG_KEYS:
                continue
            out += _differences(base.get(key), sub.get(key), (*path, key))
        return out
    return [] if base == sub else [(path, base, sub)]


def canonical_config(
    sub_json: dict[str, Any], base_json: dict[str, Any], workdir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The canonical config.json (the base's, with the allowed overrides) and the overrides."""
    for key, why in REFUSED_CONFIG_KEYS.items():
        if sub_json.get(key) or any(isinstance(v, dict) and v.get(key) for v in sub_json.values()):
            raise SubmissionRejected(f"config.json: {why}")
    if sub_json.get("model_type") != base_json.get("model_type"):
        raise SubmissionRejected(
            f"config.json: model_type {sub_json.get('model_type')!r} is not the base model's "
            f"{base_json.get('model_type')!r}"
        )
    diffs = _differences(_config_dict(base_json, workdir), _config_dict(sub_json, workdir))
    overrides: dict[str, Any] = {}
    out = json.loads(json.dumps(base_json))
    for path, was, now in diffs:
        allowed = (
            path[-1] in OVERRIDABLE_CONFIG_KEYS and len(path) <= 2 and (len(path) == 1 or path[0] == "text_config")
        )
        if not allowed:
            raise SubmissionRejected(
                f"config.json changes {'.'.join(path)} ({json.dumps(was)[:60]} -> {json.dumps(now)[:60]}); "
                "the architecture and the harness's limits come from the base model"
            )
        if now is not None and not isinstance(now, (int, bool, list)):
            raise SubmissionRejected(f"config.json: {'.'.join(path)} must be an integer, a list or a boolean")
        target = out
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = now
        overrides[".".join(path)] = now
    return out, overrides


# ---------------------------------------------------------------------------------- weights


def weight_set(files: dict[str, Path], max_bytes: int) -> tuple[list[TensorEntry], list[str]]:
    """The tensors of the one weight set of the folder, and the files that hold them.

    Raises :class:`SubmissionRejected` for anything that makes the weights ambiguous or unsafe
    to read (see the module docstring); tensors must be F32/F16/BF16."""
    st_names = sorted(n for n in files if n.endswith(".safetensors"))
    index_names = sorted(n for n in files if n.endswith(".safetensors.index.json"))
    for n in files:
        low = n.lower()
        if low.endswith(PICKLE_SUFFIXES) and low.startswith(PICKLE_WEIGHT_PREFIXES):
            raise SubmissionRejected(f"pickled weights ({n}) are not accepted: keep only safetensors")
        if n in ADAPTER_FILES:
            raise SubmissionRejected(
                f"{n}: a PEFT adapter next to the model would be applied by some loaders; merge it into the weights"
            )
        if n.endswith(".gguf"):
            raise SubmissionRejected(f"{n}: a second weight format (GGUF) next to the safetensors")
    if len(index_names) > 1 or (index_names and index_names[0] != INDEX):
        raise SubmissionRejected(f"weight index files must be exactly {INDEX} (found {', '.join(index_names)})")
    if index_names:
        if SINGLE in files:
            raise SubmissionRejected(
                f"both {SINGLE} and {INDEX}: two weight sets, loaders disagree on which one counts"
            )
        index = read_json_object(files[INDEX], INDEX)
        wm = index.get("weight_map")
        if not isinstance(wm, dict) or not wm or not all(isinstance(v, str) for v in wm.values()):
            raise SubmissionRejected(f"{INDEX} has no weight_map of tensor -> shard file")
        shards = sorted(set(wm.values()))
        for shard in shards:
            if "/" in shard or "\\" in shard or not shard.endswith(".safetensors"):
                raise SubmissionRejected(
                    f"{INDEX} names a shard {shard!r} that is not a .safetensors file of the folder"
                )
            if shard not in files:
                raise SubmissionRejected(f"missing shard {shard} (named by {INDEX})")
        unlisted = sorted(set(st_names) - set(shards))
        if unlisted:
            raise SubmissionRejected(
                f"{', '.join(unlisted)} not named by {INDEX}: loose weight files next to the index"
            )
        used = [*shards, INDEX]
    else:
        if st_names != [SINGLE]:
            raise SubmissionRejected(
                f"no weights: expected {SINGLE} or {INDEX} with its shards"
                if not st_names
                else f"{len(st_names)} safetensors files ({', '.join(st_names[:4])}) but no {INDEX}"
            )
        shards, wm, used = [SINGLE], None, [SINGLE]
    total = sum(files[s].stat().st_size for s in shards)
    if total > max_bytes:
        raise SubmissionRejected(
            f"the weights are {total / 2**30:.2f} GiB, above the limit of {max_bytes / 2**30:.2f} GiB "
            "(a multiple of the base model's size; PTB_SUBMISSION_SIZE_FACTOR)"
        )
    entries: list[TensorEntry] = []
    seen: dict[str, str] = {}
    for shard in shards:
        try:
            shard_entries = read_header(files[shard])
        except SafetensorsError as exc:
            raise SubmissionRejected(str(exc)) from None
        for e in shard_entries:
            if e.name in seen:
                raise SubmissionRejected(f"tensor {e.name!r} is in both {seen[e.name]} and {shard}")
            seen[e.name] = shard
            if wm is not None and wm.get(e.name) != shard:
                raise SubmissionRejected(
                    f"{shard} holds {e.name!r} but {INDEX} maps it to {wm.get(e.name)!r}: index and shards disagree"
                )
            if e.dtype not in WEIGHT_DTYPES:
                raise SubmissionRejected(f"tensor {e.name!r} has dtype {e.dtype}; weights must be F32, F16 or BF16")
            entries.append(e)
    if wm is not None:
        absent = sorted(set(wm) - set(seen))
        if absent:
            raise SubmissionRejected(f"{INDEX} names {len(absent)} tensor(s) no shard holds (e.g. {absent[0]!r})")
    if not entries:
        raise SubmissionRejected("the weights hold no tensor")
    return entries, used


def _meta_model(config_dir: Path) -> Any:
    """The base architecture on the meta device (no memory), from the canonical config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(str(config_dir), local_files_only=True, trust_remote_code=False)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg, trust_remote_code=False)


def _renamer(model: Any, meta_sd: dict[str, Any]) -> Any:
    """transformers' own key renaming for this architecture (legacy names, base-model prefix)."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    except ImportError:  # another transformers version: exact names only
        return lambda key: (key, None)
    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]

    def rename(key: str) -> tuple[str, str | None]:
        return rename_source_key(key, renamings, converters, model.base_model_prefix, meta_sd)

    return rename


def _same_bytes(a: TensorEntry, b: TensorEntry) -> bool:
    if (a.dtype, a.shape) != (b.dtype, b.shape):
        return False
    return all(x == y for x, y in zip(iter_bytes(a), iter_bytes(b), strict=True))


def canonical_tensors(
    entries: list[TensorEntry], model: Any
) -> tuple[dict[str, TensorEntry], dict[str, str], list[str]]:
    """Map submitted tensors onto the architecture's parameters (see the module docstring).

    Returns (parameter name -> entry, submitted name -> parameter for renamed ones, dropped)."""
    meta_sd = model.state_dict()
    params: dict[str, Any] = dict(model.named_parameters(remove_duplicate=False))
    groups: dict[int, list[str]] = {}
    for name, p in params.items():
        groups.setdefault(id(p), []).append(name)
    tied_sources = set((getattr(model, "_tied_weights_keys", None) or {}).values())
    primary: dict[str, str] = {}
    for names in groups.values():
        first = next((n for n in names if n in tied_sources), names[0])
        for n in names:
            primary[n] = first
    ignore_unexpected = [re.compile(p) for p in (getattr(model, "_keys_to_ignore_on_load_unexpected", None) or [])]
    rename = _renamer(model, meta_sd)
    mapped: list[tuple[TensorEntry, str]] = []
    dropped: list[str] = []
    for e in entries:
        target = e.name
        if target not in meta_sd:
            target, converter = rename(e.name)
            if converter is not None:
                raise SubmissionRejected(
                    f"tensor {e.name!r} needs a weight conversion on load; save the model with save_pretrained"
                )
        if target not in meta_sd:
            if any(p.search(e.name) for p in ignore_unexpected):
                dropped.append(e.name)
                continue
            raise SubmissionRejected(
                f"tensor {e.name!r} is not a parameter of the base architecture ({type(model).__name__})"
            )
        want = tuple(meta_sd[target].shape)
        if e.shape != want:
            raise SubmissionRejected(
                f"tensor {e.name!r} has shape {list(e.shape)}, the architecture needs {list(want)}"
            )
        mapped.append((e, primary.get(target, target)))

    out: dict[str, TensorEntry] = {}
    renamed: dict[str, str] = {}
    # A tensor stored under its parameter's own name is the one kept; other names for the same
    # parameter (a tied copy, a renamed twin) must hold the same bytes and are dropped.
    for e, canon in sorted(mapped, key=lambda m: (m[0].name != m[1], m[0].name)):
        if canon in out:
            if not _same_bytes(out[canon], e):
                raise SubmissionRejected(
                    f"tensors {out[canon].name!r} and {e.name!r} both load into {canon!r} with different values"
                )
            dropped.append(e.name)
            continue
        if canon != e.name:
            renamed[e.name] = canon
        out[canon] = e
    missing = sorted({primary.get(n, n) for n in params} - set(out))
    if missing:
        raise SubmissionRejected(
            f"the weights lack {len(missing)} parameter(s) of the architecture (e.g. {missing[0]!r})"
        )
    return out, renamed, dropped


# -------------------------------------------------------------------------------- tokenizer


def tokenizer_files(files: dict[str, Path]) -> list[str]:
    """The tokenizer files of the folder (raises when there is no usable tokenizer)."""
    present = [n for n in TOKENIZER_FILES if n in files]
    if not (
        "tokenizer.json" in present
        or "tokenizer.model" in present
        or ("vocab.json" in present and "merges.txt" in present)
    ):
        raise SubmissionRejected("no tokenizer: tokenizer.json, tokenizer.model or vocab.json + merges.txt")
    return present


def _copy_tokenizer(files: dict[str, Path], base_path: Path, dest: Path) -> list[str]:
    present = tokenizer_files(files)
    for name in present:
        src = files[name]
        if src.stat().st_size > MAX_SMALL_FILE_BYTES:
            raise SubmissionRejected(f"{name} is larger than {MAX_SMALL_FILE_BYTES >> 20} MiB")
        if name == "tokenizer_config.json":
            tc = read_json_object(src, name)
            if tc.get("auto_map"):
                raise SubmissionRejected(
                    "tokenizer_config.json: custom tokenizer code (auto_map) is not run by the harness"
                )
            tc.pop("chat_template", None)
            tc.pop("model_max_length", None)
            base_tc = base_path / name
            if base_tc.is_file():
                base_len = json.loads(base_tc.read_text(encoding="utf-8")).get("model_max_length")
                if isinstance(base_len, int):
                    tc["model_max_length"] = base_len
            (dest / name).write_text(json.dumps(tc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            continue
        if name.endswith(".json"):
            read_json_object(src, name)
        shutil.copyfile(src, dest / name)
    return present


# ------------------------------------------------------------------------------------- main


def base_weight_bytes(base_path: Path) -> int:
    """Bytes of the base model's safetensors files (the unit of the submission size limit)."""
    return sum(p.stat().st_size for p in Path(base_path).glob("*.safetensors"))


def canonicalize(
    src: Path,
    dest: Path,
    base_path: Path,
    *,
    allowed_root: Path,
    max_weight_bytes: int,
) -> CanonicalSubmission:
    """Materialise the canonical submission of ``src`` at ``dest`` (complete or absent).

    Raises :class:`SubmissionRejected` with the reason; an ``OSError`` (disk full, I/O error) is
    the harness's problem and propagates. ``base_path``: the declared base model's folder.
    """
    src, dest, base_path = Path(src), Path(dest), Path(base_path)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"destination already exists: {dest}")
    files, ignored = list_folder(src, allowed_root)
    if CONFIG not in files:
        raise SubmissionRejected(
            "no config.json: a LoRA/PEFT adapter must be merged into the base model and saved in full"
            if "adapter_config.json" in files
            else "no config.json"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    try:
        base_json = read_json_object(base_path / CONFIG, "the base model's config.json")
        sub_json = read_json_object(files[CONFIG], CONFIG)
        config, overrides = canonical_config(sub_json, base_json, tmp)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        entries, weight_files = weight_set(files, max_weight_bytes)
        try:
            model = _meta_model(tmp)
        except Exception as exc:  # noqa: BLE001 - any error on a hostile architecture is a rejection
            raise SubmissionRejected(
                f"the configured architecture cannot be built: {type(exc).__name__}: {exc}"
            ) from None
        tensors, renamed, dropped = canonical_tensors(entries, model)
        del model
        tok = _copy_tokenizer(files, base_path, tmp)
        used = [CONFIG, *weight_files, *tok]
        if GENERATION_CONFIG in files:
            gen = read_json_object(files[GENERATION_CONFIG], GENERATION_CONFIG)
            kept = {k: v for k, v in gen.items() if k in GENERATION_KEYS}
            (tmp / GENERATION_CONFIG).write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            used.append(GENERATION_CONFIG)
        _, digest, weight_hashes = write_canonical(tensors, tmp)
        hashes = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.name not in weight_hashes}
        hashes.update(weight_hashes)
        dtypes: dict[str, int] = {}
        for e in tensors.values():
            dtypes[e.dtype] = dtypes.get(e.dtype, 0) + 1
        result = CanonicalSubmission(
            files=dict(sorted(hashes.items())),
            weights_digest=digest,
            n_tensors=len(tensors),
            weight_bytes=sum(e.nbytes for e in tensors.values()),
            source_files={n: files[n].stat().st_size for n in used},
            ignored_files=sorted([*ignored, *(n for n in files if n not in used)]),
            renamed_tensors=renamed,
            dropped_tensors=dropped,
            config_overrides=overrides,
            dtypes=dtypes,
        )
        os.replace(tmp, dest)
        return result
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
