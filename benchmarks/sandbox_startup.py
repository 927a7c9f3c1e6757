"""Benchmark: start-up overhead of launching a trivial command through the sandbox backends.

Measures the wall-clock time of one launch of a command that does (almost) nothing, so that
what is measured is the cost of starting and tearing down the sandbox, not of the command:

- ``/bin/true``
- ``python -c pass`` (this venv's interpreter; ``sys.prefix`` and ``sys.base_prefix``
  ro-bound inside bwrap, exactly as the tests and the pipeline do)

through these launchers:

(a) ``subprocess.run``: the naive baseline (same clean environment and cwd, no sandbox);
(b) the ``none`` backend (:class:`UnsandboxedSandbox`): supervision, tree kill and, where a
    writable cgroup exists, a tracking cgroup;
(c) the ``bwrap`` backend with ``network=none``, no resource limits, run as uid 0 when the
    harness is root (``uid=0``: the behaviour before the unprivileged default);
(d) (c) but with the default identity: as root, the command runs as uid 65534 behind
    ``setpriv`` (the new default);
(e) (d) plus the pipeline's read-only overlays over the workspace (``evaluate.py``,
    ``timer.sh``, ``task/``, ``templates/``, ``train_data/``);
(f) (c) plus ``memory_mb`` and ``max_pids`` (cgroup limits, uid 0);
(g) everything an agent run now gets by default: (e) plus the default limits sized from this
    machine (:func:`~posttrainbench.sandbox.limits.resolve_limits`);
(h) the ``bwrap`` backend with ``network=allowlist`` (default identity): the egress proxy (a
    thread on a unix socket) is started, and the command runs behind the in-sandbox forwarder;
(i) the ``docker`` backend (host-filesystem image, ``--network none``, default identity), when
    a daemon answers or, with ``--start-dockerd``, a private one could be started (root +
    Debian ``docker.io``).

Launchers are interleaved round-robin (one launch of each case per repeat) after a warm-up,
so that drift in machine load hits every case alike. Every launch must exit 0; the benchmark
aborts otherwise. A launcher that cannot run here is reported as skipped, with the reason.

This is a benchmark, not a test: nothing is asserted about the speed.

Usage::

    python benchmarks/sandbox_startup.py [--repeats N] [--warmup N] [--start-dockerd] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from posttrainbench.domain import NetworkPolicy
    from posttrainbench.sandbox import Sandbox, SandboxConfig, get_sandbox
    from posttrainbench.sandbox.limits import resolve_limits
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from posttrainbench.domain import NetworkPolicy
    from posttrainbench.sandbox import Sandbox, SandboxConfig, get_sandbox
    from posttrainbench.sandbox.limits import resolve_limits

PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})
COMMANDS: dict[str, list[str]] = {
    "/bin/true": ["/bin/true"],
    "python -c pass": [sys.executable, "-c", "pass"],
}
LAUNCHERS: dict[str, str] = {
    "a": "subprocess.run (baseline)",
    "b": "none backend",
    "c": "bwrap, network=none, uid 0 (before)",
    "d": "bwrap, unprivileged uid (new default)",
    "e": "(d) + 5 read-only overlays",
    "f": "bwrap + memory_mb + max_pids, uid 0 (before)",
    "g": "(e) + default limits (new agent run)",
    "h": "bwrap, network=allowlist (egress proxy)",
    "i": "docker, network=none",
}
#: The pipeline's read-only overlays: workspace-relative path -> file (True) or directory.
OVERLAYS: dict[str, bool] = {
    "evaluate.py": True,
    "timer.sh": True,
    "task": False,
    "templates": False,
    "train_data": False,
}


@dataclass
class Case:
    command: str
    launcher: str  # key of LAUNCHERS
    launch: Callable[[], None]
    samples_ms: list[float] = field(default_factory=list)
    enforced: dict[str, bool | str] | None = None


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 100]), as numpy's default."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def build_cases(
    ws: Path, scratch: Path, memory_mb: int, max_pids: int, docker_sb: Sandbox | None, docker_why: str
) -> tuple[list[Case], dict[str, str]]:
    """Every (command, launcher) case, and the reason for launchers that were skipped."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(ws), "LANG": "C.UTF-8"}
    out, err = scratch / "stdout.txt", scratch / "stderr.txt"
    none_sb = get_sandbox("none")
    bwrap_sb = get_sandbox("bwrap")
    ok, reason = bwrap_sb.available()
    skipped = {} if ok else dict.fromkeys("cdefgh", reason)
    if docker_sb is None:
        skipped["i"] = docker_why
    # the harness files and their pristine copies, laid out as the pipeline does
    pristine = scratch / "harness"
    overlays = []
    for rel, is_file in OVERLAYS.items():
        for root in (ws, pristine):
            if is_file:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text("# harness file\n")
            else:
                (root / rel).mkdir(parents=True, exist_ok=True)
                (root / rel / "data.jsonl").write_text("{}\n")
        overlays.append((pristine / rel, ws / rel))
    limits = resolve_limits(0)

    def cfg(**extra: object) -> SandboxConfig:
        return SandboxConfig(
            workspace=ws,
            ro_binds=PY_BINDS,
            env=env,
            network=NetworkPolicy.none,
            time_limit_s=60,
            **extra,
        )

    root_cfg = cfg(uid=0)
    plain_cfg = cfg()
    overlay_cfg = cfg(ro_overlays=overlays)
    limited_cfg = cfg(uid=0, memory_mb=memory_mb, max_pids=max_pids)
    agent_cfg = cfg(ro_overlays=overlays, memory_mb=limits.memory_mb, max_pids=limits.max_pids)
    proxy_cfg = cfg(egress_allow=["pypi.org"], egress_log=scratch / "egress.log").model_copy(
        update={"network": NetworkPolicy.allowlist}
    )

    cases: list[Case] = []
    for name, argv in COMMANDS.items():

        def baseline(argv: list[str] = argv) -> None:
            r = subprocess.run(
                argv, env=env, cwd=ws, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if r.returncode != 0:
                raise RuntimeError(f"baseline {argv} exited {r.returncode}")

        cases.append(Case(name, "a", baseline))
        backends: list[tuple[str, Sandbox, SandboxConfig]] = [("b", none_sb, plain_cfg)]
        if ok:
            backends += [
                ("c", bwrap_sb, root_cfg), ("d", bwrap_sb, plain_cfg), ("e", bwrap_sb, overlay_cfg),
                ("f", bwrap_sb, limited_cfg), ("g", bwrap_sb, agent_cfg), ("h", bwrap_sb, proxy_cfg),
            ]  # fmt: skip
        if docker_sb is not None:
            backends.append(("i", docker_sb, plain_cfg))
        for key, sb, config in backends:
            case = Case(name, key, lambda: None)

            def launch(
                sb: Sandbox = sb, config: SandboxConfig = config, case: Case = case,
                argv: list[str] = argv,
            ) -> None:  # fmt: skip
                res = sb.run(argv, config, stdin=None, stdout=out, stderr=err)
                if res.exit_code != 0 or res.error:
                    raise RuntimeError(
                        f"{LAUNCHERS[case.launcher]} {argv}: exit {res.exit_code}, "
                        f"error {res.error!r}, stderr {err.read_text()[:300]!r}"
                    )
                case.enforced = res.enforced

            case.launch = launch
            cases.append(case)
    return cases, skipped


def measure(cases: list[Case], repeats: int, warmup: int) -> None:
    """Warm up every case, then ``repeats`` round-robin rounds of one launch per case."""
    for _ in range(warmup):
        for c in cases:
            c.launch()
    for _ in range(repeats):
        for c in cases:
            t0 = time.perf_counter_ns()
            c.launch()
            c.samples_ms.append((time.perf_counter_ns() - t0) / 1e6)


def load() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info() -> dict[str, str]:
    try:
        bw = subprocess.run(
            [shutil.which("bwrap") or "/usr/bin/bwrap", "--version"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        bw = "not found"
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": str(os.cpu_count()),
        "cpu_model": cpu or platform.processor() or "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bwrap": bw or "unknown",
        "uid": str(os.getuid()),
        "load_start": load(),
    }


def summarize(cases: list[Case]) -> list[dict[str, Any]]:
    base = {c.command: percentile(c.samples_ms, 50) for c in cases if c.launcher == "a"}
    rows = []
    for c in cases:
        med = percentile(c.samples_ms, 50)
        rows.append(
            {
                "command": c.command,
                "launcher": c.launcher,
                "launcher_name": LAUNCHERS[c.launcher],
                "n": len(c.samples_ms),
                "median_ms": med,
                "p90_ms": percentile(c.samples_ms, 90),
                "min_ms": min(c.samples_ms),
                "ratio_to_baseline": med / base[c.command],
                "overhead_ms": med - base[c.command],
                "samples_ms": c.samples_ms,
                "enforced": c.enforced,
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| command | launcher | median ms | p90 ms | min ms | × (a) median | + ms vs (a) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['command']}` | ({r['launcher']}) {r['launcher_name']} "
            f"| {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['min_ms']:.1f} "
            f"| {r['ratio_to_baseline']:.1f}× "
            f"| {r['overhead_ms']:+.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed launches per case (30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed launches per case first (3)")
    ap.add_argument("--memory-mb", type=int, default=1024, help="memory limit for (d) (1024)")
    ap.add_argument("--max-pids", type=int, default=256, help="pids limit for (d) (256)")
    ap.add_argument("--json", type=Path, help="also write every sample and the summary here")
    ap.add_argument(
        "--start-dockerd", action="store_true", help="start a private dockerd for (f) when none answers (root)"
    )
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")

    from posttrainbench.sandbox.docker import DockerSandbox, PrivateDockerd

    info = machine_info()
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ptb-bench-") as tmp, contextlib.ExitStack() as stack:
        docker_sb: DockerSandbox | None = DockerSandbox()
        ok, docker = docker_sb.available()
        if not ok and args.start_dockerd:
            try:
                daemon = stack.enter_context(PrivateDockerd())
                docker_sb = DockerSandbox(base_url=daemon.base_url)
                ok, docker = docker_sb.available()
                docker = f"private dockerd ({daemon.base_url})" if ok else docker
            except RuntimeError as e:
                docker = f"{docker}; private dockerd: {e}"
        if ok:
            docker_sb.ensure_image()
            docker = f"{docker}, server {docker_sb.client().version().get('Version', '?')}"
        else:
            docker_sb = None
        ws = Path(tmp) / "workspace"
        ws.mkdir()
        cases, skipped = build_cases(ws, Path(tmp), args.memory_mb, args.max_pids, docker_sb, docker)
        measure(cases, args.repeats, args.warmup)
    elapsed = time.monotonic() - t_start
    rows = summarize(cases)

    print("# Sandbox start-up overhead (wall ms per launch)\n")
    print(
        f"{info['date']} · {info['cpus']} CPUs ({info['cpu_model']}) · "
        f"kernel {info['kernel']} · Python {info['python']} · {info['bwrap']} · "
        f"uid {info['uid']}"
    )
    print(
        f"{args.repeats} timed launches per case after {args.warmup} warm-up launches, "
        f"interleaved; total {elapsed:.1f} s\n"
    )
    print(markdown_table(rows))
    print()
    for key, reason in skipped.items():
        print(f"- ({key}) {LAUNCHERS[key]}: SKIPPED: {reason}")
    by_key = {r["launcher"]: r for r in rows}
    if "b" in by_key:
        enf = by_key["b"]["enforced"] or {}
        tracked = "yes" if enf.get("tree_kill") is True else f"no ({enf.get('tree_kill')})"
        print(f"- (b) tracking cgroup per run: {tracked}")
    if "f" in by_key:
        enf = by_key["f"]["enforced"] or {}
        print(
            f"- (f) memory_mb={args.memory_mb}: {enf.get('memory')}, "
            f"max_pids={args.max_pids}: {enf.get('pids')}, swap: {enf.get('swap')}"
        )
    for key in ("c", "d", "g"):
        if key in by_key:
            enf = by_key[key]["enforced"] or {}
            print(
                f"- ({key}) uid: {enf.get('uid')}; ro_overlays: {enf.get('ro_overlays')}; memory: {enf.get('memory')}; "
                f"pids: {enf.get('pids')}"
            )
    if "g" in by_key:
        print(f"- (g) default limits here: {resolve_limits(0).record()}")
    print(f"- load average (1/5/15 min): {info['load_start']} at the start, {load()} at the end")
    print(f"- docker: {docker}")
    print(
        "- (b)-(h) wait for the command with Popen.wait(timeout=...), which polls with sleeps "
        "doubling from 1 ms up to 50 ms: their times are quantised and can be bimodal, so look "
        "at min as well as the median."
    )

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "docker": docker,
                    "repeats": args.repeats,
                    "warmup": args.warmup,
                    "memory_mb": args.memory_mb,
                    "max_pids": args.max_pids,
                    "elapsed_s": elapsed,
                    "skipped": skipped,
                    "results": rows,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
