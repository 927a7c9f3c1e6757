"""Partial-transfer statistics of the lineage gate: how much of a forbidden checkpoint's delta is in
the final model, tensor by tensor and row by row.

With ``b`` the base, ``f`` the final model and ``g`` a forbidden checkpoint (all one tensor, or one
row of it), the fine-tuning delta is ``D = f - b`` and the forbidden delta ``F = g - b``. ``D`` is
fitted by least squares on the two directions ``{b, F}``::

    D ~ beta_b * b + beta_F * F

``beta_F`` is the share of the forbidden delta transferred: an interpolation
``f = b + a (g - b) + noise`` gives ``beta_F ~ a`` whatever the noise (independent noise is
orthogonal to ``F`` in high dimension); a transplanted tensor ``f = g`` gives ``beta_F = 1``;
a rescaled transplant ``f = s g`` gives ``beta_F = s`` (the ``b`` direction absorbs
``(s - 1) b``), a sign flip ``-1``. Honest fine-tunes move in directions of their own:
``beta_F`` near 0. Fitting on ``b`` too keeps weight decay / norm shrinkage (``D ~ -lambda b``)
out of ``beta_F``. ``share_F`` is the part of ``||D||^2`` the ``F`` direction explains beyond ``b``.

Every statistic is computed from Gram matrices of ``[b, D, F_1..F_k]`` (per row, then summed per
tensor), accumulated in float64; this module only does the algebra on them.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Gram index of the base and of the delta; forbidden deltas follow (F_i at 2 + i).
IB, ID = 0, 1
# A 2-D fit whose determinant is below this fraction of bb * FF treats b and F as parallel.
_PARALLEL = 1e-9


def fit(
    bb: torch.Tensor, bf: torch.Tensor, ff: torch.Tensor, db: torch.Tensor, df: torch.Tensor, dd: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares fit of D on {b, F}, elementwise over any shape (float64 Gram entries).

    Returns ``(beta_F, residual_sq, share_F)``: the coefficient of ``F``, ``||D - fit||^2``, and
    the fraction of ``||D||^2`` that ``F`` explains beyond ``b`` (0 where ``D`` or ``F`` is 0).
    """
    import torch

    det = bb * ff - bf * bf
    two_d = (det > _PARALLEL * bb * ff) & (ff > 0)
    safe_det = torch.where(two_d, det, torch.ones_like(det))
    beta_f2 = (df * bb - db * bf) / safe_det
    beta_b2 = (db * ff - df * bf) / safe_det
    explained2 = beta_b2 * db + beta_f2 * df
    # F (nearly) parallel to b, or b == 0: fit on F alone.
    safe_ff = torch.where(ff > 0, ff, torch.ones_like(ff))
    beta_f1 = torch.where(ff > 0, df / safe_ff, torch.zeros_like(ff))
    explained1 = beta_f1 * df
    beta_f = torch.where(two_d, beta_f2, beta_f1)
    explained = torch.where(two_d, explained2, explained1)
    residual = (dd - explained).clamp_min(0.0)
    safe_bb = torch.where(bb > 0, bb, torch.ones_like(bb))
    explained_b = torch.where(bb > 0, db * db / safe_bb, torch.zeros_like(bb))
    safe_dd = torch.where(dd > 0, dd, torch.ones_like(dd))
    share = torch.where(dd > 0, ((explained - explained_b) / safe_dd).clamp(0.0, 1.0), torch.zeros_like(dd))
    return beta_f, residual, share


def row_transfer(
    gram: torch.Tensor, i: int, cols: int, beta_min: float, residual_max: float
) -> tuple[float, float, float, float]:
    """Per-row transfer from forbidden checkpoint ``i`` in one block of rows.

    ``gram`` is the (rows, m, m) float64 Gram of ``[b, D, F_1..]`` per row, ``cols`` the row
    length. Each row is fitted on its own, so a per-row rescaling or sign flip of a transferred
    row (which neurons and heads allow without changing the function) keeps ``|beta_F|``. Returns
    ``(carried, ff, ff_beta_sq, ff_var)``: ``||F||^2`` of the rows carried over (``|beta_F| >=
    beta_min`` with at most ``residual_max`` of ``||D_row||^2`` left: the final row is the
    forbidden row up to a scale and a small perturbation), ``||F||^2`` of all rows, and the
    ``||F||^2``-weighted sums of ``beta_F^2`` and of its least-squares variance
    ``residual / (cols - 2) * bb / det`` (the noise floor of ``beta_F^2``: an honest delta with
    no ``F`` component still gives ``beta_F^2 ~ var``; subtracting it leaves an unbiased estimate).
    """
    import torch

    j = 2 + i
    bb, bf, ff = gram[:, IB, IB], gram[:, IB, j], gram[:, j, j]
    db, df, dd = gram[:, ID, IB], gram[:, ID, j], gram[:, ID, ID]
    beta, residual, _ = fit(bb, bf, ff, db, df, dd)
    carried = (beta.abs() >= beta_min) & (residual <= residual_max * dd) & (dd > 0) & (ff > 0)
    det = bb * ff - bf * bf
    two_d = (det > _PARALLEL * bb * ff) & (ff > 0)
    dof = max(1, cols - 2)
    # Var(beta_F) = s^2 * [(X^T X)^-1]_FF with s^2 = residual / dof; 1 / ff for a one-direction fit.
    inv = torch.where(two_d, bb / torch.where(two_d, det, torch.ones_like(det)), 1.0 / ff.clamp_min(1e-300))
    var = torch.where(ff > 0, residual / dof * inv, torch.zeros_like(ff))
    return (
        float(ff[carried].sum()),
        float(ff.sum()),
        float((ff * beta * beta).sum()),
        float((ff * var).sum()),
    )


