"""Untrusted code against trusted tests: two processes, plain data between them (stdlib only).

This file's source is also what runs inside the sandboxes (``python -I -B -c SOURCE <role>
...``), so the harness, the candidate and the tester share one codec. Roles:

- **candidate** (untrusted): runs the solution (e.g. HumanEval ``prompt + completion``), then
  serves calls of its entry point: it reads a request ``[args, kwargs]`` from the ``req`` FIFO,
  calls the function and writes ``["r", value]`` (or ``["e", type, message]``) to ``resp``. It
  never sees the tests nor the expected answers. Its stdout/stderr are plain files of the
  harness that nothing treats as a verdict.
- **tester** (trusted: the pinned dataset's code): runs the preamble (helpers the tests use,
  e.g. HumanEval's prompt with ``poly``) and the tests, then ``check(proxy)``, where
  ``proxy(*args)`` sends the arguments to the candidate and decodes its answer. Only when
  ``check`` returned and no call failed does it print the nonce it read from its stdin; the
  harness reads that from the tester's stdout. The candidate runs in another sandbox (another
  PID namespace, another filesystem view): it cannot read the nonce, signal or trace the tester,
  nor write its stdout.

Values cross as tagged JSON (:func:`encode`) and :func:`decode` turns them into exact builtins
(``None``, bool, int of any size, float incl. nan/inf, complex, str, bytes, list, tuple, dict,
set, frozenset), so an object whose ``__eq__`` always says yes cannot reach the tests. Never
pickle or marshal: decoding hostile bytes must not run code nor crash the tester. Anything else
(a result that cannot be encoded, a message over :data:`MAX_MESSAGE_BYTES`, garbage, EOF, a call
past its time limit) raises :class:`ChannelBroken` in the tester, a ``BaseException`` that the
tests cannot swallow for good: the tester remembers it and then never reports a pass.
"""

from __future__ import annotations

import base64
import builtins
import errno
import json
import os
import re
import resource
import select
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

MAX_MESSAGE_BYTES = 4 * 2**20
MAX_DEPTH = 100  # nesting of containers in one value
MAX_FILE_BYTES = 16 * 2**20  # RLIMIT_FSIZE of both sides (their stdout/stderr files included)
REQ, RESP = "req", "resp"  # the two FIFOs in the channel folder
CONNECTED_LINE = "ptb-tester: candidate connected"
# The tester's exit codes: passed; failed (a test, the solution's loading, a rejected answer);
# a call or the start ran past its time limit; the candidate closed the channel (died).
EXIT_PASSED, EXIT_FAILED, EXIT_TIMEOUT, EXIT_GONE = 0, 1, 3, 4
_HEADER = struct.Struct(">I")
_JSON_INT = 2**53  # ints beyond this travel as hex (json.loads caps decimal digits)
_HEX_INT = re.compile(r"-?0x[0-9a-f]+\Z")
_MESSAGE_TEXT = 2000  # characters of an exception message that cross


class CodecError(ValueError):
    """A value that cannot be encoded, or bytes that are not a valid message."""


class ChannelBroken(BaseException):
    """The candidate did not answer a call with plain data in time: the item fails."""


class CandidateError(Exception):
    """The candidate's function raised (its type and message, as text)."""


