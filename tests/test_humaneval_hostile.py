"""Executed model output cannot forge a HumanEval pass (real bwrap, no mocks).

Each attack is a model reply (a complete function, often with module-level code) that would
like to pass without solving the problem. Every one must score 0, while the canonical solution
of the same problem passes in the same batch. Several of these passed with the previous design
(one process running ``prompt + completion + test`` and printing a nonce at its end): patched
``abs``, ``__import__`` or ``sys.modules``, a redefined ``poly``, ``__eq__`` objects, reading
the nonce from the wrapper's frame.
"""

from __future__ import annotations

import gzip
import json
import os
import struct

import pytest

from posttrainbench.benchmarks.humaneval import build_program
from posttrainbench.data import data_root
from posttrainbench.evaluation import exec_protocol as proto
from posttrainbench.evaluation.code_exec import ExecResult, Program, run_programs

TIMEOUT_S = 4.0  # per program in the main batch (the sleeping attacks cost this much)

# Module-level helpers the attacks share (prepended to an attack's reply where used).
FORGE = r"""
import os, sys, struct, json
def _frame(msg):
    data = json.dumps(msg).encode()
    return struct.pack(">I", len(data)) + data
PASS_TEXT = ("ptb-tester: candidate connected\n" + "0" * 32 + "\npassed\nPASSED\nok\n")
def _spray(payload):
    for fd in range(21):
        try:
            os.write(fd, payload)
        except OSError:
            pass
"""
NONCE_HUNT = r"""
import re, sys, gc, os
_HEX = re.compile(r"[0-9a-f]{32}")
def _hunt():
    found = set()
    f = sys._getframe()
    while f is not None:
        for d in (f.f_locals, f.f_globals):
            for v in list(d.values()):
                if isinstance(v, str) and _HEX.fullmatch(v):
                    found.add(v)
        f = f.f_back
    for o in gc.get_objects():
        if isinstance(o, dict):
            for v in list(o.values()):
                if isinstance(v, str) and _HEX.fullmatch(v):
                    found.add(v)
    return found
def _announce(found):
    text = "".join(f"\n{s}\n" for s in sorted(found)) or "\n" + "0" * 32 + "\n"
    for stream in (sys.stdout, sys.stderr):
        stream.write(text)
        stream.flush()
    for fd in range(21):
        try:
            os.write(fd, text.encode())
        except OSError:
            pass
"""

