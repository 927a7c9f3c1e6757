"""Evaluation throughput: samples/s and generated tokens/s of the harness's batched ``ptb-hf``
path vs a per-request path and Inspect's built-in ``hf`` provider, same model, data, decoding.

Cases (each through the real Inspect task of the benchmark, scored, model loaded before timing):

(a) ``ptb-hf``, ``batch_size=B`` (the harness default, 16): concurrent requests gathered into
    ``model.generate`` batches;
(b) ``ptb-hf``, ``batch_size=1``: one request at a time (the per-request path);
(c) Inspect's ``hf`` provider at its defaults (its own queue batching, up to 32 per batch), with
    the model's own chat template;
(v) ``ptb-vllm`` (GPU, ``posttrainbench[gpu]``): the whole set in one ``LLM.generate`` call, as
    the harness's ``vllm`` backend does. Not in the default cases; ``--cases v,a,b`` on a GPU.

Run from the repository root with the project's venv::

    python benchmarks/eval_throughput.py [--model PATH] [--n 32] [--max-tokens 16] [--json out.json]

``--model`` defaults to the demo SmolLM2-135M (``ptb demo`` builds it in the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the demo SmolLM2-135M)")
    ap.add_argument("--benchmark", default="gsm8k-calc")
    ap.add_argument("--n", type=int, default=32, help="samples")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--cases", default="a,b,c")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import tempfile

    import torch
    from inspect_ai import eval as inspect_eval
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import GenerateConfig, get_model

    from posttrainbench.benchmarks import get_benchmark
    from posttrainbench.evaluation import build_task, vllm_available
    from posttrainbench.models.demo import ensure_smollm2

    if "v" in args.cases.split(","):
        ok, why = vllm_available()
        if not ok:
            ap.error(f"case v: {why}")

    model_path = args.model or ensure_smollm2()
    bench = get_benchmark(args.benchmark)
    items = bench.load_test_items()[: args.n]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    template = "chatml"
    log_dir = tempfile.mkdtemp(prefix="ptb-throughput-")

    def make(case: str):
        if case == "a":
            return get_model("ptb-hf/m", memoize=False, model_path=str(model_path), chat_template=template,
                             batch_size=args.batch_size, device=device), args.batch_size  # fmt: skip
        if case == "v":  # the harness's vllm backend: batch = the whole set
            return get_model("ptb-vllm/m", memoize=False, model_path=str(model_path), chat_template=template,
                             batch_size=len(items)), len(items)  # fmt: skip
        if case == "b":
            return get_model("ptb-hf/m", memoize=False, model_path=str(model_path), chat_template=template,
                             batch_size=1, device=device), 1  # fmt: skip
        model = get_model(f"hf/{model_path}", memoize=False, model_path=str(model_path), device=device, do_sample=False,
                          config=GenerateConfig(temperature=0.0))  # fmt: skip
        return model, 32

    labels = {
        "a": f"(a) ptb-hf, batch_size={args.batch_size}",
        "b": "(b) ptb-hf, batch_size=1 (per request)",
        "c": "(c) Inspect hf provider, defaults",
        "v": "(v) ptb-vllm, whole set at once",
    }
    rows: list[dict[str, Any]] = []
    for case in args.cases.split(","):
        t0 = time.monotonic()
        model, conns = make(case)
        load_s = time.monotonic() - t0
        task = build_task(bench, items, max_tokens=args.max_tokens)
        t0 = time.monotonic()
        elog = inspect_eval(task, model=model, log_dir=log_dir, max_connections=conns, max_samples=max(conns, 1),
                            display="none", ctl_server=False, log_format="eval")[0]  # fmt: skip
        wall = time.monotonic() - t0
        assert elog.status == "success", elog.error
        full = read_eval_log(elog.location)
        out_tokens = sum(s.output.usage.output_tokens for s in full.samples if s.output.usage)
        acc = full.results.scores[0].metrics["accuracy"].value
        rows.append({
            "case": labels[case], "samples": len(full.samples), "wall_s": wall, "load_s": load_s,
            "samples_per_s": len(full.samples) / wall, "output_tokens": out_tokens,
            "tokens_per_s": out_tokens / wall, "accuracy": acc,
        })  # fmt: skip
        print(f"{labels[case]}: {wall:.1f}s", file=sys.stderr)
        del model
    base = next((r for r in rows if r["case"].startswith("(b)")), None)
    print(f"\n{bench.id}, {len(items)} samples, max_tokens {args.max_tokens}, device {device}, "
          f"model {model_path.name}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.python_version()}\n")  # fmt: skip
    print("| path | samples/s | output tokens/s | wall s | output tokens | accuracy | × (b) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        speed = f"{r['samples_per_s'] / base['samples_per_s']:.1f}×" if base else ""
        print(f"| {r['case']} | {r['samples_per_s']:.2f} | {r['tokens_per_s']:.1f} | {r['wall_s']:.1f} | "
              f"{r['output_tokens']} | {r['accuracy']:.3f} | {speed} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
