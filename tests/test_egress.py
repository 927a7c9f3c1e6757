"""The ``allowlist`` network policy: the logging egress proxy outside the real bwrap sandbox,
reached only through its unix socket and the in-sandbox forwarder."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from posttrainbench.sandbox import BwrapSandbox, SandboxConfig
from posttrainbench.sandbox.egress import (
    Authority,
    EgressProxy,
    host_allowed,
    is_public_address,
    parse_allow_entry,
    parse_authority,
)

PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
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
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
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
    assert host_allowed("pypi.org", 443, allow) and host_allowed("PYPI.ORG.", 443, allow)
    assert not host_allowed("pypi.org", 80, allow)  # a bare host is port 443 only
    assert host_allowed("cdn-lfs.hf.co", 443, allow) and not host_allowed("hf.co", 443, allow)  # apex not included
    assert host_allowed("api.example.com", 443, allow) and not host_allowed("api.example.com", 80, allow)
    assert not host_allowed("evilpypi.org", 443, allow) and not host_allowed("pypi.org.evil.com", 443, allow)
    assert not host_allowed("127.0.0.1", 8081, allow) and host_allowed("127.0.0.1", 8080, allow)
    assert host_allowed("anything", 1, ["*"]) and not host_allowed("x", 1, [])
    assert parse_authority("[::1]:8080", 443) == parse_authority("[0:0:0:0:0:0:0:1]:8080", None)
    assert parse_authority("a.b", 443) == Authority("a.b", 443)
    with pytest.raises(ValueError):
        parse_authority("host:99999", 443)


@pytest.mark.parametrize(
    "text",
    [
        "evil.com#.hf.co", "huggingface.co@evil.com", "user:pw@huggingface.co", "huggingface%2eco",
        "%68uggingface.co", "hugging face.co", "huggingface.co/", "huggingface.co\\x", "huggingface.co?x",
        "hüggingface.co", "a..b", ".a.b", "-a.b", "a-.b", "a_b.c", "a" * 64 + ".com", "x." * 127 + "com",
        "127.1", "2130706433", "0x7f.0.0.1", "127.000.0.1", "::1", "[::1", "[::1]x", "[fe80::1%eth0]",
        "[not-v6]", "a.b:", "a.b:+443", "a.b:0", "a.b:65536", "a.b:443:1", "a.b:0443x", "", " a.b", "a.b\r\n",
    ],
)  # fmt: skip
def test_authority_parser_refuses_attacker_input(text: str) -> None:
    with pytest.raises(ValueError):
        parse_authority(text, 443)


def test_authority_parser_normalises() -> None:
    assert parse_authority("HuggingFace.CO.", 443) == Authority("huggingface.co", 443)
    assert str(parse_authority("[::FFFF:127.0.0.1]:80", None)) == "[::ffff:7f00:1]:80"
    assert parse_authority("a" * 63 + ".com", 443).host == "a" * 63 + ".com"
    assert parse_authority("xn--bcher-kva.example:8443", None).port == 8443  # punycode is a name like any other
    with pytest.raises(ValueError, match="port is required"):
        parse_authority("a.b", None)


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("huggingface.co", 443, False), ("cdn-lfs.hf.co", 443, True), ("a.b.hf.co", 443, True),
        ("hf.co", 443, False), ("xhf.co", 443, False), ("hf.co.evil.com", 443, False), ("cdn-lfs.hf.co", 80, False),
        ("evil.com#.hf.co", 443, False), ("huggingface.co@evil.com", 443, False), ("xhuggingface.co", 443, False),
        ("pypi.org", 443, True), ("pypi.org", 8443, False), ("PyPI.Org.", 443, True), ("pypi.org..", 443, False),
        ("pypi%2eorg", 443, False), ("xn--pypi-xxa.org", 443, False), ("api.example.com", 8443, True),
        ("api.example.com", 443, False), ("::1", 9000, True), ("[::1]", 9000, True), ("0:0::1", 9000, True),
        ("::1", 9001, False), ("::ffff:127.0.0.1", 8080, False), ("127.0.0.1", 8080, True),
        ("localhost", 8080, False), ("localhost", 7000, True), ("sub.localhost", 7000, False),
        ("huggingface.co.", 443, False),
    ],
)  # fmt: skip
def test_exact_matching(host: str, port: int, allowed: bool) -> None:
    allow = ["*.hf.co", "pypi.org", "api.example.com:8443", "127.0.0.1:8080", "[::1]:9000", "localhost:7000"]
    assert host_allowed(host, port, allow) is allowed


@pytest.mark.parametrize(
    "entry", ["*.com", "*.1.2.3.4", "http://pypi.org", "pypi.org/", "a@b.c", "*pypi.org", "**.a.b", "pypi.org:x"]
)
def test_bad_allow_entries_are_refused(entry: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_allow_entry(entry)
    with pytest.raises(ValueError):  # a config with one fails at once, not by silently matching nothing
        SandboxConfig(
            workspace=tmp_path, time_limit_s=5, network="allowlist", egress_allow=[entry], egress_log=tmp_path / "l"
        )


@pytest.mark.parametrize(
    ("addr", "public"),
    [
        ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
        ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("::", False),
        ("fe80::1", False), ("fc00::1", False), ("::ffff:10.0.0.1", False), ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False), ("ff02::1", False),
    ],
)  # fmt: skip
def test_public_addresses(addr: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(addr)) is public


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
    assert str(res.enforced["egress"]).startswith("allow-list proxy")
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
    assert res.exit_code is None and res.error and "no-such-agent-cli: command not found" in res.error


class _KeepAlive(socketserver.BaseRequestHandler):
    """An origin that ignores ``Connection: close`` and answers every request it reads (like a
    shared virtual host): what a smuggled second request would reach. Records (Host, path)."""

    seen: list[tuple[str, str, str]]

    def handle(self) -> None:
        buf = b""
        self.request.settimeout(5)
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    data = self.request.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            n = int(hdrs.get("content-length", "0"))
            while len(buf) < n:
                buf += self.request.recv(4096)
            body, buf = buf[:n], buf[n:]
            self.seen.append((hdrs.get("host", ""), lines[0].split(" ")[1], body.decode()))
            out = f"{lines[0].split(' ')[1]} {body.decode()}".encode()
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))


@pytest.fixture
def keepalive() -> Iterator[tuple[int, list]]:
    seen: list = []
    handler = type("H", (_KeepAlive,), {"seen": seen})
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def _raw(proxy: EgressProxy, data: bytes) -> bytes:
    """Send ``data`` on one connection to the proxy socket; everything it answers until it closes."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(proxy.socket_path))
    s.sendall(data)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


