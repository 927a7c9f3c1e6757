"""The docker backend against a real Docker daemon.

The daemon is the one ``DOCKER_HOST`` (or the default socket) names; when none answers and we
are root with ``dockerd`` installed (Debian ``docker.io``, installed by scripts/setup.sh), a
private daemon is started for this module (``--bridge=none --iptables=false``, state in a
temp dir) and stopped afterwards. When neither works the tests FAIL with the reason — a
missing daemon is never a pass.
"""

from __future__ import annotations

import itertools
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posttrainbench.sandbox import SandboxConfig, get_sandbox
from posttrainbench.sandbox.apptainer import ApptainerSandbox
from posttrainbench.sandbox.docker import DockerSandbox, PrivateDockerd

PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})


@pytest.fixture(scope="module")
def docker_sb() -> Iterator[DockerSandbox]:
    sb = DockerSandbox()
    ok, reason = sb.available()
    if ok:
        yield sb
        return
    why = PrivateDockerd.why_not()
    if why:
        pytest.fail(f"docker backend cannot be tested here: {reason}; {why}")
    with PrivateDockerd() as daemon:
        sb = DockerSandbox(base_url=daemon.base_url)
        ok, reason = sb.available()
        assert ok, reason
        yield sb


def _run(sb: DockerSandbox, argv: list[str], tmp_path: Path, stdin: Path | None = None, **cfg: Any):
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    cfg.setdefault("time_limit_s", 60)
    cfg.setdefault("kill_grace_s", 1)
    cfg.setdefault("env", {"PATH": "/usr/bin:/bin", "FOO": "bar"})
    config = SandboxConfig(workspace=ws, ro_binds=PY_BINDS, **cfg)
    out, err = tmp_path / "out", tmp_path / "err"
    res = sb.run(argv, config, stdin=stdin, stdout=out, stderr=err)
    return res, out.read_text(errors="replace"), err.read_text(errors="replace")


