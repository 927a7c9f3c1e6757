"""Hub gateway: the sandbox's only way to the model/dataset hub, refusing the run's forbidden repos.

In ``network=allowlist`` the hub's hosts are not on the egress allow-list. Instead the sandbox gets
``HF_ENDPOINT=http://127.0.0.1:<port>``: a tunnel of the in-sandbox forwarder to the reserved target
:data:`GATEWAY_AUTHORITY`, which the egress proxy (:mod:`posttrainbench.sandbox.egress`) serves
in-process with :meth:`HubGateway.serve`. No TCP port is opened on the host.

For each request the gateway

1. parses the path (percent-decoded segment by segment, strict) into the repo(s) it may address:
   ``/api/{models|datasets|spaces}/{repo}[/revision/{rev}|/tree/{rev}[/path]|/paths-info/{rev}|
   /refs|/commits/{rev}|/parquet[/...]]``, ``/[datasets/|spaces/]{repo}/resolve/{rev}/{file}`` and
   ``/api/resolve-cache/{type}s/{repo}/{rev}/{file}`` (where the hub redirects small files).
   Anything else (search, whoami, uploads, Xet tokens, ``.``/``..`` or empty segments) is refused:
   fail closed. A repo id is ``name`` or ``namespace/name``; a path that could be read both ways
   (legacy single-name repos such as ``gsm8k``) is checked under every reading, as is an encoded
   slash inside the repo (``Qwen%2FQwen3-4B``);
2. refuses (``403``, JSON ``{"error": ...}``) when any reading names a forbidden repo of the run,
   compared case-insensitively: model repos from :attr:`HubGatewaySpec.forbidden_models`, dataset
   repos from :attr:`HubGatewaySpec.forbidden_datasets` (see :func:`forbidden_repos`);
3. forwards what it checked, re-encoded from the parsed segments (so the hub cannot read the path
   differently), to the upstream hub (``GET``/``HEAD``; ``POST`` only for ``paths-info``), without
   the client's credentials or cookies;
4. follows redirects itself: a redirect to another repo on the hub (a renamed repo, e.g. a legacy
   alias) is parsed and checked again; a redirect off the repo paths (the CDN of a file) is
   followed only for file downloads and only to :attr:`HubGatewaySpec.cdn_allow` hosts or the
   upstream's own origin. A ``HEAD`` on a file answers ``200`` with the hub's metadata headers
   (``X-Repo-Commit``, ``X-Linked-Etag``, ``X-Linked-Size``), so the client never sees another host;
5. strips the Xet headers (``X-Xet-*``, ``Link: ...; rel="xet-auth"``) so clients download over
   plain HTTP through the gateway, rewrites upstream URLs in ``Link`` and JSON API answers to the
   gateway, streams bodies, and appends one line per request to the run's egress log:
   ``<time>\\tALLOW|DENY\\t<method>\\thub:<type>/<repo>\\trev=... file=... endpoint=... status=...
   bytes=... [commit=...] [redirected-from=...] [reason=...]`` (the repo finally read; the revision
   and file as asked; the commit the hub resolved them to).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import io
import json
import re
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, unquote, urljoin, urlsplit

import pydantic
from pydantic import ConfigDict, Field, field_validator

from posttrainbench.sandbox.egress import match_allow, parse_allow_list, parse_authority
from posttrainbench.settings import DEFAULT_HUB_UPSTREAM

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from posttrainbench.domain import BaseModelSpec, Benchmark

#: The reserved CONNECT target the proxy hands to the gateway (``.invalid`` never resolves).
GATEWAY_AUTHORITY = "hub.ptb.invalid:80"
#: The hub the gateway forwards to unless told otherwise (``PTB_HUB_UPSTREAM`` overrides it).
DEFAULT_UPSTREAM = DEFAULT_HUB_UPSTREAM
#: In-sandbox loopback port that ``HF_ENDPOINT`` points at.
DEFAULT_GATEWAY_PORT = 18090
#: Hosts the hub redirects file downloads to (its CDNs).
DEFAULT_CDN_ALLOW: tuple[str, ...] = ("*.hf.co", "*.huggingface.co")

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,96}")
_PCT = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]]*")
#: API keyword after the repo -> (min, max) number of segments after it (None: any).
_API_TAILS: dict[str, tuple[int, int | None]] = {
    "revision": (1, 1), "tree": (1, None), "paths-info": (1, 1), "refs": (0, 0),
    "commits": (1, 1), "parquet": (0, 3),
}  # fmt: skip
_FILE_ENDPOINTS = ("resolve", "resolve-cache")
_MAX_REDIRECTS = 10
_MAX_POST = 1 << 20
_MAX_REWRITE = 32 << 20
_CHUNK = 1 << 18
_UPSTREAM_TIMEOUT_S = 60.0
_REDIRECTS = (301, 302, 303, 307, 308)
#: Response headers that describe the file, kept from the hub's redirect answer.
_HUB_FILE_HEADERS = ("x-repo-commit", "x-linked-etag", "x-linked-size", "etag")
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "location",
                  "set-cookie", "proxy-authenticate", "trailer", "upgrade", "alt-svc"}  # fmt: skip
_FORWARD_REQUEST = ("accept", "range", "if-range", "if-none-match", "if-modified-since", "user-agent", "content-type")


class ForbiddenRepos(NamedTuple):
    """Repos a run must not fetch: ``{repo id: why}`` for models and for datasets."""

    models: dict[str, str]
    datasets: dict[str, str]


def forbidden_repos(base: BaseModelSpec | None, benchmarks: Iterable[Benchmark]) -> ForbiddenRepos:
    """The run's forbidden repos: the base model's ``forbidden`` checkpoints and ``instruct_id``;
    every benchmark's test dataset (``hub_id``) and its ``hub_aliases`` (the caller passes every
    registered benchmark, ``posttrainbench.benchmarks.BENCHMARKS``, not only the run's target)."""
    models: dict[str, str] = {}
    if base is not None:
        for m in (*base.forbidden, *([base.instruct_id] if base.instruct_id else [])):
            models.setdefault(m, f"a forbidden checkpoint of the base model {base.hub_id}")
    datasets: dict[str, str] = {}
    for b in benchmarks:
        for d in (b.hub_id, *b.hub_aliases) if b.hub_id else b.hub_aliases:
            datasets.setdefault(d, f"the test data of benchmark {b.id}")
    return ForbiddenRepos(models, datasets)


