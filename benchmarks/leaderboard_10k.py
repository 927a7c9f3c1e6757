"""Leaderboard at scale: 10,000 synthetic run folders, index build and leaderboard.

Writes N run folders (paper base models × paper benchmarks × agents × repeats, a few flagged or
failed) with real ``run.json`` files, then measures each case in a fresh Python process (so
imports are excluded and peak memory is that case's own), reporting wall time and the
process's peak RSS:

  (a) naive: read and validate every ``run.json`` with pydantic, apply the policy, rank — what
      a leaderboard without an index must do on every call;
  (b) ``ptb index --full``: build the SQLite index from scratch;
  (c) ``ptb index``: incremental refresh with nothing changed (stat only);
  (d) incremental refresh after 100 runs changed;
  (e) leaderboard report from the warm index (refresh + query + policy + ranking).

    python benchmarks/leaderboard_10k.py [--runs 10000] [--keep DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from posttrainbench.benchmarks import BENCHMARKS
from posttrainbench.catalog import PAPER_BASE_MODELS
from posttrainbench.leaderboard.aggregate import leaderboard_from_cells
from posttrainbench.leaderboard.scoring import score_cell
from posttrainbench.leaderboard.tables import build_report
from posttrainbench.results import load_record
from posttrainbench.results.index import refresh
from posttrainbench.testing import write_synthetic_baseline, write_synthetic_run


def generate(root: Path, n: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    models = [m.hub_id for m in PAPER_BASE_MODELS]
    benches = [b.id for b in BENCHMARKS.values() if not b.demo]
    for b in benches:
        for m in models:
            write_synthetic_baseline(root, benchmark=b, base_model=m, score=rng.uniform(0, 0.3))
            write_synthetic_baseline(
                root, benchmark=b, base_model=m, score=rng.uniform(0.5, 0.9), checkpoint="instruct"
            )
    per_repeat = len(models) * len(benches)
    repeats = 3
    n_agents = max(1, -(-n // (per_repeat * repeats)))
    written = 0
    for a in range(n_agents):
        for r in range(repeats):
            for m in models:
                for b in benches:
                    if written >= n:
                        return written
                    roll = rng.random()
                    write_synthetic_run(
                        root,
                        agent="reference",
                        agent_config=f"cfg{a:03d}",
                        base_model=m,
                        benchmark=b,
                        hours=10,
                        repeat=r,
                        score=None if roll < 0.03 else rng.uniform(0, 0.8),
                        verdict="fail" if roll > 0.97 else "pass",
                        time_used_s=rng.uniform(1, 10) * 3600,
                        usage={
                            "input_tokens": rng.randint(10**5, 10**7),
                            "output_tokens": rng.randint(10**4, 10**6),
                            "cost_usd": rng.uniform(1, 50),
                        },
                    )
                    written += 1
    return written


def naive(root: Path) -> int:
    """Read every run.json with full validation and rank (no index)."""
    baselines = {}
    for p in root.glob("baseline_zeroshot/*/baseline.json"):
        d = json.loads(p.read_text())
        if d.get("checkpoint", "base") == "base":
            baselines[(d["benchmark"], d["base_model"])] = d["score"]
    cells = []
    for p in root.glob("*/*/run.json"):
        rec = load_record(p)
        cells.append(score_cell(rec, baselines.get((rec.spec.benchmark, rec.spec.base_model))))
    benches = sorted({c.benchmark for c in cells})
    rows = leaderboard_from_cells(cells, {}, {b: 1 / len(benches) for b in benches})
    return len(rows)


CASES: dict[str, Callable[[Path], object]] = {
    "(a) naive: validate every run.json + rank": lambda root: f"{naive(root)} agents",
    "(b) index --full": lambda root: refresh(root, full=True),
    "(c) index, nothing changed": lambda root: refresh(root),
    "(d) index, 100 runs changed": lambda root: refresh(root),
    "(e) leaderboard report from the warm index": lambda root: f"{len(build_report(root).agents)} agents",
}


def run_case(name: str, root: Path) -> None:
    """Child process: run one case, print {"seconds", "peak_rss_mib", "result"} as JSON."""
    t = time.perf_counter()
    out = CASES[name](root)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "result": str(out)}))


def measure(name: str, root: Path) -> dict:
    cmd = [sys.executable, __file__, "--case", name, "--root", str(root)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print(f"  {name}: {res['seconds']:.2f} s, peak RSS {res['peak_rss_mib']:.0f} MiB ({res['result']})", flush=True)
    return {"case": name, **res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="Write the folders here and keep them.")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        run_case(args.case, args.root)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="ptb-lb10k-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        n = generate(root, args.runs)
        size = sum(f.stat().st_size for f in root.rglob("run.json"))
        print(f"generated {n} runs ({size / 2**20:.1f} MiB of run.json) in {time.perf_counter() - t:.1f} s", flush=True)
        names = list(CASES)
        results = [measure(name, root) for name in names[:3]]
        changed = sorted(root.glob("*/*/run.json"))[:100]
        for p in changed:
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        results += [measure(name, root) for name in names[3:]]
        base = results[0]["seconds"]
        print("\n| case | seconds | × naive | peak RSS MiB |\n|---|---:|---:|---:|")
        for r in results:
            print(f"| {r['case']} | {r['seconds']:.2f} | {r['seconds'] / base:.2f}× | {r['peak_rss_mib']:.0f} |")
        if args.json:
            args.json.write_text(json.dumps({"runs": n, "results": results}, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
