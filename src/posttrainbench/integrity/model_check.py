"""Model-format gate: is ``final_model`` a loadable, pickle-free Hugging Face model folder?

Checks, without loading any weights:

- ``config.json`` parses as a JSON object with a non-empty ``model_type``; no ``auto_map``
  (custom modeling code would run inside the harness's evaluator) unless allowed;
- weights: ``model.safetensors``, or shards listed by a ``*.safetensors.index.json`` whose
  shards all exist inside the folder and hold the tensors the index names; several
  ``.safetensors`` files without an index are refused (loaders would ignore all but one);
- every safetensors header parses (``safetensors.safe_open``; a truncated or corrupt file
  fails here) and holds at least one tensor;
- pickle weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, ``*.pkl``) are refused when they
  are the only weights, and weight-named pickles (``pytorch_model*``, ``model.*``, ``adapter_model*``,
  ``consolidated*``) are refused even next to safetensors;
  training leftovers such as ``training_args.bin`` or ``optimizer.pt`` next to safetensors are
  tolerated (no evaluator loads them) and listed in the evidence;
- tokenizer: ``tokenizer.json`` or ``tokenizer.model`` or ``vocab.json`` + ``merges.txt`` or
  ``vocab.txt``; JSON tokenizer files must parse.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from ..domain import Verdict, VerdictStatus
from ._common import guarded, verdict, write_evidence

GATE = "model_format"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PICKLE_WEIGHT_PREFIXES = ("pytorch_model", "consolidated", "adapter_model", "model.")


def _read_json(path: Path) -> tuple[object | None, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} does not parse: {type(exc).__name__}: {exc}"


def _safetensors_keys(path: Path) -> tuple[list[str] | None, str | None]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = list(f.keys())
    except Exception as exc:  # noqa: BLE001 - any parse error is the finding
        return None, f"{path.name}: safetensors header does not parse ({type(exc).__name__}: {exc})"
    if not keys:
        return None, f"{path.name}: safetensors file holds no tensors"
    return keys, None


@guarded(GATE)
def check_model_folder(
    path: Path, evidence_dir: Path | None = None, allow_remote_code: bool = False
) -> Verdict:
    """Pass if ``path`` is a complete safetensors model folder; the summary says what is wrong."""
    path = Path(path)
    problems: list[str] = []
    notes: list[str] = []
    info: dict = {"path": str(path)}

    if not path.is_dir():
        problems.append(f"no model folder at {path}")
        return _finish(path, problems, notes, info, evidence_dir)

    names = sorted(p.name for p in path.iterdir() if p.is_file())
    info["files"] = names

    # config.json
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        if (path / "adapter_config.json").is_file():
            problems.append("no config.json: this is a LoRA/PEFT adapter; merge it into the base model and save the full model")
        else:
            problems.append("no config.json")
    else:
        cfg, err = _read_json(cfg_path)
        if err:
            problems.append(err)
        elif not isinstance(cfg, dict):
            problems.append("config.json is not a JSON object")
        else:
            mt = cfg.get("model_type")
            info["model_type"] = mt
            info["architectures"] = cfg.get("architectures")
            if not isinstance(mt, str) or not mt:
                problems.append("config.json has no model_type")
            if cfg.get("auto_map") and not allow_remote_code:
                problems.append("config.json has auto_map: custom model code refused (remote code)")

    # weights
    st_files = [n for n in names if n.endswith(".safetensors")]
    index_files = [n for n in names if n.endswith(".safetensors.index.json")]
    pickles = [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]
    pickle_weights = [n for n in pickles if n.startswith(PICKLE_WEIGHT_PREFIXES)]
    info.update(safetensors=st_files, index=index_files, pickle_files=pickles)

    if not st_files and not index_files:
        if pickles:
            problems.append(f"pickle weights refused: use safetensors (found {', '.join(pickles)})")
        else:
            problems.append("no weights: no *.safetensors file")
    else:
        if pickle_weights:
            problems.append(f"pickle weights refused: use safetensors (remove {', '.join(pickle_weights)})")
        elif pickles:
            notes.append(f"ignored non-weight pickle files: {', '.join(pickles)}")
        problems.extend(_check_weights(path, st_files, index_files, info))

    # tokenizer
    has_tok = (
        (path / "tokenizer.json").is_file()
        or (path / "tokenizer.model").is_file()
        or ((path / "vocab.json").is_file() and (path / "merges.txt").is_file())
        or (path / "vocab.txt").is_file()
    )
    if not has_tok:
        problems.append("no tokenizer files (tokenizer.json, tokenizer.model, vocab.json+merges.txt or vocab.txt)")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json"):
        if (path / name).is_file():
            _, err = _read_json(path / name)
            if err:
                problems.append(err)

    return _finish(path, problems, notes, info, evidence_dir)


def _check_weights(path: Path, st_files: list[str], index_files: list[str], info: dict) -> list[str]:
    problems: list[str] = []
    if len(index_files) > 1:
        return [f"several safetensors index files: {', '.join(index_files)}"]
    if index_files:
        idx, err = _read_json(path / index_files[0])
        if err:
            return [err]
        wm = idx.get("weight_map") if isinstance(idx, dict) else None
        if not isinstance(wm, dict) or not wm:
            return [f"{index_files[0]} has no weight_map"]
        shards: dict[str, list[str]] = {}
        for tensor, shard in wm.items():
            shards.setdefault(str(shard), []).append(tensor)
        info["shards"] = sorted(shards)
        for shard, tensors in sorted(shards.items()):
            sp = PurePosixPath(shard)
            if sp.is_absolute() or ".." in sp.parts or len(sp.parts) != 1:
                problems.append(f"index names a shard outside the folder: {shard!r}")
                continue
            f = path / shard
            if not f.is_file():
                problems.append(f"missing shard {shard} (named by {index_files[0]})")
                continue
            keys, err = _safetensors_keys(f)
            if err:
                problems.append(err)
                continue
            absent = sorted(set(tensors) - set(keys))
            if absent:
                problems.append(f"{shard} lacks {len(absent)} tensors named by the index (e.g. {absent[0]})")
        unlisted = sorted(set(st_files) - set(shards))
        if unlisted:
            info["unlisted_safetensors"] = unlisted
        return problems
    if len(st_files) > 1:
        return [f"{len(st_files)} safetensors files but no *.safetensors.index.json"]
    keys, err = _safetensors_keys(path / st_files[0])
    if err:
        return [err]
    info["tensors"] = len(keys)
    return problems


def _finish(path: Path, problems: list[str], notes: list[str], info: dict, evidence_dir: Path | None) -> Verdict:
    evidence = write_evidence(evidence_dir, GATE, {"gate": GATE, **info, "problems": problems, "notes": notes})
    if problems:
        return verdict(GATE, VerdictStatus.failed, "; ".join(problems), evidence)
    return verdict(GATE, VerdictStatus.passed, f"loadable safetensors model folder ({info.get('model_type')})", evidence)
