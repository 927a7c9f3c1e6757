"""The ``allowlist`` network policy: the logging egress proxy outside the real bwrap sandbox,
reached only through its unix socket and the in-sandbox forwarder."""

from __future__ import annotations

import http.server
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from posttrainbench.sandbox import BwrapSandbox, SandboxConfig
from posttrainbench.sandbox.egress import EgressProxy, host_allowed, split_host_port

PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two host HTTP servers: one to allow-list, one that must stay unreachable."""
    srvs = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello) for _ in range(2)]
    for s in srvs:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield srvs[0].server_address[1], srvs[1].server_address[1]
    for s in srvs:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def bwrap() -> BwrapSandbox:
    sb = BwrapSandbox()
    ok, reason = sb.available()
    assert ok, f"bwrap unavailable: {reason}"
    return sb


def test_allow_list_matching() -> None:
    allow = ["pypi.org", "*.hf.co", "api.example.com:443", "127.0.0.1:8080"]
    assert host_allowed("pypi.org", 443, allow) and host_allowed("PYPI.ORG.", 80, allow)
    assert host_allowed("cdn-lfs.hf.co", 443, allow) and host_allowed("hf.co", 443, allow)
    assert host_allowed("api.example.com", 443, allow) and not host_allowed("api.example.com", 80, allow)
    assert not host_allowed("evilpypi.org", 443, allow) and not host_allowed("pypi.org.evil.com", 443, allow)
    assert not host_allowed("127.0.0.1", 8081, allow) and host_allowed("127.0.0.1", 8080, allow)
    assert host_allowed("anything", 1, ["*"]) and not host_allowed("x", 1, [])
    assert split_host_port("[::1]:8080", 443) == ("::1", 8080) and split_host_port("a.b", 443) == ("a.b", 443)
    with pytest.raises(ValueError):
        split_host_port("host:99999", 443)


def test_config_needs_a_log_for_the_proxy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="egress_log"):
        SandboxConfig(workspace=tmp_path, time_limit_s=5, network="allowlist")
    with pytest.raises(ValueError, match="tunnels need the proxy"):
        SandboxConfig(workspace=tmp_path, time_limit_s=5, egress_tunnels={9000: "a:1"})


SCRIPT = """
import http.client, os, socket, sys
proxy_port = int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1])
def via_proxy(port, path):
    c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    c.request("GET", f"http://127.0.0.1:{port}{path}")
    r = c.getresponse()
    return r.status, r.read().decode()
def connect(port):
    c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    c.set_tunnel("127.0.0.1", port)
    try:
        c.request("GET", "/connect"); return c.getresponse().read().decode()
    except OSError as e:
        return f"refused: {e}"
ok, bad = int(sys.argv[1]), int(sys.argv[2])
print("allowed:", via_proxy(ok, "/a"))
print("denied:", via_proxy(bad, "/b"))
print("connect-allowed:", connect(ok))
print("connect-denied:", connect(bad))
c = http.client.HTTPConnection("127.0.0.1", 9001, timeout=10); c.request("GET", "/tunnel")
print("tunnel:", c.getresponse().read().decode())
try:
    socket.create_connection(("127.0.0.1", bad), timeout=3); print("direct: REACHED")
except OSError as e:
    print("direct: blocked", type(e).__name__)
"""


def test_proxy_allows_denies_tunnels_and_logs_from_inside_bwrap(
    bwrap: BwrapSandbox, servers: tuple[int, int], tmp_path: Path
) -> None:
    ok, bad = servers
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(SCRIPT)
    log = tmp_path / "run" / "egress.log"
    cfg = SandboxConfig(
        workspace=ws, ro_binds=PY_BINDS, network="allowlist", egress_allow=[f"127.0.0.1:{ok}"],
        egress_log=log, egress_tunnels={9001: f"127.0.0.1:{ok}"}, time_limit_s=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out, err = tmp_path / "out", tmp_path / "err"
    res = bwrap.run([sys.executable, "probe.py", str(ok), str(bad)], cfg, stdout=out, stderr=err)
    text = out.read_text()
    assert res.exit_code == 0, (text, err.read_text())
    assert "allowed: (200, 'hello /a')" in text
    assert "denied: (403," in text and "not on the allow-list" in text
    assert "connect-allowed: hello /connect" in text
    assert "connect-denied: refused" in text and "403" in text
    assert "tunnel: hello /tunnel" in text
    assert "direct: blocked" in text  # its own network namespace: the host port is not there
    assert res.enforced["egress"].startswith("allow-list proxy")
    lines = [ln.split("\t") for ln in log.read_text().splitlines()]
    decisions = [(d, m, t) for _, d, m, t, _ in lines]
    assert ("ALLOW", "GET", f"127.0.0.1:{ok}") in decisions
    assert ("DENY", "GET", f"127.0.0.1:{bad}") in decisions
    assert ("DENY", "CONNECT", f"127.0.0.1:{bad}") in decisions
    assert decisions.count(("ALLOW", "CONNECT", f"127.0.0.1:{ok}")) == 2  # CONNECT + tunnel


def test_no_allow_list_means_no_way_out(bwrap: BwrapSandbox, servers: tuple[int, int], tmp_path: Path) -> None:
    """Policy ``none`` without allowed targets: no proxy, no socket, no proxy variables."""
    ok, _ = servers
    ws = tmp_path / "ws"
    ws.mkdir()
    probe = (
        "import os, socket\n"
        "print(sorted(k for k in os.environ if 'PROXY' in k.upper()), os.path.exists('/run/ptb-egress'))\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {ok}), timeout=3); print('REACHED')\n"
        "except OSError:\n    print('blocked')\n"
    )
    cfg = SandboxConfig(workspace=ws, ro_binds=PY_BINDS, time_limit_s=30, env={"PATH": "/usr/bin:/bin"})
    out = tmp_path / "out"
    res = bwrap.run([sys.executable, "-c", probe], cfg, stdout=out, stderr=tmp_path / "err")
    assert res.exit_code == 0 and out.read_text().split("\n")[:2] == ["[] False", "blocked"]
    assert res.enforced["egress"] is True and res.enforced["net_ns"] is True


def test_proxy_rejects_malformed_requests(tmp_path: Path) -> None:
    log = tmp_path / "egress.log"
    with EgressProxy(["*"], log) as proxy:
        sock_dir = proxy.socket_dir
        for raw in (b"garbage\r\n\r\n", b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", b"CONNECT a:0 HTTP/1.1\r\n\r\n"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(proxy.socket_path))
            s.sendall(raw)
            assert s.recv(200).startswith(b"HTTP/1.1 400"), raw
            s.close()
    assert log.read_text().count("\tDENY\t") == 3
    assert not sock_dir.exists()  # the socket directory is removed on stop


def test_forwarder_reports_a_missing_command_as_start_failure(bwrap: BwrapSandbox, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    cfg = SandboxConfig(
        workspace=ws, ro_binds=PY_BINDS, network="allowlist", egress_allow=["pypi.org"],
        egress_log=tmp_path / "egress.log", time_limit_s=30, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    res = bwrap.run(["no-such-agent-cli"], cfg, stdout=tmp_path / "o", stderr=tmp_path / "e")
    assert res.exit_code is None and res.error and "cannot execute no-such-agent-cli" in res.error
