"""A local server that speaks the model/dataset hub's HTTP API, for tests and benchmarks.

Enough of it for the real ``huggingface_hub`` and ``datasets`` clients, as the hub answers:

- ``GET /api/{models|datasets}/{repo}[/revision/{rev}]``: repo info JSON (``id``, ``sha``,
  ``siblings`` ...);
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``?recursive=``) and ``POST .../paths-info/{rev}``:
  file entries (``oid``, ``size``, ``lfs``);
- ``HEAD``/``GET /[datasets/]{repo}/resolve/{rev}/{file}``: a small file answers ``307`` to
  ``/api/resolve-cache/{type}s/{repo}/{commit}/{file}``, which answers ``200`` with ``ETag``,
  ``X-Repo-Commit`` and ``Content-Length``; an LFS file answers ``302`` to a CDN path
  ``/cdn/{sha256}`` on the same server, with ``X-Linked-Etag``, ``X-Linked-Size``, ``X-Repo-Commit``
  and Xet headers (``X-Xet-Hash``, ``Link: <...>; rel="xet-auth"``) that a gateway must strip;
  the CDN honours ``Range``;
- a renamed repo answers ``307`` to the same path under its new id (relative ``Location``);
- unknown repos ``404`` with ``X-Error-Code: RepoNotFound``, unknown revisions ``RevisionNotFound``.

Every request is recorded in :attr:`FakeHub.requests` (method, raw path), so a test can assert
what never reached the hub. Large files are generated (a repeated random block), not stored.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 1024  # files at least this large are served like LFS files (CDN redirect)


@dataclass
class Blob:
    """File content: ``data``, or ``size`` bytes of a repeated random block (large files)."""

    data: bytes = b""
    size: int = -1
    _sha256: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)
        self._block = self.data if self.data else os.urandom(1 << 20)

    def chunks(self, start: int = 0, end: int | None = None):
        end = self.size if end is None else end
        if self.data:
            yield self.data[start:end]
            return
        pos, n = start, len(self._block)
        while pos < end:
            off = pos % n
            piece = self._block[off : min(n, off + end - pos)]
            yield piece
            pos += len(piece)

    @property
    def sha256(self) -> str:
        if not self._sha256:
            h = hashlib.sha256()
            for c in self.chunks():
                h.update(c)
            self._sha256 = h.hexdigest()
        return self._sha256

    @property
    def git_oid(self) -> str:
        if self.size >= LFS_THRESHOLD:
            return hashlib.sha1(f"lfs pointer {self.sha256} {self.size}".encode()).hexdigest()
        return hashlib.sha1(b"blob %d\0" % self.size + self.data).hexdigest()

    @property
    def lfs(self) -> bool:
        return self.size >= LFS_THRESHOLD


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    files: dict[str, Blob]
    sha: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha:
            self.sha = hashlib.sha1(f"{self.repo_type}/{self.repo_id}".encode()).hexdigest()


class FakeHub:
    """The server; use as a context manager. ``url`` is its base URL (an ``HF_ENDPOINT``)."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.renames: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        #: Base URL of the CDN that LFS files redirect to ('': this server's /cdn/ path).
        self.cdn_base = ""
        #: Raw request path -> Location: answered with a 302 before anything else.
        self.redirects: dict[str, str] = {}
        self._server: socketserver.ThreadingTCPServer | None = None

    def add(self, repo_type: str, repo_id: str, files: dict[str, bytes | Blob]) -> Repo:
        blobs = {p: b if isinstance(b, Blob) else Blob(b) for p, b in files.items()}
        repo = Repo(repo_type, repo_id, blobs)
        self.repos[(repo_type, repo_id.lower())] = repo
        return repo

    def rename(self, repo_type: str, old: str, new: str) -> None:
        self.renames[(repo_type, old.lower())] = new

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths_seen(self) -> list[str]:
        return [unquote(p) for _, p in self.requests]

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


