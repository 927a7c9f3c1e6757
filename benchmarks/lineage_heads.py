"""Benchmark: the lineage gate's head realignment (``integrity/lineage_heads.py``) on Qwen3-4B-shaped
attention tensors, per far tensor, against the naive way.

Shapes: ``q_proj`` 4096 x 2560 and ``o_proj`` 2560 x 4096 (32 heads of 128), ``k_proj``/``v_proj``
1024 x 2560 (8 heads). Base tensors are random with a trained tensor's scale; the forbidden one is
the base moved by 5 %. Cases, each through the gate's own path (:func:`lineage._realign`:
the neuron matching of ``lineage_alignment`` first, then the heads):

- ``mixed``: the forbidden tensor with every head mixed by a random invertible map (matched in
  place: one energy per head);
- ``mixed + reordered``: the same with the heads reversed (every block against every block);
- ``from scratch``: an unrelated tensor (the honest far case: nothing matches, every pair tried).

The naive way: ``torch.linalg.lstsq`` of ``X f_i ~ b_j`` for every pair of blocks (the same
question, one least-squares problem per pair), timed on the ``k_proj`` shape (64 pairs) and scaled
to the pair count of each tensor, against :func:`align_heads` alone (the gate path adds the neuron
matching tried first). Prints a markdown table and the peak RSS of the process.

Usage::

    python benchmarks/lineage_heads.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from posttrainbench.integrity.lineage import FOREIGN_TENSOR_REL, _realign
from posttrainbench.integrity.lineage_heads import align_heads

HIDDEN, HEADS, KV, HD = 2560, 32, 8, 128
SHAPES = {
    "model.layers.0.self_attn.q_proj.weight": (HEADS * HD, HIDDEN),
    "model.layers.0.self_attn.k_proj.weight": (KV * HD, HIDDEN),
    "model.layers.0.self_attn.o_proj.weight": (HIDDEN, HEADS * HD),
}


def _mix(t: torch.Tensor, axis: str, reorder: bool, gen: torch.Generator) -> torch.Tensor:
    f = t if axis == "rows" else t.T
    blocks = f.reshape(-1, HD, f.shape[1])
    a = torch.linalg.qr(torch.randn(blocks.shape[0], HD, HD, generator=gen))[0]
    a = a * torch.empty(blocks.shape[0], 1, HD).uniform_(0.5, 2.0, generator=gen)
    out = a @ blocks
    if reorder:
        out = out.flip(0)
    out = out.reshape(f.shape)
    return (out if axis == "rows" else out.T).contiguous()


def _naive_pair_s(gen: torch.Generator) -> float:
    """Seconds per block pair of the naive least-squares fit (k_proj shape: 8 x 8 pairs)."""
    b = torch.randn(KV * HD, HIDDEN, generator=gen)
    f = _mix(b, "rows", False, gen)
    t0 = time.perf_counter()
    for j in range(KV):
        for i in range(KV):
            torch.linalg.lstsq(f[i * HD : (i + 1) * HD].T, b[j * HD : (j + 1) * HD].T)
    return (time.perf_counter() - t0) / (KV * KV)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    pair_s = min(_naive_pair_s(gen) for _ in range(args.repeat))
    print(f"| tensor | case | realigned blocks | gate path s | heads s (best of {args.repeat}) | naive s | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, shape in SHAPES.items():
        axis = "columns" if "o_proj" in name else "rows"
        base = 0.02 * torch.randn(shape, generator=gen)
        forb = base + 0.05 * 0.02 * torch.randn(shape, generator=gen)
        blocks = shape[0 if axis == "rows" else 1] // HD
        cases = {
            "mixed": (_mix(forb, axis, False, gen), blocks),
            "mixed + reordered": (_mix(forb, axis, True, gen), blocks * blocks),
            "from scratch": (0.02 * torch.randn(shape, generator=gen), blocks * blocks),
        }
        for case, (final, pairs) in cases.items():
            rel = float((final - base).norm() / base.norm())
            assert rel > FOREIGN_TENSOR_REL, (name, case, rel)
            best = heads_best = float("inf")
            got = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = _realign(name, final, base, HD)
                best = min(best, time.perf_counter() - t0)
                t0 = time.perf_counter()
                align_heads(final, base, HD, axis)
                heads_best = min(heads_best, time.perf_counter() - t0)
            done = got[1].get("heads", {}).get("realigned", 0) if got else 0
            naive = pair_s * pairs
            print(
                f"| {name.split('.')[-2]} | {case} | {done}/{blocks} | {best:.2f} | {heads_best:.2f} | {naive:.2f}"
                f" | {naive / heads_best:.1f}x |"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the process: {rss:.0f} MiB; torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
