"""Build the leaderboard from run folders on disk (the source of truth)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..domain import RunRecord
from ..results import RecordError, load_record
from .aggregate import LeaderboardRow, leaderboard_from_cells
from .scoring import Cell, score_cell


@dataclass
class ResultsScan:
    """What a results folder holds, and what could not be read (path + cause)."""

    records: list[RunRecord] = field(default_factory=list)
    baselines: dict[tuple[str, str, int | None], float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def scan_results(root: Path) -> ResultsScan:
    """Read every ``run.json`` and zero-shot baseline under ``root``; bad files become problems."""
    out = ResultsScan()
    root = Path(root)
    for path in sorted(root.glob("baseline_zeroshot/*/baseline.json")):
        try:
            b = json.loads(path.read_text())
            if b.get("score") is not None:
                out.baselines[(b["benchmark"], b["base_model"], b.get("limit"))] = float(b["score"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            out.problems.append(f"{path}: unreadable baseline ({exc})")
    for path in sorted(root.glob("*/*/run.json")):
        if path.parent.parent.name == "baseline_zeroshot":
            continue
        try:
            out.records.append(load_record(path))
        except RecordError as exc:
            out.problems.append(str(exc))
    return out


def cells_from_scan(scan: ResultsScan) -> list[Cell]:
    """Apply the per-cell fallback policy to every completed run."""
    cells = []
    for rec in scan.records:
        base = scan.baselines.get((rec.spec.benchmark, rec.spec.base_model, rec.spec.eval_limit))
        cells.append(score_cell(rec, base))
    return cells


def leaderboard(root: Path, weights: dict[str, float] | None = None) -> tuple[list[LeaderboardRow], list[Cell], ResultsScan]:
    """Rows ranked by score. Without ``weights``, benchmarks present are weighted equally."""
    scan = scan_results(root)
    cells = cells_from_scan(scan)
    if weights is None:
        benches = sorted({c.benchmark for c in cells})
        weights = {b: 1 / len(benches) for b in benches}
    baselines = {(b, m): s for (b, m, _), s in scan.baselines.items()}
    rows = leaderboard_from_cells(cells, baselines, weights) if cells else []
    return rows, cells, scan
