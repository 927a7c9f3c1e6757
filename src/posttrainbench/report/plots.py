"""The report's figures, drawn with matplotlib (Agg, no display) as PNG and SVG files."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .data import ReportData

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _label(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would otherwise start mathtext (and may not parse)."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=110, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def plot_scores(data: ReportData, out_dir: Path) -> list[Path]:
    """Agent score (mean over repeats) with sample-std error bars; unscored agents left out."""
    import matplotlib.pyplot as plt

    rows = [r for r in data.agents if r.score is not None]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 2), 3.6))
    try:
        names = [_label(r.label) for r in rows]
        scores = [r.score for r in rows if r.score is not None]  # every row's (rows are the scored agents)
        errs = [r.std if r.std is not None else 0.0 for r in rows]
        bars = ax.bar(range(len(rows)), scores, yerr=errs, capsize=4, color="#4c72b0")
        for bar, row in zip(bars, rows):
            if row.std is None:  # one repeat: no error bar, say so
                ax.annotate(
                    "n=1",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="#555",
                )
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
        ax.set_ylabel("agent score (mean ± std over repeats)")
        ax.set_title("Score per agent")
        if not rows:
            ax.text(0.5, 0.5, "no agent has a complete score", ha="center", va="center", transform=ax.transAxes)
        ax.grid(axis="y", alpha=0.3)
        return _save(fig, out_dir, "scores")
    finally:
        plt.close(fig)


def plot_time_vs_score(data: ReportData, out_dir: Path) -> list[Path]:
    """Mean time used per run (hours) against agent score, one point per agent."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    try:
        plotted = 0
        for row in data.agents:
            if row.score is None or row.mean_time_s is None:
                continue
            hours = row.mean_time_s / 3600
            ax.errorbar([hours], [row.score], yerr=[row.std or 0.0], fmt="o", capsize=3)
            ax.annotate(_label(row.label), (hours, row.score), textcoords="offset points", xytext=(5, 4), fontsize=8)
            plotted += 1
        if not plotted:
            ax.text(
                0.5,
                0.5,
                "no agent with both a score and a recorded time",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.set_xlabel("mean time used per run (hours)")
        ax.set_ylabel("agent score")
        ax.set_title("Time used vs score")
        ax.grid(alpha=0.3)
        return _save(fig, out_dir, "time_vs_score")
    finally:
        plt.close(fig)


def plot_heatmap(data: ReportData, out_dir: Path) -> list[Path]:
    """Agents x benchmarks: mean cell score over models and repeats; '*' marks fallback cells."""
    import matplotlib.pyplot as plt
    import numpy as np

    benches = data.benchmarks
    rows = data.agents
    values = np.full((max(len(rows), 1), max(len(benches), 1)), np.nan)
    for i, row in enumerate(rows):
        for j, b in enumerate(benches):
            v = row.per_benchmark.get(b)
            if v is not None and math.isfinite(v):
                values[i, j] = v
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(benches) + 2.5), max(2.5, 0.5 * len(rows) + 1.5)))
    try:
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("#dddddd")
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=max(1.0, top), aspect="auto")
        fig.colorbar(image, ax=ax, label="mean cell score")
        ax.set_xticks(range(len(benches)), [_label(b) for b in benches], rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [_label(r.label) for r in rows])
        for i, row in enumerate(rows):
            for j, b in enumerate(benches):
                v = values[i, j]
                mark = "*" if data.fallback_count(row.label, None, b) else ""
                text = "—" if math.isnan(v) else f"{v:.2f}{mark}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if not math.isnan(v) and v > 0.6 else "white" if not math.isnan(v) else "black",
                )
        ax.set_title("Per-benchmark score (* = includes fallback cells, — = missing)")
        return _save(fig, out_dir, "heatmap")
    finally:
        plt.close(fig)


PLOTS: dict[str, tuple[str, Callable[[ReportData, Path], list[Path]]]] = {
    "scores": ("Score per agent (error bars: sample std over repeats)", plot_scores),
    "time_vs_score": ("Time used vs score", plot_time_vs_score),
    "heatmap": ("Per-benchmark scores", plot_heatmap),
}


def draw_all(data: ReportData, out_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Draw every plot into ``out_dir``; return ``({stem: caption}, problems)``.

    A plot that fails is reported, never fatal: the rest of the site is still worth having.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    problems: list[str] = []
    for stem, (caption, draw) in PLOTS.items():
        try:
            draw(data, out_dir)
            made[stem] = caption
        except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the report
            problems.append(f"plot {stem!r} failed: {type(exc).__name__}: {exc}")
    return made, problems