# --- values -------------------------------------------------------------------------------


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as a JSON-able tree: scalars as themselves, the rest as ``[tag, ...]`` lists.

    Subclasses of the supported builtins are sent as the builtin (a ``Counter`` as a dict);
    anything else raises :class:`CodecError`."""
    if depth > MAX_DEPTH:
        raise CodecError("value nested too deeply")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        v = int.__index__(value)
        return v if -_JSON_INT < v < _JSON_INT else ["i", hex(v)]
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        return ["c", value.real, value.imag]
    if isinstance(value, bytes):
        return ["b", base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, dict):
        out: list[Any] = ["d"]
        for k, v in dict.items(value):
            out += [encode(k, depth + 1), encode(v, depth + 1)]
        return out
    containers: tuple[tuple[type[Any], str], ...] = ((list, "l"), (tuple, "t"), (set, "s"), (frozenset, "f"))
    for cls, tag in containers:
        if isinstance(value, cls):
            return [tag, *(encode(x, depth + 1) for x in cls.__iter__(value))]
    raise CodecError(f"cannot send a value of type {type(value).__name__}")


def decode(tree: Any, depth: int = 0) -> Any:
    """The value an :func:`encode` tree stands for, built from exact builtins only."""
    if depth > MAX_DEPTH + 1:
        raise CodecError("value nested too deeply")
    t = type(tree)
    if tree is None or t is bool or t is int or t is float or t is str:
        return tree
    if t is not list or not tree or type(tree[0]) is not str:
        raise CodecError("not an encoded value")
    tag, rest = tree[0], tree[1:]
    try:
        if tag in ("l", "t", "s", "f"):
            items = [decode(x, depth + 1) for x in rest]
            return {"l": list, "t": tuple, "s": set, "f": frozenset}[tag](items)
        if tag == "d" and len(rest) % 2 == 0:
            keys = [decode(x, depth + 1) for x in rest[0::2]]
            vals = [decode(x, depth + 1) for x in rest[1::2]]
            return dict(zip(keys, vals))
        if tag == "i" and len(rest) == 1 and type(rest[0]) is str and _HEX_INT.match(rest[0]):
            return int(rest[0], 16)
        if tag == "c" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
            return complex(float(rest[0]), float(rest[1]))
        if tag == "b" and len(rest) == 1 and type(rest[0]) is str:
            return base64.b64decode(rest[0], validate=True)
    except CodecError:
        raise
    except Exception as e:  # noqa: BLE001 - unhashable key or element, bad base64, ...
        raise CodecError(f"bad {tag!r} value: {type(e).__name__}") from None
    raise CodecError(f"unknown tag {tag!r}")


# --- messages: 4-byte length + JSON --------------------------------------------------------


def _no_objects(pairs: Any) -> NoReturn:
    raise CodecError("JSON objects are not part of the protocol")


def parse_message(data: bytes) -> list[Any]:
    """A message's JSON: a non-empty list whose first item is a str tag."""
    try:
        msg = json.loads(data.decode("ascii"), object_pairs_hook=_no_objects)
    except CodecError:
        raise
    except Exception as e:  # noqa: BLE001 - not ASCII, not JSON, too deep, too many digits, ...
        raise CodecError(f"garbage on the channel: {type(e).__name__}") from None
    if type(msg) is not list or not msg or type(msg[0]) is not str:
        raise CodecError("garbage on the channel: not a tagged message")
    return msg


def dump_message(msg: list[Any]) -> bytes:
    """Header + JSON of ``msg``; :class:`CodecError` past :data:`MAX_MESSAGE_BYTES`."""
    data = json.dumps(msg, separators=(",", ":")).encode("ascii")
    if len(data) > MAX_MESSAGE_BYTES:
        raise CodecError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return _HEADER.pack(len(data)) + data


def _wait(fd: int, event: int, deadline: float | None) -> None:
    if deadline is None:
        return
    poller = select.poll()
    poller.register(fd, event)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if poller.poll(min(left, 1.0) * 1000):
            return


def write_all(fd: int, data: bytes, deadline: float | None) -> None:
    """Write every byte (``deadline``: monotonic time for a non-blocking ``fd``)."""
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue


def read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    """Exactly ``n`` bytes; ``EOFError`` when the writer is gone first."""
    chunks, left = [], n
    while left:
        _wait(fd, select.POLLIN, deadline)
        try:
            b = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            continue
        if not b:
            raise EOFError("the other side closed the channel")
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None) -> list[Any]:
    """The next message (see :func:`parse_message`)."""
    (size,) = _HEADER.unpack(read_exact(fd, _HEADER.size, deadline))
    if size > MAX_MESSAGE_BYTES:
        raise CodecError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    return parse_message(read_exact(fd, size, deadline))