def _log(path: Path) -> list[tuple[str, str, str, str]]:
    return [tuple(ln.split("\t")[1:5]) for ln in path.read_text().splitlines()]  # type: ignore[misc]  # 4 fields


def test_one_request_per_plain_http_connection(keepalive: tuple[int, list], tmp_path: Path) -> None:
    """A second request pipelined on the connection (to another Host, in origin or absolute form)
    never reaches the origin, even one that ignores ``Connection: close``."""
    port, seen = keepalive
    log = tmp_path / "egress.log"
    first = f"POST http://127.0.0.1:{port}/a HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n\r\nhello"
    for second in (
        "GET /secret HTTP/1.1\r\nHost: internal.example\r\n\r\n",
        f"GET http://127.0.0.1:{port}/again HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
    ):
        with EgressProxy([f"127.0.0.1:{port}"], log) as proxy:
            out = _raw(proxy, (first + second).encode())
        assert out.count(b"HTTP/1.1 200") == 1 and out.endswith(b"/a hello"), out
    assert seen == [(f"127.0.0.1:{port}", "/a", "hello")] * 2  # the body exactly, nothing after it
    assert _log(log).count(("ALLOW", "POST", f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/a")) == 2


@pytest.mark.parametrize(
    ("request_", "status", "reason"),
    [
        ("GET http://{ok}/ HTTP/1.1\r\nHost: internal.example\r\n\r\n", 400, "does not match the target"),
        ("GET http://{ok}/ HTTP/1.1\r\nHost: {ok}\r\nHost: x.example\r\n\r\n", 400, "several Host headers"),
        ("POST http://{ok}/ HTTP/1.1\r\nHost: {ok}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "Content-Length"),
        ("POST http://{ok}/ HTTP/1.1\r\nHost: {ok}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "Content-Length"),
        ("GET http://{ok}/ HTTP/1.1\r\nHost: {ok}\r\n X-Folded: yes\r\n\r\n", 400, "malformed header"),
        ("GET http://evil.com#.hf.co/ HTTP/1.1\r\nHost: evil.com\r\n\r\n", 400, "fragment"),
        ("GET http://cdn.hf.co@evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n", 400, "bad target"),
        ("GET http://cdn.hf.co%2eevil.com/ HTTP/1.1\r\n\r\n", 400, "bad target"),
        ("CONNECT cdn.hf.co.evil.com:443 HTTP/1.1\r\n\r\n", 403, "not on the allow-list"),
        ("CONNECT xhf.co:443 HTTP/1.1\r\n\r\n", 403, "not on the allow-list"),
        ("CONNECT cdn.hf.co:80 HTTP/1.1\r\n\r\n", 403, "not on the allow-list"),
        ("CONNECT cdn.hf.co HTTP/1.1\r\n\r\n", 400, "port is required"),
        ("CONNECT [::1]:{okp} HTTP/1.1\r\n\r\n", 403, "not on the allow-list"),
    ],
)  # fmt: skip
def test_proxy_refuses_smuggling_and_lookalike_targets(
    keepalive: tuple[int, list], tmp_path: Path, request_: str, status: int, reason: str
) -> None:
    port, seen = keepalive
    log = tmp_path / "egress.log"
    with EgressProxy([f"127.0.0.1:{port}", "*.hf.co"], log) as proxy:
        out = _raw(proxy, request_.replace("{ok}", f"127.0.0.1:{port}").replace("{okp}", str(port)).encode())
    assert out.startswith(b"HTTP/1.1 %d" % status), out
    assert reason.encode() in out
    lines = _log(log)
    assert len(lines) == 1 and lines[0][0] == "DENY" and reason in lines[0][3], lines
    assert seen == []  # nothing reached the origin


def test_names_resolving_to_local_addresses_are_refused(servers: tuple[int, int], tmp_path: Path) -> None:
    """``localhost`` resolves to 127.0.0.1: reachable only through an entry that says ``localhost``
    (or the IP literal); a name matched otherwise (here by ``*``) must resolve to public addresses."""
    ok, _ = servers
    log = tmp_path / "egress.log"
    get = f"GET http://localhost:{ok}/x HTTP/1.1\r\nHost: localhost:{ok}\r\n\r\n".encode()
    connect = f"CONNECT localhost:{ok} HTTP/1.1\r\n\r\n".encode()
    with EgressProxy(["*"], log) as proxy:
        for raw in (get, connect):
            out = _raw(proxy, raw)
            assert out.startswith(b"HTTP/1.1 403") and b"resolves to 127.0.0.1, not a public address" in out, out
    with EgressProxy([f"localhost:{ok}"], log) as proxy:
        assert _raw(proxy, get).endswith(b"hello /x")
    lines = _log(log)
    assert [d for d, *_ in lines] == ["DENY", "DENY", "ALLOW"], lines
    assert lines[0][2] == f"localhost:{ok}" and "127.0.0.1" in lines[0][3]