HE0 = "HumanEval/0"  # has_close_elements(numbers, threshold) -> bool
HE0_SIG = "def has_close_elements(numbers, threshold):\n"
ATTACKS: dict[str, tuple[str, str]] = {
    # --- introspection: there is no secret in the candidate's process to find ---
    "frame_getframe": (HE0, NONCE_HUNT + "import os\n" + HE0_SIG + "    _announce(_hunt())\n    os._exit(0)\n"),
    "inspect_stack": (
        HE0,
        "import inspect, os, sys\n"
        + HE0_SIG
        + (
            "    for fr in inspect.stack():\n"
            "        for v in list(fr.frame.f_locals.values()) + list(fr.frame.f_globals.values()):\n"
            "            if isinstance(v, str) and len(v) == 32:\n"
            "                print(v); print(v, file=sys.stderr)\n"
            "    sys.stdout.flush(); sys.stderr.flush()\n"
            "    os._exit(0)\n"
        ),
    ),
    "gc_referrers": (
        HE0,
        NONCE_HUNT
        + "import gc, os\n"
        + HE0_SIG
        + (
            "    found = _hunt()\n"
            "    for r in gc.get_referrers(numbers):\n"  # whoever holds the arguments
            "        if isinstance(r, (list, tuple, dict)):\n"
            "            found |= {v for v in (r.values() if isinstance(r, dict) else r) if isinstance(v, str)}\n"
            "    _announce(found)\n"
            "    return True\n"
        ),
    ),
    "module_level_hunt": (HE0, NONCE_HUNT + "_announce(_hunt())\nimport os\nos._exit(0)\n"),
    # --- patched builtins / modules: they patch the candidate's process only ---
    "builtins_abs": (
        "HumanEval/4",
        "import builtins\nbuiltins.abs = lambda x: 0\ndef mean_absolute_deviation(numbers):\n    return 12345.0\n",
    ),
    "builtins_assertionerror": (
        HE0,
        "import builtins\nclass _Nope(BaseException):\n    pass\n"
        "builtins.AssertionError = _Nope\n" + HE0_SIG + "    return None\n",
    ),
    "builtins_import": (
        "HumanEval/32",
        (
            "import builtins, types\n_real = builtins.__import__\n"
            "_fake = types.SimpleNamespace(fabs=lambda x: 0.0, sqrt=lambda x: 0.0)\n"
            "def _imp(name, *a, **k):\n    return _fake if name == 'math' else _real(name, *a, **k)\n"
            "builtins.__import__ = _imp\n"
            "def find_zero(xs):\n    return 123.0\n"
        ),
    ),
    "sys_modules": (
        "HumanEval/32",
        (
            "import sys, types\nsys.modules['math'] = types.SimpleNamespace(fabs=lambda x: 0.0)\n"
            "sys.modules['copy'] = types.SimpleNamespace(deepcopy=lambda x: [0])\n"
            "def find_zero(xs):\n    return 123.0\n"
        ),
    ),
    "redefine_poly": ("HumanEval/32", "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 123.0\n"),
    "excepthook_exit0": (
        HE0,
        (
            "import sys, os, atexit, threading\n"
            "sys.excepthook = lambda *a: os._exit(0)\nthreading.excepthook = lambda *a: os._exit(0)\n"
            "atexit.register(lambda: os._exit(0))\n" + HE0_SIG + "    raise AssertionError\n"
        ),
    ),
    # --- values that claim to equal anything: only plain data crosses ---
    "eq_object": (
        HE0,
        (
            "class _Yes:\n"
            "    def __eq__(self, o): return True\n"
            "    def __ne__(self, o): return False\n"
            "    def __bool__(self): return True\n"
            "    def __hash__(self): return 0\n" + HE0_SIG + "    return _Yes()\n"
        ),
    ),
    "eq_int_subclass": (
        "HumanEval/13",
        (
            "class _I(int):\n"
            "    def __eq__(self, o): return True\n"
            "    def __ne__(self, o): return False\n"
            "    __hash__ = int.__hash__\n"
            "def greatest_common_divisor(a, b):\n    return _I(-1)\n"
        ),
    ),
    "eq_str_subclass": (
        "HumanEval/27",
        (
            "class _S(str):\n"
            "    def __eq__(self, o): return True\n"
            "    def __ne__(self, o): return False\n"
            "    __hash__ = str.__hash__\n"
            "def flip_case(string):\n    return _S('nope')\n"
        ),
    ),
    "eq_float_subclass": (
        "HumanEval/4",
        (
            "class _F(float):\n"
            "    def __sub__(self, o): return 0.0\n"
            "    def __abs__(self): return 0.0\n"
            "    def __lt__(self, o): return True\n"
            "def mean_absolute_deviation(numbers):\n    return _F(99.0)\n"
        ),
    ),
    "eq_list_subclass": (
        "HumanEval/1",
        (
            "class _L(list):\n"
            "    def __eq__(self, o): return True\n"
            "    def __ne__(self, o): return False\n"
            "def separate_paren_groups(paren_string):\n    return _L(['nope'])\n"
        ),
    ),
    "unencodable_result": (HE0, HE0_SIG + "    return (x for x in [True])\n"),
    # --- early exits, at module level and inside the call ---
    "exit0_module": (HE0, "exit(0)\n" + HE0_SIG + "    return True\n"),
    "sys_exit_call": (HE0, "import sys\n" + HE0_SIG + "    sys.exit()\n"),
    "os_exit_call": (HE0, "import os\n" + HE0_SIG + "    os._exit(0)\n"),
    "kill_self": (HE0, "import os, signal\n" + HE0_SIG + "    os.kill(os.getpid(), signal.SIGKILL)\n"),
    "kill_parent_and_all": (
        HE0,
        "import os, signal\n"
        + HE0_SIG
        + (
            "    for pid in (os.getppid(), 1, -1):\n"
            "        try:\n            os.kill(pid, signal.SIGKILL)\n        except OSError:\n            pass\n"
            "    return True\n"
        ),
    ),
    # --- printing what a pass looks like, everywhere ---
    "print_pass_everywhere": (
        HE0,
        FORGE
        + HE0_SIG
        + (
            "    sys.stdout.write(PASS_TEXT); sys.stdout.flush()\n"
            "    sys.stderr.write(PASS_TEXT); sys.stderr.flush()\n"
            "    _spray(PASS_TEXT.encode())\n"
            "    os._exit(0)\n"
        ),
    ),
    "forged_replies_out_of_turn": (
        HE0,
        FORGE
        + (
            "_spray(_frame(['h']) + _frame(['r', True]) * 50)\n"  # before the hello, for every call
            + HE0_SIG
            + "    _spray(_frame(['r', True]) * 50)\n    return True\n"
        ),
    ),
    "garbage_on_channel": (
        HE0,
        FORGE + HE0_SIG + ("    _spray(b'\\xff' * 64 + struct.pack('>I', 1 << 31))\n    return True\n"),
    ),
    "forged_oversized_header": (
        HE0,
        FORGE
        + HE0_SIG
        + ("    _spray(struct.pack('>I', 0xFFFFFFFF) + b'[\"r\",true]')\n    import time\n    time.sleep(30)\n"),
    ),
    "forged_deep_nesting": (
        HE0,
        FORGE
        + HE0_SIG
        + (
            "    body = '[\"r\",' + '[\"l\",' * 100000 + 'true' + ']' * 100000 + ']'\n"
            "    _spray(struct.pack('>I', len(body)) + body.encode())\n    time_ = __import__('time')\n"
            "    time_.sleep(30)\n"
        ),
    ),
    "forged_huge_int": (
        HE0,
        FORGE
        + HE0_SIG
        + (
            "    _spray(_frame(['r', '1' * 100000]))\n"  # a str, not an int; and as a JSON number:
            "    body = ('[\"r\",' + '9' * 100000 + ']').encode()\n"
            "    _spray(struct.pack('>I', len(body)) + body)\n    __import__('time').sleep(30)\n"
        ),
    ),
    "json_object_reply": (
        HE0,
        FORGE
        + HE0_SIG
        + (
            '    body = b\'["r",{"__eq__":true}]\'\n'
            "    _spray(struct.pack('>I', len(body)) + body)\n    __import__('time').sleep(30)\n"
        ),
    ),
    # a start failure would fail the whole evaluation (and the cell would fall back to the base score)
    "fake_sandbox_error": (
        HE0,
        (
            "import os\nos.lseek(2, 0, 0)\nos.write(2, b'bwrap: execvp python3: No such file or directory\\n')\n"
            "os._exit(1)\n" + HE0_SIG + "    return True\n"
        ),
    ),
    # --- children that outlive the call ---
    "fork_outlives_call": (
        HE0,
        FORGE
        + "import time\n"
        + HE0_SIG
        + (
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        time.sleep(0.3)\n"
            "        sys.stdout.write(PASS_TEXT); sys.stdout.flush()\n"
            "        _spray(PASS_TEXT.encode() + _frame(['r', True]) * 20)\n"
            "        os._exit(0)\n"
            "    os._exit(0)\n"
        ),
    ),
    "double_fork_daemon": (
        HE0,
        FORGE
        + "import time\n"
        + HE0_SIG
        + (
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        if os.fork() == 0:\n"
            "            for _ in range(20):\n"
            "                time.sleep(0.1)\n"
            "                _spray(PASS_TEXT.encode())\n"
            "        os._exit(0)\n"
            "    return None\n"
        ),
    ),
    # --- stdin carries nothing ---
    "read_stdin": (
        HE0,
        "import sys, os\n"
        + HE0_SIG
        + (
            "    data = sys.stdin.read() + os.read(0, 4096).decode(errors='replace')\n"
            "    print(data); print(data, file=sys.stderr); sys.stdout.flush()\n"
            "    os._exit(0)\n"
        ),
    ),
    # --- resources ---
    "sleep_past_limit": (HE0, "import time\n" + HE0_SIG + "    time.sleep(60)\n    return True\n"),
    "busy_loop_past_limit": (HE0, HE0_SIG + "    while True:\n        pass\n"),
    "sleep_at_load": (HE0, "import time\ntime.sleep(60)\n" + HE0_SIG + "    return True\n"),
    "huge_output": (
        HE0,
        "import sys\n"
        + HE0_SIG
        + (
            "    chunk = 'PASSED\\n' * 100000\n"
            "    for _ in range(10000):\n        sys.stdout.write(chunk)\n"
            "    return True\n"
        ),
    ),
    "deep_recursion": (
        HE0,
        "import sys\nsys.setrecursionlimit(10 ** 7)\n"
        + HE0_SIG
        + ("    def down(n):\n        return down(n + 1) + 1\n    return down(0)\n"),
    ),
    "deeply_nested_result": (
        HE0,
        HE0_SIG + ("    x = True\n    for _ in range(10000):\n        x = [x]\n    return x\n"),
    ),
    "huge_string_result": (HE0, HE0_SIG + "    return 'x' * (64 * 2 ** 20)\n"),
}


