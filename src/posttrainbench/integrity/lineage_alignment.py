"""Undo the function-preserving reshuffles of a weight matrix before the lineage gate measures it.

A transformer computes the same function when the neurons of an MLP are permuted (rows of
``up``/``gate``, columns of ``down``), when a neuron's input row is scaled by ``s`` and its output
column by ``1/s`` (the gated product is linear in ``up``), when ``q`` is scaled up and ``k`` down,
or when attention heads are reordered. Each moves a tensor far from the base (relative distance
well above 1) while it keeps, row by row, everything it carried: a forbidden checkpoint's delta
mixed in before the reshuffle would be left out of the interpolation share, which ignores tensors
that far from the base (:data:`.lineage_projection.FOREIGN_TENSOR_REL`).

:func:`align_to_base` maps such a tensor back onto the base's coordinates: along each axis it
matches every vector (row, then column) to the base vector it is most parallel to, and if that
matching is confident (most matched pairs have ``|cos| >= ALIGN_COS``) and one to one, it puts
the vectors back in the base's order and divides out each one's scale and sign (the
least-squares factor onto its base vector). A tensor trained from scratch, or trained far from
its start, has no such matching (unrelated vectors in high dimension have ``|cos| ~ 1/sqrt(n)``)
and is left as it is.

Matching uses a random sketch of the vectors (``SKETCH_DIM`` Gaussian projections: cosines are
kept within ~``1/sqrt(SKETCH_DIM)``), so an axis of ``n`` vectors costs ``n^2 * SKETCH_DIM``
multiply-adds; axes longer than ``MAX_AXIS`` (a vocabulary) are not permuted by any
function-preserving reshuffle and are not matched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ALIGN_COS = 0.5  # a matched pair: |cos| at least this (an interpolation at a <= 0.5 keeps ~0.9)
ALIGN_SHARE = 0.9  # ... for at least this share of the axis' vectors
MAX_AXIS = 32768  # longer axes (vocabularies) are never reshuffled by a function-preserving change
SKETCH_DIM = 256
_BLOCK = 4096  # rows of the sketched cosine matrix computed at once


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _match(f: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Match the rows of ``f`` to those of ``b`` (same shape, float32).

    Returns ``(order, scale)`` with ``f[order[j]] ~ scale[j] * b[j]`` for every base row ``j``,
    or None when the matching is not confident or not one to one.
    """
    import torch

    n, c = f.shape
    if n > MAX_AXIS or n < 2:
        return None
    if c > SKETCH_DIM:
        gen = torch.Generator().manual_seed(c)
        proj = torch.randn(c, SKETCH_DIM, generator=gen) / SKETCH_DIM**0.5
        fs, bs = _unit(f @ proj), _unit(b @ proj)
    else:
        fs, bs = _unit(f), _unit(b)
    best = torch.empty(n, dtype=torch.long)
    for s in range(0, n, _BLOCK):
        best[s : s + _BLOCK] = (fs[s : s + _BLOCK] @ bs.T).abs().argmax(dim=1)
    # exact cosine of each final row with the base row it matched
    cos = (_unit(f) * _unit(b)[best]).sum(dim=1)
    confident = cos.abs() >= ALIGN_COS
    if float(confident.float().mean()) < ALIGN_SHARE or torch.unique(best).numel() != n:
        return None
    order = torch.empty(n, dtype=torch.long)
    order[best] = torch.arange(n)
    fo, bo = f[order], b
    scale = (fo * bo).sum(dim=1) / (bo * bo).sum(dim=1).clamp_min(1e-30)
    # a row whose match is not confident keeps its scale: only matched rows are rescaled
    scale = torch.where(confident[order] & (scale.abs() > 1e-12), scale, torch.ones_like(scale))
    return order, scale


def align_to_base(final: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """``final`` (a 2-D weight) in the base's row and column order, each row's and column's
    scale and sign divided out, or None when neither axis matches (nothing to undo).

    The returned info says what was undone per axis (``permuted``: vectors moved; ``rescaled``:
    factors off 1 by more than 5 %).
    """
    import torch

    if final.dim() != 2 or tuple(final.shape) != tuple(base.shape):
        return None
    f, b = final.float(), base.float()
    info: dict[str, Any] = {}
    changed = False
    for axis in ("rows", "columns"):
        fa, ba = (f, b) if axis == "rows" else (f.T, b.T)
        m = _match(fa, ba)
        if m is None:
            continue
        order, scale = m
        permuted = bool((order != torch.arange(order.numel())).any())
        rescaled = bool(((scale - 1).abs() > 0.05).any())
        if not (permuted or rescaled):
            continue
        fa = fa[order] / scale[:, None]
        f = fa if axis == "rows" else fa.T
        info[axis] = {"permuted": permuted, "rescaled": rescaled}
        changed = True
    return (f.contiguous(), info) if changed else None
