"""Model-format gate: is a folder one unambiguous, pickle-free safetensors model?

The rules are those of the canonical submission (:mod:`posttrainbench.models.canonical`), so a
folder passes here exactly when nothing in it could make two readers load two different
models, without loading any weights:

- ``config.json`` parses as a JSON object with a non-empty ``model_type``; no ``auto_map``
  (custom code) and no ``quantization_config``;
- exactly one weight set: ``model.safetensors``, or ``model.safetensors.index.json`` with the
  shards it names, the index and the shards agreeing tensor for tensor (no tensor in two
  shards, none unlisted, no loose ``.safetensors`` beside the index); every header is parsed by
  the strict reader (no duplicate keys, data regions tiling the file exactly) and every tensor
  is F32/F16/BF16;
- no pickled weights, no PEFT adapter and no GGUF next to them (some loaders would pick those);
- a tokenizer (``tokenizer.json``, ``tokenizer.model`` or ``vocab.json`` + ``merges.txt``) whose
  JSON files parse, without ``auto_map``.

Symlinks and special files are refused. Other files (training leftovers) are listed in the
evidence and read by nothing.
"""

from __future__ import annotations

from pathlib import Path

from ..domain import Verdict, VerdictStatus
from ..models.canonical import (
    REFUSED_CONFIG_KEYS,
    SubmissionRejected,
    list_folder,
    read_json_object,
    tokenizer_files,
    weight_set,
)
from ._common import guarded, verdict, write_evidence

GATE = "model_format"


@guarded(GATE)
def check_model_folder(path: Path, evidence_dir: Path | None = None, allow_remote_code: bool = False) -> Verdict:
    """Pass if ``path`` is one unambiguous safetensors model folder; the summary says what is wrong."""
    path = Path(path)
    info: dict = {"path": str(path)}
    problems: list[str] = []
    if not path.is_dir() or path.is_symlink():
        problems.append(f"no model folder at {path}")
        return _finish(problems, [], info, evidence_dir)
    try:
        files, ignored = list_folder(path, path)
    except SubmissionRejected as exc:
        return _finish([str(exc)], [], info, evidence_dir)
    info["files"] = sorted(files)

    if "config.json" not in files:
        problems.append(
            "no config.json: this is a LoRA/PEFT adapter; merge it into the base model and save the full model"
            if "adapter_config.json" in files
            else "no config.json"
        )
    else:
        try:
            cfg = read_json_object(files["config.json"], "config.json")
        except SubmissionRejected as exc:
            problems.append(str(exc))
        else:
            info["model_type"], info["architectures"] = cfg.get("model_type"), cfg.get("architectures")
            if not isinstance(cfg.get("model_type"), str) or not cfg["model_type"]:
                problems.append("config.json has no model_type")
            for key, why in REFUSED_CONFIG_KEYS.items():
                if cfg.get(key) and not (key == "auto_map" and allow_remote_code):
                    problems.append(f"config.json: {why}")
    try:
        entries, used = weight_set(files, max_bytes=1 << 62)
        info["weight_files"], info["tensors"] = used, len(entries)
    except SubmissionRejected as exc:
        problems.append(str(exc))
        used = []
    try:
        tok = tokenizer_files(files)
        for name in tok:
            if name.endswith(".json"):
                data = read_json_object(files[name], name)
                if name == "tokenizer_config.json" and data.get("auto_map") and not allow_remote_code:
                    problems.append("tokenizer_config.json: custom tokenizer code (auto_map) is not run by the harness")
    except SubmissionRejected as exc:
        problems.append(str(exc))
        tok = []
    known = {"config.json", "generation_config.json", *used, *tok}
    leftovers = sorted([*ignored, *(n for n in files if n not in known)])
    notes = [f"ignored (read by nothing): {', '.join(leftovers)}"] if leftovers else []
    return _finish(problems, notes, info, evidence_dir)


def _finish(problems: list[str], notes: list[str], info: dict, evidence_dir: Path | None) -> Verdict:
    evidence = write_evidence(evidence_dir, GATE, {"gate": GATE, **info, "problems": problems, "notes": notes})
    if problems:
        return verdict(GATE, VerdictStatus.failed, "; ".join(problems), evidence)
    return verdict(
        GATE, VerdictStatus.passed, f"one unambiguous safetensors model ({info.get('model_type')})", evidence
    )