# Thresholds, calibrated in docs/integrity.md ("Partial transfer"): honest fine-tunes (full, LoRA
# merged, long) against synthetic transfers at 5/10/20/50 %.
ROW_BETA = 0.5  # a row is carried over when |beta_F| >= this ...
ROW_RESIDUAL = 0.25  # ... and the fit leaves at most this share of the row's ||D||^2
TENSOR_BETA = 0.5  # a tensor is transplanted when |beta_F| >= this ...
ROW_SHARE = 0.5  # ... or its carried-over rows hold at least this share of ||F||^2
MIN_NUMEL = 1024  # smaller tensors (norm weights, biases) count only through their layer
GLOBAL_BETA = 0.07  # interpolated: ||F||^2-weighted mean |beta_F| over the model, summed over forbidden
LAYER_BETA = 0.25  # interpolated: the same mean over one layer's tensors
FOREIGN_TENSOR_REL = 0.8  # a tensor this far from the base (relative L2) was replaced wholesale ...
FAR_RESIDUAL = 0.25  # ... when the fit on {b, F} leaves more than this share of its ||D||^2 unexplained

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\.")


def layer_of(name: str) -> str:
    """``layer N`` for a tensor of the N-th block, else the tensor's own name (embeddings, head)."""
    m = _LAYER.search(name)
    return f"layer {m.group(1)}" if m else name


def _rms(weighted_sq: float, weight: float) -> float:
    return math.sqrt(max(0.0, weighted_sq / weight)) if weight > 0 else 0.0


def analyse_transfer(tensors: list[dict[str, Any]], n_forbidden: int) -> list[dict[str, Any]]:
    """Per forbidden checkpoint: global and per-layer transferred share, transplanted tensors.

    ``tensors``: one dict per compared tensor with ``name``, ``numel``, ``rel`` (relative L2
    distance to the base; optional), ``gram`` (summed m x m float64), ``present`` (forbidden
    indices in the Gram) and ``rows`` (per present forbidden, the sums of :func:`row_transfer`).
    The transferred share of a tensor, a layer or the model is the ``||F||^2``-weighted root mean
    square of the per-row ``beta_F``, noise floor removed: an interpolation at ``a`` gives ``a``
    (with per-row rescaling and sign flips too), an honest fine-tune ~0.
    """

    out: list[dict[str, Any]] = []
    for i in range(n_forbidden):
        w_sum = 0.0
        wb_sum = 0.0
        share_num = 0.0
        dd_sum = 0.0
        layers: dict[str, list[float]] = {}
        per: list[dict[str, Any]] = []
        transplanted: list[str] = []
        for t in tensors:
            if i not in t["present"]:
                continue
            k = t["present"].index(i)
            j = 2 + k
            g: torch.Tensor = t["gram"]
            beta_t, res_t, share_t = fit(g[IB, IB], g[IB, j], g[j, j], g[ID, IB], g[ID, j], g[ID, ID])
            ff = float(g[j, j])
            beta = float(beta_t)
            carried, row_ff, ff_beta_sq, ff_var = t["rows"][k]
            row_share = carried / row_ff if row_ff > 0 else 0.0
            # the tensor's mean square beta (rows weighted by ||F_row||^2, noise floor removed),
            # then tensors weighted by their parameter count: a norm vector whose entries are ~1
            # must not outweigh a matrix whose entries are ~0.02
            msq = (ff_beta_sq - ff_var) / row_ff if row_ff > 0 else 0.0
            # A tensor moved as far as its own size (rel > FOREIGN_TENSOR_REL) with most of that
            # move in directions of its own (unexplained by b and F) was trained from scratch or
            # replaced: the interpolation model f = b + a F + small noise does not apply (the
            # "noise" is the whole tensor, and the per-row fits measure it, not F); a replacement
            # is judged by the transplanted and replaced checks, which still see this tensor. A
            # rescaled interpolation s (b + a F), far when s >= 1.8, is explained by {b, F} and
            # stays in (reordered neurons are put back in place before: see lineage_alignment).
            dd = float(g[ID, ID])
            far = t.get("rel", 0.0) > FOREIGN_TENSOR_REL and float(res_t) > FAR_RESIDUAL * dd
            n = t["numel"] if row_ff > 0 and not far else 0
            w_sum += n
            wb_sum += n * msq
            dd_sum += dd
            share_num += float(share_t) * dd
            group = layer_of(t["name"])
            if group.startswith("layer ") or t["numel"] >= MIN_NUMEL:
                lay = layers.setdefault(group, [0.0, 0.0])
                lay[0] += n
                lay[1] += n * msq
            rms = math.sqrt(max(0.0, msq))
            per.append(
                {
                    "name": t["name"],
                    "beta": round(beta, 4),
                    "row_rms_beta": round(rms, 4),
                    "row_carried_share": round(row_share, 4),
                    "left_out_far": far,
                }
            )
            if ff > 0 and t["numel"] >= MIN_NUMEL and (abs(beta) >= TENSOR_BETA or row_share >= ROW_SHARE):
                transplanted.append(t["name"])
        layer_beta = {name: _rms(wb, w) for name, (w, wb) in layers.items()}
        out.append(
            {
                "transferred_share": _rms(wb_sum, w_sum),
                "delta_explained_share": share_num / dd_sum if dd_sum > 0 else 0.0,
                "layer_share": layer_beta,
                "transplanted": transplanted,
                "per_tensor": per,
            }
        )
    return out
