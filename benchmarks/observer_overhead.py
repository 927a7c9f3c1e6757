"""Overhead of the kernel-fed observer (``sandbox.observer``) on a training-like workload.

The workload runs in the real bwrap sandbox (uid 65534, cgroup limits as an agent run gets them)
and does what a training job's tools do: N processes (``python -c`` and ``/bin/true`` execs from
a shell loop) and M file writes (small shards, written by one Python process), plus one large
checkpoint-like file. Each round runs it (a) without any observer (the naive way: the sandbox
alone) and (b) with the observer recording every exec and write and handing each written file to
the contamination stand-in (:class:`PreservingScan`, its copies into a scratch folder), rounds
interleaved. Reported: median wall time of each, the ratio (b)/(a), and what the observer saw
(execs, writes, lost events).

Run from the repository root, as root:
    python benchmarks/observer_overhead.py [--procs 1000] [--files 10000] [--mb 64] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from posttrainbench.integrity.contamination.preserve import PreservingScan
from posttrainbench.sandbox import SandboxConfig
from posttrainbench.sandbox.bwrap import BwrapSandbox
from posttrainbench.sandbox.observer import Observer

SCRIPT = """
set -e
for i in $(seq 1 {py}); do python -c 'pass'; done
for i in $(seq 1 {true}); do /bin/true; done
python - <<'PY'
import os
os.makedirs("shards", exist_ok=True)
for i in range({files}):
    with open(f"shards/s{{i}}.txt", "w") as f:
        f.write(f"example {{i}} " * 20)
with open("ckpt.bin", "wb") as f:
    f.write(os.urandom({mb} << 20))
PY
"""


def _once(root: Path, script: str, observe: bool) -> dict[str, float | int]:
    ws, tmp = root / "ws", root / "tmp"
    shutil.rmtree(root, ignore_errors=True)
    ws.mkdir(parents=True)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    binds = sorted({Path(sys.prefix), Path(sys.base_prefix)})
    config = SandboxConfig(
        workspace=ws, ro_binds=binds, env=env, time_limit_s=1800, tmp_dir=tmp, memory_mb=4096, max_pids=512
    )
    obs = Observer([ws, tmp], sink=PreservingScan(root / "preserved")) if observe else None
    t0 = time.perf_counter()
    if obs is not None:
        why = obs.start()
        if why:
            raise SystemExit(f"observer unavailable: {why}")
    res = BwrapSandbox().run(["bash", "-c", script], config, stdin=None, stdout=root / "out", stderr=root / "err")
    if obs is not None:
        obs.stop(settle_s=0.0)
    wall = time.perf_counter() - t0
    if res.exit_code != 0:
        raise SystemExit(f"workload failed: {(root / 'err').read_text()[-2000:]}")
    row: dict[str, float | int] = {"wall_s": wall}
    if obs is not None:
        s = obs.stats
        row |= {"execs": s.execs, "execs_unread": s.execs_unread, "writes": s.writes}
        row |= {"lost_proc": s.lost_proc_events, "lost_file": s.lost_file_events, "errors": len(s.errors)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=1000, help="processes exec'd (1/4 python, 3/4 /bin/true)")
    ap.add_argument("--files", type=int, default=10000, help="small files written")
    ap.add_argument("--mb", type=int, default=64, help="size of the checkpoint-like file (MiB)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    py = args.procs // 4
    script = SCRIPT.format(py=py, true=args.procs - py, files=args.files, mb=args.mb)
    load0 = os.getloadavg()
    base: list[dict[str, float | int]] = []
    seen: list[dict[str, float | int]] = []
    with tempfile.TemporaryDirectory(prefix="ptb-observer-bench-") as d:
        root = Path(d)
        _once(root / "warm", script.replace(str(args.files), "10"), False)
        for _ in range(args.repeats):
            base.append(_once(root / "a", script, False))
            seen.append(_once(root / "b", script, True))
    load1 = os.getloadavg()
    a = statistics.median(float(r["wall_s"]) for r in base)
    b = statistics.median(float(r["wall_s"]) for r in seen)
    last = seen[-1]
    print(f"load average {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f} -> {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}")
    print(f"workload: {args.procs} processes, {args.files} files + one {args.mb} MiB file; {args.repeats} rounds\n")
    print("| case | median s | min s | × (a) |")
    print("|---|---|---|---|")
    print(f"| (a) sandbox alone | {a:.2f} | {min(float(r['wall_s']) for r in base):.2f} | 1.00 |")
    print(f"| (b) with the observer | {b:.2f} | {min(float(r['wall_s']) for r in seen):.2f} | {b / a:.2f} |")
    print(
        f"\nobserver saw (last round): {last['execs']} execs ({last['execs_unread']} exited before read), "
        f"{last['writes']} writes; lost: {last['lost_proc']} proc, {last['lost_file']} file events; "
        f"errors: {last['errors']}"
    )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "a": base, "b": seen}))


if __name__ == "__main__":
    main()
