"""solve: the agent runs in the sandbox under the time limit and the resource limits.

The deadline is fixed when the agent starts, so ``timer.sh`` and ``task.json`` are final then:
the manifest covers them, pristine copies of the harness files are kept outside the workspace
and laid read-only over the workspace copies. Nothing secret goes in but the agent's own key.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..agents import Agent, LaunchContext
from ..agents.prompt import render_timer
from ..agents.trace_parsers import TraceTail
from ..benchmarks import BENCHMARKS
from ..console import LiveStatus
from ..domain import NetworkPolicy, RunRecord, SolveResult
from ..fsutil import atomic_write_json, atomic_write_text
from ..integrity import write_manifest
from ..sandbox import SandboxConfig
from ..sandbox.egress import DEFAULT_ALLOW
from ..sandbox.hub_gateway import HubGatewaySpec
from ..sandbox.limits import resolve_limits
from ..sandbox.secrets import foreign_secrets
from ..settings import TIME_LIMIT_VAR
from .common import PhaseError, hms, record_outcome
from .observe import SolveObserver
from .watch import SolveWatch

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> SolveResult:
    """Start the agent in the sandbox and wait for it (the sandbox enforces the limit)."""
    ws, paths = pipe.paths.workspace.resolve(), pipe.paths
    prep = record.phases.prepare.result()
    limit_s = pipe.spec.hours * 3600
    deadline = time.time() + limit_s
    # The deadline is fixed when the agent starts, so timer.sh and task.json are final now;
    # the manifest covers them and pristine copies are kept outside the workspace.
    atomic_write_text(ws / "timer.sh", render_timer(deadline))
    (ws / "timer.sh").chmod(0o755)
    task = json.loads((ws / "task" / "task.json").read_text())
    task["deadline_epoch"] = deadline
    atomic_write_json(ws / "task" / "task.json", task)
    harness_files = prep.harness_files
    record.manifest = write_manifest(ws, harness_files)
    for rel in harness_files:
        dest = paths.harness / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ws / rel, dest)
    read_only = _read_only_overlays(ws, paths.harness, harness_files)
    limits = resolve_limits(pipe.spec.gpus, pipe.settings)
    sandbox = pipe.settings.sandbox

    ctx = pipe.launch_context()
    installed = pipe.agent.install()  # pinned CLI, outside the workspace
    pkg = _package_dir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(ws),
        "PYTHONUNBUFFERED": "1",
        "HF_HOME": str(ws / ".cache" / "huggingface"),
        TIME_LIMIT_VAR: str(int(limit_s)),
        "CUDA_VISIBLE_DEVICES": "",
        **pipe.agent.environment(ctx),
    }
    if pipe.spec.network.value == "none":
        env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if var in os.environ:
            env[var] = os.environ[var]
    if pipe.spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, pipe.gpu_ids))
    leaked = foreign_secrets(env, ctx.host_env, allowed=pipe.agent.spec.secret_env)
    if leaked:
        raise PhaseError(f"refusing to start: secrets other than the agent's own key in its env: {leaked}")
    allow, tunnels = _egress(pipe.agent, ctx, pipe.spec.network)
    hub = None
    if pipe.spec.network.value == "allowlist":  # the hub only through the gateway (HF_ENDPOINT)
        hub = HubGatewaySpec.for_run(pipe.base, BENCHMARKS.values(), upstream=pipe.settings.run.hub_upstream)
    config = SandboxConfig(
        workspace=ws,
        ro_binds=sorted(
            {Path(sys.prefix), Path(sys.base_prefix), pkg, Path(prep.base_model_path), *pipe.agent.ro_binds(ctx)}
        ),
        masked=[pkg / "resources"],
        env=env,
        network=pipe.spec.network,
        time_limit_s=limit_s,
        gpus=pipe.gpu_ids,
        egress_allow=allow,
        egress_log=paths.egress_log if allow or pipe.spec.network.value == "allowlist" else None,
        egress_tunnels=tunnels,
        hub_gateway=hub,
        max_output_mb=sandbox.max_output_mb,
        max_workspace_mb=sandbox.max_workspace_mb,
        tmp_dir=paths.sandbox_tmp,  # observed during the run, scanned after it
        uid=sandbox.uid,
        gid=sandbox.gid,
        memory_mb=limits.memory_mb,
        max_pids=limits.max_pids,
        # The pristine copies, read-only over the workspace copies (which stay untouched
        # for the tamper gate): the agent can neither change nor replace them.
        ro_overlays=[(paths.harness / rel, ws / rel) for rel in read_only],
    )
    argv = pipe.agent.command(ctx)
    pipe.progress("solve", f"agent running (limit {hms(limit_s)})")
    observer = SolveObserver(paths, ws, argv, pipe.sandbox.name)  # the kernel's account, not the CLI's
    watch: AbstractContextManager[object] = nullcontext()
    if pipe.live is not None:  # the agent's output, read as it grows (display only)
        tail = TraceTail(pipe.spec.agent, paths.solve_out, model=pipe.agent.model(pipe.spec.agent_config))
        watch = SolveWatch(LiveStatus(pipe.live, "solve"), tail, limit_s, ws)
    try:
        with watch:
            result = pipe.sandbox.run(argv, config, stdin=paths.prompt, stdout=paths.solve_out, stderr=paths.solve_err)
    finally:
        observer.finish()
    if result.error:
        raise PhaseError(f"sandbox {pipe.sandbox.name}: {result.error}")
    record.exit_code, record.timed_out = result.exit_code, result.timed_out
    record.time_used_s = result.duration_s
    atomic_write_text(paths.time_taken, hms(result.duration_s) + "\n")
    stopped_by = []
    if result.oom_killed:
        stopped_by.append(f"the memory limit ({limits.memory_mb} MiB) killed a process")
    if result.pids_limit_hits:
        stopped_by.append(f"the pids limit ({limits.max_pids}) refused {result.pids_limit_hits} forks")
    why = f" ({'; '.join(stopped_by)})" if stopped_by else ""
    if result.limit_exceeded:
        record_outcome(record, "solve", f"agent stopped: {result.limit_exceeded}{why}")
    elif result.timed_out:
        record_outcome(record, "solve", f"agent hit the {hms(limit_s)} limit and was killed{why}")
    elif result.exit_code != 0:
        record_outcome(record, "solve", f"agent exited with code {result.exit_code}{why}")
    return SolveResult(
        argv=argv,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        limit_exceeded=result.limit_exceeded,
        duration_s=result.duration_s,
        enforced=result.enforced,
        limits=limits.record(),
        oom_killed=result.oom_killed,
        pids_limit_hits=result.pids_limit_hits,
        read_only=read_only,
        agent_version=pipe.agent.version(),
        agent_install=str(installed) if installed is not None else None,
        egress_allow=allow,
        hub_gateway=hub.model_dump() if hub else None,
    )


def _package_dir() -> Path:
    return Path(files("posttrainbench")).resolve()  # type: ignore[arg-type]  # on disk: files() gives a Path


def _read_only_overlays(ws: Path, pristine: Path, harness_files: list[str]) -> list[str]:
    """Workspace paths (relative) to cover with their pristine copy, read-only: each harness
    file at the top level, and each top-level directory holding harness files as a whole (a
    file bound alone could still be swapped by renaming its directory). The copies are made
    world-readable: the agent may run under another uid. Fails if such a directory holds
    anything else (the overlay would hide it)."""
    tops = sorted({rel.split("/", 1)[0] for rel in harness_files})
    for top in tops:
        if (ws / top).is_dir():
            extra = {p.relative_to(ws).as_posix() for p in (ws / top).rglob("*") if not p.is_dir()} - set(harness_files)
            if extra:
                raise PhaseError(f"{top}/ holds non-harness files {sorted(extra)}; it cannot be made read-only")
    for p in [pristine, *pristine.rglob("*")]:
        p.chmod(0o755 if p.is_dir() or p.stat().st_mode & 0o111 else 0o644)
    return tops


def _egress(agent: Agent, ctx: LaunchContext, network: NetworkPolicy) -> tuple[list[str], dict[int, str]]:
    """(allow-list, tunnels) for the egress proxy under ``network``.

    ``none``: only the agent's own API endpoint (nothing for agents without one: no proxy);
    ``allowlist``: that plus :data:`~posttrainbench.sandbox.egress.DEFAULT_ALLOW`;
    ``open``: no proxy."""
    if network == NetworkPolicy.open:
        return [], {}
    eg = agent.egress(ctx)
    allow, tunnels = list(eg.allow), dict(eg.tunnels)
    if network == NetworkPolicy.allowlist:
        allow = [*DEFAULT_ALLOW, *allow]
    return allow, tunnels
