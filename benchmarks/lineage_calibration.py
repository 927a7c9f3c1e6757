#!/usr/bin/env python
"""Calibration of the lineage gate's partial-transfer checks on real fine-tunes (CPU).

For a base model (``tiny``: the 2-layer ``ptb/tiny-random`` model; ``smollm2``: the demo's
SmolLM2-135M), this trains with plain PyTorch on GSM8K train text:

- two *forbidden* checkpoints (stand-ins for the instruct model): long full fine-tunes of the
  base on the first half of the data (seeds 100, 101);
- honest controls: a short full fine-tune and a LoRA fine-tune merged back, on the *same* data
  as the forbidden model (the worst case: correlated deltas), and a long training pass (as many
  steps as the forbidden model) on the other half;

then builds synthetic partial transfers from the first forbidden checkpoint (interpolations at
5/10/20/50 % on top of an honest fine-tune plus noise, a transplanted layer, a transplanted
embedding, a per-row rescaled and sign-flipped transplant, a permuted transplant, a 5 % + 5 %
mix of both forbidden checkpoints) and runs ``check_lineage`` on every one, with both forbidden
checkpoints. It prints a markdown table (the figures in docs/integrity.md) and writes JSON.

    python benchmarks/lineage_calibration.py --model tiny [--workdir DIR] [--json out.json]
    python benchmarks/lineage_calibration.py --model smollm2 --steps 40
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from posttrainbench.integrity.lineage import check_lineage
from posttrainbench.integrity.lineage_projection import layer_of

DATA = Path(__file__).resolve().parents[1] / "src/posttrainbench/resources/gsm8k/train.jsonl"


INSTRUCT = Path(__file__).resolve().parents[1] / "src/posttrainbench/resources/arenahardwriting"


def _texts() -> list[str]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows]


def _instruct_texts() -> list[str]:
    """Chat transcripts of an instruct model (Arena-Hard writing prompts, Qwen3-1.7B answers): the
    forbidden stand-ins are trained on these, as an instruct model is trained on broad chat data."""
    out = []
    for line in (INSTRUCT / "baseline_answers_Qwen3-1.7B.jsonl").read_text().splitlines():
        msgs = json.loads(line)["messages"]
        out.append(
            "".join(
                f"<|{m['role']}|>\n{m['content'] if isinstance(m['content'], str) else json.dumps(m['content'])}\n"
                for m in msgs
            )
        )
    return out


def train(base: Path, out: Path, texts: list[str], steps: int, lr: float, seed: int, lora: bool, seq: int) -> Path:
    """Causal-LM fine-tune of ``base`` (full or LoRA merged), saved as safetensors in ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if lora:
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0)
        model = get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(texts), (4,), generator=g).tolist()
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=seq)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    if lora:
        model = model.merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _save(like: Path, dest: Path, tensors: dict[str, torch.Tensor]) -> Path:
    shutil.copytree(like, dest, ignore=shutil.ignore_patterns("*.safetensors"))
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(dest / "model.safetensors"), metadata={"format": "pt"}
    )
    return dest