def _text(e: BaseException) -> str:
    try:
        return str(e)[:_MESSAGE_TEXT]
    except BaseException:  # noqa: BLE001 - str() of a hostile exception may raise anything
        return "<unprintable>"


# --- candidate ------------------------------------------------------------------------------


def candidate_main(chan: str, solution: str, entry_point: str) -> NoReturn:
    """Run the solution, then answer calls until the tester closes the channel."""
    _exit, _read, _send = os._exit, read_message, write_all  # kept before foreign code runs
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    # Connect before running foreign code, so a solution that fails to load is seen at once.
    req = os.open(os.path.join(chan, REQ), os.O_RDONLY)  # waits for the tester
    resp = os.open(os.path.join(chan, RESP), os.O_WRONLY)
    _fork_watchdog(req, resp)
    import site  # started with -S (no site-packages, a faster start): restore exit(), help(), ...

    site.setquit()
    site.setcopyright()
    site.sethelper()
    try:
        with open(solution, encoding="utf-8") as fh:
            code = compile(fh.read(), solution, "exec")
        ns: dict[str, Any] = {"__name__": "__main__", "__file__": solution, "__builtins__": builtins}
        exec(code, ns)
        fn = ns[entry_point]
        if not callable(fn):
            raise TypeError(f"{entry_point} is not callable")
        hello: list[Any] = ["h"]
    except BaseException as e:  # noqa: BLE001 - whatever the candidate's code raises goes to the tester
        traceback.print_exc()
        hello = ["e", type(e).__name__, _text(e)]
    _send(resp, dump_message(hello), None)
    if hello[0] != "h":
        _exit(1)
    while True:
        try:
            msg = _read(req, None)
        except EOFError:
            _exit(0)
        args, kwargs = decode(msg[1]), decode(msg[2])  # ["c", args, kwargs] from the tester
        try:
            reply = dump_message(["r", encode(fn(*args, **kwargs))])
        except BaseException as e:  # noqa: BLE001 - SystemExit included: a call must return a value
            reply = dump_message(["e", type(e).__name__, _text(e)])
        _send(resp, reply, None)


def _fork_watchdog(req: int, resp: int) -> None:
    """Fork; only the child returns (to run the solution). The parent runs no foreign code: it
    kills the child as soon as the tester hangs up (the item is decided, even if the child is
    busy or sleeping), and exits when the child does, which ends the sandbox and whatever the
    child left behind. A child that kills or stops it only ends or delays its own sandbox."""
    try:
        pid = os.fork()
    except OSError:
        return  # no watchdog: the sandbox's wall-clock limit still ends the run
    if pid == 0:
        return
    os.close(resp)  # the tester must see EOF when the child is gone
    poller = select.poll()
    poller.register(req, 0)  # POLLHUP only: no writer left (the tester is done)
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):  # Linux < 5.3: poll the child instead
        pidfd = None
    status: int | None = None
    while status is None:
        events = poller.poll(None if pidfd is not None else 100)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done != pid:
            status = None
            if any(fd == req for fd, _ in events):
                os.kill(pid, 9)
                status = os.waitpid(pid, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


# --- tester ---------------------------------------------------------------------------------


class _State:
    broken: str | None = None  # why a call failed (then the tester never reports a pass)
    exit_code = EXIT_FAILED


def _connect(chan: str, deadline: float) -> tuple[int, int]:
    """(req, resp) fds, non-blocking; ``TimeoutError`` if no candidate shows up in time."""
    resp = os.open(os.path.join(chan, RESP), os.O_RDONLY | os.O_NONBLOCK)
    while True:
        try:
            return os.open(os.path.join(chan, REQ), os.O_WRONLY | os.O_NONBLOCK), resp
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.002)