class HubGatewaySpec(pydantic.BaseModel):
    """What the hub gateway of a sandbox refuses and where it forwards the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    forbidden_models: dict[str, str] = Field(default_factory=dict, description="Model repo id -> reason.")
    forbidden_datasets: dict[str, str] = Field(default_factory=dict, description="Dataset repo id -> reason.")
    upstream: str = Field(DEFAULT_UPSTREAM, description="Base URL of the hub the gateway forwards to.")
    port: int = Field(DEFAULT_GATEWAY_PORT, gt=0, lt=65536, description="In-sandbox port of HF_ENDPOINT.")
    cdn_allow: tuple[str, ...] = Field(
        DEFAULT_CDN_ALLOW, description="Allow-list entries (egress syntax) of the hosts file downloads may redirect to."
    )

    @classmethod
    def for_run(cls, base: BaseModelSpec | None, benchmarks: Iterable[Benchmark], **kw: object) -> HubGatewaySpec:
        """The gateway of one run: :func:`forbidden_repos` of its base model and the benchmarks."""
        f = forbidden_repos(base, benchmarks)
        return cls(forbidden_models=f.models, forbidden_datasets=f.datasets, **kw)

    @field_validator("forbidden_models", "forbidden_datasets")
    @classmethod
    def _repo_ids(cls, v: dict[str, str]) -> dict[str, str]:
        for rid in v:
            if not all(_valid_name(p) for p in rid.split("/")) or rid.count("/") > 1:
                raise ValueError(f"not a hub repo id: {rid!r}")
        return v

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, v: str) -> str:
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment or u.username:
            raise ValueError(f"upstream must be a plain http(s) base URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("cdn_allow")
    @classmethod
    def _cdn_entries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        parse_allow_list(v)
        return v


class HubPathError(ValueError):
    """A request the gateway cannot attribute to a repo, or refuses to read (``status``)."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class HubRoute:
    """A hub request attributed to a repo: what is logged, checked and forwarded."""

    endpoint: str  # info | revision | tree | paths-info | refs | commits | parquet | resolve
    repo_type: str  # model | dataset | space
    repo_id: str
    revision: str | None
    file: str | None
    upstream_path: str  # the canonical path forwarded (percent-encoded from the parsed segments)
    #: Every (type, repo id) a reading of the path could address: all must be allowed.
    candidates: tuple[tuple[str, str], ...] = field(default=())

    @property
    def label(self) -> str:
        return f"hub:{self.repo_type}/{self.repo_id}"


