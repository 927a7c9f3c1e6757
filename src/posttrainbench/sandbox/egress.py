"""Egress for the ``allowlist`` network policy: a logging HTTP/CONNECT proxy outside the sandbox.

The sandbox has its own network namespace (loopback only). The only way out is a unix socket
of :class:`EgressProxy`, bind-mounted into the sandbox at :data:`SANDBOX_SOCKET_DIR`. Inside, a
tiny forwarder (:mod:`posttrainbench.sandbox.egress_bridge`, stdlib only) listens on loopback
TCP ports and relays every connection to that socket, so ordinary clients work:

- ``HTTP(S)_PROXY=http://127.0.0.1:<proxy_port>``: the client speaks the HTTP proxy protocol
  (``CONNECT host:443`` for HTTPS, absolute-URI requests for plain HTTP) to the proxy;
- *tunnels* ``127.0.0.1:<local> -> host:port``: each connection is sent as ``CONNECT host:port``
  by the forwarder itself, for clients that take a base URL (e.g. ``ANTHROPIC_BASE_URL``)
  pointing at a fixed API endpoint;
- the *hub gateway* (:mod:`posttrainbench.sandbox.hub_gateway`, when the config has one): a
  tunnel to the reserved target :data:`~posttrainbench.sandbox.hub_gateway.GATEWAY_AUTHORITY`,
  which the proxy serves itself, in-process (no TCP port on the host). ``HF_ENDPOINT`` points at
  that tunnel; the model/dataset hub is reachable only this way.

Every target is parsed strictly (:func:`parse_authority`: no userinfo, no percent-escapes, only
hostname characters, labels of 1-63 characters, IPv6 literals in brackets; lower-cased, a
trailing dot dropped) and matched exactly against the allow-list (:func:`match_allow`):

- ``host``: that host, port 443 only; ``host:port``: that port only;
- ``*.domain[:port]``: strict sub-domains of ``domain`` at a label boundary; **the apex
  ``domain`` itself is not included** (list it on its own);
- ``[v6]``/``a.b.c.d`` (``:port``): that address literal; an IP literal target matches only an
  entry with the same address;
- ``*``: everything (tests only).

A DNS name is resolved once by the proxy; every address must be public (not loopback, private,
link-local, shared, multicast, reserved ...), else the request is refused, unless the entry that
allows it is an IP literal or ``localhost`` (the explicit way to reach a local service, e.g. a
local API gateway or a test server). The proxy connects to exactly the address it checked. A
plain-HTTP request must carry a ``Host`` equal to its target authority; it is forwarded alone
(``Connection: close``, no chunked request body) and the connection ends with its response, so a
second request cannot ride on it to another virtual host. A ``CONNECT`` opens one tunnel.

Every request, allowed or denied, gets one line in the log
(``<utc time>\\tALLOW|DENY\\t<method>\\t<host:port>\\t<detail>``; a denial's detail says why). A
denied request gets ``403`` (``400`` when malformed).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import select
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.egress_bridge import relay

if TYPE_CHECKING:
    from posttrainbench.sandbox.base import SandboxConfig
    from posttrainbench.sandbox.hub_gateway import HubGateway

#: Inside the sandbox the proxy socket appears at this fixed path.
SANDBOX_SOCKET_DIR = Path("/run/ptb-egress")
SOCKET_NAME = "proxy.sock"
#: Loopback port of the in-sandbox forwarder that speaks to the proxy (``HTTP(S)_PROXY``).
DEFAULT_PROXY_PORT = 3128

#: Hosts the ``allowlist`` policy allows by default: the package index. The model/dataset hub
#: is not on it: it is reached only through the hub gateway (``HF_ENDPOINT``).
DEFAULT_ALLOW: tuple[str, ...] = ("pypi.org", "files.pythonhosted.org")

_MAX_HEADER = 64 * 1024
_CONNECT_TIMEOUT_S = 15.0
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Authority:
    """A parsed ``host:port``: ``host`` lower-case without trailing dot, IPv6 without brackets."""

    host: str
    port: int
    ip: IPAddress | None = None

    def __str__(self) -> str:
        return (
            f"[{self.host}]:{self.port}" if self.ip is not None and self.ip.version == 6 else f"{self.host}:{self.port}"
        )


def _parse_host(host: str) -> tuple[str, IPAddress | None]:
    """Strict host syntax: a bracketed IPv6 literal, a dotted-quad IPv4, or a DNS name."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("unterminated IPv6 literal")
        try:
            ip6 = ipaddress.IPv6Address(host[1:-1])  # rejects zone ids ('%')
        except ValueError as e:
            raise ValueError(f"bad IPv6 literal: {e}") from None
        return str(ip6), ip6
    if host.endswith("."):
        host = host[:-1]  # the root label: 'a.b.' is 'a.b'
    host = host.lower()
    if not host or len(host) > 253:
        raise ValueError("empty or over-long host name")
    labels = host.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(f"invalid host label {label!r}")
    if labels[-1].isdigit():
        # An all-numeric last label is an IPv4 address or nothing (no '127.1', no '2130706433').
        try:
            ip4 = ipaddress.IPv4Address(host)  # no leading zeros, four parts
        except ValueError:
            raise ValueError(f"{host!r} is neither a host name nor a dotted-quad IPv4 address") from None
        return str(ip4), ip4
    return host, None


