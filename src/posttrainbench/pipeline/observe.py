"""The solve phase's independent log: start the kernel-fed observer (``sandbox.observer``) before
the agent starts, stop it after, and write ``observed.jsonl`` (processes, file writes, and the
egress proxy's requests merged by time). The content of every file the agent wrote goes to the
contamination scan while the run goes on (``RunPaths.preserved``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..integrity.contamination.preserve import PreservingScan  # STAND-IN: IncrementalScan after the merge
from ..results.layout import RunPaths
from ..sandbox.observer import Observer


class SolveObserver:
    """Observes one solve; :meth:`finish` writes the log (always: unavailable is said in it)."""

    def __init__(self, paths: RunPaths, workspace: Path, argv: list[str]) -> None:
        self.paths = paths
        self.argv = argv
        paths.sandbox_tmp.mkdir(parents=True, exist_ok=True)
        paths.sandbox_tmp.chmod(0o1777)
        self.sink = PreservingScan(paths.preserved)
        self.observer = Observer([workspace, paths.sandbox_tmp], sink=self.sink)
        self.unavailable = self.observer.start()

    def finish(self) -> None:
        """Stop observing and write ``observed.jsonl``."""
        header: dict[str, Any] = {"harness_argv": self.argv, "preserved_skipped": self.sink.skipped}
        if self.unavailable is not None:
            header |= {"available": False, "reason": self.unavailable}
            self.observer.stats.errors.append(self.unavailable)
        else:
            self.observer.stop()
            header["available"] = True
        self.observer.write_log(self.paths.observed, extra=egress_records(self.paths.egress_log), header=header)


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