def synthetic(base: Path, forb: Path, forb2: Path, honest: Path, work: Path) -> dict[str, Path]:
    """Partial transfers of ``forb`` into ``base`` / the honest fine-tune ``honest``."""
    b, g, g2, h = _state(base), _state(forb), _state(forb2), _state(honest)
    gen = torch.Generator().manual_seed(7)
    out: dict[str, Path] = {}
    for a in (0.05, 0.1, 0.2, 0.5):
        t = {}
        for k in h:
            step = a * (g[k] - b[k])
            noise = torch.randn(step.shape, generator=gen) * (step.norm() / max(1.0, step.numel() ** 0.5))
            t[k] = h[k] + step + noise
        out[f"interpolation {a:.0%} + honest FT + noise"] = _save(honest, work / f"interp{int(a * 100)}", t)
    layers = sorted({layer_of(k) for k in h if layer_of(k).startswith("layer ")})
    mid = layers[len(layers) // 2]
    t = {k: (g[k].clone() if layer_of(k) == mid else v) for k, v in h.items()}
    out[f"transplanted {mid} (+1% noise)"] = _save(honest, work / "tlayer", _perturb(t, mid, gen))
    emb = next(k for k in h if "embed" in k)
    out["transplanted embedding"] = _save(honest, work / "temb", dict(h, **{emb: g[emb].clone()}))
    t = dict(h)
    for k in h:
        if layer_of(k) == mid and h[k].dim() == 2:
            s = torch.empty(h[k].shape[0], 1).uniform_(0.5, 2.0, generator=gen)
            sign = torch.where(torch.rand(h[k].shape[0], 1, generator=gen) < 0.5, -1.0, 1.0)
            t[k] = g[k] * s * sign
    out[f"transplanted {mid}, rows rescaled x0.5-2, signs flipped"] = _save(honest, work / "tscaled", t)
    t = dict(h)
    for k in h:
        if layer_of(k) == mid and h[k].dim() == 2:
            t[k] = g[k][torch.randperm(h[k].shape[0], generator=gen)]
    out[f"transplanted {mid}, rows permuted"] = _save(honest, work / "tperm", t)
    t = {k: h[k] + 0.05 * (g[k] - b[k]) + 0.05 * (g2[k] - b[k]) for k in h}
    out["mix 5% forbidden A + 5% forbidden B"] = _save(honest, work / "mix", t)
    return out


def _perturb(t: dict[str, torch.Tensor], layer: str, gen: torch.Generator) -> dict:
    return {
        k: (v + 0.01 * v.abs().mean() * torch.randn(v.shape, generator=gen) if layer_of(k) == layer else v)
        for k, v in t.items()
    }


def row(name: str, kind: str, final: Path, base: Path, forbidden: dict[str, Path], ev: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    v = check_lineage(final, base, ev, forbidden=forbidden)
    rep = json.loads(Path(v.evidence[0]).read_text())
    tr = rep.get("transfer", {})
    return {
        "case": name,
        "kind": kind,
        "status": v.status.value,
        "flag": rep.get("flag"),
        "combined_share": tr.get("combined_share"),
        "top_layer_share": tr.get("top_layer", {}).get("share"),
        "transplanted": len(tr.get("transplanted", [])),
        "max_rel": rep.get("summary", {}).get("max_rel"),
        "median_rel": rep.get("summary", {}).get("median_rel"),
        "max_tensor_beta": max(
            (abs(p["beta"]) for f in rep.get("forbidden", {}).values() for p in f.get("per_tensor", [])), default=0.0
        ),
        "max_row_share": max(
            (p["row_carried_share"] for f in rep.get("forbidden", {}).values() for p in f.get("per_tensor", [])),
            default=0.0,
        ),
        "s": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--steps", type=int, default=0, help="steps of the short honest fine-tune")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--seq", type=int, default=0, help="tokens per training example")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="ptb-lineage-cal-"))
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    if a.model == "tiny":
        from posttrainbench.models.tiny import build_tiny_model

        base = build_tiny_model(work / "base", seed=0)
        steps, lr, lora_lr, seq = a.steps or 100, 3e-3, 1e-2, 96
    else:
        from posttrainbench.models.demo import smollm2_dir
        from posttrainbench.settings import Settings

        base = smollm2_dir(Settings().paths.cache_dir)
        steps, lr, lora_lr, seq = a.steps or 20, 5e-5, 5e-4, a.seq or 64
    texts = _texts()
    half_a, half_b = texts[: len(texts) // 2], texts[len(texts) // 2 :]
    chat = _instruct_texts()
    t0 = time.perf_counter()
    forb = train(base, work / "forbidden", chat, 4 * steps, lr, 100, False, seq)
    forb2 = train(base, work / "forbidden2", chat, 4 * steps, lr, 101, False, seq)
    honest = {
        f"full FT, {steps} steps": train(base, work / "ft", half_a, steps, lr, 1, False, seq),
        f"LoRA r8 merged, {steps} steps": train(base, work / "lora", half_a, steps, lora_lr, 2, True, seq),
        f"long full FT, {4 * steps} steps": train(base, work / "long", half_b, 4 * steps, lr, 3, False, seq),
        f"full FT, {steps} steps, forbidden's chat data": train(base, work / "ftchat", chat, steps, lr, 4, False, seq),
    }
    train_s = time.perf_counter() - t0
    first_honest = next(iter(honest.values()))
    attacks = synthetic(base, forb, forb2, first_honest, work)
    forbidden = {"forbidden-A": forb, "forbidden-B": forb2}
    rows = [row(n, "honest", p, base, forbidden, work / "ev" / p.name) for n, p in honest.items()]
    rows += [row(n, "attack", p, base, forbidden, work / "ev" / p.name) for n, p in attacks.items()]
    print(f"model {a.model}, training {train_s:.0f} s, workdir {work}")
    cols = ["case", "kind", "flag", "combined_share", "top_layer_share", "max_tensor_beta", "max_row_share", "max_rel"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if a.json:
        a.json.write_text(json.dumps({"model": a.model, "train_s": train_s, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
