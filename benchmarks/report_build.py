"""How long `ptb report` takes, and how much memory and disk it uses, on synthetic results.

Writes a results folder of synthetic run folders (run.json, trace.json with N steps, one evidence
file per run, zero-shot baselines), then builds the site in a fresh child process and reports
its wall time (data loading, and the whole build), peak RSS and the site's size. No model runs.

    python benchmarks/report_build.py [--agents 8] [--repeats 3] [--steps 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import track


def generate(root: Path, agents: int, repeats: int, steps: int) -> int:
    """Write the synthetic results folder; return the number of runs."""
    from posttrainbench.benchmarks import BENCHMARKS
    from posttrainbench.catalog import PAPER_BASE_MODELS
    from posttrainbench.domain import PHASES, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
    from posttrainbench.fsutil import atomic_write_json
    from posttrainbench.results import run_paths, save_baseline, save_record
    from posttrainbench.trace import ToolCall, ToolResult, Trace, TraceStep, save_trace

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    benches = [b.id for b in BENCHMARKS.values() if not b.demo]
    for i, bench in enumerate(benches):
        for j, model in enumerate(PAPER_BASE_MODELS):
            save_baseline(root, benchmark=bench, base_model=model, score=0.1 + 0.01 * (i + j))
            save_baseline(root, benchmark=bench, base_model=model, score=0.6 + 0.01 * (i - j), checkpoint="instruct")
    trace_steps = []
    for k in range(steps):
        if k % 2:
            trace_steps.append(
                TraceStep(
                    index=k,
                    role="user",
                    tool_results=[ToolResult(call_id=f"c{k - 1}", output=f"epoch {k} loss {1 / (k + 1):.4f}\n" * 20)],
                )
            )
        else:
            trace_steps.append(
                TraceStep(
                    index=k,
                    role="assistant",
                    text=f"Step {k}: keep training." * 5,
                    tool_calls=[ToolCall(id=f"c{k}", name="Bash", input={"command": f"python train.py --step {k}"})],
                    input_tokens=2000,
                    output_tokens=100,
                    cost_usd=0.01,
                )
            )
    jobs = [(a, r, b, m) for a in range(agents) for r in range(repeats) for b in benches for m in PAPER_BASE_MODELS]
    for a, r, bench, model in track(jobs, description="writing run folders"):
        spec = RunSpec(agent=f"agent{a}", base_model=model.hub_id, benchmark=bench, hours=10.0, repeat=r)
        paths = run_paths(root, spec, model)
        failed = (a + r + len(bench)) % 11 == 0  # some failed runs -> fallback cells
        start = t0 + timedelta(hours=r)
        phases: dict[str, PhaseState] = {
            p: PhaseState(
                status="failed" if failed and p == "evaluate" else "done",
                started_at=start,
                finished_at=start + timedelta(minutes=5),
            )
            for p in PHASES
        }
        evidence = paths.evidence / "tamper.json"
        atomic_write_json(evidence, {"gate": "tamper", "changed": []})
        score = None if failed else min(0.99, 0.2 + 0.05 * a + 0.01 * r)
        record = RunRecord(
            run_id=spec.run_id(),
            spec=spec,
            created_at=start,
            phases=phases,
            verdicts=[Verdict(gate="tamper", status=VerdictStatus.passed, evidence=(str(evidence),))],
            required_gates=["tamper"],
            final_verdict=VerdictStatus.passed,
            metrics={"status": "failed"} if failed else {"status": "ok", "score": score},
            time_used_s=3600.0 * (2 + a % 7),
            usage={
                "input_tokens": 1000.0 * steps,
                "output_tokens": 50.0 * steps,
                "cost_usd": 0.005 * steps,
                "steps": float(steps),
            },
            failure="evaluate: synthetic failure" if failed else None,
        )
        save_record(paths.run_json, record)
        save_trace(paths.trace_json, Trace(agent=spec.agent, steps=trace_steps))
    return len(jobs)


def build(root: Path, out: Path) -> dict:
    """Build the site (in this process) and measure it."""
    from posttrainbench.report import build_site, load_report_data

    t = time.perf_counter()
    load_report_data(root)
    load_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    site = build_site(root, out)
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "load_s": load_s,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "pages": len(site.pages),
        "site_mb": size / 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "problems": len(site.problems),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="trace steps per run")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--_build", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._build:
        print(json.dumps(build(*args._build)))
        return
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="ptb-report-bench-"))
    try:
        t = time.perf_counter()
        runs = generate(tmp / "results", args.agents, args.repeats, args.steps)
        gen_s = time.perf_counter() - t
        child = subprocess.run(
            [sys.executable, __file__, "--_build", str(tmp / "results"), str(tmp / "site")],
            capture_output=True,
            text=True,
            check=True,
        )
        result = {
            "runs": runs,
            "agents": args.agents,
            "repeats": args.repeats,
            "steps": args.steps,
            "generate_s": gen_s,
            **json.loads(child.stdout.strip().splitlines()[-1]),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(
        "| runs | trace steps/run | load (s) | build wall (s) | build CPU (s) | pages | site (MB) | peak RSS (MB) |",
        soft_wrap=True,
    )
    console.print("|---:|---:|---:|---:|---:|---:|---:|---:|", soft_wrap=True)
    console.print(
        f"| {runs} | {args.steps} | {result['load_s']:.2f} | {result['build_s']:.1f} "
        f"| {result['build_cpu_s']:.1f} | {result['pages']} "
        f"| {result['site_mb']:.0f} | {result['peak_rss_mb']:.0f} |",
        soft_wrap=True,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