def _valid_name(s: str) -> bool:
    return bool(_NAME.fullmatch(s)) and ".." not in s and "--" not in s and s[0] not in ".-" and s[-1] not in ".-"


def _decode(seg: str) -> str:
    if not _PCT.fullmatch(seg):
        raise HubPathError(f"bad percent-escape in {seg[:60]!r}", 400)
    try:
        out = unquote(seg, errors="strict")
    except UnicodeDecodeError:
        raise HubPathError(f"invalid UTF-8 in {seg[:60]!r}", 400) from None
    if any(ord(c) < 0x20 or c in "\x7f\\" for c in out):
        raise HubPathError(f"control character or backslash in {seg[:60]!r}", 400)
    if any(p in ("", ".", "..") for p in out.split("/")):
        raise HubPathError("empty, '.' or '..' path segment", 400)
    return out


def _enc(seg: str) -> str:
    return quote(seg, safe="")


def _readings(rest: list[str]) -> list[tuple[list[str], list[str]]]:
    """(repo atoms, tail) for a namespaced and a single-name repo. A decoded '/' inside the repo
    segments splits them (``Qwen%2FQwen3-4B`` is ``Qwen/Qwen3-4B``)."""
    atoms: list[str] = []
    i = 0
    while len(atoms) < 2 and i < len(rest):
        atoms += rest[i].split("/")
        i += 1
    after = rest[i:]
    return [(atoms[:n], atoms[n:] + after) for n in (2, 1) if len(atoms) >= n]


def parse_hub_path(raw_path: str) -> HubRoute:
    """Attribute a raw (still percent-encoded) request path to a repo; raises HubPathError."""
    if not raw_path.startswith("/"):
        raise HubPathError("origin-form path required", 400)
    raw = raw_path[1:].split("/")
    if len(raw) > 1 and raw[-1] == "":
        raw = raw[:-1]  # one trailing slash
    segs = [_decode(s) for s in raw]
    typed: list[tuple[str, list[str], bool]] = []  # (repo type, segments after the type, is the hub's reading)
    form = "resolve"
    if segs[0] == "api" and len(segs) > 1 and segs[1] == "resolve-cache":  # where the hub sends small files
        if len(segs) < 4 or segs[2] not in _REPO_TYPES:
            raise HubPathError(f"not a repo endpoint: {raw_path[:120]!r}")
        typed.append((_REPO_TYPES[segs[2]], segs[3:], True))
        form = "cache"
    elif segs[0] == "api":
        if len(segs) < 3 or segs[1] not in _REPO_TYPES:
            raise HubPathError(f"not a repo endpoint: {raw_path[:120]!r}")
        typed.append((_REPO_TYPES[segs[1]], segs[2:], True))
        form = "api"
    else:
        if segs[0] in ("datasets", "spaces"):
            typed.append((_REPO_TYPES[segs[0]], segs[1:], True))
        typed.append(("model", segs, not typed))
    candidates: list[tuple[str, str]] = []
    primary: HubRoute | None = None
    for repo_type, rest, hub_reading in typed:
        for atoms, tail in _readings(rest):
            if not all(_valid_name(a) for a in atoms):
                continue
            repo_id = "/".join(atoms)
            candidates.append((repo_type, repo_id))
            route = _tail_route(form, repo_type, atoms, tail)
            if route is not None and hub_reading and primary is None:
                primary = route
    if primary is None:
        raise HubPathError(f"cannot attribute to a repo: {raw_path[:120]!r}")
    return dataclasses.replace(primary, candidates=tuple(dict.fromkeys(candidates)))


