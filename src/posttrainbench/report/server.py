"""``ptb view``'s HTTP server: the standard library's threading server in front of :class:`LiveView`.

GET and HEAD only (every other method: 405). Every response carries the report's
Content-Security-Policy as a header (the pages also carry it in a meta tag), ``nosniff``, no
framing, no referrer and no caching. A request whose ``Host`` is not this server's own address
is refused (a web page that rebinds a DNS name to 127.0.0.1 cannot read the results through the
user's browser). An error while answering one request is a 500 for that request only.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .live import LiveView, Response
from .site import CSP

__all__ = ["ViewServer", "make_server"]

HEADERS = {
    "Content-Security-Policy": CSP + "; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewServer(ThreadingHTTPServer):
    """The server: its :class:`LiveView`, and where to log requests (``None``: nowhere)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], view: LiveView, log: Callable[[str], None] | None = None) -> None:
        super().__init__(address, _Handler)
        self.view = view
        self.log = log

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def host_allowed(self, header: str) -> bool:
        """Whether a request's ``Host`` names this server (any does when it listens on every address)."""
        host, port = str(self.server_address[0]), self.server_address[1]
        if host in ("0.0.0.0", "::", ""):
            return True
        names = {host, f"[{host}]", "localhost", "127.0.0.1", "[::1]"}
        return header in {f"{n}:{port}" for n in names} or (port == 80 and header in names)


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "ptb-view"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if self.server.log is not None:
            self.server.log(format % args)

    def _send(self, resp: Response, head: bool) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in {**HEADERS, **resp.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(resp.body)

    def _serve(self, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host", "")):
            self._send(Response(403, "text/plain; charset=utf-8", b"unknown host\n"), head)
            return
        try:
            resp = self.server.view.respond(self.path)
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            if self.server.log is not None:
                self.server.log("".join(traceback.format_exception(exc)).rstrip())
            resp = Response(500, "text/plain; charset=utf-8", f"error: {type(exc).__name__}: {exc}\n".encode())
        self._send(resp, head)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _refuse(self) -> None:
        resp = Response(405, "text/plain; charset=utf-8", b"only GET and HEAD\n", {"Allow": "GET, HEAD"})
        self._send(resp, head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse  # noqa: N815 - the names http.server dispatches to


def make_server(
    results: Path, db_path: Path, host: str = "127.0.0.1", port: int = 0, log: Callable[[str], None] | None = None
) -> ViewServer:
    """A bound (not yet serving) server over the results folder ``results``, whose index lives at
    ``db_path``; ``port`` 0 picks a free one (see ``server.url``)."""
    return ViewServer((host, port), LiveView(results, db_path), log)