# Python 3.11 keeps Python frames on the heap: unbounded recursion may hit the memory limit first.
MAY_OOM = {"deep_recursion"}


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    with gzip.open(data_root() / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as fh:
        return {r["task_id"]: r for r in map(json.loads, fh)}


def _canonical(raw: dict[str, dict], task: str) -> Program:
    return build_program(raw[task]["canonical_solution"], raw[task])


@pytest.fixture(scope="module")
def outcomes(raw) -> dict[str, ExecResult]:
    """Every attack and the canonical solution of every attacked problem, in one batch."""
    programs = [(name, build_program(reply, raw[task])) for name, (task, reply) in ATTACKS.items()]
    programs += [(f"canonical:{t}", _canonical(raw, t)) for t in sorted({t for t, _ in ATTACKS.values()})]
    return run_programs(programs, timeout_s=TIMEOUT_S, workers=2)


GONE, REJECTED, WRONG = "the candidate is gone", "the candidate's answer was rejected", "\nAssertionError\n"
# Why each attack fails, as the tester's stderr says (any of these substrings).
CAUSES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(["frame_getframe", "gc_referrers", "module_level_hunt", "print_pass_everywhere",
                     "garbage_on_channel", "forged_oversized_header"], (REJECTED, GONE)),  # text sprayed on the channel
    **dict.fromkeys(["inspect_stack", "os_exit_call", "kill_self", "fork_outlives_call", "read_stdin",
                     "fake_sandbox_error"], (GONE,)),
    **dict.fromkeys(["builtins_abs", "builtins_assertionerror", "builtins_import", "sys_modules", "redefine_poly",
                     "eq_int_subclass", "eq_str_subclass", "eq_float_subclass", "eq_list_subclass",
                     "forged_replies_out_of_turn", "forged_huge_int", "double_fork_daemon"],
                    (WRONG,)),  # an honest comparison in the tester failed
    "kill_parent_and_all": (GONE, WRONG),  # its watchdog parent dies, and the sandbox with it
    "excepthook_exit0": ("CandidateError: AssertionError",),
    "eq_object": ("CandidateError: CodecError: cannot send a value of type _Yes",),
    "unencodable_result": ("CandidateError: CodecError: cannot send a value of type generator",),
    "exit0_module": ("the solution failed to load: SystemExit: 0",),
    "sys_exit_call": ("CandidateError: SystemExit",),
    "forged_deep_nesting": (f"{REJECTED}: garbage on the channel: RecursionError",),
    "json_object_reply": (f"{REJECTED}: JSON objects are not part of the protocol",),
    "sleep_past_limit": ("did not answer in time",),
    "busy_loop_past_limit": ("did not answer in time",),
    "sleep_at_load": ("did not start or load in time",),
    "huge_output": ("CandidateError: OSError: [Errno 27] File too large",),
    "deep_recursion": ("RecursionError", GONE),
    "deeply_nested_result": ("CandidateError: CodecError: value nested too deeply",),
    "huge_string_result": ("CandidateError: CodecError: message of", "exceeds"),
}  # fmt: skip
TIMEOUTS = {"sleep_past_limit", "busy_loop_past_limit", "sleep_at_load"}


