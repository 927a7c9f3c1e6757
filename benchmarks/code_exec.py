"""Benchmark: cost per program of the HumanEval executor (``evaluation.code_exec``).

Runs the 164 shipped HumanEval problems through ``run_programs`` with ``--workers`` programs at a
time, in two batches:

- ``canonical``: each problem's canonical solution (every one must pass; the benchmark aborts
  otherwise), the path of a correct reply;
- ``wrong``: the reply ``return None`` for every problem (every one must fail), the path of a
  wrong reply that fails at its first assertion.

Each batch is run ``--repeats`` times (after one warm-up batch of 8 programs); reported are the
batch wall time (median over repeats, and per program = wall / 164) and the median and p90 of the
per-program durations that ``ExecResult.duration_s`` reports (sandbox start to end, as seen by
the harness).

It works against the current executor (candidate and tester in two sandboxes per program) and
against the previous one (one sandbox per program, ``build_program`` returning a source string),
so the same script measures before and after: run it with ``PYTHONPATH`` pointing at an older
``src`` to measure that one.

This is a benchmark, not a test: nothing is asserted about the speed.

Usage::

    python benchmarks/code_exec.py [--workers 2] [--repeats 3] [--sandbox bwrap] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

try:
    from posttrainbench.benchmarks.humaneval import build_program
    from posttrainbench.data import data_root
    from posttrainbench.evaluation import code_exec
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from posttrainbench.benchmarks.humaneval import build_program
    from posttrainbench.data import data_root
    from posttrainbench.evaluation import code_exec


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def load_items() -> list[dict[str, Any]]:
    with gzip.open(data_root() / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def batch(items: list[dict[str, Any]], reply: str | None) -> list[tuple[str, Any]]:
    """``(id, program)`` for every item: its canonical solution, or ``reply``."""
    return [(it["task_id"], build_program(it["canonical_solution"] if reply is None else reply, it)) for it in items]


def run_batch(programs: list[tuple[str, Any]], workers: int, sandbox: str, expect_pass: bool) -> dict[str, Any]:
    t0 = time.monotonic()
    res = code_exec.run_programs(programs, workers=workers, sandbox=sandbox)
    wall = time.monotonic() - t0
    bad = [r for r in res.values() if r.passed != expect_pass]
    if bad:
        raise SystemExit(f"{len(bad)} program(s) did not {'pass' if expect_pass else 'fail'}, e.g. {bad[0]}")
    return {"wall_s": wall, "durations_s": [r.duration_s for r in res.values()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sandbox", default="bwrap")
    ap.add_argument("--json", type=Path, help="write every sample here")
    args = ap.parse_args(argv)

    items = load_items()
    design = "two sandboxes per program" if hasattr(code_exec, "Program") else "one sandbox per program"
    load_start = os.getloadavg()
    run_batch(batch(items[:8], None), args.workers, args.sandbox, True)  # warm-up
    samples: dict[str, list[dict[str, Any]]] = {"canonical": [], "wrong": []}
    for _ in range(args.repeats):  # interleaved, so that load drift hits both alike
        samples["canonical"].append(run_batch(batch(items, None), args.workers, args.sandbox, True))
        samples["wrong"].append(run_batch(batch(items, "    return None\n"), args.workers, args.sandbox, False))
    load_end = os.getloadavg()

    print(f"executor: {design}; sandbox {args.sandbox}; {args.workers} workers; {len(items)} programs per batch; "
          f"{args.repeats} repeats")  # fmt: skip
    print(f"load average (1/5/15 min): start {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f}, "
          f"end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}; {os.cpu_count()} CPUs\n")  # fmt: skip
    print(
        "| batch | wall s (median) | wall s (min–max) | ms per program (wall / n) | program ms median "
        "| program ms p90 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    rows = []
    for name, runs in samples.items():
        walls = [r["wall_s"] for r in runs]
        durs = [d for r in runs for d in r["durations_s"]]
        row = {
            "batch": name,
            "wall_median_s": statistics.median(walls),
            "wall_min_s": min(walls),
            "wall_max_s": max(walls),
            "per_program_ms": 1000 * statistics.median(walls) / len(items),
            "program_median_ms": 1000 * statistics.median(durs),
            "program_p90_ms": 1000 * percentile(durs, 0.9),
        }
        rows.append(row)
        print(
            f"| {name} | {row['wall_median_s']:.1f} | {row['wall_min_s']:.1f}–{row['wall_max_s']:.1f} "
            f"| {row['per_program_ms']:.0f} | {row['program_median_ms']:.0f} | {row['program_p90_ms']:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "design": design, "sandbox": args.sandbox, "workers": args.workers, "repeats": args.repeats,
            "python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "load_start": load_start, "load_end": load_end, "rows": rows, "samples": samples,
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