def _tail_route(form: str, repo_type: str, atoms: list[str], tail: list[str]) -> HubRoute | None:
    """The route if ``tail`` is a supported endpoint of the repo (``form``: api, cache or
    resolve), else None."""
    repo_path = "/".join(_enc(a) for a in atoms)
    repo_id = "/".join(atoms)
    if form == "cache":
        if len(tail) < 2:
            return None
        path = f"/api/resolve-cache/{repo_type}s/{repo_path}/" + "/".join(_enc(s) for s in tail)
        return HubRoute("resolve-cache", repo_type, repo_id, tail[0], "/".join(tail[1:]), path)
    if form == "api":
        base = f"/api/{repo_type}s/{repo_path}"
        if not tail:
            return HubRoute("info", repo_type, repo_id, None, None, base)
        kw, args = tail[0], tail[1:]
        if kw not in _API_TAILS:
            return None
        lo, hi = _API_TAILS[kw]
        if len(args) < lo or (hi is not None and len(args) > hi):
            return None
        rev = args[0] if lo >= 1 else None
        rest = args[1:] if lo >= 1 else args
        path = f"{base}/{kw}" + "".join("/" + _enc(a) for a in args)
        return HubRoute(kw, repo_type, repo_id, rev, "/".join(rest) or None, path)
    if len(tail) < 3 or tail[0] != "resolve":
        return None
    rev, file_segs = tail[1], tail[2:]
    prefix = "" if repo_type == "model" else f"/{repo_type}s"
    path = f"{prefix}/{repo_path}/resolve/{_enc(rev)}/" + "/".join(_enc(s) for s in file_segs)
    return HubRoute("resolve", repo_type, repo_id, rev, "/".join(file_segs), path)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class HubGateway:
    """The gateway of one sandbox session. ``log(decision, method, target, detail)`` appends a line
    to the egress log (the proxy's :meth:`~posttrainbench.sandbox.egress.EgressProxy.log`)."""

    authority = GATEWAY_AUTHORITY

    def __init__(self, spec: HubGatewaySpec, log: Callable[[str, str, str, str], None]) -> None:
        self.spec = spec
        self.log = log
        self._models = {k.lower(): v for k, v in spec.forbidden_models.items()}
        self._datasets = {k.lower(): v for k, v in spec.forbidden_datasets.items()}
        u = urlsplit(spec.upstream)
        self._origin = (u.scheme, (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80))
        self._prefix = u.path.rstrip("/")
        self._cdn = parse_allow_list(spec.cdn_allow)
        self._ssl = ssl.create_default_context()

    def refusal(self, route: HubRoute) -> str | None:
        """Why ``route`` is refused (a reading names a forbidden repo), or None."""
        for repo_type, repo_id in route.candidates:
            table = self._models if repo_type == "model" else self._datasets if repo_type == "dataset" else {}
            why = table.get(repo_id.lower())
            if why is not None:
                return f"{repo_type} {repo_id} is forbidden in this run ({why})"
        return None

    def serve(self, sock: socket.socket, initial: bytes = b"") -> None:
        """Serve HTTP/1.1 requests on one client connection (a tunnel) until it closes.
        ``initial``: bytes the proxy already read past the CONNECT head."""
        _Handler(sock, ("sandbox", 0), _Conn(self, initial))  # type: ignore[arg-type]  # a _Conn stands for the server

    # ------------------------------------------------------------------ upstream
    def _split(self, url: str) -> tuple[tuple[str, str, int], str]:
        u = urlsplit(url)
        origin = (u.scheme, (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80))
        return origin, (u.path or "/") + (f"?{u.query}" if u.query else "")

    def _request(
        self, origin: tuple[str, str, int], path_qs: str, method: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        scheme, host, port = origin
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=_UPSTREAM_TIMEOUT_S, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            conn.request(method, path_qs, body=body, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def fetch(
        self, route: HubRoute, method: str, query: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, dict[str, str], HubRoute, bool]:
        """Send the request upstream and follow redirects, checking every repo on the way.

        Returns (connection, final response, hub file headers to add, the route finally
        reached, whether the response is a synthesized ``HEAD`` of a CDN-hosted file: no body)."""
        url = self.spec.upstream + route.upstream_path + (f"?{query}" if query else "")
        extra: dict[str, str] = {}
        for _ in range(_MAX_REDIRECTS + 1):
            origin, path_qs = self._split(url)
            conn, resp = self._request(origin, path_qs, method, headers, body)
            loc = resp.getheader("Location")
            if resp.status not in _REDIRECTS or not loc:
                return conn, resp, extra, route, False
            nxt = urljoin(url, loc)
            n_origin, n_path = self._split(nxt)
            n_route: HubRoute | None = None
            if n_origin == self._origin and n_path.startswith(self._prefix + "/"):
                with contextlib.suppress(HubPathError):
                    n_route = parse_hub_path(n_path[len(self._prefix) :].split("?", 1)[0])
            if n_route is not None:  # another repo path on the hub (a rename): check it again
                conn.close()
                why = self.refusal(n_route)
                if why is not None:
                    raise _Refused(403, f"redirected to {n_route.repo_type} {n_route.repo_id}: {why}")
                route, url = n_route, nxt
                continue
            # Off the repo paths: a file's CDN location.
            if route.endpoint not in _FILE_ENDPOINTS:
                conn.close()
                raise _Refused(502, f"upstream redirected an API request off the hub ({nxt[:120]})")
            if n_origin != self._origin and not self._cdn_ok(n_origin):
                conn.close()
                raise _Refused(502, f"upstream redirected to a host not on the CDN list ({n_origin[1]})")
            for h in _HUB_FILE_HEADERS:
                v = resp.getheader(h)
                if v is not None and h not in extra:
                    extra[h] = v
            if method == "HEAD":
                return conn, resp, extra, route, True
            conn.close()
            url, body = nxt, None
            headers = {k: v for k, v in headers.items() if k.lower() in ("range", "if-range", "user-agent", "accept")}
            if resp.status == 303:
                method = "GET"
        raise _Refused(502, f"more than {_MAX_REDIRECTS} redirects")

    def _cdn_ok(self, origin: tuple[str, str, int]) -> bool:
        scheme, host, port = origin
        try:
            a = parse_authority(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", None)
        except ValueError:
            return False
        entries = match_allow(a, self._cdn)
        # Plain http only to an explicitly local CDN (an IP literal or localhost entry: tests).
        return bool(entries) and (scheme == "https" or any(e.local_ok for e in entries))

    def rewrite(self, text: bytes, client_origin: str) -> bytes:
        """Upstream URLs in an answer -> the gateway's, so clients come back through it."""
        return text.replace(self.spec.upstream.encode() + b"/", client_origin.encode() + b"/")


@dataclass
class _Conn:
    gateway: HubGateway
    initial: bytes


class _Prefixed(io.RawIOBase):
    """A reader that yields ``prefix`` first, then what ``inner`` reads."""

    def __init__(self, prefix: bytes, inner: io.BufferedIOBase) -> None:
        self._prefix, self._inner = prefix, inner

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b)
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n], self._prefix = self._prefix[:n], self._prefix[n:]
            return n
        data = self._inner.read1(len(view))
        view[: len(data)] = data
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300
    server: _Conn  # type: ignore[assignment]  # the gateway's own connection state, not a socketserver
    server_version = "ptb-hub-gateway"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        if self.server.initial:
            self.rfile = io.BufferedReader(_Prefixed(self.server.initial, self.rfile))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass  # every request is logged to the egress log instead

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # every method goes through the same checks
            return self._dispatch
        raise AttributeError(name)

    # ------------------------------------------------------------------ helpers
    def _client_origin(self) -> str:
        host = self.headers.get("Host", "")
        try:
            a = parse_authority(host, 80)
            if a.ip is not None and a.ip.version == 6:
                return f"http://[{a.host}]:{a.port}"
            return f"http://{a.host}:{a.port}"
        except ValueError:
            return f"http://127.0.0.1:{self.server.gateway.spec.port}"

    def _send_json_error(self, status: int, message: str) -> None:
        body = ('{"error": ' + _json_str(f"ptb hub gateway: {message}") + "}\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Message", f"ptb hub gateway: {message}"[:500])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self) -> None:
        g = self.server.gateway
        method, target = self.command, self.path
        route: HubRoute | None = None
        try:
            if "#" in target:
                raise HubPathError("a request target has no fragment", 400)
            raw_path, _, query = target.partition("?")
            if not _QUERY.fullmatch(query):
                raise HubPathError("bad query string", 400)
            route = parse_hub_path(raw_path)
            if method not in ("GET", "HEAD") and not (method == "POST" and route.endpoint == "paths-info"):
                raise HubPathError(f"method {method} is not allowed on {route.endpoint}", 405)
            why = g.refusal(route)
            if why is not None:
                raise HubPathError(why, 403)
            body = self._read_body(method)
        except HubPathError as e:
            self._refuse(e.status, str(e), route, target)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARD_REQUEST}
        headers["Accept-Encoding"] = "identity"  # sizes must be real; JSON may be rewritten
        try:
            conn, resp, extra, final, synthesized = g.fetch(route, method, query, headers, body)
        except _Refused as e:
            self._refuse(e.status, e.reason, route, target)
            return
        except (OSError, http.client.HTTPException) as e:
            self._refuse(502, f"upstream unreachable: {e}", route, target, decision="ALLOW")
            return
        try:
            sent = self._relay(resp, extra, final, synthesized)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            sent = -1
        finally:
            conn.close()
        # The repo finally read (after renames); the revision and file as asked, and the commit.
        detail = _detail(route, resp.status if not synthesized else 200, max(sent, -sent - 1))
        if sent < 0:
            detail += " aborted"
        commit = resp.getheader("X-Repo-Commit") or extra.get("x-repo-commit")
        if commit:
            detail += f" commit={commit}"
        if final.repo_id != route.repo_id or final.repo_type != route.repo_type:
            detail += f" redirected-from={route.repo_type}/{route.repo_id}"
        g.log("ALLOW", method, final.label, detail)

    def _read_body(self, method: str) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HubPathError("request bodies need a Content-Length", 411)
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        if not length.isdigit() or method != "POST" or int(length) > _MAX_POST:
            self.close_connection = True
            raise HubPathError("unexpected or too large request body", 400)
        return self.rfile.read(int(length))

    def _refuse(self, status: int, reason: str, route: HubRoute | None, target: str, decision: str = "DENY") -> None:
        label = route.label if route is not None else "hub:?"
        detail = _detail(route, status, 0) if route is not None else f"path={target[:300]} status={status}"
        self.server.gateway.log(decision, self.command, label, f"{detail} reason={reason}")
        self._send_json_error(status, reason)

    def _relay(self, resp: http.client.HTTPResponse, extra: dict[str, str], route: HubRoute, synthesized: bool) -> int:
        """Send ``resp`` to the client (headers filtered, body streamed): the body bytes sent, or
        ``-sent - 1`` when the transfer broke off."""
        g = self.server.gateway
        origin = self._client_origin()
        status = 200 if synthesized else resp.status
        headers = [(k, v) for k, v in resp.getheaders() if _keep_header(k)]
        have = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in extra.items() if k not in have]
        for i, (k, v) in enumerate(headers):
            if k.lower() == "link":
                headers[i] = (k, g.rewrite(_without_xet_links(v).encode("latin-1"), origin).decode("latin-1"))
        headers = [(k, v) for k, v in headers if not (k.lower() == "link" and not v)]
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        length: int | None
        if synthesized:
            size = extra.get("x-linked-size")
            length = int(size) if size and size.isdigit() else None
        elif self.command == "HEAD":
            cl = resp.getheader("Content-Length")
            length = int(cl) if cl and cl.isdigit() else None
        else:
            length = resp.length  # None when chunked or delimited by close
        ctype = (resp.getheader("Content-Type") or "").lower()
        prefix = b""
        if not no_body and route.endpoint not in _FILE_ENDPOINTS and "json" in ctype and (length or 0) <= _MAX_REWRITE:
            prefix = resp.read(_MAX_REWRITE + 1)
            if len(prefix) <= _MAX_REWRITE:  # the whole answer: rewrite it (else pass it on as is)
                prefix = g.rewrite(prefix, origin)
                length = len(prefix)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        chunked = not no_body and length is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if no_body:
            return 0
        sent = 0
        chunk = prefix
        try:
            while True:
                if not chunk:
                    chunk = resp.read(_CHUNK)  # de-chunks and stops at Content-Length
                    if not chunk:
                        break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
                chunk = b""
        except (OSError, http.client.HTTPException):
            self.close_connection = True  # the client must see a short body, not a complete one
            return -sent - 1
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        elif length is not None and sent != length:
            self.close_connection = True
        return sent


def _keep_header(name: str) -> bool:
    n = name.lower()
    return n not in _DROP_RESPONSE and not n.startswith("x-xet-")


def _detail(route: HubRoute, status: int, sent: int) -> str:
    parts = [f"rev={route.revision or '-'}", f"file={route.file or '-'}", f"endpoint={route.endpoint}"]
    return " ".join(parts) + f" status={status} bytes={sent}"


def _json_str(s: str) -> str:
    return json.dumps(s)


def _without_xet_links(value: str) -> str:
    """A ``Link`` header without its Xet relations (``xet-auth``, ``xet-reconstruction-info``)."""
    parts = re.split(r",\s*(?=<)", value)
    return ", ".join(p for p in parts if not re.search(r"""rel\s*=\s*"?xet""", p, re.I))
