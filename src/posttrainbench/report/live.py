"""The report's pages rendered per request from what is on disk now (``ptb view``).

:class:`LiveView` answers a request path with a :class:`Response`; ``report/server.py`` puts it
behind HTTP. It uses the static report's data layer and templates: the same leaderboard, views,
runs list and run pages, at the same paths (``index.html``, ``runs.html``,
``runs/<group>/<run>/index.html``, ``assets/…``, ``plots/…``), so every relative link of the static
site works as is. What the server adds: evidence files served from the run folder (never
copied), each Inspect log's samples a page at a time (``…/samples-<log>.html?start=N``), and a
version stamp per page (``version.json``, ``…/<run>/version.json``) that the pages of runs in
progress poll, reloading when it changes.

Read-only: nothing is written into the results tree. Its index lives in the cache folder
(``db_path``, chosen by the caller); plots are drawn into a private temporary folder. Paths are
looked up, never joined: a request names a page, a plot or an asset from a fixed set, or an
evidence file that the run's record lists and that resolves inside the run folder; anything
else (``..``, encoded slashes, symlinks out, folders) is a 404.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..leaderboard import RankOptions
from ..results import RecordError, load_record
from .data import ReportData, RunEntry, load_report_data, run_state
from .evallogs import SAMPLES_PER_PAGE, SampleView, eval_logs, log_files, read_samples
from .plots import draw_all
from .site import MAX_EVIDENCE_BYTES, Evidence, Link, _safe_name, _Site, fmt_duration

__all__ = ["LiveView", "Response"]

STATIC = ("report.css", "report.js")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_SAMPLES = re.compile(r"samples-(?P<name>[A-Za-z0-9._-]+)\.html")


@dataclass
class Response:
    """What the server sends: status, content type, body."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _not_found(what: str = "not found") -> Response:
    return Response(404, "text/plain; charset=utf-8", f"{what}\n".encode())


def _stamp(paths: list[Path]) -> str:
    """A short hash of the size and mtime of ``paths`` (missing ones count as missing)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
        except OSError:
            h.update(f"{p}\0-\n".encode())
    return h.hexdigest()[:16]


def _tree_files(root: Path) -> list[Path]:
    """Every ``run.json`` two folders down and every ``baseline.json``: what the data is built from."""
    found = []
    try:
        groups = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    for g in groups:
        if not g.is_dir(follow_symlinks=False) or g.name.startswith((".", "_")):
            continue
        try:
            runs = sorted(os.scandir(g.path), key=lambda e: e.name)
        except OSError:
            continue
        for r in runs:
            if r.is_dir(follow_symlinks=False):
                found += [Path(r.path) / "run.json", Path(r.path) / "baseline.json"]
    return found


def run_files(folder: Path) -> list[Path]:
    """What a run page is built from: a change to any of them is a new version of the page."""
    return [folder / n for n in ("run.json", "trace.json", "solve_out.txt", "eval")] + log_files(folder)


class LiveSite(_Site):
    """The static site's page builders, rendering into memory instead of files."""

    def __init__(self, data: ReportData, version: str, running: bool, plots: dict[str, str]) -> None:
        super().__init__(data, Path(os.devnull))  # never written: page() and evidence are overridden
        self.page_globals["results_root"] = str(data.root)
        self.rendered: dict[str, str] = {}
        self.version, self.running = version, running
        self.result.plots = list(plots)

    def page(self, template: str, rel_path: str, title: str, **context: Any) -> None:
        context.setdefault("live", {"url": "version.json", "version": self.version} if self.running else None)
        if rel_path == "index.html":
            context["in_progress"] = self.in_progress()
        self.rendered[rel_path] = self.render(template, rel_path, title, **context)

    def in_progress(self) -> list[tuple[Link, str]]:
        """The runs in progress, for the leaderboard page: a link to each, and what it is doing
        for how long (``solve running for 0:12 h of 1 h``)."""
        now = datetime.now(UTC)
        out = []
        for entry in [*self.data.runs, *self.data.superseded]:
            state = run_state(entry.record, entry.folder)
            if not state.endswith(" running"):
                continue
            started = entry.record.phases[state.split()[0]].started_at
            since = f" for {fmt_duration((now - started).total_seconds())}" if started else ""
            spec = entry.record.spec
            text = f"{entry.label} · {spec.benchmark} · {spec.base_model} · repeat {spec.repeat}"
            out.append((self.run_link(entry, text), f"{state}{since} (limit {spec.hours:g} h)"))
        return out

    def _copy_evidence(self, entry: RunEntry, page_dir: Path, ref: str) -> Evidence:
        found = self.evidence_file(entry, ref)
        if isinstance(found, Evidence):
            return found
        return Evidence(found.name, href="evidence/" + quote(_safe_name(found.name)))

    def run_extras(self, entry: RunEntry) -> dict[str, Any]:
        extras = super().run_extras(entry)
        extras["eval_logs"] = [
            log._replace(samples_href=f"samples-{quote(_safe_name(log.name))}.html") for log in extras["eval_logs"]
        ]
        running = run_state(entry.record, entry.folder).endswith(" running")
        extras["live"] = {"url": "version.json", "version": _stamp(run_files(entry.folder))} if running else None
        return extras

    def entry_at(self, rel: str) -> RunEntry | None:
        """The run whose page is ``rel`` (``runs/<group>/<run>/index.html``)."""
        for entry in [*self.data.runs, *self.data.superseded]:
            if self.run_pages[id(entry)] == rel:
                return entry
        return None


