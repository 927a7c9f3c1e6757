"""``ptb doctor``: what this machine has and lacks for PostTrainBench."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

import typer
from rich.markup import escape
from rich.table import Table

from ..settings import Settings
from . import lookup
from .common import EXIT_FAILED, JsonOpt, ResultsOpt, console, print_json

Status = Literal["ok", "warn", "missing"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    required: bool = True


def _bwrap() -> Check:
    exe = shutil.which("bwrap")
    if not exe:
        return Check("bubblewrap", "missing", "bwrap not on PATH: apt-get install -y bubblewrap")
    probe = subprocess.run(
        [exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--dev", "/dev", "--proc", "/proc", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return Check(
            "bubblewrap",
            "missing",
            f"bwrap cannot create namespaces here ({probe.stderr.strip()}); enable unprivileged "
            "user namespaces (sysctl kernel.unprivileged_userns_clone=1) or use --sandbox none",
        )
    return Check("bubblewrap", "ok", exe)


def _settings(problems: dict[str, list[str]]) -> Check:
    """Whether every ``PTB_*`` variable is valid: an invalid one stops the commands that read it,
    except the judge's and the graders' (the judge is then not_run, the graded evaluations fail)."""
    lenient = {name for name, group in Settings.groups().items() if group.lenient}
    stops = [p for name, group in problems.items() if name not in lenient for p in group]
    endpoints = [p for name, group in problems.items() if name in lenient for p in group]
    if stops or endpoints:
        status: Status = "missing" if stops else "warn"
        return Check("settings", status, "; ".join(stops + endpoints) + " (see `ptb settings`)")
    return Check("settings", "ok", "every PTB_* variable is valid (`ptb settings` shows them)")


def _sandbox_user(settings: Settings) -> Check:
    """Who the agent runs as, and whether the default limits can be enforced here."""
    from ..sandbox.limits import resolve_limits

    plan = resolve_limits(0, settings)
    lim = f"default limits for a CPU run: {plan.memory_mb} MiB, {plan.max_pids} tasks"
    if os.geteuid() != 0:
        return Check("sandbox user/limits", "ok", f"agent runs as uid {os.geteuid()} (this user); {lim}")
    uid = settings.sandbox.uid
    if uid == 0:
        return Check(
            "sandbox user/limits", "warn", f"PTB_SANDBOX_UID=0: the agent runs as root (no capabilities); {lim}"
        )
    if not shutil.which("setpriv"):
        return Check(
            "sandbox user/limits",
            "missing",
            "root harness without setpriv (util-linux): bwrap cannot drop the agent's uid",
        )
    return Check("sandbox user/limits", "ok", f"root harness: agent runs as uid {uid} (setpriv); {lim}")


def _gpu() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            return Check("gpu", "ok", names, required=False)
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install is worth reporting, not crashing on
        return Check("gpu", "warn", f"torch cannot query CUDA: {exc}", required=False)
    return Check("gpu", "warn", "no CUDA GPU: CPU-only runs (ptb demo) work; real sweeps need a GPU", required=False)


def _disk(results: Path) -> Check:
    target = results if results.exists() else results.resolve().parent
    while not target.exists():
        target = target.parent
    free_gb = shutil.disk_usage(target).free / 2**30
    if free_gb < 5:
        return Check("disk", "missing", f"{free_gb:.1f} GiB free under {target}: need ≥5 GiB for the demo")
    status: Status = "ok" if free_gb >= 100 else "warn"
    return Check("disk", status, f"{free_gb:.0f} GiB free under {target} (a real run wants ≥100 GiB)")


def _packages() -> list[Check]:
    out = []
    for pkg, required in (
        ("torch", True),
        ("transformers", True),
        ("trl", True),
        ("peft", True),
        ("inspect-ai", True),
        ("safetensors", True),
        ("vllm", False),
        ("numba", False),  # the contamination scan's compiled path (else numpy's, ~1.2-1.8x slower)
    ):
        try:
            out.append(Check(pkg, "ok", version(pkg), required=required))
        except PackageNotFoundError:
            extra = {"vllm": "gpu", "numba": "fast"}.get(pkg)
            hint = f"pip install 'posttrainbench[{extra}]'" if extra else f"pip install {pkg}"
            out.append(Check(pkg, "missing" if required else "warn", f"not installed: {hint}", required=required))
    return out


def _keys() -> list[Check]:
    """One line per key variable (several agents may share one)."""
    users: dict[str, list[str]] = {}
    for agent in lookup.all_agents():
        for var in agent.secret_env:
            users.setdefault(var, []).append(agent.id)
    out = []
    for var, agents in users.items():
        names = ", ".join(agents)
        present = bool(os.environ.get(var))
        detail = f"set (read by agents {names})" if present else f"unset (read by agents {names}, as their config says)"
        out.append(Check(f"key {var}", "ok" if present else "warn", detail, required=False))
    return out


def _agent_clis(settings: Settings) -> list[Check]:
    """Whether each agent CLI is installed (``ptb agents install`` puts them there)."""
    from ..agents import AGENTS, get_agent

    out = []
    for name, cls in AGENTS.items():
        if not cls.installable:
            continue
        agent = get_agent(name, settings)
        if agent.installed():
            out.append(Check(f"agent {name}", "ok", f"{agent.version()} installed", required=False))
        else:
            out.append(Check(f"agent {name}", "warn", f"not installed: ptb agents install {name}", required=False))
    return out


def _docker() -> Check:
    """The docker sandbox backend (optional: bubblewrap is the default)."""
    exe = shutil.which("docker")
    if not exe:
        return Check("docker", "warn", "not installed: --sandbox docker is unavailable (bwrap is the default)", False)
    try:
        probe = subprocess.run(
            [exe, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        return Check("docker", "warn", "the daemon did not answer in 15 s: --sandbox docker is unavailable", False)
    if probe.returncode != 0:
        return Check("docker", "warn", "no daemon reachable: --sandbox docker is unavailable", required=False)
    return Check("docker", "ok", f"daemon {probe.stdout.strip()}", required=False)


def _judge(settings: Settings) -> Check:
    """Whether the LLM judge is configured (optional; when configured it is required and needs its key)."""
    judge = settings.judge
    if not judge.model:
        return Check("judge", "warn", "not configured (PTB_JUDGE_MODEL unset): the judge gate is not_run", False)
    if not os.environ.get(judge.api_key_env):
        return Check("judge", "missing", f"{judge.model}: its key variable {judge.api_key_env} is unset")
    return Check("judge", "ok", f"{judge.model} via {judge.provider} ({judge.base_url or 'the provider default'})")


def run_checks(results: Path) -> list[Check]:
    """Every check, in display order (the settings read once, leniently: an invalid variable is
    a failed check, and the others are checked with its default)."""
    settings, problems = Settings.parse()
    return [
        _settings(problems),
        _bwrap(),
        _sandbox_user(settings),
        _gpu(),
        _disk(Path(results)),
        _docker(),
        _judge(settings),
        *_packages(),
        *_keys(),
        *_agent_clis(settings),
    ]


def doctor(results: ResultsOpt = Path("results"), as_json: JsonOpt = False) -> None:
    """Check this machine: sandbox, GPU, disk, docker, judge, packages, keys, agent CLIs; says exactly
    what is missing."""
    checks = run_checks(results)
    if as_json:
        print_json([dataclasses.asdict(c) for c in checks])
        if any(c.status == "missing" and c.required for c in checks):
            raise typer.Exit(EXIT_FAILED)
        return
    table = Table(title="ptb doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    style = {"ok": "green", "warn": "yellow", "missing": "red"}
    for c in checks:
        table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", escape(c.detail))
    console.print(table)
    if any(c.status == "missing" and c.required for c in checks):
        raise typer.Exit(EXIT_FAILED)