def parse_authority(text: str, default_port: int | None) -> Authority:
    """Parse ``host[:port]`` strictly; ``default_port`` None: the port is required.

    Raises ValueError (with the reason) on userinfo, percent-escapes, characters outside
    hostname syntax, empty or over-long labels, bad IP literals and bad ports."""
    if not text or text != text.strip() or any(c in text for c in "@%/\\?# \t"):
        raise ValueError(f"bad authority {text[:100]!r}: userinfo, escapes, paths and spaces are not allowed")
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"bad authority {text[:100]!r}: non-ASCII (use the punycode xn-- form)")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unterminated IPv6 literal")
        host_part, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"garbage after IPv6 literal: {rest[:20]!r}")
        port_part = rest[1:] if rest else None
    elif ":" in text:
        host_part, _, port_part = text.partition(":")
        if ":" in port_part:
            raise ValueError("an IPv6 literal must be in brackets")
    else:
        host_part, port_part = text, None
    if port_part is None:
        if default_port is None:
            raise ValueError("a port is required")
        port = default_port
    else:
        if not port_part.isdigit() or len(port_part) > 5:
            raise ValueError(f"bad port {port_part[:10]!r}")
        port = int(port_part)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    host, ip = _parse_host(host_part)
    return Authority(host, port, ip)