class LiveView:
    """A results folder served live: one instance shared by the server's threads."""

    def __init__(self, root: Path, db_path: Path) -> None:
        self.root = Path(root)
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        self._data: ReportData | None = None
        self._version = ""
        self._plots_dir = Path(tempfile.mkdtemp(prefix="ptb-view-plots-"))
        self._plots: dict[str, str] = {}
        self._plots_version = ""

    def close(self) -> None:
        """Remove the plots folder."""
        import shutil

        shutil.rmtree(self._plots_dir, ignore_errors=True)

    # ------------------------------------------------------------------ data
    def data(self) -> tuple[ReportData, str]:
        """The report data of the folder as it is now (reloaded only when a record changed)."""
        with self._lock:
            version = _stamp(_tree_files(self.root))
            if self._data is None or version != self._version:
                self._data = load_report_data(self.root, RankOptions(db_path=self.db_path))
                self._version = version
            return self._data, self._version

    def plots(self, data: ReportData, version: str) -> dict[str, str]:
        """The leaderboard's plots of this version of the data (drawn once per version)."""
        with self._lock:
            if self._plots_version != version:
                for old in self._plots_dir.iterdir():
                    old.unlink()
                self._plots, _problems = draw_all(data, self._plots_dir)
                self._plots_version = version
            return dict(self._plots)

    @staticmethod
    def running(data: ReportData) -> bool:
        return any(run_state(e.record, e.folder).endswith(" running") for e in [*data.runs, *data.superseded])

    # ------------------------------------------------------------------ requests
    def respond(self, target: str) -> Response:
        """The response to a GET of ``target`` (a request path with its query)."""
        split = urlsplit(target)
        raw = split.path
        if re.search(r"%(2f|5c|00)", raw, re.I):  # an encoded slash, backslash or NUL: never a page of ours
            return _not_found()
        path = unquote(raw)
        parts = path.split("/")[1:]
        if not path.startswith("/") or any(p in ("..", ".") or "\\" in p or "\0" in p for p in parts):
            return _not_found()
        rel = "/".join(parts) or "index.html"
        query = parse_qs(split.query)
        if rel.startswith("assets/") and rel.removeprefix("assets/") in STATIC:
            name = rel.removeprefix("assets/")
            text = (resources.files("posttrainbench.report") / "static" / name).read_bytes()
            return Response(200, TYPES[Path(name).suffix], text)
        data, version = self.data()
        running = self.running(data)
        if rel == "version.json":
            return self._json({"version": version, "running": running})
        if rel.startswith("plots/"):
            return self._plot(rel.removeprefix("plots/"), data, version)
        if rel in ("index.html", "runs.html", "benchmarks.html", "models.html"):
            plots = self.plots(data, version) if rel in ("index.html", "benchmarks.html") else {}
            site = LiveSite(data, version, running, plots)
            build = {
                "index.html": lambda: site.index(plots),
                "runs.html": site.runs_page,
                "benchmarks.html": site.benchmarks_page,
                "models.html": site.models_page,
            }
            build[rel]()
            return self._html(site.rendered[rel])
        site = LiveSite(data, version, running, {})
        if rel.startswith("runs/") and len(parts) >= 3:
            return self._run(site, parts, query)
        return _not_found()

    def _run(self, site: LiveSite, parts: list[str], query: dict[str, list[str]]) -> Response:
        page_dir, leaf = "/".join(parts[:-1]), parts[-1]
        if leaf == "evidence" or (len(parts) >= 2 and parts[-2] == "evidence"):
            page_dir = "/".join(parts[:-2])
        entry = site.entry_at(page_dir + "/index.html")
        if entry is None:
            return self._problem_page(site, parts) if leaf == "index.html" else _not_found()
        if leaf == "index.html":
            site.run_page(entry)
            return self._html(site.rendered[page_dir + "/index.html"])
        if leaf == "version.json":
            running = run_state(entry.record, entry.folder).endswith(" running")
            with contextlib.suppress(RecordError):  # the record as it is now (the data may be a moment old)
                running = run_state(load_record(entry.folder / "run.json"), entry.folder).endswith(" running")
            return self._json({"version": _stamp(run_files(entry.folder)), "running": running})
        if parts[-2] == "evidence":
            return self._evidence(site, entry, leaf)
        m = _SAMPLES.fullmatch(leaf)
        if m:
            return self._samples(site, entry, page_dir, m["name"], query)
        return _not_found()

    def _evidence(self, site: LiveSite, entry: RunEntry, name: str) -> Response:
        for v in entry.record.verdicts:
            for ref in v.evidence:
                found = site.evidence_file(entry, ref)
                if isinstance(found, Path) and _safe_name(found.name) == name:
                    if found.stat().st_size > MAX_EVIDENCE_BYTES:
                        return _not_found("too large")
                    kind = "application/json" if found.suffix == ".json" else "text/plain; charset=utf-8"
                    return Response(200, kind, found.read_bytes())
        return _not_found()

    def _samples(
        self, site: LiveSite, entry: RunEntry, page_dir: str, name: str, query: dict[str, list[str]]
    ) -> Response:
        logs = {_safe_name(log.name): log for log in eval_logs(entry.folder)}
        log = logs.get(name)
        if log is None:
            return _not_found()
        try:
            start = max(0, int(query.get("start", ["0"])[0]))
        except ValueError:
            start = 0
        start -= start % SAMPLES_PER_PAGE
        error = ""
        samples: list[SampleView] = []
        more = False
        try:
            samples, more = read_samples(Path(log.path), start)
        except Exception as exc:  # noqa: BLE001 - an unreadable log is shown on its page
            error = f"{type(exc).__name__}: {str(exc)[:2000]}"
        here = f"samples-{quote(name)}.html"
        rel = f"{page_dir}/{here}"
        spec = entry.record.spec
        html = site.render(
            "samples.html.j2",
            rel,
            f"{entry.label} · {spec.benchmark} · {spec.base_model} · {log.name}",
            live=None,
            log=log,
            error=error,
            samples=samples,
            first=start + 1 if samples else start,
            last=start + len(samples),
            more=more,
            per_page=SAMPLES_PER_PAGE,
            prev_href=f"{here}?start={start - SAMPLES_PER_PAGE}" if start > 0 else None,
            next_href=f"{here}?start={start + SAMPLES_PER_PAGE}" if more else None,
        )
        return self._html(html)

    def _problem_page(self, site: LiveSite, parts: list[str]) -> Response:
        """The page of a run folder the index could not use: why (a corrupt run.json, say)."""
        if len(parts) != 4:
            return _not_found()
        group, run = parts[1], parts[2]
        for g in self.root.iterdir() if self.root.is_dir() else ():
            if _safe_name(g.name) != group or not g.is_dir() or g.is_symlink():
                continue
            for r in g.iterdir():
                if _safe_name(r.name) != run or not r.is_dir() or r.is_symlink():
                    continue
                try:
                    load_record(r / "run.json")
                    why = "not ranked (see the problems on the leaderboard)"
                except RecordError as exc:
                    why = str(exc)
                html = site.render("problem.html.j2", "/".join(parts), f"{g.name}/{r.name}", live=None, why=why)
                return self._html(html)
        return _not_found()

    def _plot(self, name: str, data: ReportData, version: str) -> Response:
        plots = self.plots(data, version)
        stem, dot, ext = name.partition(".")
        if stem not in plots or ext not in ("png", "svg") or not dot:
            return _not_found()
        with self._lock:
            try:
                body = (self._plots_dir / f"{stem}.{ext}").read_bytes()
            except OSError:
                return _not_found()
        return Response(200, TYPES["." + ext], body)

    @staticmethod
    def _html(text: str) -> Response:
        return Response(200, TYPES[".html"], text.encode("utf-8"))

    @staticmethod
    def _json(value: Any) -> Response:
        return Response(200, TYPES[".json"], json.dumps(value).encode())
