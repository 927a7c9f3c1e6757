"""The LLM judge's input on a big workspace: time and peak memory of ``build_context`` (bounded
reads, start and end of each file, budgets) against the naive way (read every file whole).

The workspace: ``--venv-files`` small files under ``.venv/`` (an environment), ``--scripts``
agent scripts, two sparse files of ``--big-mb`` MB each (a data file and a log, as a download or a
training log), a trace of ``--steps`` steps and an ``observed.jsonl`` of as many events.
No endpoint is called: this measures what the harness does before the judge is asked.

    python benchmarks/judge_context.py [--venv-files N] [--scripts N] [--big-mb N] [--steps N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from posttrainbench.integrity.judge import build_context
from posttrainbench.trace import ToolCall, Trace, TraceStep, save_trace


def make_workspace(root: Path, venv_files: int, scripts: int, big_mb: int, steps: int) -> tuple[Path, Path, Path]:
    ws = root / "task"
    (ws / ".venv" / "lib").mkdir(parents=True)
    for i in range(venv_files):
        (ws / ".venv" / "lib" / f"mod{i:06d}.py").write_text(f"# module {i}\nVALUE = {i}\n")
    (ws / "src").mkdir()
    for i in range(scripts):
        (ws / "src" / f"train_{i:04d}.py").write_text("import torch\n" + f"# variant {i}\n" * 200)
    (ws / "data").mkdir()
    for name in ("data/big.jsonl", "train.log"):
        with open(ws / name, "wb") as fh:
            fh.write(b'{"text": "start"}\n')
            fh.truncate(big_mb * 2**20)  # sparse: no disk used, read as zeros
    trace = Trace(
        agent="x",
        steps=[
            TraceStep(
                index=i,
                role="assistant",
                text=f"step {i}",
                tool_calls=[ToolCall(name="Bash", input={"command": f"python src/train_{i % max(scripts, 1):04d}.py"})],
            )
            for i in range(steps)
        ],
    )
    save_trace(root / "trace.json", trace)
    with open(root / "observed.jsonl", "w") as fh:
        for i in range(steps):
            fh.write(json.dumps({"type": "exec", "argv": ["python", f"src/train_{i:04d}.py"], "t": i}) + "\n")
    return ws, root / "trace.json", root / "observed.jsonl"


def naive(ws: Path, trace: Path, observed: Path) -> int:
    """Everything whole: every regular file, the trace and the log."""
    total = 0
    for dirpath, _dirs, files in os.walk(ws):
        for fn in files:
            p = Path(dirpath, fn)
            if p.is_file() and not p.is_symlink():
                total += len(p.read_bytes())
    return total + len(trace.read_bytes()) + len(observed.read_bytes())


def measure(fn, *args, **kw) -> tuple[float, float, object]:
    """Seconds of one untraced call, then the peak of the Python heap in a second, traced call
    (tracemalloc slows allocation-heavy code, so it is kept out of the timing)."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    took = time.perf_counter() - t0
    tracemalloc.start()
    fn(*args, **kw)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return took, peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv-files", type=int, default=20_000)
    ap.add_argument("--scripts", type=int, default=500)
    ap.add_argument("--big-mb", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws, trace, observed = make_workspace(Path(tmp), a.venv_files, a.scripts, a.big_mb, a.steps)
        t_ctx, m_ctx, ctx = measure(build_context, ws, trace, observed_log=observed)
        t_naive, m_naive, n_bytes = measure(naive, ws, trace, observed)
    chars = len(ctx.text)  # type: ignore[attr-defined]  # build_context's JudgeContext
    rows = [
        ("build_context (the judge's input)", t_ctx, m_ctx, f"{chars:,} chars"),
        ("naive: read everything whole", t_naive, m_naive, f"{n_bytes:,} bytes"),
    ]
    print(f"workspace: {a.venv_files:,} venv files, {a.scripts} scripts, 2 x {a.big_mb} MB files, {a.steps:,} steps\n")
    print("| way | seconds | peak MiB (Python heap) | input |")
    print("|---|---|---|---|")
    for name, t, m, size in rows:
        print(f"| {name} | {t:.2f} | {m:.0f} | {size} |")
    print(f"\nratio naive/build_context: time {t_naive / t_ctx:.1f}x, memory {m_naive / max(m_ctx, 1e-9):.0f}x")
    if a.json:
        a.json.write_text(
            json.dumps([{"way": n, "seconds": t, "peak_mib": m, "input": s} for n, t, m, s in rows], indent=2)
        )


if __name__ == "__main__":
    main()
