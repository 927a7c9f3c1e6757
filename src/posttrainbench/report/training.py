"""The training-loss curve of a run page: the curve :mod:`..results.loss_curve` finds, scaled into
an SVG box."""

from __future__ import annotations

from typing import NamedTuple

from ..results.loss_curve import LossCurve, find_loss_curve

__all__ = ["LossCurve", "LossCurveView", "find_loss_curve", "loss_curve_view"]

MAX_POINTS = 2000  # points drawn (a longer curve is thinned evenly; first and last kept)


class LossCurveView(NamedTuple):
    """What the run page draws: an SVG polyline in a 600 × 200 box, and its labels."""

    source: str
    x_label: str
    n_points: int
    polyline: str  # "x,y x,y …" in the viewBox
    x_min: str
    x_max: str
    loss_min: str
    loss_max: str
    first: str
    last: str


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def loss_curve_view(curve: LossCurve | None, width: int = 600, height: int = 200) -> LossCurveView | None:
    """The curve scaled into a ``width`` × ``height`` box (y grows down; a 4-unit margin), thinned
    to at most :data:`MAX_POINTS` points."""
    if curve is None or len(curve.points) < 2:
        return None
    pts = curve.points
    if len(pts) > MAX_POINTS:
        stride = (len(pts) - 1) / (MAX_POINTS - 1)
        pts = [pts[round(i * stride)] for i in range(MAX_POINTS)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 8) / (x1 - x0) if x1 > x0 else 0.0
    sy = (height - 8) / (y1 - y0) if y1 > y0 else 0.0
    poly = " ".join(f"{4 + (x - x0) * sx:.1f},{height - 4 - (y - y0) * sy:.1f}" for x, y in pts)
    return LossCurveView(
        source=curve.source,
        x_label=curve.x_label,
        n_points=len(curve.points),
        polyline=poly,
        x_min=_fmt(x0),
        x_max=_fmt(x1),
        loss_min=_fmt(y0),
        loss_max=_fmt(y1),
        first=_fmt(curve.points[0][1]),
        last=_fmt(curve.points[-1][1]),
    )
