"""Undo the function-preserving mixing of rows inside attention heads before the lineage gate
measures a tensor.

Attention leaves each head's coordinates free. For every key/value head, ``v' = A v`` (the head's
rows of ``v_proj``) with ``o' = o A^-1`` (the matching columns of ``o_proj`` for every query head
of the group) computes the same function for *any* invertible ``A``; without q/k norms, each RoPE
frequency pair of ``q`` (dims ``i`` and ``i + head_dim/2``) can be rotated and scaled by ``M`` and
the same pair of ``k`` by ``M^-T`` (it commutes with RoPE); heads may be reordered too. A forbidden
tensor (or an interpolation toward one) mixed this way is far from the base and its rows are no
forbidden rows: the per-row transfer statistics and the row signatures of ``replaced`` see nothing.

What such a mixing keeps is each head's *row space*: ``A v`` spans what ``v`` spans.
:func:`align_heads` therefore compares subspaces, block of ``head_dim`` rows by block (columns for
an output projection): for every base block ``b_j`` it finds the final block ``f_i`` whose row
space holds most of ``b_j``'s energy, ``||b_j P_i||^2 / ||b_j||^2`` (``P_i`` the orthogonal
projector onto ``rowspace(f_i)``), and, where that share is at least ``HEAD_EXPLAINED`` and the
matching is one to one, replaces block ``j`` by ``b_j P_i``: the least-squares ``X f_i ~ b_j``
over every ``head_dim x head_dim`` map ``X``, i.e. the final block put back into the base's
coordinates. If ``f_i = A (b_j + F)``, then ``b_j P_i ~ b_j + F_perp`` (to first order): the
delta comes back, less its part inside the base block's own row space (a share ``head_dim /
width`` of a delta in a direction of its own; 5 % for Qwen3-4B, 25 % for the tiny test models).

A block trained from scratch spans an unrelated subspace: it holds ``head_dim / width`` of a base
block's energy (unrelated subspaces in high dimension), far under ``HEAD_EXPLAINED``, and is left as
it is. The realigned block is built from the base's rows and the final block's subspace only, so
realignment never puts a forbidden direction where the final tensor had none.

Cost: one batched QR of the final blocks (``heads * head_dim^2 * width``) and the energies of the
base blocks on the diagonal; only blocks that do not match in place are tried against every final
block (``(heads * head_dim)^2 * width`` multiply-adds when none does: a tensor trained from scratch
or with reordered heads).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

HEAD_EXPLAINED = 0.75  # a base block matched: its final block's row space holds >= 75 % of its energy
MAX_SUBSPACE_SHARE = 0.5  # head_dim / width above this: a random subspace already holds that much
_RANK_TOL = 1e-6  # singular values below this fraction of the block's largest span nothing
_CHUNK = 1 << 22  # elements of the energy matrix computed at once

# Which axis of an attention tensor holds the heads: the rows of the input projections, the
# columns of the output projection.
_ROWS = re.compile(r"(?:attn|attention).*\.(?:q_proj|k_proj|v_proj|qkv_proj|query_key_value|query|key|value)\.weight$")
_COLUMNS = re.compile(r"(?:attn|attention).*\.(?:o_proj|out_proj|dense)\.weight$")


def head_axis(name: str) -> str | None:
    """``rows`` or ``columns`` for an attention projection named like Llama/Qwen/Mistral/NeoX ones,
    else None (MLP and embedding tensors mix no rows without changing the function)."""
    if _ROWS.search(name):
        return "rows"
    if _COLUMNS.search(name):
        return "columns"
    return None


def _blocks_basis(f: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Orthonormal bases of each block's row space: (heads, head_dim, width), from one batched QR
    (backward stable: an ill-conditioned mixing map does not blur the subspace); directions of a
    rank-deficient block (``|R_kk|`` below ``_RANK_TOL`` of the block's largest) zeroed."""
    import torch

    q, r = torch.linalg.qr(f.reshape(-1, head_dim, f.shape[1]).transpose(1, 2))
    diag = r.diagonal(dim1=1, dim2=2).abs()
    keep = diag > _RANK_TOL * diag.amax(dim=1, keepdim=True).clamp_min(1e-30)
    return (q * keep[:, None, :]).transpose(1, 2).contiguous()


