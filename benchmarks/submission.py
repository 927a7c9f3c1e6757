"""Benchmark: the canonical submission (collect) and the evaluator's post-load weights check.

Cases, each step in a fresh worker process that reports its wall time and peak memory
(``VmHWM``, and the peak of ``RssAnon``: heap and tensors, not the page cache of mmapped files):

- **135M**: SmolLM2-135M (the demo model, float32, 538 MB) as the base and a "fine-tune" of it
  (every weight moved by 1% of its tensor's std) as the agent's ``final_model``;
- **4B-shaped**: a Qwen3-4B-shaped checkpoint (36 layers, hidden 2560, vocabulary 151936, tied
  embeddings; 4.02 B parameters) in BF16, 4 shards + index as ``save_pretrained`` writes them
  (8.0 GB), random finite values, with a real ``config.json`` that transformers builds.

Steps per case:

- ``collect, naive``: what collect did before (copy the folder + sha256 of every file): the baseline;
- ``collect, canonical``: :func:`posttrainbench.models.canonicalize` (strict headers, config pinned
  to the base, tensors mapped onto the meta-device architecture, re-written with the digest);
- ``load``: ``AutoModelForCausalLM.from_pretrained`` of the canonical folder (the evaluator's
  load, float32 for 135M as on CPU, bfloat16 for 4B as on a GPU): the baseline;
- ``load + check``: the same plus :func:`posttrainbench.models.loaded_check.check_loaded_weights`
  against the recorded digest.

Usage::

    python benchmarks/submission.py [--workdir DIR] [--skip-4b] [--keep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import posttrainbench  # noqa: F401 - only: is the package installed?
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import QWEN3_4B, _AnonSampler, _perturb_135m, _qwen3_4b_tensors, _vm_hwm_mib, console, run_meta, run_worker


def worker(kind: str, args: dict) -> dict:
    """One step in this (fresh) process (imports are done before the clock starts: the harness
    has them loaded already)."""
    import torch
    import transformers.conversion_mapping  # noqa: F401 - preloaded (see the docstring)
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM  # noqa: F401 - preloaded

    import posttrainbench.models.loaded_check  # noqa: F401 - preloaded

    sampler = _AnonSampler()
    t0 = time.perf_counter()
    final, dest = Path(args["final"]), Path(args["dest"])
    out: dict = {}
    if kind == "naive":
        from posttrainbench.fsutil import hash_tree

        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(final, dest)
        out["files"] = len(hash_tree(dest))
    elif kind == "canonical":
        from posttrainbench.models import canonicalize

        shutil.rmtree(dest, ignore_errors=True)
        res = canonicalize(final, dest, Path(args["base"]), allowed_root=final.parent, max_weight_bytes=1 << 40)
        out |= {"files": len(res.files), "digest": res.weights_digest, "tensors": res.n_tensors}
    elif kind in ("load", "load_check"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            str(dest), dtype=getattr(torch, args["dtype"]), local_files_only=True
        )
        if kind == "load_check":
            from posttrainbench.models.loaded_check import check_loaded_weights

            out |= check_loaded_weights(model, dest, args.get("digest"))
    else:
        raise SystemExit(f"unknown worker {kind}")
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": _vm_hwm_mib(), "peak_anon_mib": sampler.stop(), **out}


def _write_4b_bf16(dest: Path, shards: int = 4) -> int:
    """The 4B-shaped checkpoint in BF16 with a buildable Qwen3 config and a tokenizer."""
    import numpy as np

    from posttrainbench.models.tiny import build_tiny_tokenizer

    dest.mkdir(parents=True, exist_ok=True)
    c = QWEN3_4B
    (dest / "config.json").write_text(json.dumps({
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": c["hidden"],
        "intermediate_size": c["inter"], "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
        "num_key_value_heads": c["kv"], "head_dim": c["head_dim"], "vocab_size": c["vocab"],
        "tie_word_embeddings": True, "max_position_embeddings": 32768, "torch_dtype": "bfloat16",
    }))  # fmt: skip
    build_tiny_tokenizer().save_pretrained(str(dest))
    tensors = _qwen3_4b_tensors()
    total = sum(int(np.prod(s)) for _, s in tensors)
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    per, acc = total / shards, 0
    for name, shape in tensors:
        if acc >= per and len(groups) < shards:
            groups.append([])
            acc = 0
        groups[-1].append((name, shape))
        acc += int(np.prod(shape))
    rng = np.random.default_rng(0)
    weight_map, chunk = {}, 1 << 25
    for gi, group in enumerate(groups):
        fname = f"model-{gi + 1:05d}-of-{len(groups):05d}.safetensors"
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        off = 0
        for name, shape in group:
            n = 2 * int(np.prod(shape))
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
            weight_map[name] = fname
        hb = json.dumps(header).encode()
        hb += b" " * (-len(hb) % 8)
        with open(dest / fname, "wb") as fh:
            fh.write(struct.pack("<Q", len(hb)) + hb)
            for _, shape in group:
                n = int(np.prod(shape))
                for s in range(0, n, chunk):
                    m = min(chunk, n - s)
                    # finite bf16 bit patterns of magnitude ~1e-9..0.5, both signs
                    bits = rng.integers(0x3000, 0x3F00, m, dtype=np.uint16) | (
                        rng.integers(0, 2, m, dtype=np.uint16) << 15
                    )
                    fh.write(bits.tobytes())
    (dest / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 2 * total}, "weight_map": weight_map})
    )
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "ARGS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip-4b", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], json.loads(a.worker[1]))))
        return

    from posttrainbench.models.demo import ensure_smollm2

    work = Path(a.workdir or tempfile.mkdtemp(prefix="ptb-submission-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    started, load0 = time.perf_counter(), os.getloadavg()[0]

    def run_case(case: str, base: Path, final: Path, dtype: str) -> None:
        naive, canon = work / "naive", work / "canonical"
        steps = [
            ("collect, naive (copy + sha256)", "naive", {"final": str(final), "dest": str(naive)}),
            ("collect, canonical", "canonical", {"final": str(final), "dest": str(canon), "base": str(base)}),
        ]
        for label, kind, args in steps:
            res = run_worker(kind, args, __file__)
            rows.append({"case": case, "step": label, **res})
            console.print(f"[bold]{case}[/] {label}: {res['seconds']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")
        shutil.rmtree(naive, ignore_errors=True)
        digest = rows[-1]["digest"]
        for label, kind in (("load", "load"), ("load + check", "load_check")):
            res = run_worker(
                kind, {"final": str(final), "dest": str(canon), "dtype": dtype, "digest": digest}, __file__
            )
            rows.append({"case": case, "step": f"{label} ({dtype})", **res})
            console.print(f"[bold]{case}[/] {label}: {res['seconds']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")
        shutil.rmtree(canon, ignore_errors=True)

    try:
        console.rule("135M")
        base = ensure_smollm2()
        final = _perturb_135m(base, work / "ws" / "final_model")
        run_case("SmolLM2-135M (fp32, 538 MB)", base, final, "float32")
        shutil.rmtree(work / "ws")
        if not a.skip_4b:
            console.rule("4B-shaped")
            t0 = time.perf_counter()
            n = _write_4b_bf16(work / "ws4" / "final_model")
            console.print(f"wrote {n / 1e9:.2f} B params (bf16) in {time.perf_counter() - t0:.0f} s")
            b4 = work / "ws4" / "final_model"
            run_case(f"4B-shaped ({n / 1e9:.2f} B params, bf16, 4 shards, {2 * n / 1e9:.1f} GB)", b4, b4, "bfloat16")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    meta = run_meta(started, load0)
    print("| case | step | wall s | × baseline | peak RSS MiB | peak anon MiB |")
    print("|---|---|---:|---:|---:|---:|")
    base_s: dict[tuple[str, str], float] = {}
    for r in rows:
        kind = "collect" if r["step"].startswith("collect") else "load"
        base_s.setdefault((r["case"], kind), r["seconds"])
        ratio = r["seconds"] / base_s[(r["case"], kind)]
        print(
            f"| {r['case']} | {r['step']} | {r['seconds']:.2f} | {ratio:.2f}× | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_anon_mib']:.0f} |"
        )
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
