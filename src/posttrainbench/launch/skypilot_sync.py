"""Bringing SkyPilot jobs' run folders back, through a bucket.

On the job's machine, after the worker, ``python -m posttrainbench.launch.skypilot_sync push RUN
DEST`` copies the run folder into the bucket's mount as ``<run>@<SkyPilot task id>-<time>`` with
:func:`posttrainbench.results.transfer.copy_run_folder` and writes ``<run>@<id>.done`` last, so
an attempt still being written is never taken. Here, :func:`pull_results` copies each task's
newest finished attempt from the mirror (where this machine sees the bucket) into the results
folder: chunk hashes checked, ``final_model/`` held to the hashes its ``run.json`` recorded,
resumable, and the run folder replaced by a complete copy only. SkyPilot moves the bytes between
the job and the bucket; these checks are what we add.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..fsutil import atomic_write_text
from ..results.transfer import TransferError, copy_run_folder
from .plan import plan_tasks
from .skypilot_spec import run_folder_rel
from .sweep import Sweep

#: Written into a pulled run folder: which attempt it came from (the pull is skipped when it is current).
PULLED_MARK = ".ptb-pulled"
DONE_SUFFIX = ".done"


def push(run_folder: Path, dest: Path) -> None:
    """On the job's machine: copy the run folder into the mounted bucket as ``dest``, then write
    ``dest.done`` (the pull takes only attempts whose marker exists)."""
    copy_run_folder(run_folder, dest, in_place=True)  # a bucket mount cannot rename a folder
    atomic_write_text(dest.with_name(dest.name + DONE_SUFFIX), "done\n")


def pull_results(sweep: Sweep, mirror: Path) -> list[str]:
    """Bring each task's newest finished attempt from ``mirror`` into the results folder; return
    the run folders brought (relative). The run folder is replaced by a complete copy only.

    An attempt that fails its checks is left where it is (so is the local run folder); the others
    are still pulled, then one :class:`TransferError` names every refused attempt."""
    pulled: list[str] = []
    refused: list[str] = []
    for task in plan_tasks(sweep):
        rel = run_folder_rel(sweep, task)
        parent, name = (mirror / rel).parent, (mirror / rel).name
        if not parent.is_dir():
            continue
        marks = (p for p in parent.glob(f"{name}@*{DONE_SUFFIX}") if p.is_file())
        done = sorted(marks, key=lambda p: (p.stat().st_mtime_ns, p.name))  # newest last
        if not done:
            continue
        attempt = done[-1].name[: -len(DONE_SUFFIX)]
        mark = task.folder / PULLED_MARK
        if mark.is_file() and mark.read_text(encoding="utf-8").strip() == attempt:
            continue
        incoming = task.folder.with_name(f".{task.folder.name}.incoming")
        if incoming.exists():  # complete but not swapped in when the last pull stopped
            shutil.rmtree(incoming)
        try:
            copy_run_folder(parent / attempt, incoming)
        except TransferError as exc:
            refused.append(f"{parent / attempt}: {exc}")
            continue
        atomic_write_text(incoming / PULLED_MARK, attempt + "\n")
        old = task.folder.with_name(f".{task.folder.name}.old")
        if task.folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(task.folder, old)
        os.replace(incoming, task.folder)
        shutil.rmtree(old, ignore_errors=True)
        pulled.append(rel)
    if refused:
        raise TransferError(f"{len(refused)} attempt(s) in {mirror} refused (the rest pulled): " + "; ".join(refused))
    return pulled


def main(argv: list[str] | None = None) -> int:
    """``python -m posttrainbench.launch.skypilot_sync push RUN_FOLDER DEST`` (run by the job)."""
    import argparse

    parser = argparse.ArgumentParser(prog="posttrainbench.launch.skypilot_sync")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("push", help="copy a run folder into the sync bucket's mount")
    p.add_argument("run_folder", type=Path)
    p.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    push(args.run_folder.expanduser(), args.dest.expanduser())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
