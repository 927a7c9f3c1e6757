"""Benchmark: overhead of the hub gateway on a large download, vs the same download direct.

A local server that speaks the hub's HTTP API (``tests/fake_hub.py``, in its own process) serves a
model repo with one large LFS file (default 200 MB, redirected to its CDN path like the hub does).
Each case downloads it into a fresh cache in a fresh client process:

(a) ``hf_hub_download`` direct: ``HF_ENDPOINT`` is the fake hub (the client follows the CDN
    redirect itself; the CDN is another origin, ``localhost`` instead of ``127.0.0.1``);
(b) ``hf_hub_download`` through the gateway: ``HF_ENDPOINT`` is a loopback port of the real
    in-sandbox forwarder (``egress_bridge.py``, its own process, as in a run), which tunnels each
    connection to the egress proxy's unix socket, where the gateway (in this process, as in the
    harness) checks the repo, follows the redirect and streams the file;
(c) a plain streaming ``GET`` of the file's resolve URL direct (``http.client``, 1 MiB reads,
    body discarded): the transport alone;
(d) the same ``GET`` through the forwarder and the gateway.

Cases are interleaved round-robin after a warm-up round, so drift in machine load hits every case
alike. Every download is checked for its size (and (a)/(b) for the file's bytes' sha256 against the
repo's). The machine load (``uptime``) is recorded at start and end. This is a benchmark, not a test.

Usage::

    python benchmarks/hub_gateway.py [--mb 200] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from posttrainbench.sandbox.egress import EgressProxy, bridge_script
    from posttrainbench.sandbox.hub_gateway import GATEWAY_AUTHORITY, HubGateway, HubGatewaySpec
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))
    from posttrainbench.sandbox.egress import EgressProxy, bridge_script
    from posttrainbench.sandbox.hub_gateway import GATEWAY_AUTHORITY, HubGateway, HubGatewaySpec

REPO, FILE = "bench/big-model", "model.safetensors"

HUB = """
import sys, time
sys.path.insert(0, {tests!r})
from fake_hub import Blob, FakeHub
blob = Blob(size={size})
blob.sha256  # computed before the first request
with FakeHub() as hub:
    hub.add("model", {repo!r}, {{"config.json": b"{{}}", {file!r}: blob}})
    hub.cdn_base = hub.url.replace("127.0.0.1", "localhost")  # another origin, like the hub's CDN
    print(hub.url, blob.sha256, hub.cdn_base.split("//")[1], flush=True)
    time.sleep(1e9)
"""

CLIENT = """
import hashlib, http.client, json, os, sys, time
mode, endpoint, cache = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if mode == "hf":
    from huggingface_hub import hf_hub_download
    t0 = time.perf_counter()  # the import is not the download
    path = hf_hub_download({repo!r}, {file!r}, cache_dir=cache)
    dt_s = time.perf_counter() - t0
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b); size += len(b)
    print(json.dumps({{"s": dt_s, "size": size, "sha256": h.hexdigest()}}))
else:
    from urllib.parse import urljoin, urlsplit
    url = endpoint + "/{repo}/resolve/main/{file}"
    size = 0
    for _ in range(5):  # the direct hub answers with its CDN redirect: follow it like a client
        u = urlsplit(url)
        c = http.client.HTTPConnection(u.netloc, timeout=60)
        c.request("GET", u.path + ("?" + u.query if u.query else ""), headers={{"Accept-Encoding": "identity"}})
        r = c.getresponse()
        if r.status in (301, 302, 307):
            url = urljoin(url, r.getheader("Location")); r.read(); c.close(); continue
        while b := r.read(1 << 20):
            size += len(b)
        break
    print(json.dumps({{"s": time.perf_counter() - t0, "size": size, "sha256": None}}))