def test_runs_with_stdin_env_exit_code_and_readonly_system(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the task prompt\n")
    script = 'cat; echo "FOO=$FOO"; echo oops >&2; touch /usr/evil 2>/dev/null && echo WROTE; touch made; exit 7'
    res, out, err = _run(docker_sb, ["bash", "-c", script], tmp_path, stdin=prompt)
    assert res.exit_code == 7 and res.error is None, (res, err)
    assert out.splitlines() == ["the task prompt", "FOO=bar"] and err.strip() == "oops"
    assert (tmp_path / "ws" / "made").is_file()
    assert res.enforced["net_ns"] is True and res.enforced["seccomp"] == "docker default profile"


def test_host_is_invisible_and_network_none(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "harness-secret.txt"
    secret.write_text("judge key")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        probe = (
            f"import os, socket\nprint(os.path.exists({str(secret)!r}))\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('REACHED')\n"
            "except OSError:\n    print('blocked')\n"
        )
        res, out, err = _run(docker_sb, [sys.executable, "-c", probe], tmp_path)
    assert res.exit_code == 0, err
    assert out.split() == ["False", "blocked"]


def test_time_limit_kills_the_container(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    res, _, _ = _run(
        docker_sb, ["bash", "-c", "trap '' TERM; (setsid sleep 1000 &); sleep 1000"], tmp_path, time_limit_s=2
    )
    assert res.timed_out and res.exit_code is None and res.duration_s < 20
    leftovers = [c for c in docker_sb.client().containers.list(all=True) if c.labels.get("posttrainbench")]
    assert leftovers == []  # the container (and its whole PID namespace) is gone


def test_output_cap_and_memory_limit(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    res, out, _ = _run(docker_sb, ["bash", "-c", "exec yes"], tmp_path, max_output_mb=1)
    assert res.limit_exceeded and "output cap" in res.limit_exceeded and len(out) < 2 * 2**20
    grab = "x = bytearray(400 * 2**20); print('survived')"
    mem_dir = tmp_path / "m"
    mem_dir.mkdir()
    res, out, _ = _run(docker_sb, [sys.executable, "-c", grab], mem_dir, memory_mb=100)
    assert "survived" not in out and res.exit_code not in (0, None)
    assert res.oom_killed and res.enforced["memory"] is True


def test_container_runs_unprivileged_with_read_only_harness_files(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    """As root, the container runs as the sandbox uid (65534): no /etc/shadow, no capability;
    ``ro_overlays`` are read-only mounts over the workspace copies."""
    import os

    pristine = tmp_path / "harness"
    pristine.mkdir()
    (pristine / "evaluate.py").write_text("pristine\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "evaluate.py").write_text("pristine\n")
    script = (
        "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
        "cat /etc/shadow >/dev/null 2>&1 && echo SHADOW=read || echo SHADOW=denied; "
        "for a in 'echo x >> evaluate.py' 'mv evaluate.py m.py' 'rm -f evaluate.py' 'chmod 777 evaluate.py'; do "
        'sh -c "$a" 2>/dev/null && echo "SUCCEEDED $a"; done; touch made; cat evaluate.py'
    )
    res, out, err = _run(
        docker_sb, ["bash", "-c", script], tmp_path, ro_overlays=[(pristine / "evaluate.py", ws / "evaluate.py")]
    )
    assert res.exit_code == 0, (res, err)
    lines = out.splitlines()
    expect_uid = "65534" if os.geteuid() == 0 else str(os.geteuid())
    assert lines[0] == expect_uid and "SUCCEEDED" not in out and "SHADOW=denied" in out, out
    status = dict(line.split(":\t") for line in lines[1:4])
    assert status["CapEff"] == "0000000000000000" and status["NoNewPrivs"] == "1"
    assert lines[-1] == "pristine" and (ws / "made").stat().st_uid == int(expect_uid)
    assert (ws / "evaluate.py").read_text() == "pristine\n" and res.enforced["ro_overlays"] is True


def test_egress_proxy_from_a_container(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    probe = (
        "import os, urllib.request\n"
        "try:\n    urllib.request.urlopen('http://example.com/', timeout=10); print('REACHED')\n"
        "except Exception as e:\n    print('denied', e)\n"
    )
    log = tmp_path / "egress.log"
    res, out, err = _run(
        docker_sb,
        [sys.executable, "-c", probe],
        tmp_path,
        network="allowlist",
        egress_allow=["pypi.org"],
        egress_log=log,
    )
    assert res.exit_code == 0, err
    assert "denied HTTP Error 403" in out
    assert "DENY\tGET\texample.com:80" in log.read_text()


def test_missing_command_and_absent_daemon_are_start_failures(docker_sb: DockerSandbox, tmp_path: Path) -> None:
    res, _, _ = _run(docker_sb, ["no-such-agent"], tmp_path)
    assert res.exit_code is None and "no-such-agent: command not found" in (res.error or "")
    # once started, a command's exit code is its own, whatever it prints
    res, _, _ = _run(docker_sb, ["/bin/sh", "-c", "echo 'ptb-io: 1: exec: agent: not found' >&2; exit 127"], tmp_path)
    assert res.error is None and res.exit_code == 127
    nowhere = DockerSandbox(base_url=f"unix://{tmp_path}/absent.sock")
    ok, reason = nowhere.available()
    assert not ok and "no Docker daemon answers" in reason
    res, _, _ = _run(nowhere, ["true"], tmp_path)
    assert res.error and res.error.startswith("failed to start: no Docker daemon answers")


def test_get_sandbox_knows_every_backend() -> None:
    assert [get_sandbox(k).name for k in ("bwrap", "docker", "apptainer", "none")] == [
        "bwrap",
        "docker",
        "apptainer",
        "none",
    ]


def test_apptainer_command_construction(tmp_path: Path) -> None:
    ws, model, masked = tmp_path / "ws", tmp_path / "model", tmp_path / "resources"
    for d in (ws, model, masked):
        d.mkdir()
    sb = ApptainerSandbox(image="/images/ptb.sif", apptainer="/usr/bin/apptainer")
    cfg = SandboxConfig(
        workspace=ws, ro_binds=[model], masked=[masked], env={"PATH": "/usr/bin", "K": "v w"}, time_limit_s=10, gpus=[1]
    )
    a = sb.build_argv(["claude", "--print"], cfg, empty_dir=Path("/e/dir"), empty_file=Path("/e/file"))
    assert a[:8] == [
        "/usr/bin/apptainer",
        "exec",
        "--containall",
        "--pid",
        "--ipc",
        "--cleanenv",
        "--no-home",
        "--no-privs",
    ]
    assert a[8:11] == ["--net", "--network", "none"] and "--nv" in a
    pairs = list(itertools.pairwise(a))
    assert ("--env", "K=v w") in pairs and ("--env", "CUDA_VISIBLE_DEVICES=1") in pairs
    assert ("--bind", f"{model}:{model}:ro") in pairs and ("--bind", f"{ws}:{ws}:rw") in pairs
    assert ("--bind", f"/e/dir:{masked}:ro") in pairs
    assert a[-5:] == ["--pwd", str(ws), "/images/ptb.sif", "claude", "--print"]
    assert "--security" not in a
    # a root harness: the sandbox uid/gid; harness files read-only over the workspace, after it
    (ws / "task").mkdir()
    over = cfg.model_copy(update={"ro_overlays": [(model, ws / "task")]})
    c = sb.build_argv(["x"], over, identity=(65534, 65534))
    assert ("--security", "uid:65534,gid:65534") in list(itertools.pairwise(c))
    binds = [c[i + 1] for i, v in enumerate(c) if v == "--bind"]
    assert binds.index(f"{model}:{ws / 'task'}:ro") > binds.index(f"{ws}:{ws}:rw")
    open_cfg = cfg.model_copy(update={"network": "open", "gpus": []})
    b = sb.build_argv(["x"], open_cfg)
    assert "--net" not in b and "--nv" not in b
    # Not installed here (apptainer is not in Debian): a clear start failure, never a crash.
    res = ApptainerSandbox(image="x.sif", apptainer=str(tmp_path / "no-apptainer")).run(
        ["true"], cfg.model_copy(update={"gpus": []}), stdout=tmp_path / "o", stderr=tmp_path / "e"
    )
    assert res.exit_code is None and "apptainer not found" in (res.error or "")
