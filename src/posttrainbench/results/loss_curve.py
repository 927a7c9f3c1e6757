"""The training-loss curve an agent left behind, found by one documented rule (the report draws it;
the live status line shows the latest point of the newest ``trainer_state.json``).

The rule (first that yields at least two points wins):

1. ``trainer_state.json`` (Hugging Face ``Trainer``) anywhere under the run's ``final_model/`` or
   its workspace ``task/``, at most :data:`MAX_DEPTH` folders down (breadth first; hidden
   folders such as ``.venv`` and :data:`SKIP_DIRS` are not entered): the ``log_history`` entries
   with a numeric ``loss`` and ``step``. Of several files, the one with the most points (then the
   newest).
2. A training log: the agent's raw output ``solve_out.txt`` and every ``*.log`` file in the
   workspace (same depth): lines that are a JSON object with a numeric ``loss`` (the reference
   agent prints ``{"event": "train", "step": …, "loss": …}``), or a Python dict as ``Trainer``
   prints it (``{'loss': 1.23, 'epoch': 0.5}``). The x value is ``step`` when the line has one,
   else the line's position among the logged points. Of several files, the one with the most
   points.

The workspace is the agent's, so every file is hostile: only regular files (no symlinks, FIFOs or
devices), at most :data:`MAX_FILE_BYTES` read of each, at most :data:`MAX_ENTRIES` folder entries
visited, long lines skipped. What it cannot see: losses printed only inside an LLM agent's tool
output (they are in its trace, not in a file), and logs in other formats (TensorBoard, W&B).
"""

from __future__ import annotations

import ast
import json
import math
import os
import stat
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

MAX_DEPTH = 6
MAX_ENTRIES = 5000  # folder entries visited in one run folder
MAX_FILE_BYTES = 20 * 2**20  # read of one state file or log (the head; the rest is not read)
MAX_LINE = 4000  # characters: a longer line is not a loss record
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})  # (and hidden folders: .venv, .cache)


class LossCurve(NamedTuple):
    """Loss points ``(x, loss)`` in file order, where they came from, and what x is."""

    source: str  # path relative to the run folder
    x_label: str  # "step" or "logged point"
    points: list[tuple[float, float]]


def _regular_files(root: Path, names: tuple[str, ...], suffix: str | None, budget: list[int]) -> list[Path]:
    """Regular files under ``root`` named one of ``names`` (or ending in ``suffix``), never through
    a symlink, within :data:`MAX_DEPTH` and the shared entry ``budget``."""
    found: list[Path] = []
    queue = deque([(root, 0)])  # breadth first: shallow files are found before the budget runs out
    while queue and budget[0] > 0:
        folder, depth = queue.popleft()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            budget[0] -= 1
            if budget[0] <= 0:
                break
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH and not e.name.startswith(".") and e.name not in SKIP_DIRS:
                        queue.append((Path(e.path), depth + 1))
                elif e.is_file(follow_symlinks=False) and (e.name in names or (suffix and e.name.endswith(suffix))):
                    found.append(Path(e.path))
            except OSError:
                continue
    return found


def _read_head(path: Path) -> str | None:
    """The first :data:`MAX_FILE_BYTES` of a regular file (not a symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device would block or never end
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _from_trainer_state(text: str) -> list[tuple[float, float]]:
    try:
        history = json.loads(text).get("log_history")
    except (ValueError, AttributeError, RecursionError):
        return []
    points = []
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict):
            step, loss = _number(entry.get("step")), _number(entry.get("loss"))
            if step is not None and loss is not None:
                points.append((step, loss))
    return points


def _from_log(text: str) -> tuple[list[tuple[float, float]], bool]:
    """Loss points of a log, and whether every one had a step."""
    points: list[tuple[float, float]] = []
    all_steps = True
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{") or not line.endswith("}") or len(line) > MAX_LINE or "loss" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            try:
                record = ast.literal_eval(line)  # Trainer prints a Python dict
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                continue
        if not isinstance(record, dict):
            continue
        loss = _number(record.get("loss"))
        if loss is None:
            continue
        step = _number(record.get("step"))
        all_steps &= step is not None
        points.append((step if step is not None else float(len(points) + 1), loss))
    if not all_steps:  # mixed: number them all by position
        points = [(float(i + 1), loss) for i, (_, loss) in enumerate(points)]
    return points, all_steps


def find_loss_curve(run_folder: Path) -> LossCurve | None:
    """The run's training-loss curve by the rule in the module doc, or None."""
    run_folder = Path(run_folder)
    budget = [MAX_ENTRIES]
    best: tuple[int, float, LossCurve] | None = None
    for sub in ("final_model", "task"):
        for path in _regular_files(run_folder / sub, ("trainer_state.json",), None, budget):
            text = _read_head(path)
            points = _from_trainer_state(text) if text else []
            if len(points) >= 2:
                key = (len(points), path.stat().st_mtime)
                if best is None or key > best[:2]:
                    best = (*key, LossCurve(str(path.relative_to(run_folder)), "step", points))
    if best is not None:
        return best[2]
    logs = [run_folder / "solve_out.txt", *_regular_files(run_folder / "task", (), ".log", budget)]
    found: LossCurve | None = None
    for path in logs:
        text = _read_head(path)
        if not text:
            continue
        points, stepped = _from_log(text)
        if len(points) >= 2 and (found is None or len(points) > len(found.points)):
            found = LossCurve(str(path.relative_to(run_folder)), "step" if stepped else "logged point", points)
    return found


def latest_trainer_loss(workspace: Path) -> tuple[str, float] | None:
    """``("step N", loss)`` of the last logged loss in the newest ``trainer_state.json`` one or two
    folders down ``workspace`` (HF Trainer's output folder and its ``checkpoint-*``), read by the
    same hostile-file rules as :func:`find_loss_curve` (no symlink, nothing outside the workspace)."""
    root = Path(workspace).resolve()
    newest: tuple[float, Path] | None = None
    for pattern in ("*/trainer_state.json", "*/checkpoint-*/trainer_state.json"):
        for path in root.glob(pattern):
            try:
                st = path.lstat()
                inside = path.resolve().is_relative_to(root)  # no folder on the way is a link out
            except OSError:
                continue
            if inside and stat.S_ISREG(st.st_mode) and (newest is None or st.st_mtime > newest[0]):
                newest = (st.st_mtime, path)
    text = _read_head(newest[1]) if newest else None
    points = _from_trainer_state(text) if text else []
    return (f"step {int(points[-1][0])}", points[-1][1]) if points else None