"""

CASES = {
    "a": "hf_hub_download, direct",
    "b": "hf_hub_download, through forwarder + gateway",
    "c": "plain GET, direct",
    "d": "plain GET, through forwarder + gateway",
}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="size of the file in MB (10^6 bytes; 200)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (5)")
    ap.add_argument("--json", type=Path, help="also write every sample here")
    args = ap.parse_args(argv)
    size = args.mb * 1_000_000
    load_start, t_start = uptime(), time.monotonic()
    env_base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_XET": "1", "NO_PROXY": "*"}  # fmt: skip
    samples: dict[str, list[float]] = {k: [] for k in CASES}
    with tempfile.TemporaryDirectory(prefix="ptb-bench-hub-") as tmp:
        hub = subprocess.Popen(
            [sys.executable, "-c", HUB.format(tests=str(ROOT / "tests"), size=size, repo=REPO, file=FILE)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        bridge = None
        try:
            hub_url, sha, cdn = (hub.stdout.readline() if hub.stdout else "").split()
            proxy = EgressProxy([], Path(tmp) / "egress.log")
            proxy.gateway = HubGateway(HubGatewaySpec(upstream=hub_url, cdn_allow=(cdn,)), log=proxy.log)
            with proxy:
                port = free_port()
                bridge = subprocess.Popen(
                    [sys.executable, "-I", str(bridge_script()), "--socket", str(proxy.socket_path),
                     "--proxy-port", str(free_port()), "--tunnel", f"{port}={GATEWAY_AUTHORITY}", "--", "sleep", "1e9"],
                    start_new_session=True,  # the forwarder forks itself away: end its whole group
                )  # fmt: skip
                gw_url = f"http://127.0.0.1:{port}"
                for _ in range(100):  # the forwarder listens before it execs the command
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                code = CLIENT.format(repo=REPO, file=FILE)
                endpoints = {"a": ("hf", hub_url), "b": ("hf", gw_url), "c": ("raw", hub_url), "d": ("raw", gw_url)}
                for rnd in range(args.repeats + 1):  # round 0 warms up
                    for key, (mode, ep) in endpoints.items():
                        cache = Path(tmp) / f"cache-{key}-{rnd}"
                        env = {
                            **env_base,
                            "HF_ENDPOINT": ep,
                            "HF_HOME": str(Path(tmp) / "hf-home"),
                            "HF_HUB_OFFLINE": "0",
                        }
                        out = subprocess.run([sys.executable, "-c", code, mode, ep, str(cache)],
                                             env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
                        if out.returncode != 0:
                            raise RuntimeError(f"case {key}: {out.stderr[-2000:]}")
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        if r["size"] != size or (r["sha256"] is not None and r["sha256"] != sha):
                            raise RuntimeError(f"case {key}: wrong download {r}")
                        if rnd:
                            samples[key].append(r["s"])
                        subprocess.run(["rm", "-rf", str(cache)], check=False)
                log_lines = (Path(tmp) / "egress.log").read_text().count("\tALLOW\tGET\thub:model/")
        finally:
            if bridge is not None:
                os.killpg(bridge.pid, signal.SIGTERM)
                bridge.wait(timeout=10)
            hub.terminate()
            hub.wait(timeout=10)
    load_end, elapsed = uptime(), time.monotonic() - t_start
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    print("# Hub gateway overhead on a large download\n")
    print(f"{dt.datetime.now().astimezone().isoformat(timespec='seconds')} · {os.cpu_count()} CPUs ({cpu}) · "
          f"Python {platform.python_version()} · {args.mb} MB file · {args.repeats} rounds after 1 warm-up; "
          f"total {elapsed:.1f} s")  # fmt: skip
    print(f"load at start: {load_start}\nload at end:   {load_end}\n")
    print("| case | median s | min s | median MB/s | × direct (median) |")
    print("|---|---:|---:|---:|---:|")
    for key, name in CASES.items():
        base = median(samples["a" if key in "ab" else "c"])
        m = median(samples[key])
        print(f"| ({key}) {name} | {m:.2f} | {min(samples[key]):.2f} | {size / 1e6 / m:.0f} | {m / base:.2f}× |")
    print(f"\ngateway log lines for the GETs: {log_lines} (one per download through it)")
    if args.json:
        args.json.write_text(json.dumps({"mb": args.mb, "load_start": load_start, "load_end": load_end,
                                         "elapsed_s": elapsed, "samples_s": samples}, indent=2) + "\n")  # fmt: skip
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
