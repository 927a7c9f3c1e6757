"""Sandbox backends, tested with real bubblewrap and real processes (no mocks).

The python inside the sandbox is this venv's interpreter, made visible by ro-binding
``sys.prefix`` and ``sys.base_prefix``.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from posttrainbench.domain import NetworkPolicy, SandboxKind
from posttrainbench.registry import UnknownNameError
from posttrainbench.sandbox import (
    SANDBOXES,
    BwrapSandbox,
    SandboxConfig,
    SandboxResult,
    UnsandboxedSandbox,
    get_sandbox,
)
from posttrainbench.sandbox.limits import CGROUP_PREFIX

PY = sys.executable
PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})


@pytest.fixture(scope="module")
def bwrap() -> BwrapSandbox:
    sb = BwrapSandbox()
    ok, reason = sb.available()
    if not ok:
        pytest.skip(f"bwrap unavailable: {reason}")
    return sb


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "workspace"
    d.mkdir()
    return d


def _run(
    sb: BwrapSandbox | UnsandboxedSandbox,
    argv: list[str],
    ws: Path,
    *,
    stdin: Path | None = None,
    **cfg: Any,
) -> tuple[SandboxResult, str, str]:
    cfg.setdefault("time_limit_s", 30)
    cfg.setdefault("ro_binds", PY_BINDS)
    config = SandboxConfig(workspace=ws, **cfg)
    out, err = ws.parent / "stdout.txt", ws.parent / "stderr.txt"
    res = sb.run(argv, config, stdin=stdin, stdout=out, stderr=err)
    return res, out.read_text(), err.read_text()


def _marker() -> str:
    """A unique `sleep` argument ("1000.<digits>") to find the process by its command line."""
    return f"1000.{random.randrange(10**8, 10**9)}"


def _pids_with(marker: str) -> list[int]:
    found = []
    needle = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            found.append(int(name))
    return found


def _run_while_watching(
    sb: BwrapSandbox | UnsandboxedSandbox, argv: list[str], ws: Path, marker: str, **cfg: Any
) -> tuple[SandboxResult, str]:
    """Run in a thread; assert the marker process really started; return result and stdout."""
    box: dict[str, tuple[SandboxResult, str, str]] = {}
    t = threading.Thread(target=lambda: box.setdefault("r", _run(sb, argv, ws, **cfg)))
    t.start()
    deadline = time.monotonic() + 10
    seen = False
    while time.monotonic() < deadline and t.is_alive():
        if _pids_with(marker):
            seen = True
            break
        time.sleep(0.02)
    t.join(60)
    assert not t.is_alive()
    assert seen, "the marker process never started"
    res, out, _ = box["r"]
    return res, out


# --- basics -------------------------------------------------------------------------------


def test_get_sandbox_and_config_validation(tmp_path: Path) -> None:
    assert isinstance(get_sandbox(SandboxKind.bwrap), BwrapSandbox)
    assert isinstance(get_sandbox("none"), UnsandboxedSandbox)
    assert SANDBOXES.names() == [k.value for k in SandboxKind], "one registered backend per sandbox kind"
    with pytest.raises(UnknownNameError, match=r"unknown sandbox 'bwarp'\. Did you mean bwrap"):
        get_sandbox("bwarp")
    with pytest.raises(ValueError):
        SandboxConfig(workspace=Path("relative"), time_limit_s=1)
    with pytest.raises(ValueError):
        SandboxConfig(workspace=tmp_path, time_limit_s=0)
    with pytest.raises(ValueError):
        UnsandboxedSandbox().run(
            ["true"],
            SandboxConfig(workspace=tmp_path / "missing", time_limit_s=1),
            stdin=None,
            stdout=tmp_path / "o",
            stderr=tmp_path / "e",
        )


def test_runs_command_and_captures_output(bwrap: BwrapSandbox, ws: Path) -> None:
    res, out, err = _run(bwrap, ["/bin/sh", "-c", "echo hello; echo oops >&2; pwd"], ws)
    assert res.exit_code == 0 and not res.timed_out and res.error is None
    assert out == f"hello\n{ws}\n"
    assert err == "oops\n"
    for key in ("time", "pid_ns", "ipc_ns", "uts_ns", "net_ns", "filesystem", "env", "capabilities"):
        assert res.enforced[key] is True, key


def test_exit_code_propagates(bwrap: BwrapSandbox, ws: Path) -> None:
    res, _, _ = _run(bwrap, [PY, "-c", "import sys; sys.exit(42)"], ws)
    assert res.exit_code == 42 and res.error is None
    res, _, _ = _run(bwrap, ["/bin/sh", "-c", "kill -9 $$"], ws)
    assert res.exit_code == 128 + 9


def test_stdin_from_file_or_devnull(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("fed through stdin\n")
    res, out, _ = _run(bwrap, ["/bin/cat"], ws, stdin=src)
    assert res.exit_code == 0 and out == "fed through stdin\n"
    res, out, _ = _run(bwrap, ["/bin/cat"], ws)
    assert res.exit_code == 0 and out == ""


def test_env_is_exactly_config_env(bwrap: BwrapSandbox, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_HOST_SECRET", "must-not-leak")
    env = {"FOO": "bar", "PATH": "/usr/bin:/bin"}
    res, out, _ = _run(bwrap, ["/usr/bin/env"], ws, env=env)
    assert res.exit_code == 0
    inside = dict(line.split("=", 1) for line in out.splitlines())
    assert inside == {**env, "PWD": str(ws)}
    assert "HOME" not in inside and "PTB_HOST_SECRET" not in inside


def test_failed_start_is_reported_not_raised(ws: Path, tmp_path: Path) -> None:
    missing = BwrapSandbox(bwrap=str(tmp_path / "no-bwrap"))
    ok, reason = missing.available()
    assert not ok and "not found" in reason
    res, _, _ = _run(missing, ["/bin/true"], ws)
    assert res.exit_code is None and res.error and res.error.startswith("failed to start")


def test_missing_command_is_a_start_failure(bwrap: BwrapSandbox, ws: Path) -> None:
    res, _, _ = _run(bwrap, ["/no/such/agent"], ws)
    assert res.exit_code is None
    assert res.error and res.error.startswith("failed to start") and "/no/such/agent" in res.error


# --- filesystem ---------------------------------------------------------------------------

_PROBE = r"""
import json, os, sys
out = {}
for p in sys.argv[1:]:
    try:
        with open(p, "w") as f:
            f.write("x")
        out[p] = "written"
    except OSError as e:
        out[p] = type(e).__name__
