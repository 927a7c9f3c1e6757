"""Pinned installs of agent CLIs from npm, into a cache outside every workspace.

Each ``package@version`` gets its own prefix ``<agents dir>/<name>@<version>/`` (installed with
``npm install --prefix ... --ignore-scripts``: no install script of a third-party package runs on
the host; the CLIs we launch are the packages' native binaries, which need none). The prefix is
bound read-only into the sandbox. An install is complete only when ``ptb-install.json`` exists
(written last), so a killed install is redone; concurrent installs of one package serialise
on a lock file.

The agents dir is the settings' ``$PTB_AGENTS_DIR`` or ``~/.cache/posttrainbench/agents``
(deliberately not under ``$PTB_CACHE_DIR``: ``scripts/setup.sh`` installs the CLIs once, tests
and runs reuse them).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings
from .base import AgentLaunchError

INSTALL_MARKER = "ptb-install.json"


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package and how to find its executable inside the install prefix."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def dirname(self) -> str:
        return self.spec.replace("/", "__").lstrip("@")


def agents_dir(settings: Settings | None = None) -> Path:
    """Root of the agent CLI installs: ``settings.paths.agents_dir`` (default: the settings read
    from the environment now)."""
    return (settings if settings is not None else Settings.from_env()).paths.agents_dir


def install_prefix(pkg: NpmPackage, root: Path | None = None) -> Path:
    """Where ``pkg`` is (or will be) installed under ``root`` (default: :func:`agents_dir`)."""
    return (root or agents_dir()) / pkg.dirname


def is_installed(pkg: NpmPackage, root: Path | None = None) -> bool:
    """Whether a complete install of ``pkg`` exists."""
    return (install_prefix(pkg, root) / INSTALL_MARKER).is_file()


def ensure_installed(
    pkg: NpmPackage, *, root: Path | None = None, npm: str | None = None, timeout_s: float = 900
) -> Path:
    """Install ``pkg`` unless already there; return its prefix. Raises AgentLaunchError."""
    prefix = install_prefix(pkg, root)
    if is_installed(pkg, root):
        return prefix
    npm = npm or shutil.which("npm")
    if npm is None:
        raise AgentLaunchError(
            f"cannot install {pkg.spec}: npm not found on PATH (install Node.js >= 20 and npm, or run scripts/setup.sh)"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f".{pkg.dirname}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed(pkg, root):
            return prefix
        tmp = prefix.with_name(prefix.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
        tmp.mkdir(parents=True)
        argv = [
            npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "--no-save",
            "--ignore-scripts", "--loglevel=error", pkg.spec,
        ]  # fmt: skip
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, capture_output=True, timeout=timeout_s, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AgentLaunchError(f"cannot install {pkg.spec} with npm: {e}") from e
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tail = r.stderr.decode(errors="replace").strip()[-1500:]
            raise AgentLaunchError(f"npm install {pkg.spec} failed (exit {r.returncode}): {tail}")
        info = {
            "package": pkg.name,
            "version": pkg.version,
            "installed_at": time.time(),
            "install_s": round(time.monotonic() - t0, 1),
            "npm": _npm_version(npm),
            "platform": f"{platform.system()}-{platform.machine()}",
        }
        (tmp / INSTALL_MARKER).write_text(json.dumps(info, indent=1) + "\n")
        tmp.rename(prefix)
    return prefix


def _npm_version(npm: str) -> str:
    try:
        return subprocess.run([npm, "--version"], capture_output=True, timeout=30).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def linux_triple() -> tuple[str, bool]:
    """(``x64``/``arm64``, is musl libc) of this machine, for picking a platform package."""
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    musl = not Path("/lib64/ld-linux-x86-64.so.2").exists() and not Path("/lib/ld-linux-aarch64.so.1").exists()
    return arch, musl