@dataclass(frozen=True)
class AllowEntry:
    """One parsed allow-list entry (see the module docstring for the syntax)."""

    raw: str
    host: str = ""  # '' for '*'; the domain (without '*.') for a wildcard
    port: int | None = 443  # None: any port ('*' only)
    wildcard: bool = False
    ip: IPAddress | None = None

    @property
    def anything(self) -> bool:
        return self.host == ""

    @property
    def local_ok(self) -> bool:
        """Whether this entry may reach non-public addresses: an IP literal or ``localhost``."""
        return self.ip is not None or (self.host == "localhost" and not self.wildcard)

    def matches(self, target: Authority) -> bool:
        if self.anything:
            return True
        if self.port != target.port:
            return False
        if self.ip is not None or target.ip is not None:
            return self.ip is not None and self.ip == target.ip
        if self.wildcard:
            return target.host.endswith("." + self.host)
        return target.host == self.host


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse an allow-list entry; raises ValueError for one that is not exact syntax."""
    raw = text
    text = text.strip()
    if text == "*":
        return AllowEntry(raw=raw, host="", port=None)
    wildcard = text.startswith("*.")
    a = parse_authority(text[2:] if wildcard else text, 443)
    if wildcard and (a.ip is not None or "." not in a.host):
        raise ValueError(f"allow entry {raw!r}: a wildcard needs a domain with at least two labels")
    return AllowEntry(raw=raw, host=a.host, port=a.port, wildcard=wildcard, ip=a.ip)


def parse_allow_list(allow: Iterable[str]) -> list[AllowEntry]:
    """Parse every entry (ValueError names the first bad one)."""
    return [parse_allow_entry(e) for e in allow]


def match_allow(target: Authority, allow: Iterable[AllowEntry]) -> list[AllowEntry]:
    """The entries that allow ``target`` (empty: not allowed)."""
    return [e for e in allow if e.matches(target)]


def host_allowed(host: str, port: int, allow: Iterable[str]) -> bool:
    """Whether ``host:port`` is on the allow-list (names only: addresses are checked on connect).

    ``host`` is parsed like a request's authority (IPv6 with or without brackets); anything that
    does not parse is not allowed."""
    try:
        h = f"[{host}]" if ":" in host and not host.startswith("[") else host
        target = parse_authority(f"{h}:{port}", None)
        entries = parse_allow_list(allow)
    except ValueError:
        return False
    return bool(match_allow(target, entries))


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address (an IPv4-mapped or 6to4 IPv6
    address is judged by the IPv4 address inside)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            return is_public_address(inner)
        if ip.teredo is not None:
            return False
    return ip.is_global and not ip.is_multicast


def resolve_checked(target: Authority, entries: list[AllowEntry]) -> list[tuple[int, tuple]]:
    """Resolve ``target`` once: ``[(family, sockaddr)]`` to connect to, in order.

    Raises PermissionError (the reason) when an address is not public and no entry of
    ``entries`` (those that allowed the target) is an IP literal or ``localhost``; OSError when
    the name does not resolve."""
    local_ok = any(e.local_ok for e in entries)
    if target.ip is not None:
        addrs: list[tuple[int, tuple]] = [
            (socket.AF_INET6 if target.ip.version == 6 else socket.AF_INET, (str(target.ip), target.port))
        ]
    else:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        addrs = list(dict.fromkeys((fam, sa[:2] if fam == socket.AF_INET else sa) for fam, _, _, _, sa in infos))
        if not addrs:
            raise OSError(f"{target.host} has no address")
    if not local_ok:
        for _, sa in addrs:
            ip = ipaddress.ip_address(sa[0].split("%")[0])
            if not is_public_address(ip):
                raise PermissionError(f"{target.host} resolves to {ip}, not a public address")
    return addrs


def connect_checked(addrs: list[tuple[int, tuple]], timeout: float = _CONNECT_TIMEOUT_S) -> socket.socket:
    """Connect to the first address of ``addrs`` that answers (exactly those: no new lookup)."""
    last: OSError | None = None
    for fam, sa in addrs:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(sa)
            return s
        except OSError as e:
            s.close()
            last = e
    raise last or OSError("no address")


class BadRequest(ValueError):
    """A request the proxy refuses to interpret (answered 400, or ``status``)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Request:
    """A parsed request head: request line, headers in order, bytes already read past the head."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    rest: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


def read_request(sock: socket.socket, limit: int = _MAX_HEADER) -> Request | None:
    """Read and strictly parse one request head (None: the client sent nothing)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            if not head:
                return None
            raise BadRequest("connection closed inside the request head")
        head += chunk
        if len(head) > limit and b"\r\n\r\n" not in head[: limit + 4]:
            raise BadRequest("request header too large", 431)
    raw, _, rest = head.partition(b"\r\n\r\n")
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper() or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(f"malformed request line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for ln in lines[1:]:
        name, sep, value = ln.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name) or any((c < " " and c != "\t") or c == "\x7f" for c in value):
            raise BadRequest(f"malformed header line {ln[:80]!r}")  # also obs-fold (leading space)
        headers.append((name, value.strip(" \t")))
    return Request(parts[0], parts[1], parts[2], headers, rest)


#: Hop-by-hop headers: never forwarded (``Connection: close`` is set instead).
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
        "te", "trailer", "transfer-encoding", "upgrade"}  # fmt: skip