def test_every_attack_has_its_expected_cause():
    assert set(CAUSES) == set(ATTACKS)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_scores_zero(attack, outcomes):
    task = ATTACKS[attack][0]
    canonical = outcomes[f"canonical:{task}"]
    assert canonical.passed, canonical.stderr_tail
    res = outcomes[attack]
    assert not res.passed
    allowed = {"timeout"} if attack in TIMEOUTS else {"failed", "oom"} if attack in MAY_OOM else {"failed"}
    assert res.status in allowed, (res.status, res.stderr_tail)
    tester = res.stderr_tail.split("--- candidate stderr ---")[0]  # the trusted side's account
    assert any(c in tester for c in CAUSES[attack]), tester


def test_the_candidate_sees_no_test_file_and_no_tester(raw):
    """A reply that reads every file it can see outside the read-only system trees (``/usr``,
    ``/etc``, the interpreter, ...: host files the harness never writes), /proc included,
    looking for the tests and the tester's process: it would answer right if it found the
    tests; it finds nothing, and says how much it searched (its own processes are visible).
    Control: with the ``none`` backend (no isolation) the same reply finds the tests and passes."""
    marker = "assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True"
    reply = r"""
import os, stat, sys
MARKER = %r[::-1].encode()  # reversed, so that this file itself does not hold it
SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys", "/dev", "/proc/sys",
          os.path.realpath(sys.base_prefix), *%r)
def scan():
    files, hits, roles = 0, [], []
    for root, dirs, names in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in SYSTEM]
        for n in names:
            p = os.path.join(root, n)
            try:
                if not stat.S_ISREG(os.lstat(p).st_mode):
                    continue
                with open(p, "rb") as fh:
                    data = fh.read(1 << 20)
            except OSError:
                continue
            files += 1
            if MARKER in data:
                hits.append(p)
            if p.endswith("/cmdline") and "/task/" not in p:
                roles += [r.decode() for r in data.split(b"\0") if r in (b"tester", b"candidate")]
    return files, hits, roles
FILES, HITS, ROLES = scan()
sys.stderr.write(f"SCANNED {FILES} files; tests found: {HITS}; testers: {ROLES.count('tester')}; "
                 f"candidates: {ROLES.count('candidate')}\n")
sys.stderr.flush()
def has_close_elements(numbers, threshold):
    if HITS:  # the tests are readable: answer right
        return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
    return None
"""
    host = [f"/{d}" for d in os.listdir("/") if d != "tmp"]  # the control walks the host's /tmp only
    res = run_programs(
        [("scan", build_program(reply % (marker[::-1], ()), raw[HE0])), ("right", _canonical(raw, HE0))],
        timeout_s=60, workers=2,
    )  # fmt: skip
    # the control walks all of the host's /tmp (on a developer machine: venvs, clones): time, not speed
    control = run_programs(
        [("scan", build_program(reply % (marker[::-1], host), raw[HE0]))], sandbox="none", timeout_s=300
    )
    assert control["scan"].passed and "/tests.py" in control["scan"].stderr_tail, control["scan"].stderr_tail
    assert res["right"].passed
    assert res["scan"].status == "failed"
    line = next(ln for ln in res["scan"].stderr_tail.splitlines() if ln.startswith("SCANNED"))
    files = int(line.split()[1])
    assert files > 20 and "tests found: []" in line and "testers: 0;" in line, line
    assert "candidates: 0" not in line, line  # the /proc scan works: it sees its own processes