def make_proxy(req: int, resp: int, entry_point: str, call_timeout_s: float, deadline: float,
               state: _State) -> Callable[..., Any]:  # fmt: skip
    """The function the tests call in place of the candidate's."""

    def broken(why: str, code: int = EXIT_FAILED) -> NoReturn:
        if not state.broken:
            state.broken, state.exit_code = why, code
        raise ChannelBroken(why)

    def proxy(*args: Any, **kwargs: Any) -> Any:
        if state.broken:
            raise ChannelBroken(state.broken)
        request = dump_message(["c", encode(args), encode(kwargs)])  # trusted arguments
        call_deadline = min(time.monotonic() + call_timeout_s, deadline)
        why, code = "", EXIT_FAILED
        try:
            write_all(req, request, call_deadline)
            msg = read_message(resp, call_deadline)
            if msg[0] == "r" and len(msg) == 2:
                return decode(msg[1])
        except TimeoutError:
            why, code = "the candidate did not answer in time (per-call or whole-program limit)", EXIT_TIMEOUT
        except (EOFError, OSError) as e:
            why, code = f"the candidate is gone ({type(e).__name__}: {e})", EXIT_GONE
        except CodecError as e:
            why = f"the candidate's answer was rejected: {e}"
        if why:
            broken(why, code)
        if msg[0] == "e" and len(msg) == 3 and type(msg[1]) is str and type(msg[2]) is str:
            raise CandidateError(f"{msg[1][:100]}: {msg[2][:_MESSAGE_TEXT]}")
        broken("the candidate's answer was rejected: not a reply")

    proxy.__name__ = proxy.__qualname__ = entry_point
    return proxy


def tester_main(chan: str, preamble: str, tests: str, entry_point: str, call_timeout_s: float,
                total_timeout_s: float) -> NoReturn:  # fmt: skip
    """Run the tests against the candidate; print the nonce only if ``check`` passed."""
    deadline = time.monotonic() + total_timeout_s
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    state = _State()
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for path in (preamble, tests):
        with open(path, encoding="utf-8") as fh:
            exec(compile(fh.read(), path, "exec"), ns)
    check = ns["check"]
    try:
        req, resp = _connect(chan, deadline)
        print(CONNECTED_LINE, flush=True)
        hello = read_message(resp, deadline)
    except TimeoutError:
        print("ptb-tester: the candidate did not start or load in time", file=sys.stderr, flush=True)
        os._exit(EXIT_TIMEOUT)
    except (EOFError, OSError) as e:
        print(f"ptb-tester: the candidate is gone ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
        os._exit(EXIT_GONE)
    except CodecError as e:
        print(f"ptb-tester: the candidate's answer was rejected: {e}", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)
    if hello != ["h"]:
        why = f"{hello[1]}: {hello[2]}" if len(hello) == 3 else repr(hello)
        print(f"ptb-tester: the solution failed to load: {why[:_MESSAGE_TEXT]}", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)
    proxy = make_proxy(req, resp, entry_point, call_timeout_s, deadline, state)
    ns[entry_point] = proxy  # tests may call the function by its name (HumanEval/33)
    try:
        check(proxy)
        ok = True
    except BaseException:  # noqa: BLE001 - any exception (SystemExit included) fails the check
        traceback.print_exc()
        ok = False
    sys.stdout.flush()
    if state.broken:  # even if the tests caught the ChannelBroken
        print(f"ptb-tester: {state.broken}", file=sys.stderr, flush=True)
        os._exit(state.exit_code)
    if not ok:
        os._exit(EXIT_FAILED)
    os.write(1, f"\n{nonce}\n".encode())
    os._exit(EXIT_PASSED)


if __name__ == "__main__":
    role, *argv = sys.argv[1:]
    if role == "candidate":
        candidate_main(*argv)
    elif role == "tester":
        tester_main(argv[0], argv[1], argv[2], argv[3], float(argv[4]), float(argv[5]))
    raise SystemExit(f"unknown role {role!r}")