def _origin_request(req: Request, target: Authority) -> tuple[bytes, int]:
    """The request re-written for the origin (origin-form, one request, ``Connection: close``)
    and its body length. Raises BadRequest for what could carry a second request or another host."""
    url = req.target
    path = url[len("http://") :]
    cut = min((i for i in (path.find("/"), path.find("?")) if i >= 0), default=len(path))
    path = path[cut:] or "/"
    if path.startswith("?"):
        path = "/" + path
    hosts = req.header("host")
    if len(hosts) > 1:
        raise BadRequest("several Host headers")
    if hosts:
        try:
            h = parse_authority(hosts[0], 80)
        except ValueError as e:
            raise BadRequest(f"bad Host header: {e}") from None
        if (h.host, h.port) != (target.host, target.port):
            raise BadRequest(f"Host header {hosts[0][:100]!r} does not match the target {target}")
    if req.header("transfer-encoding"):
        raise BadRequest("request bodies must have a Content-Length (no Transfer-Encoding)", 411)
    lengths = req.header("content-length")
    if len(set(lengths)) > 1 or any(not v.isdigit() for v in lengths):
        raise BadRequest("bad or conflicting Content-Length")
    length = int(lengths[0]) if lengths else 0
    named_hop = {t.strip().lower() for v in req.header("connection") for t in v.split(",")}
    kept = [
        f"{k}: {v}" for k, v in req.headers
        if k.lower() not in _HOP and k.lower() not in named_hop and k.lower() != "host"
    ]  # fmt: skip
    host_value = target.host if target.ip is None or target.ip.version == 4 else f"[{target.host}]"
    if target.port != 80:
        host_value += f":{target.port}"
    head = "\r\n".join([f"{req.method} {path} {req.version}", f"Host: {host_value}", *kept, "Connection: close"])
    return (head + "\r\n\r\n").encode("latin-1"), length


