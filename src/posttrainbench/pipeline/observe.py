"""The solve phase's independent log: start the kernel-fed observer (``sandbox.observer``) before
the agent starts, stop it after, and write ``observed.jsonl`` (processes, file writes, and the
egress proxy's requests merged by time). The content of every file the agent wrote goes to the
contamination scan while the run goes on (``RunPaths.preserved``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..fsutil import sha256_file
from ..integrity.contamination.preserve import PreservingScan  # STAND-IN: IncrementalScan after the merge
from ..results.layout import RunPaths
from ..sandbox.observer import Observer

#: Backends whose processes the observer finds (this process's descendants in their own pid namespace).
OBSERVABLE = frozenset({"bwrap", "apptainer"})


class SolveObserver:
    """Observes one solve; :meth:`finish` writes the log (always: unavailable is said in it)."""

    def __init__(self, paths: RunPaths, workspace: Path, argv: list[str], backend: str) -> None:
        self.paths = paths
        self.workspace = workspace
        self.argv = argv
        paths.sandbox_tmp.mkdir(parents=True, exist_ok=True)
        paths.sandbox_tmp.chmod(0o1777)
        self.sink = PreservingScan(paths.preserved)
        self.observer = Observer([workspace, paths.sandbox_tmp], sink=self.sink)
        self.unavailable: str | None = None
        if backend not in OBSERVABLE:
            self.unavailable = (
                f"the {backend} backend's processes are not this process's descendants in a pid namespace"
            )
        else:
            self.unavailable = self.observer.start()

    def finish(self) -> None:
        """Stop observing and write ``observed.jsonl``."""
        header: dict[str, Any] = {"harness_argv": self.argv, "preserved_skipped": self.sink.skipped}
        if self.unavailable is not None:
            header |= {"available": False, "reason": self.unavailable}
            self.observer.stats.error(self.unavailable)
        else:
            self.observer.stop()
            header["available"] = True
            header["preserved_dropped"] = self._drop_still_present()
        self.observer.write_log(self.paths.observed, extra=egress_records(self.paths.egress_log), header=header)

    def _drop_still_present(self) -> int:
        """Drop the preserved copies of contents still in place (the scan reads them there): what
        stays is what the agent deleted or overwrote. Returns how many were dropped."""
        present: set[str] = set()
        gone: set[str] = set()
        digests: dict[Path, str | None] = {}
        for rec in self.observer.records:
            if rec.get("kind") != "write" or rec.get("sha256") not in self.sink.kept:
                continue  # only what was copied is compared (never a large file read again)
            host = self._host_path(str(rec["path"]))
            if host not in digests:
                ok = host.is_file() and not host.is_symlink() and host.stat().st_size == rec["size"]
                digests[host] = sha256_file(host) if ok else None
            (present if digests[host] == rec["sha256"] and not rec.get("deleted") else gone).add(rec["sha256"])
        drop = present - gone
        for h in drop:
            self.sink.discard(h)
        return len(drop)

    def _host_path(self, inside: str) -> Path:
        """Where a path the sandbox wrote is on the host (its /tmp is ``sandbox_tmp``; the
        workspace, bound at its own path, may itself lie under /tmp)."""
        if inside.startswith(str(self.workspace) + "/"):
            return Path(inside)
        if inside.startswith("/tmp/"):
            return self.paths.sandbox_tmp / inside[len("/tmp/") :]
        return Path(inside)


def egress_records(log: Path) -> Iterator[dict[str, Any]]:
    """The egress proxy's lines (``<utc time>\\tALLOW|DENY\\t<method>\\t<target>\\t<detail>``) as records."""
    if not log.is_file():
        return
    for line in log.read_text(encoding="utf-8", errors="replace").split("\n"):
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        try:
            t = datetime.fromisoformat(parts[0]).timestamp()
        except ValueError:
            continue
        yield {"t": t, "kind": "net", "decision": parts[1], "method": parts[2], "target": parts[3],
               "detail": parts[4] if len(parts) > 4 else ""}  # fmt: skip
