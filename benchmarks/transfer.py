"""Benchmark: the large-artifact copy (``results/transfer.py``) vs the naive way.

A model-like folder (default: two 512 MiB files of random bytes and a config) is copied to a
fresh folder on the same disk by:

(a) ``shutil.copytree`` (the naive copy: no hashes, no resume, visible while half-copied);
(b) (a) then ``hash_tree`` of source and copy (the naive copy with an integrity check);
(c) ``copy_tree(LocalSource(src), dest)`` with the default 16 MiB chunks (manifest: every chunk
    hashed at the source; every chunk hashed on arrival and fsync'd; every file hashed once
    complete);
(d) (c) resumed after an interruption at half the bytes: only the time of the resuming call
    (re-hash of what arrived, then the rest).

Peak memory of (c) is read from ``ru_maxrss`` of a fresh process. Cases are interleaved, one
warm-up round first. The machine load (``uptime``) is printed at start and end. This is a
benchmark, not a test.

Usage::

    python benchmarks/transfer.py [--mb 512] [--files 2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from posttrainbench.fsutil import hash_tree
    from posttrainbench.results.transfer import DEFAULT_CHUNK, LocalSource, copy_tree
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))
    from posttrainbench.fsutil import hash_tree
    from posttrainbench.results.transfer import DEFAULT_CHUNK, LocalSource, copy_tree


class _Stop(Exception):
    pass


def _make_source(root: Path, mb: int, files: int) -> Path:
    src = root / "src"
    src.mkdir()
    for i in range(files):
        with open(src / f"model-{i:05d}.safetensors", "wb") as fh:
            for _ in range(mb):
                fh.write(os.urandom(1 << 20))
    (src / "config.json").write_text("{}")
    return src


def _naive(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)


def _naive_checked(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    assert hash_tree(src) == hash_tree(dest)


def _ours(src: Path, dest: Path) -> None:
    copy_tree(LocalSource(src), dest)


def _resume_setup(src: Path, dest: Path, total: int) -> None:
    seen = [0]

    def stop(path: str, index: int) -> None:
        seen[0] += DEFAULT_CHUNK
        if seen[0] >= total // 2:
            raise _Stop

    with contextlib.suppress(_Stop):
        copy_tree(LocalSource(src), dest, on_chunk=stop)


def _peak_rss_mb(src: Path, dest: Path) -> float:
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from posttrainbench.results.transfer import LocalSource, copy_tree\n"
        "copy_tree(LocalSource(sys.argv[1]), Path(sys.argv[2]))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code, str(src), str(dest)], capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def main() -> None:
    """Run the cases and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print("load at start:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = _make_source(root, args.mb, args.files)
        total = sum(p.stat().st_size for p in src.iterdir())
        cases = {"(a) shutil.copytree": _naive, "(b) copytree + hash both": _naive_checked, "(c) copy_tree": _ours}
        samples: dict[str, list[float]] = {k: [] for k in [*cases, "(d) copy_tree, resume at 50%"]}
        for rnd in range(args.repeats + 1):
            for name, fn in cases.items():
                dest = root / f"d-{rnd}-{len(name)}"
                t0 = time.perf_counter()
                fn(src, dest)
                if rnd:
                    samples[name].append(time.perf_counter() - t0)
                shutil.rmtree(dest)
            dest = root / f"r-{rnd}"
            _resume_setup(src, dest, total)
            t0 = time.perf_counter()
            copy_tree(LocalSource(src), dest)
            if rnd:
                samples["(d) copy_tree, resume at 50%"].append(time.perf_counter() - t0)
            shutil.rmtree(dest)
        rss = _peak_rss_mb(src, root / "rss")
    base = min(samples["(a) shutil.copytree"])
    print(f"\n{args.files} x {args.mb} MiB, {args.repeats} rounds (best of), same disk\n")
    print("| case | best s | MB/s | vs (a) |")
    print("|---|---:|---:|---:|")
    for name, xs in samples.items():
        best = min(xs)
        print(f"| {name} | {best:.2f} | {total / best / 1e6:.0f} | {best / base:.2f}x |")
    print(f"\npeak RSS of a process running (c): {rss:.0f} MB")
    print("load at end:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "bytes": total, "peak_rss_mb": rss}, indent=2))


if __name__ == "__main__":
    main()