print(json.dumps(out))
"""


def test_writes_outside_workspace_fail(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    name = f"ptb-escape-{random.randrange(10**9)}.txt"
    targets = [
        str(ws / "ok.txt"),
        f"/tmp/../work/{name}",
        f"/root/{name}",
        f"/{name}",
        f"/etc/{name}",
        f"/usr/{name}",
        f"{sys.prefix}/{name}",
        str(ro / name),
    ]
    res, out, err = _run(bwrap, [PY, "-c", _PROBE, *targets], ws, ro_binds=[*PY_BINDS, ro])
    assert res.exit_code == 0, err
    got = json.loads(out)
    assert got.pop(str(ws / "ok.txt")) == "written"
    assert (ws / "ok.txt").read_text() == "x"
    assert all(v != "written" for v in got.values()), got
    for t in targets[1:]:
        assert not Path(t).exists(), t  # nothing reached the host


def test_host_paths_not_bound_are_invisible(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"  # next to the workspace, not bound
    secret.write_text("key")
    probes = [str(secret), str(Path(__file__).resolve()), "/home", "/work/main/src", "/root/.bashrc"]
    code = "import os, sys, json; print(json.dumps({p: os.path.exists(p) for p in sys.argv[1:]}))"
    res, out, err = _run(bwrap, [PY, "-c", code, *probes], ws)
    assert res.exit_code == 0, err
    assert json.loads(out) == dict.fromkeys(probes, False)


def test_ro_binds_readable_not_writable(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    ro = tmp_path / "model"
    ro.mkdir()
    (ro / "weights.bin").write_text("original")
    script = (
        "import os, sys\n"
        "p = sys.argv[1]\n"
        "print(open(p).read())\n"
        "for op in (lambda: open(p, 'w'), lambda: os.remove(p), lambda: os.rename(p, p + '.x')):\n"
        "    try:\n"
        "        op(); print('MUTATED')\n"
        "    except OSError as e:\n"
        "        print(type(e).__name__)\n"
    )
    res, out, err = _run(bwrap, [PY, "-c", script, str(ro / "weights.bin")], ws, ro_binds=[*PY_BINDS, ro])
    assert res.exit_code == 0, err
    lines = out.splitlines()
    assert lines[0] == "original"
    assert "MUTATED" not in lines and len(lines) == 4
    assert (ro / "weights.bin").read_text() == "original"


def test_masked_paths_appear_empty(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    hidden = pkg / "test_data"
    hidden.mkdir(parents=True)
    (hidden / "answers.jsonl").write_text("secret answers")
    (pkg / "keys.env").write_text("API_KEY=secret")
    (pkg / "visible.txt").write_text("fine")
    code = (
        "import os, sys, json\n"
        "d, f, v = sys.argv[1:]\n"
        "try:\n"
        "    open(os.path.join(d, 'new'), 'w'); w = 'written'\n"
        "except OSError as e:\n"
        "    w = type(e).__name__\n"
        "print(json.dumps([os.listdir(d), open(f).read(), open(v).read(), w]))\n"
    )
    res, out, err = _run(
        bwrap,
        [PY, "-c", code, str(hidden), str(pkg / "keys.env"), str(pkg / "visible.txt")],
        ws,
        ro_binds=[*PY_BINDS, pkg],
        masked=[hidden, pkg / "keys.env"],
    )
    assert res.exit_code == 0, err
    listing, keys, visible, write = json.loads(out)
    assert listing == [] and keys == "" and visible == "fine" and write != "written"


# --- network ------------------------------------------------------------------------------

_CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3).close(); print('connected')\n"
    "except OSError as e:\n"
    "    print('failed', type(e).__name__)\n"
    "print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n"
)


@pytest.fixture
def host_server() -> tuple[int, threading.Event]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    got = threading.Event()

    def accept() -> None:
        try:
            conn, _ = srv.accept()
            conn.close()
            got.set()
        except OSError:
            pass
        finally:
            srv.close()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1], got


def test_network_none_has_only_loopback(
    bwrap: BwrapSandbox, ws: Path, host_server: tuple[int, threading.Event]
) -> None:
    port, got = host_server
    res, out, err = _run(bwrap, [PY, "-c", _CONNECT, str(port)], ws, network=NetworkPolicy.none)
    assert res.exit_code == 0, err
    first, ifaces = out.splitlines()
    assert first.startswith("failed")
    assert ifaces == "['lo']"
    assert not got.is_set()


def test_network_open_reaches_host(bwrap: BwrapSandbox, ws: Path, host_server: tuple[int, threading.Event]) -> None:
    port, got = host_server
    res, out, err = _run(bwrap, [PY, "-c", _CONNECT, str(port)], ws, network=NetworkPolicy.open)
    assert res.exit_code == 0, err
    assert out.splitlines()[0] == "connected"
    assert got.wait(5)
    assert isinstance(res.enforced["net_ns"], str)


# --- time limit and tree kill -------------------------------------------------------------

LIMIT, GRACE = 1.5, 1.0


@pytest.mark.parametrize(
    "script, ignores_term",
    [
        ("sleep {m}", False),
        ("trap '' TERM; sleep {m}", True),
        ("trap '' TERM; (setsid sleep {m} &); sleep 1000", True),
    ],
    ids=["sleep", "term-ignoring", "double-forked-setsid"],
)
def test_time_limit_kills_everything(bwrap: BwrapSandbox, ws: Path, script: str, ignores_term: bool) -> None:
    m = _marker()
    res, _ = _run_while_watching(
        bwrap, ["/bin/sh", "-c", script.format(m=m)], ws, m, time_limit_s=LIMIT, kill_grace_s=GRACE
    )
    assert res.timed_out and res.exit_code is None
    assert _pids_with(m) == []
    assert res.duration_s >= LIMIT
    if ignores_term:
        assert res.duration_s >= LIMIT + GRACE  # needed the SIGKILL
    else:
        assert res.duration_s < LIMIT + GRACE  # SIGTERM was enough
    assert res.duration_s < LIMIT + GRACE + 5


def test_timeout_delivers_sigterm_first(bwrap: BwrapSandbox, ws: Path) -> None:
    # a longer limit than the others: under load, the sandbox and the shell must have set the trap
    # before the SIGTERM comes (at LIMIT it sometimes had not, and the shell died untrapped)
    limit = LIMIT + 4
    script = "trap 'echo got-term; exit 0' TERM; sleep 1000 & wait"
    res, out, _ = _run(bwrap, ["/bin/sh", "-c", script], ws, time_limit_s=limit, kill_grace_s=3)
    assert res.timed_out and "got-term" in out
    assert res.duration_s < limit + 3


def test_background_leftovers_killed_on_normal_exit(bwrap: BwrapSandbox, ws: Path) -> None:
    m = _marker()
    script = f"(setsid sleep {m} &); sleep 0.5; exit 0"
    res, _ = _run_while_watching(bwrap, ["/bin/sh", "-c", script], ws, m)
    assert res.exit_code == 0 and not res.timed_out
    assert _pids_with(m) == []


# --- memory and pids limits ---------------------------------------------------------------


def _cgroup_v1_writable() -> bool:
    return os.geteuid() == 0 and os.access("/sys/fs/cgroup/memory", os.W_OK)


def _own_ptb_cgroups() -> set[str]:
    found = set()
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        for d in root.glob("**/" + CGROUP_PREFIX + "*"):
            found.add(str(d))
    return found


@pytest.mark.skipif(not _cgroup_v1_writable(), reason="needs root and writable cgroups")
def test_memory_limit_kills_allocation(bwrap: BwrapSandbox, ws: Path) -> None:
    before = _own_ptb_cgroups()
    alloc = "import sys; b = b'x' * (int(sys.argv[1]) * 2**20); print('allocated')"
    res, out, _ = _run(bwrap, [PY, "-c", alloc, "512"], ws, memory_mb=128)
    assert res.enforced["memory"] is True
    assert res.oom_killed and res.exit_code == 128 + 9 and "allocated" not in out
    res, out, _ = _run(bwrap, [PY, "-c", alloc, "16"], ws, memory_mb=128)
    assert res.exit_code == 0 and out == "allocated\n" and not res.oom_killed
    assert _own_ptb_cgroups() == before  # cgroups removed


@pytest.mark.skipif(not _cgroup_v1_writable(), reason="needs root and writable cgroups")
def test_pids_limit(bwrap: BwrapSandbox, ws: Path) -> None:
    code = (
        "import os, time\n"
        "ok = fail = 0\n"
        "for _ in range(60):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        fail += 1; continue\n"
        "    if pid == 0:\n"
        "        time.sleep(5); os._exit(0)\n"
        "    ok += 1\n"
        "print(ok, fail)\n"
    )
    res, out, err = _run(bwrap, [PY, "-c", code], ws, max_pids=20)
    assert res.enforced["pids"] is True and res.exit_code == 0, err
    ok, fail = map(int, out.split())
    assert fail > 0 and ok < 20


def test_limits_not_requested_are_recorded(bwrap: BwrapSandbox, ws: Path) -> None:
    res, _, _ = _run(bwrap, ["/bin/true"], ws)
    assert res.enforced["memory"] == "not requested" and res.enforced["pids"] == "not requested"


# --- GPUs ---------------------------------------------------------------------------------


def test_gpu_nodes_only_when_requested(bwrap: BwrapSandbox, ws: Path) -> None:
    cfg = SandboxConfig(workspace=ws, time_limit_s=1)
    assert not any("nvidia" in a for a in bwrap.build_argv(["true"], cfg))
    argv = bwrap.build_argv(["true"], cfg.model_copy(update={"gpus": [1, 3]}))
    joined = " ".join(argv)
    assert "--dev-bind /dev/nvidia1 /dev/nvidia1" in joined and "/dev/nvidia3 /dev/nvidia3" in joined
    assert "/dev/nvidia0" not in joined
    assert "--setenv CUDA_VISIBLE_DEVICES 1,3" in joined
    if not Path("/dev/nvidia63").exists():
        res, _, _ = _run(bwrap, ["/bin/true"], ws, gpus=[63])
        assert res.error and "nvidia63" in res.error and res.exit_code is None


# --- unsandboxed backend ------------------------------------------------------------------


def test_unsandboxed_env_cwd_and_not_isolated(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_HOST_SECRET", "must-not-leak")
    res, out, _ = _run(UnsandboxedSandbox(), ["/usr/bin/env"], ws, env={"FOO": "bar"})
    assert res.exit_code == 0
    assert dict(line.split("=", 1) for line in out.splitlines()) == {"FOO": "bar", "PWD": str(ws)}
    for key in ("pid_ns", "net_ns", "filesystem"):
        assert isinstance(value := res.enforced[key], str) and "not enforced" in value


def test_unsandboxed_time_limit_kills_tree(ws: Path) -> None:
    m = _marker()
    script = f"trap '' TERM; (setsid sleep {m} &); sleep 1000"
    res, _ = _run_while_watching(
        UnsandboxedSandbox(), ["/bin/sh", "-c", script], ws, m, time_limit_s=LIMIT, kill_grace_s=0.5
    )
    assert res.timed_out and res.exit_code is None
    assert LIMIT <= res.duration_s < LIMIT + 5
    if res.enforced["tree_kill"] is True:  # a cgroup tracked the setsid'd daemon
        assert _pids_with(m) == []
    else:  # pragma: no cover - machines without writable cgroups
        for pid in _pids_with(m):
            os.kill(pid, 9)


def test_unsandboxed_missing_command(ws: Path) -> None:
    res, _, _ = _run(UnsandboxedSandbox(), ["/no/such/agent"], ws)
    assert res.exit_code is None and res.error and "failed to start" in res.error


# --- identity (the harness is root here: the command runs as the sandbox uid) ------------------

ROOT = os.geteuid() == 0
_STATUS = "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status"


def _status(out: str) -> dict[str, str]:
    return {k: " ".join(v.split()) for k, _, v in (line.partition(":") for line in out.splitlines() if ":" in line)}


@pytest.mark.skipif(not ROOT, reason="the uid drop is what a root harness does")
def test_root_harness_runs_the_command_unprivileged(
    bwrap: BwrapSandbox, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PTB_SANDBOX_UID", raising=False)
    monkeypatch.delenv("PTB_SANDBOX_GID", raising=False)
    script = (
        f"{_STATUS}; cat /etc/shadow >/dev/null 2>&1 && echo SHADOW=read || echo SHADOW=denied; "
        "touch made /tmp/t /dev/shm/s && echo WRITABLE=yes; ls -ldn . | cut -d' ' -f3,4"
    )
    res, out, err = _run(bwrap, ["/bin/sh", "-c", script], ws)
    assert res.exit_code == 0, err
    st = _status(out)
    assert st["Uid"] == "65534 65534 65534 65534" and st["Gid"] == "65534 65534 65534 65534" and st["Groups"] == ""
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st[cap] == "0000000000000000", cap
    assert st["NoNewPrivs"] == "1"
    assert "SHADOW=denied" in out and "WRITABLE=yes" in out and out.rstrip().endswith("65534 65534")
    assert (ws / "made").stat().st_uid == 65534  # the harness sees (and can read) what it wrote
    assert res.enforced["uid"] == "uid 65534, gid 65534, no supplementary groups (harness is root)"
    # it cannot switch back
    res, out, _ = _run(
        bwrap, [PY, "-c", "import os\ntry:\n    os.setresuid(0, 0, 0)\nexcept OSError as e:\n    print(e.errno)"], ws
    )
    assert out.strip() == "1"


@pytest.mark.skipif(not ROOT, reason="the uid drop is what a root harness does")
def test_sandbox_uid_is_configurable(bwrap: BwrapSandbox, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_SANDBOX_UID", "4242")
    monkeypatch.setenv("PTB_SANDBOX_GID", "4343")
    res, out, _ = _run(bwrap, ["/usr/bin/id", "-u", "-r"], ws)
    assert out.strip() == "4242" and str(res.enforced["uid"]).startswith("uid 4242, gid 4343")
    res, out, _ = _run(bwrap, ["/usr/bin/id", "-g"], ws, uid=5000, gid=5001)  # the config wins
    assert out.strip() == "5001" and str(res.enforced["uid"]).startswith("uid 5000, gid 5001")
    assert (ws.stat().st_uid, ws.stat().st_gid) == (5000, 5001)
    # uid 0 is an explicit opt-out: the old behaviour, recorded as not enforced
    monkeypatch.setenv("PTB_SANDBOX_UID", "0")
    res, out, _ = _run(bwrap, ["/bin/sh", "-c", f"id -u; {_STATUS}"], ws)
    assert out.splitlines()[0] == "0" and _status(out)["CapEff"] == "0000000000000000"
    assert str(res.enforced["uid"]).startswith("not enforced: uid 0 configured")
    monkeypatch.setenv("PTB_SANDBOX_UID", "nobody")
    with pytest.raises(ValueError, match="PTB_SANDBOX_UID='nobody'"):
        _run(bwrap, ["/bin/true"], ws)


@pytest.mark.skipif(not ROOT, reason="the uid drop is what a root harness does")
def test_binds_unreadable_by_the_sandbox_uid_refuse_to_start(bwrap: BwrapSandbox, ws: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.bin").write_text("w")
    (model / "weights.bin").chmod(0o600)  # e.g. written by a tool that uses mkstemp
    res, _, _ = _run(bwrap, ["/bin/true"], ws, ro_binds=[*PY_BINDS, model])
    assert res.exit_code is None and res.error
    assert "not readable by the sandbox uid 65534" in res.error and "weights.bin (mode 600, owner 0:0)" in res.error
    (model / "weights.bin").chmod(0o644)
    # the parents of a bind do not matter (inside they are created 0755): a 0700 one is fine
    tmp_path.chmod(0o700)
    res, out, _ = _run(bwrap, ["/bin/cat", str(model / "weights.bin")], ws, ro_binds=[*PY_BINDS, model])
    assert res.exit_code == 0 and out == "w"


@pytest.mark.skipif(not ROOT, reason="the cgroup files belong to root")
def test_cgroup_files_are_not_writable_inside(bwrap: BwrapSandbox, ws: Path) -> None:
    """Even with the host's cgroupfs visible (GPU runs bind /sys read-only), the command can
    neither leave its cgroups nor raise its limits."""
    code = (
        "import glob, os\n"
        "hits = []\n"
        "mine = glob.glob('/sys/fs/cgroup/**/ptb-*/', recursive=True)\n"
        "for f in glob.glob('/sys/fs/cgroup/**/cgroup.procs', recursive=True)[:400] + "
        "[f for d in mine for f in glob.glob(d + '*.max') + glob.glob(d + 'memory.limit_in_bytes')]:\n"
        "    try:\n"
        "        open(f, 'w').write(str(os.getpid()) if f.endswith('procs') else 'max')\n"
        "        hits.append(f)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(len(mine), hits)\n"
    )
    res, out, err = _run(
        bwrap, [PY, "-c", code], ws, ro_binds=[*PY_BINDS, Path("/sys/fs/cgroup")], memory_mb=256, max_pids=64
    )
    assert res.exit_code == 0, err
    n_own, hits = out.split(" ", 1)
    assert int(n_own) >= 2 and hits.strip() == "[]"  # its own memory and pids cgroups, unwritable


# --- read-only overlays inside the workspace --------------------------------------------------


def _overlay_ws(ws: Path, tmp_path: Path) -> list[tuple[Path, Path]]:
    pristine = tmp_path / "harness"
    (pristine / "task").mkdir(parents=True)
    (pristine / "evaluate.py").write_text("print('pristine')\n")
    (pristine / "task" / "dev.jsonl").write_text('{"id": 1}\n')
    (ws / "task").mkdir()
    (ws / "evaluate.py").write_text("print('pristine')\n")
    (ws / "task" / "dev.jsonl").write_text('{"id": 1}\n')
    return [(pristine / "evaluate.py", ws / "evaluate.py"), (pristine / "task", ws / "task")]


_OVERLAY_ATTACKS = r"""
attack() { if "$@" >/dev/null 2>&1; then echo "SUCCEEDED $*"; fi; }
attack sh -c 'echo x >> evaluate.py'
attack truncate -s 0 evaluate.py
attack mv evaluate.py moved.py
attack rm -f evaluate.py
attack chmod 777 evaluate.py
attack ln evaluate.py hard.py
attack sh -c 'echo x > new.py && mv -f new.py evaluate.py'
attack sh -c 'echo x >> task/dev.jsonl'
attack touch task/extra
attack mv task task.old
attack rm -rf task
attack unshare -Urm sh -c 'umount task && touch task/x'
python3 evaluate.py
"""


@pytest.mark.parametrize("uid", [None, 0])
def test_ro_overlays_cannot_be_changed_or_replaced(
    bwrap: BwrapSandbox, ws: Path, tmp_path: Path, uid: int | None
) -> None:
    """As the sandbox uid, and even as uid 0 without capabilities (PTB_SANDBOX_UID=0)."""
    overlays = _overlay_ws(ws, tmp_path)
    res, out, err = _run(
        bwrap, ["/bin/bash", "-c", _OVERLAY_ATTACKS], ws, ro_overlays=overlays, uid=uid, env={"PATH": "/usr/bin:/bin"}
    )
    assert res.exit_code == 0, err
    assert out == "pristine\n", out  # no attack succeeded, and the pristine file ran
    assert res.enforced["ro_overlays"] is True
    assert sorted(p.name for p in ws.iterdir()) == ["evaluate.py", "new.py", "task"]
    for src, inside in overlays:
        for p in [src, *src.rglob("*")] if src.is_dir() else [src]:
            q = inside / p.relative_to(src) if src.is_dir() else inside
            assert p.is_dir() or p.read_bytes() == q.read_bytes()


def test_ro_overlay_config_is_validated(ws: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("x")
    with pytest.raises(ValueError, match="not inside the workspace"):
        SandboxConfig(workspace=ws, time_limit_s=1, ro_overlays=[(src, tmp_path / "elsewhere.txt")])
    with pytest.raises(ValueError, match="not inside the workspace"):
        SandboxConfig(workspace=ws, time_limit_s=1, ro_overlays=[(src, ws)])
    cfg = SandboxConfig(workspace=ws, time_limit_s=1, ro_overlays=[(src, ws / "missing.txt")])
    with pytest.raises(ValueError, match="must exist in the workspace"):
        UnsandboxedSandbox().run(["true"], cfg, stdout=tmp_path / "o", stderr=tmp_path / "e")
    (ws / "dir").mkdir()
    cfg = SandboxConfig(workspace=ws, time_limit_s=1, ro_overlays=[(src, ws / "dir")])
    with pytest.raises(ValueError, match="same kind"):
        BwrapSandbox().run(["true"], cfg, stdout=tmp_path / "o", stderr=tmp_path / "e")


def test_unsandboxed_records_what_it_cannot_enforce(ws: Path, tmp_path: Path) -> None:
    overlays = _overlay_ws(ws, tmp_path)
    res, _, _ = _run(UnsandboxedSandbox(), ["/bin/sh", "-c", "echo changed >> evaluate.py"], ws, ro_overlays=overlays)
    assert res.exit_code == 0 and "changed" in (ws / "evaluate.py").read_text()  # not prevented: recorded
    assert str(res.enforced["ro_overlays"]).startswith("not enforced") and str(res.enforced["uid"]).startswith(
        "not enforced"
    )


def test_pids_limit_hits_are_counted(bwrap: BwrapSandbox, ws: Path) -> None:
    if not _cgroup_v1_writable():
        pytest.fail("needs root and writable cgroups")
    code = "import os\nn = 0\nfor _ in range(40):\n    try:\n        os.fork() or os._exit(0)\n    except OSError:\n        n += 1\nprint(n)\n"
    sleepers = "import os, time\nfor _ in range(20):\n    try:\n        os.fork() or (time.sleep(3), os._exit(0))\n    except OSError:\n        pass\n"
    res, out, err = _run(bwrap, [PY, "-c", sleepers + code], ws, max_pids=8)
    assert res.exit_code == 0, err
    assert res.pids_limit_hits >= int(out) >= 40 and res.enforced["pids"] is True


@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_gpu_node_groups_are_kept_only_when_needed(tmp_path: Path) -> None:
    """A GPU node that is not world-accessible (mode 0660, group video) keeps its group for the
    sandbox uid; a world-accessible one (0666, the NVIDIA default) adds nothing."""
    import stat as st

    from posttrainbench.sandbox.bwrap import device_groups

    world, grouped, owner_only = tmp_path / "nvidia0", tmp_path / "nvidia1", tmp_path / "nvidia2"
    for node, mode in ((world, 0o666), (grouped, 0o660), (owner_only, 0o600)):
        os.mknod(node, st.S_IFCHR | mode, os.makedev(1, 3))
        os.chmod(node, mode)
        os.chown(node, 0, 44)
    nodes = [str(world), str(grouped), str(owner_only), str(tmp_path / "missing")]
    assert device_groups(nodes, 65534, 65534) == [44]
    assert device_groups([str(world)], 65534, 65534) == []
    assert device_groups([str(grouped)], 65534, 44) == []  # its primary group already
    sb = BwrapSandbox()
    argv = sb.setpriv_argv((65534, 65534), [])
    assert argv[1:] == [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


_NON_ROOT_HARNESS = r"""
import json, sys
from pathlib import Path
from posttrainbench.sandbox import BwrapSandbox, SandboxConfig
root = Path(sys.argv[1])
ws, pristine = root / "ws", root / "pristine.txt"
pristine.write_text("pristine\n")
(ws / "evaluate.py").write_text("pristine\n")
cfg = SandboxConfig(workspace=ws, ro_binds=[Path(sys.prefix)], env={"PATH": "/usr/bin:/bin"}, time_limit_s=30,
                    ro_overlays=[(pristine, ws / "evaluate.py")], memory_mb=256, max_pids=64)
