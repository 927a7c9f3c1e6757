"""Execute generated programs inside the sandbox (never in the harness process).

Every program runs in its **own** bubblewrap sandbox (``posttrainbench.sandbox``, backend
``bwrap``): a fresh empty workspace that is the only writable tree, an unprivileged uid (65534
when the harness is root), no network (loopback only),
a hard wall-clock limit enforced from outside (whole process tree killed), a cgroup memory and
pid limit, and the base Python interpreter started with ``-I`` (isolated: no user site, no
environment variables, no script folder on ``sys.path``). One sandbox per program costs about
0.1-0.2 s on a loaded 2-core machine (``benchmarks/README.md``); programs run ``workers`` at a
time.

A program passes only when it runs to its end without an exception: a small wrapper executes it
and then prints a nonce that it read from stdin (so it is not in any file the program can read),
and exits 0. ``exit(0)`` / ``sys.exit()`` (a ``SystemExit``) or ``os._exit(0)`` before the tests
therefore fail. The nonce stays reachable by deliberate introspection of the wrapper's frame;
adversarial code is the business of the integrity checks, not of this scorer. Files written by
the program (stdout/stderr included) are capped by ``RLIMIT_FSIZE``. Anything else (assertion,
exception, timeout, OOM, a sandbox that cannot start) fails, with the cause in ``ExecResult.status``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..domain import NetworkPolicy
from ..sandbox import SandboxConfig, get_sandbox

ExecStatus = Literal["passed", "failed", "timeout", "oom", "sandbox_error"]

PROGRAM_FILE = "program.py"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_MAX_PIDS = 64
_OUTPUT_TAIL = 2000  # characters of stderr kept per program (the cause of a failure)


MAX_FILE_BYTES = 16 * 1024 * 1024
# Runs the program file in a fresh namespace; prints the nonce only if it ran to its end.
WRAPPER = f"""
import os, resource, sys
def _ptb_main():
    resource.setrlimit(resource.RLIMIT_FSIZE, ({MAX_FILE_BYTES}, {MAX_FILE_BYTES}))
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    path = sys.argv[1]
    with open(path, encoding="utf-8") as fh:
        code = compile(fh.read(), path, "exec")
    try:
        exec(code, {{"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}})
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os.write(1, ("\\n" + nonce + "\\n").encode())
    os._exit(0)
_ptb_main()
"""


class SandboxUnavailableError(RuntimeError):
    """The sandbox backend cannot run here; generated code is then never executed."""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program."""

    id: str
    status: ExecStatus
    exit_code: int | None
    duration_s: float
    stderr_tail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def python_for_sandbox() -> tuple[str, list[Path]]:
    """The base interpreter (not the venv: programs get the standard library only) and the
    folders it needs read-only inside the sandbox."""
    exe = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    prefix = Path(sys.base_prefix).resolve()
    binds = {prefix}
    if not exe.is_relative_to(prefix):
        binds.add(exe.parent)
    system = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc")  # bwrap binds these already
    return str(exe), sorted(p for p in binds if not any(p.is_relative_to(s) for s in system))


def run_programs(
    programs: Sequence[tuple[str, str]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    workers: int | None = None,
    sandbox: str = "bwrap",
    on_done: Callable[[ExecResult], None] | None = None,
) -> dict[str, ExecResult]:
    """Run each ``(id, source)`` in its own sandbox; ``{id: ExecResult}``.

    Raises :class:`SandboxUnavailableError` when the backend does not work on this machine
    (nothing is executed then). ``sandbox="none"`` exists for tests of the scorer logic only.
    """
    ids = [pid for pid, _ in programs]
    if len(set(ids)) != len(ids):
        raise ValueError("program ids must be unique")
    backend = get_sandbox(sandbox)
    ok, reason = backend.available()
    if not ok:
        raise SandboxUnavailableError(f"cannot execute generated code: sandbox {sandbox!r} unavailable: {reason}")
    exe, binds = python_for_sandbox()
    root = Path(tempfile.mkdtemp(prefix="ptb-exec-"))
    os.chmod(root, 0o755)

    def one(n: int, pid: str, source: str) -> ExecResult:
        ws, out = root / f"ws{n}", root / f"out{n}"
        ws.mkdir()
        out.mkdir()
        (ws / PROGRAM_FILE).write_text(source, encoding="utf-8")
        nonce = secrets.token_hex(16)
        (out / "stdin").write_text(nonce + "\n", encoding="utf-8")
        config = SandboxConfig(
            workspace=ws,
            ro_binds=binds,
            env={"PATH": "/usr/bin:/bin", "HOME": str(ws), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
            network=NetworkPolicy.none,
            time_limit_s=timeout_s,
            kill_grace_s=0.5,
            memory_mb=memory_mb,
            max_pids=DEFAULT_MAX_PIDS,
        )
        try:
            res = backend.run(
                [exe, "-I", "-B", "-c", WRAPPER, str(ws / PROGRAM_FILE)], config,
                stdin=out / "stdin", stdout=out / "stdout", stderr=out / "stderr",
            )  # fmt: skip
            tail = _tail(out / "stderr")
            finished = _last_line(out / "stdout") == nonce
        finally:
            shutil.rmtree(ws, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
        status: ExecStatus
        if res.error:
            status, tail = "sandbox_error", res.error
        elif res.timed_out:
            status = "timeout"
        elif res.oom_killed:
            status = "oom"
        else:
            status = "passed" if res.exit_code == 0 and finished else "failed"
        result = ExecResult(id=pid, status=status, exit_code=res.exit_code, duration_s=res.duration_s, stderr_tail=tail)
        if on_done is not None:
            on_done(result)
        return result

    try:
        n_workers = max(1, workers or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            futures = [pool.submit(one, n, pid, src) for n, (pid, src) in enumerate(programs)]
            return {r.id: r for r in (f.result() for f in futures)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - _OUTPUT_TAIL))
        return fh.read().decode("utf-8", errors="replace")


def _last_line(path: Path) -> str:
    lines = _tail(path).strip().splitlines()
    return lines[-1].strip() if lines else ""