def _response_body_length(head: bytes, head_request: bool) -> int | None:
    """Body length of a response head: 0 (none), N (Content-Length) or None (until close)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if head_request or code in (204, 304) or 100 <= code < 200:
        return 0
    hdrs = [ln.partition(":") for ln in lines[1:]]
    if any(k.strip().lower() == "transfer-encoding" for k, _, _ in hdrs):
        return None
    lengths = {v.strip() for k, _, v in hdrs if k.strip().lower() == "content-length"}
    return int(lengths.pop()) if len(lengths) == 1 and next(iter(lengths)).isdigit() else None


def _relay_one_exchange(
    client: socket.socket, upstream: socket.socket, body: bytes, length: int, *, head_request: bool
) -> None:
    """Send the request body (exactly ``length`` bytes: ``body`` then the rest from the client)
    and copy one response back: up to its end by ``Content-Length`` (else until the origin
    closes). Client bytes past the body and origin bytes past the response are dropped."""
    body, remaining = body[:length], length - min(len(body), length)
    if body:
        upstream.sendall(body)
    head, resp_left = b"", -1  # -1: still reading a response head
    while True:
        watch = [upstream, client] if remaining else [upstream]
        readable, _, _ = select.select(watch, [], [], 300)
        if not readable:
            return
        if client in readable:
            data = client.recv(min(65536, remaining))
            if not data:
                return
            upstream.sendall(data)
            remaining -= len(data)
        if upstream not in readable:
            continue
        data = upstream.recv(65536)
        if not data:
            return
        while data:
            if resp_left == -1:
                head += data
                if b"\r\n\r\n" not in head:
                    if len(head) > _MAX_HEADER:
                        return
                    break
                h, _, data = head.partition(b"\r\n\r\n")
                head = b""
                client.sendall(h + b"\r\n\r\n")
                n = _response_body_length(h, head_request)
                interim = h[9:10] == b"1"  # '100 Continue' and the like: a final head follows
                resp_left = -1 if interim else (n if n is not None else -2)
                if resp_left == 0:
                    return
            elif resp_left == -2:  # delimited by close
                client.sendall(data)
                data = b""
            else:
                piece, data = data[:resp_left], data[resp_left:]
                client.sendall(piece)
                resp_left -= len(piece)
                if resp_left == 0:
                    return


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(60)
        proxy = self.server.proxy
        try:
            req = read_request(client)
        except BadRequest as e:
            proxy.log("DENY", "?", "?", str(e))
            self._reply(client, e.status, str(e))
            return
        except OSError:
            return
        if req is None:
            return
        method = req.method
        try:
            if method == "CONNECT":
                target = parse_authority(req.target, None)
            else:
                if not req.target.lower().startswith("http://"):
                    raise BadRequest("only absolute http:// URIs (use CONNECT for https)")
                if "#" in req.target:
                    raise BadRequest("a request target has no fragment")
                rest = req.target[len("http://") :]
                cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
                target = parse_authority(rest[:cut], 80)
        except ValueError as e:
            proxy.log("DENY", method, req.target[:200], f"bad target: {e}")
            self._reply(client, 400, f"bad target: {e}")
            return
        gateway = proxy.gateway
        if method == "CONNECT" and gateway is not None and str(target) == gateway.authority:
            proxy.log("ALLOW", method, str(target), "hub gateway")
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                client.settimeout(None)
                gateway.serve(client, req.rest)
            return
        entries = match_allow(target, proxy.entries)
        if not entries:
            proxy.log("DENY", method, str(target), "not on the allow-list")
            self._reply(client, 403, f"ptb egress proxy: {target} is not on the allow-list")
            return
        origin_head, length = b"", 0
        if method != "CONNECT":
            try:
                origin_head, length = _origin_request(req, target)
            except BadRequest as e:
                proxy.log("DENY", method, str(target), str(e))
                self._reply(client, e.status, f"ptb egress proxy: {e}")
                return
        try:
            addrs = resolve_checked(target, entries)
        except PermissionError as e:
            proxy.log("DENY", method, str(target), str(e))
            self._reply(client, 403, f"ptb egress proxy: {e}")
            return
        except OSError as e:
            proxy.log("ALLOW", method, str(target), f"does not resolve: {e}")
            self._reply(client, 502, f"ptb egress proxy: {target.host} does not resolve: {e}")
            return
        try:
            upstream = connect_checked(addrs)
        except OSError as e:
            proxy.log("ALLOW", method, str(target), f"upstream unreachable: {e}")
            self._reply(client, 502, f"upstream unreachable: {e}")
            return
        proxy.log("ALLOW", method, str(target), "" if method == "CONNECT" else req.target[:300])
        with upstream:
            upstream.settimeout(None)
            client.settimeout(None)
            try:
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if req.rest:
                        upstream.sendall(req.rest)
                    relay(client, upstream, idle_s=300, close=False)
                else:
                    upstream.sendall(origin_head)
                    _relay_one_exchange(client, upstream, req.rest, length, head_request=method == "HEAD")
            except OSError:
                return

    @staticmethod
    def _reply(client: socket.socket, code: int, text: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 411: "Length Required", 431: "Too Large",
                  502: "Bad Gateway"}.get(code, "Error")  # fmt: skip
        body = (text + "\n").encode()
        with contextlib.suppress(OSError):
            client.sendall(
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    proxy: EgressProxy


class EgressProxy:
    """The allow-list proxy on a unix socket; use as a context manager (starts a thread).

    ``log_path``: the run folder's egress log (appended to; one line per request).
    The socket lives in a fresh private directory outside any workspace (``socket_dir``), which
    backends bind into the sandbox at :data:`SANDBOX_SOCKET_DIR`. ``gateway``: the hub gateway
    served on ``CONNECT`` to its reserved authority (None: no hub access).
    Raises ValueError for an allow-list entry that is not exact syntax.
    """

    def __init__(
        self, allow: list[str] | tuple[str, ...], log_path: Path, *, gateway: HubGateway | None = None
    ) -> None:
        self.allow = list(allow)
        self.entries = parse_allow_list(self.allow)
        self.log_path = Path(log_path)
        self.gateway = gateway
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def socket_dir(self) -> Path:
        """Host directory holding the socket (only valid while started)."""
        if self._dir is None:
            raise RuntimeError("egress proxy not started")
        return self._dir

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def log(self, decision: str, method: str, target: str, detail: str = "") -> None:
        """Append one line to the egress log (never raises)."""
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        # Fields may hold what the client sent: no tab or line break survives inside one.
        fields = (
            "".join(c if c.isprintable() else " " for c in str(f)) for f in (ts, decision, method, target, detail)
        )
        line = "\t".join(fields) + "\n"
        with self._lock, contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line)

    def start(self) -> EgressProxy:
        """Bind the socket and serve in a background thread."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        # Short path: unix socket paths are limited to 107 bytes.
        self._dir = Path(tempfile.mkdtemp(prefix="ptb-egress-"))
        os.chmod(self._dir, 0o755)
        self._server = _Server(str(self.socket_path), _Handler)
        self._server.proxy = self
        os.chmod(self.socket_path, 0o666)
        # A short poll interval: stop() waits for the serving loop's next wake-up.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ptb-egress", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the socket directory (never raises)."""
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.shutdown()
                self._server.server_close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._server = self._thread = None
        self._dir = None

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bridge_script() -> Path:
    """Host path of the in-sandbox forwarder script (inside the installed package)."""
    return Path(__file__).with_name("egress_bridge.py")