def _block_sq(blocks: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each block (float32 norms, returned in float64: no float64 copy of the blocks)."""
    import torch

    return torch.linalg.vector_norm(blocks.flatten(1), dim=1).double().pow(2)


def _energy(b: torch.Tensor, basis: torch.Tensor, rows: list[int], head_dim: int) -> torch.Tensor:
    """Share of each listed base block's energy in every final block's row space: (len(rows), heads)."""
    import torch

    heads, _, width = basis.shape
    flat = basis.reshape(heads * head_dim, width)
    out = torch.empty(len(rows), heads)
    step = max(1, _CHUNK // (heads * head_dim * head_dim))
    for s in range(0, len(rows), step):
        part = rows[s : s + step]
        bj = b.reshape(heads, head_dim, width)[part]  # (p, hd, width)
        proj = bj.reshape(-1, width) @ flat.T  # (p * hd, heads * hd)
        e = proj.reshape(len(part), head_dim, heads, head_dim).double().pow(2).sum(dim=(1, 3))
        out[s : s + step] = (e / _block_sq(bj)[:, None].clamp_min(1e-300)).float()
    return out


def align_heads(
    final: torch.Tensor, base: torch.Tensor, head_dim: int, axis: str
) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """``final`` (a 2-D attention weight, heads along ``axis``) with every head block that matches a
    base block put back into that block's coordinates (see the module doc), or None when no block
    matches, the matching is not one to one, or the shapes do not allow the test.

    The info says how many blocks there are, how many were put back (``realigned``), how many of
    those came from another head's position (``reordered``) and the smallest matched share.
    """
    import torch

    if final.dim() != 2 or tuple(final.shape) != tuple(base.shape) or axis not in ("rows", "columns"):
        return None
    f, b = final.float(), base.float()
    if axis == "columns":
        f, b = f.T, b.T
    n, width = f.shape
    if head_dim < 1 or n % head_dim or head_dim / width > MAX_SUBSPACE_SHARE:
        return None
    heads = n // head_dim
    basis = _blocks_basis(f, head_dim)
    bb = b.reshape(heads, head_dim, width)
    # in place first (the common case, and the cheap one): block j against final block j
    proj = torch.bmm(bb, basis.transpose(1, 2))  # (heads, hd, hd): b_j's coordinates in f_j's basis
    diag = proj.double().pow(2).sum(dim=(1, 2))
    diag = (diag / _block_sq(bb).clamp_min(1e-300)).float()
    match = torch.arange(heads)
    share = diag.clone()
    rest = [j for j in range(heads) if float(diag[j]) < HEAD_EXPLAINED]
    if rest:
        # reordered heads (or none matching at all): the blocks left, against every final block
        e = _energy(b, basis, rest, head_dim)
        best = e.argmax(dim=1)
        for r, j in enumerate(rest):
            match[j], share[j] = best[r], e[r, best[r]]
    ok = share >= HEAD_EXPLAINED
    if not bool(ok.any()):
        return None
    if torch.unique(match[ok]).numel() != int(ok.sum()):
        return None
    out = f.clone().reshape(heads, head_dim, width)
    in_place = ok & (match == torch.arange(heads))
    out[in_place] = torch.bmm(proj[in_place], basis[in_place])
    for j in torch.nonzero(ok & ~in_place).flatten().tolist():
        q = basis[int(match[j])]  # (hd, width), orthonormal rows
        out[j] = (bb[j] @ q.T) @ q
    out2 = out.reshape(n, width)
    if axis == "columns":
        out2 = out2.T
    info = {
        "axis": axis,
        "head_dim": head_dim,
        "blocks": heads,
        "realigned": int(ok.sum()),
        "reordered": int((ok & (match != torch.arange(heads))).sum()),
        "min_share": round(float(share[ok].min()), 4),
        "realigned_blocks": torch.nonzero(ok).flatten().tolist(),
    }
    return out2.contiguous(), info