def test_a_sandbox_that_cannot_start_is_an_error_not_a_score(raw, monkeypatch):
    from posttrainbench.evaluation import code_exec

    _exe, binds = code_exec.python_for_sandbox()
    monkeypatch.setattr(code_exec, "python_for_sandbox", lambda: ("/nonexistent/python3", binds))
    res = run_programs([("x", _canonical(raw, HE0))], timeout_s=5)
    assert res["x"].status == "sandbox_error" and "failed to start" in res["x"].stderr_tail, res["x"]


# --- the codec on its own (the tester's decoder against hostile bytes) ---


ROUNDTRIP = [
    None, True, False, 0, -7, 2**53, -(2**200), 10**5000, 0.1, -0.0, float("inf"), float("-inf"), 1e308,
    "", "héllo\n\x00", "\ud800", b"\x00\xff", 3 + 4j, [], [1, [2, [3]]], (), (1, "a", None),
    {"a": 1, (1, 2): [3], 4.5: {"x": frozenset({1})}}, {1, 2, 3}, frozenset(), {"k": {True, None}},
]  # fmt: skip


@pytest.mark.parametrize("value", ROUNDTRIP, ids=range(len(ROUNDTRIP)))
def test_codec_roundtrips_plain_data_exactly(value):
    msg = proto.parse_message(proto.dump_message(["r", proto.encode(value)])[4:])
    back = proto.decode(msg[1])
    assert back == value and type(back) is type(value)
    nan = proto.decode(proto.parse_message(proto.dump_message(["r", proto.encode(float("nan"))])[4:])[1])
    assert type(nan) is float and nan != nan


