"""Benchmark: contamination scan throughput per core, and a mixed workspace of many GB.

- **throughput**: the index of every local test set (as a run's verify builds it: exact n-grams,
  fuzzy anchors, question/answer pairs; GSM8K train as the allowed data) against a JSONL corpus
  of GSM8K-train-like rows with their numbers changed (nothing matches), exact channel alone,
  then all three channels. MB/s per core = bytes / CPU seconds of the process (wall time too).
  ``--rounds N``: the compiled kernels (numba) and the numpy path interleaved N times on the
  same corpus (and ``--weights-mb`` of random float32 safetensors), with the median ratio; the
  kernels' first-call cost (compiling into an empty cache folder, then loading from it, each in
  a fresh process) is measured too.
  ``--baseline DIR`` also runs today's scanner from another checkout (its own ``.venv``) on
  the same corpus, for the ratio.
- **workspace**: ``--workspace-gb`` of mixed files (JSONL, gzipped JSONL, Parquet, zip,
  safetensors of random float weights, a virtualenv-like tree of small ``.py`` files), scanned
  by :func:`scan` (wall and CPU time); then rescanned through the same
  :class:`IncrementalScan` (unchanged: memoised), and again after one file changed.

    python benchmarks/contamination.py --corpus-mb 100 --workspace-gb 10 --baseline /work/main
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posttrainbench.benchmarks import BENCHMARKS, get_benchmark
from posttrainbench.data import DataError
from posttrainbench.integrity.contamination import ContaminationIndex, IncrementalScan, build_index, scan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gates import _corpus as corpus

_BASELINE = """
import sys, time, json
from pathlib import Path
from posttrainbench.benchmarks import get_benchmark
from posttrainbench.integrity.contamination import build_index, scan
b = get_benchmark("gsm8k"); items = b.load_test_items(); train = b.load_train_examples()
idx = build_index([(i.id, i.test_text()) for i in items], [e["prompt"] + "\\n" + e["completion"] for e in train])
try:  # compiled kernels (a checkout that has them): compiled before the clock starts, as this branch's are
    from posttrainbench.integrity.contamination import kernel
    kernel.load(None)
except ImportError:
    pass