script = "id -u; grep CapEff /proc/self/status; echo x >> evaluate.py || echo refused; touch made"
r = BwrapSandbox().run(["/bin/sh", "-c", script], cfg, stdout=root / "out", stderr=root / "err")
print(json.dumps({"exit": r.exit_code, "error": r.error, "enforced": r.enforced, "out": (root / "out").read_text()}))
"""


@pytest.mark.skipif(not ROOT, reason="needs root to start a non-root harness")
def test_non_root_harness_runs_the_agent_as_itself(tmp_path: Path) -> None:
    """A harness that is not root (here uid 65534, started with setpriv) keeps running the
    command as itself: no switch (it could not), overlays still read-only, and limits it cannot
    set (no cgroup delegated to it) recorded as not enforced, with the reason."""
    import shutil
    import subprocess
    import tempfile

    # this venv's interpreter may live under /root (0700): use the system one of the same version
    py = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/bin")
    if py is None:
        pytest.fail(f"no /usr/bin/python{sys.version_info.major}.{sys.version_info.minor} to run a non-root harness")
    root = Path(tempfile.mkdtemp(prefix="ptb-nonroot-"))
    try:
        (root / "ws").mkdir()
        for p in (root, root / "ws"):
            os.chown(p, 65534, 65534)
        src = Path(__file__).resolve().parents[1] / "src"
        site = next(Path(sys.prefix).glob("lib/python*/site-packages"))
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", py, "-c", _NON_ROOT_HARNESS, str(root)],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{src}:{site}", "HOME": str(root)},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["exit"] == 0 and res["error"] is None, res
        lines = res["out"].splitlines()
        assert lines[0] == "65534" and lines[1].split() == ["CapEff:", "0000000000000000"] and lines[2] == "refused"
        assert res["enforced"]["uid"] is True and res["enforced"]["ro_overlays"] is True
        for lim in ("memory", "pids"):  # enforced only where cgroups are delegated to that user
            assert res["enforced"][lim] is True or res["enforced"][lim].startswith("not enforced: cannot create"), res[
                "enforced"
            ]
        assert (root / "ws" / "made").stat().st_uid == 65534 and (
            root / "ws" / "evaluate.py"
        ).read_text() == "pristine\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    "message",
    [
        "bwrap: execvp agent: No such file or directory",
        "setpriv: failed to execute agent: No such file",
        "egress_bridge: cannot execute agent: x",
    ],
)
def test_a_started_command_cannot_pass_for_a_start_failure(bwrap: BwrapSandbox, ws: Path, message: str) -> None:
    """Printing a launcher's error and exiting 127 is the command's own outcome (a start failure
    would be retried as the harness's problem, re-rolling a bad run)."""
    res, _, err = _run(bwrap, ["/bin/sh", "-c", f"echo '{message}' >&2; exit 127"], ws)
    assert res.error is None and res.exit_code == 127
    assert message in err
