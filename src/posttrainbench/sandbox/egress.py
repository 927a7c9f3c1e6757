"""Egress for the ``allowlist`` network policy: a logging HTTP/CONNECT proxy outside the sandbox.

The sandbox has its own network namespace (loopback only). The only way out is a unix socket
of :class:`EgressProxy`, bind-mounted into the sandbox at :data:`SANDBOX_SOCKET_DIR`. Inside, a
tiny forwarder (:mod:`posttrainbench.sandbox.egress_bridge`, stdlib only) listens on loopback
TCP ports and relays every connection to that socket, so ordinary clients work:

- ``HTTP(S)_PROXY=http://127.0.0.1:<proxy_port>``: the client speaks the HTTP proxy protocol
  (``CONNECT host:443`` for HTTPS, absolute-URI requests for plain HTTP) to the proxy;
- *tunnels* ``127.0.0.1:<local> -> host:port``: each connection is sent as ``CONNECT host:port``
  by the forwarder itself, for clients that take a base URL (e.g. ``ANTHROPIC_BASE_URL``)
  pointing at a fixed API endpoint.

The proxy checks every target against the allow-list and appends one line per request to the
log (``<utc time>\\tALLOW|DENY\\t<method>\\t<host:port>\\t<detail>``). A denied request gets
``403``. Allow-list entries: ``host`` (any port), ``host:port``, ``*.domain`` (sub-domains and
the domain itself), ``*`` (everything: only for tests and the ``open`` variant).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from posttrainbench.domain import NetworkPolicy
from posttrainbench.sandbox.egress_bridge import relay

if TYPE_CHECKING:
    from posttrainbench.sandbox.base import SandboxConfig

#: Inside the sandbox the proxy socket appears at this fixed path.
SANDBOX_SOCKET_DIR = Path("/run/ptb-egress")
SOCKET_NAME = "proxy.sock"
#: Loopback port of the in-sandbox forwarder that speaks to the proxy (``HTTP(S)_PROXY``).
DEFAULT_PROXY_PORT = 3128

#: Hosts the ``allowlist`` policy allows by default: model hub and package index.
DEFAULT_ALLOW: tuple[str, ...] = (
    "huggingface.co", "*.huggingface.co", "*.hf.co",
    "pypi.org", "files.pythonhosted.org",
)  # fmt: skip

_MAX_HEADER = 64 * 1024
_CONNECT_TIMEOUT_S = 15.0


def host_allowed(host: str, port: int, allow: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host:port`` matches an allow-list entry (see module docstring)."""
    host = host.lower().rstrip(".").strip("[]")
    for entry in allow:
        e = entry.lower().strip()
        if e == "*":
            return True
        e_host, e_port = e, None
        if e.count(":") == 1:  # host:port (IPv6 literals in entries are not supported)
            e_host, p = e.rsplit(":", 1)
            if not p.isdigit():
                continue
            e_port = int(p)
        if e_port is not None and e_port != port:
            continue
        if e_host.startswith("*."):
            dom = e_host[2:]
            if host == dom or host.endswith("." + dom):
                return True
        elif host == e_host:
            return True
    return False


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (or ``[v6]:port``) -> (host, port); raises ValueError when malformed."""
    target = target.strip()
    if target.startswith("["):
        end = target.index("]")
        host, rest = target[1:end], target[end + 1 :]
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif target.count(":") == 1:
        host, p = target.split(":")
        port = int(p)
    else:
        host, port = target, default_port
    if not host or not 0 < port < 65536:
        raise ValueError(f"bad target {target!r}")
    return host, port


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(60)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
                if len(head) > _MAX_HEADER:
                    self._reply(client, 431, "request header too large")
                    return
        except OSError:
            return
        header, _, body = head.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self.server.proxy.log("DENY", "?", "?", f"malformed request line {lines[0][:80]!r}")
            self._reply(client, 400, "malformed request")
            return
        method, target, version = parts
        try:
            if method == "CONNECT":
                host, port = split_host_port(target, 443)
                rest = b""
            else:
                if not target.lower().startswith("http://"):
                    raise ValueError("only absolute http:// URIs (use CONNECT for https)")
                hostport, _, path = target[len("http://") :].partition("/")
                host, port = split_host_port(hostport, 80)
                # Origin-form request line; one request per connection.
                kept = [ln for ln in lines[1:] if not ln.lower().startswith(("proxy-", "connection:"))]
                rest = (
                    f"{method} /{path} {version}\r\n" + "\r\n".join(kept) + "\r\nConnection: close\r\n\r\n"
                ).encode("latin-1") + body
        except (ValueError, IndexError) as e:
            self.server.proxy.log("DENY", method, target[:200], f"bad target: {e}")
            self._reply(client, 400, f"bad target: {e}")
            return
        if not host_allowed(host, port, self.server.proxy.allow):
            self.server.proxy.log("DENY", method, f"{host}:{port}", "not on the allow-list")
            self._reply(client, 403, f"ptb egress proxy: {host}:{port} is not on the allow-list")
            return
        try:
            upstream = socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S)
        except OSError as e:
            self.server.proxy.log("ALLOW", method, f"{host}:{port}", f"upstream unreachable: {e}")
            self._reply(client, 502, f"upstream unreachable: {e}")
            return
        self.server.proxy.log("ALLOW", method, f"{host}:{port}", "" if method == "CONNECT" else target[:300])
        with upstream:
            upstream.settimeout(None)
            client.settimeout(None)
            try:
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if body:
                        upstream.sendall(body)
                else:
                    upstream.sendall(rest)
            except OSError:
                return
            relay(client, upstream, idle_s=300, close=False)

    @staticmethod
    def _reply(client: socket.socket, code: int, text: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 431: "Too Large", 502: "Bad Gateway"}[code]
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
    backends bind into the sandbox at :data:`SANDBOX_SOCKET_DIR`.
    """

    def __init__(self, allow: list[str] | tuple[str, ...], log_path: Path) -> None:
        self.allow = list(allow)
        self.log_path = Path(log_path)
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
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        line = f"{ts}\t{decision}\t{method}\t{target}\t{detail}".replace("\n", " ") + "\n"
        with self._lock, contextlib.suppress(OSError):
            with open(self.log_path, "a", encoding="utf-8") as f:
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


@contextlib.contextmanager
def egress_session(
    argv: list[str], config: SandboxConfig, *, python: str, socket_dir_inside: Path | None
) -> Iterator[EgressPlan]:
    """Start the proxy when the config needs one and yield the wrapped command.

    ``socket_dir_inside``: where the backend binds the socket directory (``None``: the command
    sees host paths, as in the unsandboxed backend). The proxy stops when the block exits."""
    if not config.uses_proxy:
        enforced: bool | str = (
            "not enforced: network=open" if config.network == NetworkPolicy.open else True
        )
        yield EgressPlan(argv=list(argv), enforced=enforced)
        return
    assert config.egress_log is not None  # checked by SandboxConfig
    with EgressProxy(config.egress_allow, config.egress_log) as proxy:
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
                tunnels=config.egress_tunnels,
            ),
            env=proxy_env(config.egress_proxy_port),
            binds=binds,
            enforced=f"allow-list proxy ({len(config.egress_allow)} entries), log {config.egress_log}",
            proxy=proxy,
        )


#: First stderr line of the forwarder when it could not exec the command (exit 127).
BRIDGE_EXEC_FAILED = "egress_bridge: cannot execute"