c0, w0 = time.process_time(), time.time()
v = scan(idx, [Path(sys.argv[1])], Path(sys.argv[2]))
c1, w1 = time.process_time(), time.time()
rep = json.loads(Path(v.evidence[0]).read_text())
print(json.dumps({"bytes": rep["bytes_scanned"], "cpu_s": c1 - c0, "wall_s": w1 - w0, "status": v.status.value}))
"""


def full_index() -> tuple[ContaminationIndex, float]:
    """The index verify builds: every local test set, its pairs, GSM8K train as allowed data."""
    t = time.time()
    entries: list[tuple[str, str]] = []
    pairs: list[tuple[str, str, str]] = []
    for b in BENCHMARKS.values():
        if b.demo:
            continue
        try:
            items = b.load_test_items(local_only=True)
        except DataError:
            continue
        entries += [(f"{b.id}/{i.id}", i.test_text()) for i in items]
        pairs += [(f"{b.id}/{i.id}", i.input, i.target) for i in items]
    train = get_benchmark("gsm8k").load_train_examples()
    idx = build_index(entries, [e["prompt"] + "\n" + e["completion"] for e in train], pairs=pairs)
    return idx, time.time() - t


def exact_only(idx: ContaminationIndex) -> ContaminationIndex:
    return ContaminationIndex(
        n=idx.n,
        hashes=idx.hashes,
        item_ids=idx.item_ids,
        item_ptr=idx.item_ptr,
        item_idx=idx.item_idx,
        item_k=idx.item_k,
        meta=idx.meta,
    )


def timed_feed(idx: ContaminationIndex, path: Path, compiled: bool = True, jit_cache: Path | None = None) -> dict:
    inc = IncrementalScan(idx, compiled=compiled, jit_cache=jit_cache)
    assert (inc.scanner.kernels is not None) == compiled
    c0, w0 = time.process_time(), time.time()
    res = inc.feed_path(path)
    c1, w1 = time.process_time(), time.time()
    assert res is not None and not res.hits, res
    n = path.stat().st_size
    return {
        "bytes": n,
        "cpu_s": c1 - c0,
        "wall_s": w1 - w0,
        "mb_s_cpu": n / 1e6 / (c1 - c0),
        "mb_s_wall": n / 1e6 / (w1 - w0),
    }


def workspace(root: Path, gb: float, src: Path) -> dict[str, int]:
    """Mixed files adding up to ``gb`` GB (copies of the corpus, compressed, parquet, zip, weights, a venv)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = int(gb * 1e9)
    data = src.read_bytes()
    kinds: dict[str, int] = {}
    rng = np.random.default_rng(0)

    def add(kind: str, n: int) -> None:
        kinds[kind] = kinds.get(kind, 0) + n

    (root / "data").mkdir(parents=True)
    (root / "final_model").mkdir()
    venv = root / "venv" / "lib" / "python3.11" / "site-packages"
    venv.mkdir(parents=True)
    gz = gzip.compress(data, compresslevel=1)
    lines = data.decode().splitlines()
    table = pa.table(
        {"prompt": [json.loads(x)["prompt"] for x in lines], "completion": [json.loads(x)["completion"] for x in lines]}
    )
    pq.write_table(table, root / "data" / "part-0.parquet")
    add("parquet", (root / "data" / "part-0.parquet").stat().st_size)
    # ~5000 small source files, as a virtualenv holds
    py = (Path(json.__file__).read_text() * 2).encode()
    for i in range(5000):
        d = venv / f"pkg{i // 100}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i}.py").write_bytes(py[: 2000 + (i * 37) % 30000])
        add("py", 2000 + (i * 37) % 30000)
    shutil.make_archive(
        str(root / "data" / "bundle"), "zip", root / "venv" / "lib" / "python3.11" / "site-packages" / "pkg0"
    )
    add("zip", (root / "data" / "bundle.zip").stat().st_size)
    total = sum(kinds.values())
    i = 0
    while total < target:
        r = i % 4
        if r in (0, 1):
            p = root / "data" / f"train-{i}.jsonl"
            p.write_bytes(data)
            add("jsonl", len(data))
        elif r == 2:
            p = root / "data" / f"train-{i}.jsonl.gz"
            p.write_bytes(gz)
            add("jsonl.gz", len(gz))
        else:
            n = min(2 << 30, max(1, target - total))
            header = json.dumps({"w": {"dtype": "F32", "shape": [n // 4], "data_offsets": [0, n // 4 * 4]}}).encode()
            with open(root / "final_model" / f"model-{i}.safetensors", "wb") as fh:
                fh.write(len(header).to_bytes(8, "little") + header)
                left = n // 4 * 4
                while left:
                    k = min(left, 64 << 20)
                    fh.write(rng.standard_normal(k // 4, dtype=np.float32).tobytes())
                    left -= k
            add("safetensors", n)
        total = sum(kinds.values())
        i += 1
    return kinds


_LOAD = """
import sys, time
from pathlib import Path
t = time.time()
from posttrainbench.integrity.contamination import kernel
k = kernel.load(Path(sys.argv[1]))
print(time.time() - t, k.compile_s)
"""


def kernel_first_call(work: Path) -> dict:
    """Seconds to import and compile the kernels into an empty cache folder, then to load them
    from it (each in a fresh process)."""
    cache = work / "jit"
    shutil.rmtree(cache, ignore_errors=True)
    out = {}
    for what in ("cold_compile_s", "cached_load_s"):
        r = subprocess.run([sys.executable, "-c", _LOAD, str(cache)], capture_output=True, text=True, check=True)
        out[what] = round(float(r.stdout.split()[0]), 2)
    return out


def weights(path: Path, mb: int) -> Path:
    """A safetensors file of ``mb`` MiB of random float32."""
    n = mb << 20
    header = json.dumps({"w": {"dtype": "F32", "shape": [n // 4], "data_offsets": [0, n]}}).encode()
    with open(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        fh.write(np.random.default_rng(0).standard_normal(n // 4, dtype=np.float32).tobytes())
    return path


def rounds(idx: ContaminationIndex, src: Path, wpath: Path | None, n: int, work: Path) -> dict:
    """numba and numpy interleaved ``n`` times: MB/s per core (CPU) per case and the median ratio."""
    cases = {"exact": (exact_only(idx), src), "all_channels": (idx, src)}
    if wpath is not None:
        cases["all_channels_weights"] = (idx, wpath)
    res: dict[str, dict[str, list[float]]] = {c: {"numba": [], "numpy": []} for c in cases}
    for _ in range(n):
        for case, (ix, path) in cases.items():
            for compiled in (True, False):
                r = timed_feed(ix, path, compiled, work / "jit")
                res[case]["numba" if compiled else "numpy"].append(round(r["mb_s_cpu"], 1))
        print(json.dumps(res), os.getloadavg(), flush=True)
    return {
        c: v | {"ratio_median": round(float(np.median(np.array(v["numba"]) / np.array(v["numpy"]))), 2)}
        for c, v in res.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-mb", type=int, default=100)
    ap.add_argument("--workspace-gb", type=float, default=0)
    ap.add_argument("--baseline", type=Path, help="a checkout of today's scanner with its .venv")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rounds", type=int, default=0, help="numba vs numpy, interleaved this many times")
    ap.add_argument("--weights-mb", type=int, default=0, help="with --rounds: a safetensors file of this size too")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ptb-contam-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"load_before": os.getloadavg(), "cores": os.cpu_count()}
    src = work / "corpus" / "corpus.jsonl"
    src.parent.mkdir(exist_ok=True)
    if not src.exists():
        corpus(src, args.corpus_mb)
    idx, build_s = full_index()
    out["index"] = {"entries": len(idx), "build_s": round(build_s, 1), "pairs": len(idx.pair_ids)}
    out["kernel"] = kernel_first_call(work)
    out["exact"] = timed_feed(exact_only(idx), src, jit_cache=work / "jit")
    out["all_channels"] = timed_feed(idx, src, jit_cache=work / "jit")
    print(json.dumps(out, indent=1), flush=True)
    if args.rounds:
        wpath = weights(work / "w.safetensors", args.weights_mb) if args.weights_mb else None
        out["rounds"] = rounds(idx, src, wpath, args.rounds, work)
        out["load_after_rounds"] = os.getloadavg()
        print(json.dumps(out["rounds"], indent=1), flush=True)
    if args.baseline:
        r = subprocess.run(
            [str(args.baseline / ".venv" / "bin" / "python"), "-c", _BASELINE, str(src.parent), str(work / "ev-base")],
            capture_output=True,
            text=True,
            cwd=args.baseline,
            check=True,
        )
        base = json.loads(r.stdout.strip().splitlines()[-1])
        base["mb_s_cpu"] = base["bytes"] / 1e6 / base["cpu_s"]
        out["baseline"] = base
        out["ratio_all_channels_cpu"] = out["all_channels"]["mb_s_cpu"] / base["mb_s_cpu"]
        print(json.dumps(base), flush=True)
    if args.workspace_gb:
        ws = work / "ws"
        if ws.exists():
            shutil.rmtree(ws)
        t = time.time()
        kinds = workspace(ws, args.workspace_gb, src)
        out["workspace"] = {"kinds_bytes": kinds, "generate_s": round(time.time() - t, 1)}
        inc = IncrementalScan(idx, work / "ev", jit_cache=work / "jit")
        c0, w0 = time.process_time(), time.time()
        v = scan(idx, [ws], work / "ev", incremental=inc)
        c1, w1 = time.process_time(), time.time()
        rep = inc.report()
        out["workspace"] |= {
            "status": v.status.value,
            "files": rep["files_scanned_count"],
            "bytes_read": rep["bytes_scanned"],
            "decoded_layers": rep["decoded_layers"],
            "wall_s": round(w1 - w0, 1),
            "cpu_s": round(c1 - c0, 1),
        }
        w0 = time.time()
        scan(idx, [ws], work / "ev", incremental=inc)
        out["workspace"]["rescan_unchanged_s"] = round(time.time() - w0, 2)
        before = inc.report()["bytes_scanned"]
        first = sorted((ws / "data").glob("train-*.jsonl"))[0]
        first.write_bytes(first.read_bytes() + b'{"prompt": "one more row", "completion": "1"}\n')
        w0 = time.time()
        scan(idx, [ws], work / "ev", incremental=inc)
        out["workspace"]["rescan_one_changed_s"] = round(time.time() - w0, 2)
        out["workspace"]["rescan_one_changed_bytes"] = inc.report()["bytes_scanned"] - before
        shutil.rmtree(ws)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
