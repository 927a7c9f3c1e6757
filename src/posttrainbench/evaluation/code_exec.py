"""Execute generated code against trusted tests, in sandboxes (never in the harness process).

A :class:`Program` is split in two and each half runs in its **own** sandbox
(``posttrainbench.sandbox``, backend ``bwrap`` by default), two processes per program:

- the **candidate** (untrusted) runs ``Program.solution`` (for HumanEval ``prompt + completion``)
  and serves calls of its entry point; it never sees the tests nor the expected answers;
- the **tester** (trusted, the pinned dataset's code) runs ``Program.preamble`` and
  ``Program.tests`` and calls ``check(proxy)``: each call of ``proxy`` is sent to the candidate
  over two FIFOs and its answer comes back as plain data, decoded into exact builtins
  (:mod:`.exec_protocol`: tagged JSON, never pickle).

The item passes only when the tester's ``check`` returned without an exception and without a
broken call, which the tester says by printing a nonce read from its stdin, on its stdout. The
candidate is in another sandbox: separate PID namespace and filesystem view (it sees its own
workspace, the interpreter and the channel folder, no test file), so it cannot read that nonce
nor the tester's memory, signal or trace the tester, or write its stdout. Frame or gc
introspection, patched builtins or ``sys.modules``, ``__eq__`` tricks, ``exit(0)``/``os._exit``,
printing, children that outlive a call: all of that happens in the candidate's own process and
can at most make it answer wrong values, which the tests compare with trusted code. A result that
cannot be encoded, an exception, EOF, garbage, an oversized message or a call past its time limit
fails the item.

Each sandbox: a fresh empty workspace that is its only writable tree, an unprivileged uid (65534
when the harness is root), no network (loopback only), a hard wall-clock limit enforced from
outside (whole process tree killed), a cgroup memory and pid limit, ``RLIMIT_FSIZE``
(stdout/stderr included), and the base Python interpreter started with ``-I -S`` (isolated, no
site-packages: the standard library only). Both sandboxes
get the program's wall-clock limit; the tester gives up a little earlier (and bounds each call),
and a watchdog parent in the candidate's sandbox ends it as soon as the tester hangs up. A pair
costs about 1.6 times the single sandbox of the previous design (``benchmarks/README.md``);
programs run ``workers`` at a time. The ``none`` backend follows the same protocol with plain
subprocesses, which isolate nothing (the candidate could then read the tests or write the
tester's output file): it is for the agent's own ``evaluate.py``, already inside a sandbox.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..domain import NetworkPolicy
from ..sandbox import Sandbox, SandboxConfig, SandboxResult, get_sandbox
from . import exec_protocol
from .exec_protocol import CONNECTED_LINE, EXIT_GONE, EXIT_TIMEOUT, MAX_FILE_BYTES

ExecStatus = Literal["passed", "failed", "timeout", "oom", "sandbox_error"]

SOLUTION_FILE = "solution.py"
PREAMBLE_FILE, TESTS_FILE = "preamble.py", "tests.py"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_MAX_PIDS = 64
_OUTPUT_TAIL = 2000  # characters of stderr kept per side (the cause of a failure)
# What runs in both sandboxes (stdlib only): the protocol module's own source.
PROTOCOL_SOURCE = Path(exec_protocol.__file__).read_text(encoding="utf-8")

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_FILE_BYTES",
    "ExecResult",
    "ExecStatus",
    "Program",
    "SandboxUnavailableError",
    "python_for_sandbox",
    "run_programs",
]


class SandboxUnavailableError(RuntimeError):
    """The sandbox backend cannot run here; generated code is then never executed."""


@dataclass(frozen=True)
class Program:
    """What one reply is judged by.

    ``solution`` is untrusted (it runs in the candidate sandbox and must define
    ``entry_point``); ``preamble`` and ``tests`` are trusted code of the pinned dataset (they run
    in the tester sandbox; ``tests`` defines ``check(candidate)``, and ``preamble`` the helpers
    it uses, e.g. HumanEval's prompt)."""

    solution: str
    tests: str
    entry_point: str
    preamble: str = ""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program."""

    id: str
    status: ExecStatus
    exit_code: int | None  # the tester's
    duration_s: float
    stderr_tail: str = ""  # the tester's (why it failed), then the candidate's

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def python_for_sandbox() -> tuple[str, list[Path]]:
    """The base interpreter (not the venv; started with ``-S``: programs get the standard library
    only) and the folders it needs read-only inside the sandbox."""
    exe = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    prefix = Path(sys.base_prefix).resolve()
    binds = {prefix}
    if not exe.is_relative_to(prefix):
        binds.add(exe.parent)
    system = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc")  # bwrap binds these already
    return str(exe), sorted(p for p in binds if not any(p.is_relative_to(s) for s in system))


def run_programs(
    programs: Sequence[tuple[str, Program]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    call_timeout_s: float | None = None,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    workers: int | None = None,
    sandbox: str = "bwrap",
    on_done: Callable[[ExecResult], None] | None = None,
) -> dict[str, ExecResult]:
    """Run each ``(id, program)`` (candidate and tester, each in its own sandbox); ``{id: ExecResult}``.

    ``timeout_s``: wall-clock limit of each program (both sandboxes); ``call_timeout_s``: limit of
    one call of the entry point (default ``timeout_s``). ``memory_mb``: per sandbox. Raises
    :class:`SandboxUnavailableError` when the backend does not work on this machine (nothing is
    executed then). ``sandbox="none"`` isolates nothing (see the module docstring).
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
    # The tester gives up a little before the sandboxes' hard limit, so that it says why.
    tester_limit = timeout_s - min(1.0, timeout_s / 10)
    per_call = min(call_timeout_s or timeout_s, tester_limit)

    def config(ws: Path, chan: Path) -> SandboxConfig:
        return SandboxConfig(
            workspace=ws,
            ro_binds=[*binds, chan],
            env={"PATH": "/usr/bin:/bin", "HOME": str(ws), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
            network=NetworkPolicy.none,
            time_limit_s=timeout_s,
            kill_grace_s=0.5,
            memory_mb=memory_mb,
            max_pids=DEFAULT_MAX_PIDS,
        )

    def one(n: int, pid: str, program: Program) -> ExecResult:
        # Candidate and tester see nothing of each other but the channel folder (two FIFOs).
        cand, test, chan, out = (root / f"{k}{n}" for k in ("cand", "test", "chan", "out"))
        for d in (cand, test, chan, out):
            d.mkdir(mode=0o755)
        try:
            (cand / SOLUTION_FILE).write_text(program.solution, encoding="utf-8")
            (test / PREAMBLE_FILE).write_text(program.preamble, encoding="utf-8")
            (test / TESTS_FILE).write_text(program.tests, encoding="utf-8")
            for name in (exec_protocol.REQ, exec_protocol.RESP):
                os.mkfifo(chan / name)
                os.chmod(chan / name, 0o666)  # the sandbox may run as another uid
            nonce = secrets.token_hex(16)
            (out / "stdin").write_text(nonce + "\n", encoding="utf-8")
            py = [exe, "-I", "-B", "-S", "-c", PROTOCOL_SOURCE]
            cand_res = _Background(
                backend, [*py, "candidate", str(chan), str(cand / SOLUTION_FILE), program.entry_point],
                config(cand, chan), stdin=None, stdout=out / "cand.out", stderr=out / "cand.err",
            )  # fmt: skip
            try:
                test_res = backend.run(
                    [*py, "tester", str(chan), str(test / PREAMBLE_FILE), str(test / TESTS_FILE),
                     program.entry_point, repr(per_call), repr(tester_limit)],
                    config(test, chan), stdin=out / "stdin", stdout=out / "test.out", stderr=out / "test.err",
                )  # fmt: skip
            finally:
                c_res = cand_res.result()
            test_lines = _tail(out / "test.out").strip().splitlines()
            passed = test_res.exit_code == 0 and bool(test_lines) and test_lines[-1].strip() == nonce
            connected = passed or CONNECTED_LINE in _head(out / "test.out").splitlines()
            tail = _tail(out / "test.err")
            cand_tail = _tail(out / "cand.err")
        finally:
            for d in (cand, test, chan, out):
                shutil.rmtree(d, ignore_errors=True)
        if cand_tail:
            tail += f"\n--- candidate stderr ---\n{cand_tail}"
        status: ExecStatus
        if test_res.error:
            status, tail = "sandbox_error", f"tester: {test_res.error}"
        elif c_res.error and not connected:
            # Only a candidate that never reached the channel can be a sandbox failure: once
            # it ran, whatever it wrote to its stderr must not fail the whole evaluation.
            status, tail = "sandbox_error", f"candidate: {c_res.error}"
        elif passed:
            status = "passed"
        elif test_res.timed_out or test_res.exit_code == EXIT_TIMEOUT:
            status = "timeout"
        elif test_res.exit_code == EXIT_GONE and (c_res.timed_out or c_res.oom_killed):
            status = "timeout" if c_res.timed_out else "oom"  # why the candidate is gone
        elif test_res.oom_killed:
            status = "oom"
        else:
            status = "failed"
        result = ExecResult(
            id=pid, status=status, exit_code=test_res.exit_code,
            duration_s=max(test_res.duration_s, c_res.duration_s), stderr_tail=tail,
        )  # fmt: skip
        if on_done is not None:
            on_done(result)
        return result

    try:
        n_workers = max(1, workers or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            futures = [pool.submit(one, n, pid, prog) for n, (pid, prog) in enumerate(programs)]
            return {r.id: r for r in (f.result() for f in futures)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Background:
    """``backend.run`` in its own thread (bwrap's ``--die-with-parent`` follows that thread,
    which lives until the run is over)."""

    def __init__(
        self,
        backend: Sandbox,
        argv: list[str],
        config: SandboxConfig,
        *,
        stdin: Path | None,
        stdout: Path,
        stderr: Path,
    ) -> None:
        self._result: SandboxResult | None = None
        self._exc: BaseException | None = None

        def target() -> None:
            try:
                self._result = backend.run(argv, config, stdin=stdin, stdout=stdout, stderr=stderr)
            except BaseException as e:  # noqa: BLE001 - a harness bug: re-raised in result()
                self._exc = e

        self._thread = threading.Thread(target=target, name="ptb-exec-candidate", daemon=True)
        self._thread.start()

    def result(self) -> SandboxResult:
        self._thread.join()
        if self._exc is not None:
            raise self._exc
        assert self._result is not None
        return self._result


def _head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(64 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - _OUTPUT_TAIL))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