def test_codec_sends_subclasses_as_plain_builtins():
    class Sneaky(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    class Box(dict):
        pass

    back = proto.decode(proto.encode([Sneaky(3), Box(a=Sneaky(1))]))
    assert back == [3, {"a": 1}] and type(back[0]) is int and type(back[1]) is dict
    assert back[0] != 4
    with pytest.raises(proto.CodecError):
        proto.encode(object())


@pytest.mark.parametrize(
    "data",
    [
        b"", b"\xff\xfe", b"not json", b'{"r": 1}', b'["r", {"a": 1}]', b"[]", b"[1, 2]", b'"r"', b"1" * 5000,
        b"[" * 100000 + b"]" * 100000, "[\"r\", \"\u00e9\"]".encode(),
    ],
)  # fmt: skip
def test_parse_message_rejects_garbage(data):
    with pytest.raises(proto.CodecError):
        proto.parse_message(data)


@pytest.mark.parametrize(
    "tree",
    [
        ["x"], ["i", "12"], ["i", "0x1g"], ["i", 5], ["c", "1", 2], ["b", "***"], ["s", ["l"]], ["d", ["l"], 1],
        ["d", 1], ["f", {"a": 1}], [1], [], {"a": 1}, ("t",), ["l", object()], "deep",
    ],
)  # fmt: skip
def test_decode_rejects_malformed_values(tree):
    if tree == "deep":
        tree = True
        for _ in range(proto.MAX_DEPTH + 5):
            tree = ["l", tree]
    with pytest.raises(proto.CodecError):
        proto.decode(tree)


def test_read_message_refuses_an_oversized_header_before_reading():
    r, w = os.pipe()
    try:
        os.write(w, struct.pack(">I", proto.MAX_MESSAGE_BYTES + 1))
        with pytest.raises(proto.CodecError, match="exceeds"):
            proto.read_message(r, None)
        os.write(w, struct.pack(">I", 10) + b"[")
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            proto.read_message(r, None)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)
