"""After loading: are the tensors the evaluator holds exactly the verified ones?

The gates read the canonical folder's files; the evaluator reads them through a library that
has its own rules (renaming, tying, dtype casts). :func:`check_loaded_weights` closes that gap:
every tensor of the folder must be a tensor of the loaded model with the same shape and the same
values, every loaded parameter must come from the folder (or be tied to one that does), and the
weights digest recomputed from what was *loaded* must equal the digest recorded when the
submission was made canonical (or, without one, the digest of the files).

Values are compared in the stored precision: a model loaded in a wider dtype (BF16/F16 stored,
F32 loaded) is cast back and must round-trip exactly; a model loaded in a narrower dtype than
stored (F32 stored, BF16 loaded on a GPU) is compared with the file's tensors cast the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .safetensors_strict import TensorEntry, WeightsDigest, iter_bytes, read_header, weights_digest


class WeightsMismatchError(RuntimeError):
    """The loaded model is not the verified submission; the message says where."""


def folder_entries(folder: Path) -> dict[str, TensorEntry]:
    """The tensors of a canonical folder (``model.safetensors`` or index + shards)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    out: dict[str, TensorEntry] = {}
    for shard in shards:
        for e in read_header(folder / shard):
            out[e.name] = e
    return out


def _torch_dtype(name: str) -> Any:
    import torch

    return {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[name]


def _lossless(stored: str, loaded: Any) -> bool:
    import torch

    return loaded == _torch_dtype(stored) or (loaded == torch.float32 and stored in ("F16", "BF16"))


def _file_tensor(e: TensorEntry, dtype: Any) -> Any:
    import torch

    raw = bytearray(b"".join(iter_bytes(e)))
    t = torch.frombuffer(raw, dtype=_torch_dtype(e.dtype)) if raw else torch.empty(0, dtype=_torch_dtype(e.dtype))
    return t.reshape(e.shape).to(dtype)


def check_loaded_weights(model: Any, folder: Path, expected_digest: str | None = None) -> dict[str, Any]:
    """Raise :class:`WeightsMismatchError` unless ``model`` holds exactly the folder's tensors.

    Returns what was checked: the digest of the loaded tensors, what it was compared with, how
    many tensors, and which were compared against the files directly (narrowing casts)."""
    import torch

    entries = folder_entries(folder)
    sd = model.state_dict()
    params = dict(model.named_parameters(remove_duplicate=False))
    by_id: dict[int, list[str]] = {}
    for name, p in params.items():
        by_id.setdefault(id(p), []).append(name)
    for name in entries:
        if name not in sd:
            raise WeightsMismatchError(f"tensor {name!r} of the checkpoint is not in the loaded model")
    for name, p in params.items():
        if name not in entries and not any(n in entries for n in by_id[id(p)]):
            raise WeightsMismatchError(f"parameter {name!r} of the loaded model does not come from the checkpoint")

    digest = WeightsDigest()
    narrowed: list[str] = []
    for name in sorted(entries):
        e = entries[name]
        t = sd[name].detach()
        if tuple(t.shape) != e.shape:
            raise WeightsMismatchError(f"{name!r} is loaded with shape {list(t.shape)}, stored {list(e.shape)}")
        digest.begin(name, e.dtype, e.shape, e.nbytes)
        if _lossless(e.dtype, t.dtype):
            stored = t.to(_torch_dtype(e.dtype))
            if not torch.equal(stored.to(t.dtype), t):
                raise WeightsMismatchError(f"{name!r} holds values the stored dtype {e.dtype} cannot represent")
            flat = stored.reshape(-1).contiguous().cpu()
            if flat.numel():
                digest.update(memoryview(flat.view(torch.uint8).numpy()))
        else:  # narrowed on load: compare with the file's values cast the same way
            if not torch.equal(_file_tensor(e, t.dtype), t.cpu()):
                raise WeightsMismatchError(f"{name!r} differs from the checkpoint after loading")
            for block in iter_bytes(e):
                digest.update(block)
            narrowed.append(name)
    loaded = digest.hexdigest()
    reference = expected_digest or weights_digest(entries.values())
    if loaded != reference:
        raise WeightsMismatchError(
            f"the loaded weights (digest {loaded[:12]}) are not the verified ones ({reference[:12]})"
        )
    return {
        "digest": loaded,
        "compared_with": "recorded digest" if expected_digest else "digest of the files",
        "tensors": len(entries),
        "narrowed": len(narrowed),
    }