_API = re.compile(
    r"^/api/(models|datasets)/(?P<repo>[^/]+(?:/[^/]+)??)(?:/(?P<kw>revision|tree|paths-info)/(?P<rev>[^/]+)(?P<rest>/.*)?)?$"
)
_CACHE = re.compile(
    r"^/api/resolve-cache/(models|datasets)/(?P<repo>[^/]+(?:/[^/]+)?)/(?P<rev>[0-9a-f]{40})/(?P<file>.+)$"
)
_RESOLVE = re.compile(r"^(?:/(?P<t>datasets))?/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeHub

    def log_message(self, *a: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    # ------------------------------------------------------------------ helpers
    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, length: int | None = None
    ) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, msg: str) -> None:
        body = json.dumps({"error": msg}).encode()
        self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": msg})

    def _repo(self, repo_type: str, repo_id: str) -> Repo | str | None:
        """The repo, or the new id of a renamed one (str), or None."""
        new = self.fake.renames.get((repo_type, repo_id.lower()))
        if new is not None:
            return new
        return self.fake.repos.get((repo_type, repo_id.lower()))

    def _route(self) -> None:
        self.fake.requests.append((self.command, self.path))
        body = b""
        if self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path in self.fake.redirects:
            return self._send(302, b"", {"Location": self.fake.redirects[self.path]})
        u = urlsplit(self.path)
        path, query = unquote(u.path), parse_qs(u.query)
        if path.startswith("/cdn/"):
            return self._cdn(path[len("/cdn/") :])
        m = _CACHE.match(path)
        if m:
            return self._resolve("model" if m.group(1) == "models" else "dataset", m, cached=True)
        m = _API.match(path)
        if m:
            repo_type = "model" if m.group(1) == "models" else "dataset"
            return self._api(repo_type, m, query, body)
        m = _RESOLVE.match(path)
        if m:
            repo_type = "dataset" if m.group("t") else "model"
            return self._resolve(repo_type, m)
        self._error(404, "EntryNotFound", f"no route {path}")

    def _renamed(self, old: str, new: str) -> None:
        # The hub answers a renamed repo with a relative redirect to the same path under the new id.
        loc = self.path.replace(old, new, 1) if old in self.path else self.path.replace(old.replace("/", "%2F"), new, 1)
        self._send(307, b"", {"Location": loc})

    def _api(self, repo_type: str, m: re.Match[str], query: dict[str, list[str]], body: bytes) -> None:
        repo = self._repo(repo_type, m.group("repo"))
        if isinstance(repo, str):
            return self._renamed(m.group("repo"), repo)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {m.group('repo')} not found")
        kw, rev = m.group("kw"), m.group("rev")
        if rev is not None and rev not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if kw in (None, "revision"):
            return self._json({
                "_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
                "sha": repo.sha, "private": False, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
                "tags": [], "lastModified": "2025-01-01T00:00:00.000Z", "createdAt": "2025-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(repo.files)], "cardData": {},
            })  # fmt: skip
        if kw == "tree":
            prefix = (m.group("rest") or "").strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            return self._json(self._entries(repo, prefix, recursive))
        # paths-info: form data paths=...
        paths = parse_qs(body.decode()).get("paths", [])
        entries = [e for e in self._entries(repo, "", True) if e["path"] in paths]
        return self._json(entries)

    def _entries(self, repo: Repo, prefix: str, recursive: bool) -> list[dict]:
        out: list[dict] = []
        dirs: set[str] = set()
        for p, b in sorted(repo.files.items()):
            if prefix and not p.startswith(prefix + "/"):
                continue
            rel = p[len(prefix) + 1 :] if prefix else p
            if "/" in rel and not recursive:
                dirs.add((f"{prefix}/" if prefix else "") + rel.split("/")[0])
                continue
            if recursive:
                parts = p.split("/")[:-1]
                dirs.update(
                    "/".join(parts[: i + 1]) for i in range(len(parts)) if "/".join(parts[: i + 1]).startswith(prefix)
                )
            e: dict = {"type": "file", "oid": b.git_oid, "size": b.size, "path": p}
            if b.lfs:
                e["lfs"] = {"oid": b.sha256, "size": b.size, "pointerSize": 134}
            out.append(e)
        out += [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(dirs)
        ]
        return out

    def _resolve(self, repo_type: str, m: re.Match[str], cached: bool = False) -> None:
        repo = self._repo(repo_type, m.group("repo"))
        if isinstance(repo, str):
            return self._renamed(m.group("repo"), repo)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {m.group('repo')} not found")
        if m.group("rev") not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {m.group('rev')}")
        blob = repo.files.get(m.group("file"))
        if blob is None:
            return self._error(404, "EntryNotFound", f"{m.group('file')} does not exist")
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if blob.lfs:
            return self._send(302, b"", {
                **common, "Location": f"{self.fake.cdn_base}/cdn/{blob.sha256}?signature=fake", "ETag": f'"{blob.sha256}"',
                "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size),
                "X-Xet-Hash": "0" * 64, "Link": f'<{self.fake.url}/api/xet-token>; rel="xet-auth", <{self.fake.url}/x>; rel="next"',
            })  # fmt: skip
        if not cached:  # the hub sends small files to a cache path at the resolved commit
            t = "models" if repo_type == "model" else "datasets"
            loc = f"/api/resolve-cache/{t}/{repo.repo_id}/{repo.sha}/{m.group('file')}?etag=%22{blob.git_oid}%22"
            return self._send(307, b"", {**common, "Location": loc, "ETag": f'"{blob.git_oid}"'})
        self._send(200, blob.data, {**common, "ETag": f'"{blob.git_oid}"', "Content-Type": "application/octet-stream"})

    def _cdn(self, sha: str) -> None:
        sha = sha.split("?")[0]
        blob = next((b for r in self.fake.repos.values() for b in r.files.values() if b.lfs and b.sha256 == sha), None)
        if blob is None:
            return self._error(404, "NotFound", "no such object")
        start, end, status = 0, blob.size, 200
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if rng:
            start = int(rng.group(1))
            end = min(blob.size, int(rng.group(2)) + 1) if rng.group(2) else blob.size
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        for chunk in blob.chunks(start, end):
            self.wfile.write(chunk)