def wrap_argv(
    argv: list[str],
    *,
    python: str,
    socket_path: Path,
    proxy_port: int = DEFAULT_PROXY_PORT,
    tunnels: dict[int, str] | None = None,
) -> list[str]:
    """``argv`` started behind the forwarder: it listens, forks itself away, then execs ``argv``.

    ``python`` runs the forwarder in isolated mode (``-I``: no site, no cwd on sys.path)."""
    a = [python, "-I", str(bridge_script()), "--socket", str(socket_path), "--proxy-port", str(proxy_port)]
    for local, target in sorted((tunnels or {}).items()):
        a += ["--tunnel", f"{local}={target}"]
    return [*a, "--", *argv]


def proxy_env(proxy_port: int = DEFAULT_PROXY_PORT) -> dict[str, str]:
    """Environment that points ordinary HTTP clients at the in-sandbox forwarder."""
    url = f"http://127.0.0.1:{proxy_port}"
    return {
        "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
        "NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
    }  # fmt: skip


@dataclass
class EgressPlan:
    """How a backend runs a command under the config's network policy."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: (host path, path inside) to bind read-only: the socket directory and the forwarder.
    binds: list[tuple[Path, Path]] = field(default_factory=list)
    enforced: bool | str = "not requested"
    proxy: EgressProxy | None = None
    gateway: HubGateway | None = None


@contextlib.contextmanager
def egress_session(
    argv: list[str], config: SandboxConfig, *, python: str, socket_dir_inside: Path | None
) -> Iterator[EgressPlan]:
    """Start the proxy (and the hub gateway) when the config needs one and yield the wrapped command.

    ``socket_dir_inside``: where the backend binds the socket directory (``None``: the command
    sees host paths, as in the unsandboxed backend). The proxy stops when the block exits."""
    if not config.uses_proxy:
        enforced: bool | str = "not enforced: network=open" if config.network == NetworkPolicy.open else True
        yield EgressPlan(argv=list(argv), enforced=enforced)
        return
    assert config.egress_log is not None  # checked by SandboxConfig
    gateway, tunnels, env = None, dict(config.egress_tunnels), proxy_env(config.egress_proxy_port)
    enforced = f"allow-list proxy ({len(config.egress_allow)} entries)"
    if config.hub_gateway is not None:
        from posttrainbench.sandbox.hub_gateway import GATEWAY_AUTHORITY, HubGateway

        spec = config.hub_gateway
        tunnels[spec.port] = GATEWAY_AUTHORITY
        env |= {"HF_ENDPOINT": f"http://127.0.0.1:{spec.port}", "HF_HUB_DISABLE_XET": "1"}
        enforced += (
            f" + hub gateway (upstream {spec.upstream}, {len(spec.forbidden_models)} forbidden models,"
            f" {len(spec.forbidden_datasets)} forbidden datasets)"
        )
    proxy = EgressProxy(config.egress_allow, config.egress_log)
    if config.hub_gateway is not None:
        gateway = proxy.gateway = HubGateway(config.hub_gateway, log=proxy.log)
    with proxy:
        inside_dir = socket_dir_inside or proxy.socket_dir
        bridge = bridge_script()
        binds = [(bridge, bridge)]
        if socket_dir_inside is not None:
            binds.append((proxy.socket_dir, socket_dir_inside))
        yield EgressPlan(
            argv=wrap_argv(
                argv,
                python=python,
                socket_path=inside_dir / SOCKET_NAME,
                proxy_port=config.egress_proxy_port,
                tunnels=tunnels,
            ),
            env=env,
            binds=binds,
            enforced=f"{enforced}, log {config.egress_log}",
            proxy=proxy,
            gateway=gateway,
        )
