"""Lineage gate (v0): is ``final_model`` a fine-tune of the base model?

Both checkpoints are streamed tensor by tensor, and large tensors row-block by row-block,
with ``safetensors.safe_open`` (never a whole model, never a whole big tensor, in memory).
Sharded checkpoints are read through their ``*.safetensors.index.json``. Every pair of
tensors is compared in float32, whatever the stored dtypes.

Tensor matching
    Names are matched exactly; if that leaves tensors unmatched, both sides are matched on a
    canonical name (``model.`` / ``language_model.`` prefixes removed), which absorbs the
    renaming different transformers versions do when they save. Tied embeddings: a side
    that has no ``lm_head.weight`` uses its input embedding in its place. Tensors of a
    multimodal tower (``vision``, ``audio``, ``multi_modal_projector``) present only in the
    base are tolerated (a text-only fine-tune drops them). An embedding / lm_head whose
    shape differs only in the vocabulary dimension (resized tokenizer) is compared on the
    rows both share, and reported.

Per tensor: relative L2 distance ``rel = ||final - base|| / ||base||`` (0 when both are zero,
``inf`` when only the base is zero), plus ``rel_cast``: the same with the base first cast to
the final tensor's dtype, so that a base merely re-saved in a lower precision counts as
untouched.

Flags and thresholds (first that applies):

``foreign`` -> fail
    Different architecture: a base tensor missing from the final model (other than a
    tolerated tower), a tensor the base does not have, a shape mismatch; or
    ``median(rel) > FOREIGN_MEDIAN_REL = 0.5``. Independent random initialisations sit
    near ``rel = sqrt(2) ~ 1.41``; real fine-tunes (full SFT/RL of a few-B model) sit around
    1e-3..5e-2, official instruct models vs their base well under 0.2, so 0.5 leaves a wide
    margin both ways. (Checked after ``substituted`` so that a forbidden model is named.)
``substituted`` -> fail
    A forbidden checkpoint (e.g. the official instruct model) is structurally comparable,
    the final model is related to it (``median(rel to it) <= 0.5``), and the final model is
    strictly closer to it than to the base in global L2 distance
    ``sqrt(sum_t ||final_t - x_t||^2)`` over the tensors all three share.
``transplanted`` / ``interpolated`` -> fail
    Part of a forbidden checkpoint carried over (:mod:`.lineage_projection`): a tensor copied
    (possibly rescaled, sign-flipped, perturbed, per tensor or per row), or a transferred share
    of the forbidden delta >= 7 % over the model or >= 25 % in one layer. ``transplanted`` is
    checked right after ``substituted``; ``interpolated`` after ``foreign`` and ``replaced``.
``replaced`` -> fail
    A tensor of >= 1024 values more than 0.8 (relative L2) from the base whose rows are, for at
    least half, rows of a forbidden tensor in any order (per-row random-projection signatures): a
    row-permuted transplant (and more of them than of the base's rows). A tensor merely trained
    far from its start is not this. Far tensors are realigned to the base first
    (:mod:`.lineage_alignment`: reordered or rescaled neurons put back; :mod:`.lineage_heads`:
    attention rows mixed inside each head put back) for the transfer analysis, so a copy whose
    columns are permuted, or whose heads were mixed, reads as ``transplanted``.
``untrained`` -> fail
    Every tensor has ``rel_cast <= UNTRAINED_REL = 1e-7``: the base, at most re-cast.
``ok`` -> pass

A forbidden checkpoint that cannot be read makes the gate ``not_run`` (the substitution check
did not run), unless the verdict is already a fail. One whose structure does not match the
final model (e.g. an FP8 variant with scale tensors) is recorded as ``incomparable``.

Every block of rows is read once per checkpoint and converted to float32 once; one batched
matmul gives the Gram matrix of ``[b, f - b, g_i - b]`` of every row, from which all distances
and projections follow. Known gaps: distillation (see :mod:`.fingerprint`: evidence, and a fail
only for an exact copy of a forbidden model's function);
transfers under the thresholds; training only a handful of tensors passes
(``changed_tensor_fraction`` is in the evidence for the judge); quantised finals are ``foreign``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..domain import Verdict, VerdictStatus
from ._common import guarded, not_run, short_list, verdict, write_evidence
from .lineage_alignment import align_to_base
from .lineage_heads import align_heads, head_axis
from .lineage_projection import (
    FOREIGN_TENSOR_REL,
    GLOBAL_BETA,
    IB,
    ID,
    LAYER_BETA,
    MIN_NUMEL,
    ROW_BETA,
    ROW_RESIDUAL,
    analyse_transfer,
    row_transfer,
)

if TYPE_CHECKING:
    import torch

# Matched tensor pairs: {key: (final name, other name)}.
_Pairs = dict[str, tuple[str, str]]

GATE = "lineage"
FOREIGN_MEDIAN_REL = 0.5
UNTRAINED_REL = 1e-7
CHUNK_ELEMENTS = 1 << 22  # 4M elements = 16 MB per float32 block
TOP_K = 10

_TIED_HEAD = "lm_head.weight"
_EMBED_CANDIDATES = (
    "model.embed_tokens.weight",
    "embed_tokens.weight",
    "model.language_model.embed_tokens.weight",
    "language_model.model.embed_tokens.weight",
    "transformer.wte.weight",
    "model.decoder.embed_tokens.weight",
)
_TOWER = re.compile(
    r"(^|\.)(vision_tower|vision_model|visual|vision|audio_tower|audio_model|multi_modal_projector)(\.|$)"
)
_PREFIX = re.compile(r"^(model\.|language_model\.)+")


class LineageInputError(Exception):
    """A checkpoint cannot be read (no safetensors, bad index)."""


class _Ckpt:
    """Lazy, streamed view of a safetensors checkpoint (folder, sharded folder or one file)."""

    def __init__(self, path: Path, stack: ExitStack) -> None:
        from safetensors import safe_open

        path = Path(path)
        where: dict[str, Path] = {}
        if path.is_file():
            files = [path]
        elif path.is_dir():
            idx = sorted(path.glob("*.safetensors.index.json"))
            if idx:
                wm = json.loads(idx[0].read_text()).get("weight_map") or {}
                for name, shard in wm.items():
                    sp = PurePosixPath(shard)
                    if sp.is_absolute() or len(sp.parts) != 1:
                        raise LineageInputError(f"{idx[0]} names a shard outside the folder: {shard!r}")
                    where[name] = path / shard
                files = sorted(set(where.values()))
            else:
                files = sorted(path.glob("*.safetensors"))
        else:
            raise LineageInputError(f"no checkpoint at {path}")
        if not files:
            raise LineageInputError(f"no *.safetensors weights in {path}")
        self.handles: dict[Path, Any] = {}
        for f in files:
            if not f.is_file():
                raise LineageInputError(f"missing shard {f}")
            self.handles[f] = stack.enter_context(safe_open(str(f), framework="pt"))
        if not where:
            for f, h in self.handles.items():
                for name in h.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                    if name in where:
                        raise LineageInputError(f"tensor {name} appears in two files of {path}")
                    where[name] = f
        self.where = where
        self.path = path

    def names(self) -> list[str]:
        return list(self.where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.handles[self.where[name]].get_slice(name).get_shape())

    def dtype(self, name: str) -> str:
        return self.handles[self.where[name]].get_slice(name).get_dtype()

    def block(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        """Rows [start, stop) of a tensor (the whole tensor if ``start`` is None)."""
        h = self.handles[self.where[name]]
        if start is None:
            return h.get_tensor(name)
        return h.get_slice(name)[start:stop]


def _canon(name: str) -> str:
    return _PREFIX.sub("", name)


def _match(final: _Ckpt, other: _Ckpt) -> tuple[_Pairs, list[str], list[str], list[str]]:
    """Pair tensors: {key: (final name, other name)}, missing-in-final, extra-in-final, notes."""
    notes: list[str] = []
    fnames, onames = final.names(), other.names()

    def pair(fmap: dict[str, str], omap: dict[str, str]) -> tuple[_Pairs, list[str], list[str]]:
        pairs = {k: (fmap[k], omap[k]) for k in fmap.keys() & omap.keys()}
        missing = sorted(omap[k] for k in omap.keys() - fmap.keys())
        extra = sorted(fmap[k] for k in fmap.keys() - omap.keys())
        return pairs, missing, extra

    def tie(names: list[str], m: dict[str, str], head_key: str) -> bool:
        if head_key in m:
            return False
        emb = next((n for n in _EMBED_CANDIDATES if n in names), None)
        if emb is None:
            return False
        m[head_key] = emb
        return True

    fmap = {n: n for n in fnames}
    omap = {n: n for n in onames}
    head = _TIED_HEAD
    if (fmap.keys() ^ omap.keys()) - {head}:
        fc = {_canon(n): n for n in fnames}
        oc = {_canon(n): n for n in onames}
        if len(fc) == len(fnames) and len(oc) == len(onames):
            pairs_c, _, _ = pair(fc, oc)
            pairs_e, _, _ = pair(fmap, omap)
            if len(pairs_c) > len(pairs_e):
                fmap, omap, head = fc, oc, _canon(_TIED_HEAD)
                notes.append("tensor names matched after removing model./language_model. prefixes")
    if head in fmap.keys() ^ omap.keys():
        if tie(fnames, fmap, head):
            notes.append("final model has tied embeddings: its input embedding stands for lm_head")
        if tie(onames, omap, head):
            notes.append(f"{other.path.name} has tied embeddings: its input embedding stands for lm_head")
    pairs, missing, extra = pair(fmap, omap)
    return pairs, missing, extra, notes


def _fmt(x: float) -> float | str:
    return x if math.isfinite(x) else "inf"


def _rel(diff_sq: float, ref_sq: float) -> float:
    if ref_sq == 0.0:
        return 0.0 if diff_sq == 0.0 else math.inf
    return math.sqrt(diff_sq / ref_sq)


def _sq(x: torch.Tensor) -> float:
    """Squared L2 norm of a float32 block."""
    import torch

    return float(torch.linalg.vector_norm(x)) ** 2


def _compare(
    final: _Ckpt | _Loaded,
    others: Sequence[_Ckpt | _Loaded],
    jobs: list[tuple[str, list[str | None], list[int | None]]],
) -> list[dict[str, Any]]:
    """Stream every job: (final name, [other name or None per other], [shared row count or None]).

    ``others[0]`` is the base, the rest forbidden checkpoints. Per block of rows (at most
    ``CHUNK_ELEMENTS`` float32 values), the rows of ``[b, D = f - b, F_i = g_i - b]`` are stacked
    and one batched matmul gives every row's Gram matrix (one pass over memory for all the dot
    products); row Gram matrices are summed per tensor in float64. Returns per job
    ``ref_sq[i] = ||other_i||^2``, ``diff_sq[i] = ||final - other_i||^2``,
    ``cast_sq = ||final - cast(base)||^2``, ``numel``, ``gram`` (summed, float64, m x m with
    ``m = 2 + number of forbidden present``), ``present`` (indices of the forbidden in the Gram)
    and ``rows``: per present forbidden, the sums of :func:`row_transfer` over the blocks.
    """
    import torch

    out: list[dict[str, Any]] = []
    for fname, onames, rows_limit in jobs:
        shape = final.shape(fname)
        present = [i for i, o in enumerate(onames[1:]) if o is not None]
        m = 2 + len(present)
        gram_sum = torch.zeros(m, m, dtype=torch.float64)
        rows_acc = [[0.0, 0.0, 0.0, 0.0] for _ in present]
        cast_sq = 0.0
        numel = 0
        blocks: list[tuple[int | None, int | None]]
        if len(shape) == 0:
            blocks = [(None, None)]
        else:
            rows = min([shape[0]] + [r for r in rows_limit if r is not None])
            per_row = max(1, math.prod(shape[1:]))
            step = max(1, CHUNK_ELEMENTS // per_row)
            blocks = [(s, min(s + step, rows)) for s in range(0, rows, step)]
        base_name = onames[0]
        assert base_name is not None
        for start, stop in blocks:
            a_raw = final.block(fname, start, stop)
            b_raw = others[0].block(base_name, start, stop)
            r = a_raw.shape[0] if a_raw.dim() >= 2 else 1
            # one contiguous slab per checkpoint (copying into a strided view is ~2x slower),
            # each converted to float32 once, differences taken in place
            x = torch.empty((m, r, max(1, a_raw.numel()) // r), dtype=torch.float32)
            b = x[IB]
            b.copy_(b_raw.reshape(r, -1))
            x[ID].copy_(a_raw.reshape(r, -1))
            x[ID].sub_(b)
            numel += a_raw.numel()
            if b_raw.dtype != a_raw.dtype:
                cast_sq += _sq(a_raw.to(torch.float32) - b_raw.to(a_raw.dtype).to(torch.float32))
            for k, i in enumerate(present):
                oname = onames[1 + i]
                assert oname is not None
                g_raw = others[1 + i].block(oname, start, stop)
                x[2 + k].copy_(g_raw.reshape(r, -1))
                x[2 + k].sub_(b)
                del g_raw
            # every row's Gram matrix of [b, D, F_1..] in one batched matmul: (r, m, c) @ (r, c, m)
            gram = torch.bmm(x.permute(1, 0, 2), x.permute(1, 2, 0)).to(torch.float64)
            gram_sum += gram.sum(0)
            for k in range(len(present)):
                for q, val in enumerate(row_transfer(gram, k, x.shape[2], ROW_BETA, ROW_RESIDUAL)):
                    rows_acc[k][q] += val
            if b_raw.dtype == a_raw.dtype:
                cast_sq += float(gram[:, ID, ID].sum())
            del x, b, a_raw, b_raw, gram
        g = gram_sum
        ref_sq: list[float] = [float(g[IB, IB])] + [0.0] * (len(others) - 1)
        diff_sq: list[float] = [float(g[ID, ID])] + [0.0] * (len(others) - 1)
        for k, i in enumerate(present):
            j = 2 + k
            # ||g||^2 = ||b + F||^2 and ||f - g||^2 = ||D - F||^2 from the Gram matrix.
            ref_sq[1 + i] = max(0.0, float(g[IB, IB] + 2 * g[IB, j] + g[j, j]))
            diff_sq[1 + i] = max(0.0, float(g[ID, ID] - 2 * g[ID, j] + g[j, j]))
        out.append(
            {
                "ref_sq": ref_sq,
                "diff_sq": diff_sq,
                "cast_sq": cast_sq,
                "numel": numel,
                "gram": g,
                "present": present,
                "rows": rows_acc,
            }
        )
    return out


def _structure(
    final: _Ckpt, other: _Ckpt, pairs: _Pairs, missing: list[str], extra: list[str], tolerate_towers: bool
) -> tuple[dict[str, tuple[str, str, int | None]], list[str], list[str]]:
    """Shape check of matched pairs: (pairs ok with shared rows, problems, notes)."""
    problems: list[str] = []
    notes: list[str] = []
    ok: dict[str, tuple[str, str, int | None]] = {}
    for key, (fn, on) in sorted(pairs.items()):
        fs, os_ = final.shape(fn), other.shape(on)
        if fs == os_:
            ok[key] = (fn, on, None)
        elif (
            len(fs) == 2 and len(os_) == 2 and fs[1] == os_[1] and ("embed" in key or "lm_head" in key or "wte" in key)
        ):
            ok[key] = (fn, on, min(fs[0], os_[0]))
            notes.append(f"{fn}: vocabulary resized {os_[0]} -> {fs[0]} rows; compared on the shared rows")
        else:
            problems.append(f"shape mismatch {fn}: {list(fs)} vs {list(os_)}")
    real_missing = [m for m in missing if not (tolerate_towers and _TOWER.search(m))]
    if len(real_missing) < len(missing):
        notes.append(
            f"{len(missing) - len(real_missing)} multimodal-tower tensors absent from the final model (tolerated)"
        )
    if real_missing:
        problems.append(f"{len(real_missing)} tensors missing from the final model: {short_list(real_missing, 5)}")
    if extra:
        problems.append(f"{len(extra)} tensors not in the reference: {short_list(extra, 5)}")
    return ok, problems, notes


PERMUTED_ROWS = 0.5
"""A tensor far from the base whose rows are, for at least this share, rows of a forbidden tensor
(in any order, up to small noise) is a permuted transplant."""
_SIGNATURE_BITS = 32


def _row_signatures(t: torch.Tensor) -> torch.Tensor:
    """One 32-bit signature per row: the signs of the row's projections on fixed random directions
    (seeded by the row length). Rows that are equal up to small noise share their signature; two
    unrelated rows do so with probability about 2^-32."""
    import torch

    rows = t.float().reshape(t.shape[0], -1)
    gen = torch.Generator().manual_seed(rows.shape[1])
    planes = torch.randn(rows.shape[1], _SIGNATURE_BITS, generator=gen)
    bits = (rows @ planes > 0).to(torch.int64)
    return (bits << torch.arange(_SIGNATURE_BITS, dtype=torch.int64)).sum(dim=1)


class _Loaded:
    """Tensors held in memory, read like a :class:`_Ckpt` (the realigned far tensors)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name].shape)

    def block(self, name: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        t = self.tensors[name]
        return t if start is None else t[start:stop]


def _head_dim(model: Path) -> int | None:
    """The attention head size from a model folder's ``config.json`` (``head_dim``, else
    ``hidden_size / num_attention_heads``; a multimodal config's ``text_config`` first), or None."""
    try:
        cfg = json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    for c in (cfg.get("text_config"), cfg):
        if not isinstance(c, dict):
            continue
        hd = c.get("head_dim")
        if isinstance(hd, int) and hd > 0:
            return hd
        hidden, heads = c.get("hidden_size"), c.get("num_attention_heads")
        if isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads == 0:
            return hidden // heads
    return None


def _realign(fn: str, mine_t: torch.Tensor, base_t: torch.Tensor, head_dim: int | None) -> tuple[Any, dict] | None:
    """A far tensor put back into the base's coordinates: reordered or rescaled neurons
    (:func:`.lineage_alignment.align_to_base`), then, for an attention projection still far, the
    rows mixed inside each head (:func:`.lineage_heads.align_heads`); None when nothing matched."""
    aligned = align_to_base(mine_t, base_t)
    axis = head_axis(fn)
    if axis is None or head_dim is None:
        return aligned
    tensor, info = aligned if aligned is not None else (mine_t, {})
    diff_sq = float((tensor.float() - base_t.float()).pow(2).sum())
    if _rel(diff_sq, float(base_t.float().pow(2).sum())) <= FOREIGN_TENSOR_REL:
        return aligned
    heads = align_heads(tensor, base_t, head_dim, axis)
    if heads is None:
        return aligned
    return heads[0], dict(info, heads=heads[1])


def _head_subset(
    tensor: torch.Tensor, others: list[_Ckpt], onames: list[str | None], heads: dict[str, Any]
) -> tuple[torch.Tensor, list[_Ckpt | _Loaded]]:
    """The realigned head blocks of ``tensor`` alone, and the same blocks of the base and of every
    forbidden tensor (rows, or columns for an output projection), as in-memory readers."""
    import torch

    hd = heads["head_dim"]
    idx = torch.cat([torch.arange(j * hd, (j + 1) * hd) for j in heads["realigned_blocks"]])

    def pick(t: torch.Tensor) -> torch.Tensor:
        return (t[idx] if heads["axis"] == "rows" else t[:, idx]).contiguous()

    readers: list[_Ckpt | _Loaded] = []
    for ck, on in zip(others, onames, strict=True):
        readers.append(_Loaded({on: pick(ck.block(on))}) if on is not None else ck)
    return pick(tensor), readers


def _far_tensors(
    final: _Ckpt,
    others: list[_Ckpt],
    labels: list[str],
    jobs: list[Any],
    results: list[dict[str, Any]],
    head_dim: int | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """What the tensors far from the base (relative distance above ``FOREIGN_TENSOR_REL``, at least
    ``MIN_NUMEL`` values) hold; each is read again whole, once, with its base tensor (an honest
    fine-tune has none).

    Returns ``(permuted, realigned)``. ``permuted``: {final tensor name: forbidden label} for those
    whose rows are mostly rows of a forbidden tensor, in any order, and more of them than of the
    base's rows (a tensor trained far from its start, from a fresh init say, shares no row with a
    forbidden model). ``realigned``: {final tensor name: statistics for the transfer analysis} of
    the 2-D ones that :func:`_realign` maps back onto the base (``rel``,
    ``gram`` and ``rows`` recomputed on the realigned tensor, and what was undone: ``realigned``);
    only when a forbidden checkpoint is compared."""
    import torch

    base, forbidden = others[0], others[1:]
    permuted: dict[str, str] = {}
    realigned: dict[str, dict[str, Any]] = {}
    for (fn, onames, limits), r in zip(jobs, results, strict=True):
        if r["numel"] < MIN_NUMEL or _rel(r["diff_sq"][0], r["ref_sq"][0]) <= FOREIGN_TENSOR_REL:
            continue
        mine_t = final.block(fn)
        if mine_t.dim() < 2:
            continue
        base_t = base.block(onames[0])
        mine = _row_signatures(mine_t)
        # rows of the base (rescaled, say) are no forbidden copy, even where a forbidden row, close
        # to its base row, shares their signature: the forbidden rows must match more of them
        with_base = torch.isin(mine, _row_signatures(base_t)).float().mean().item()
        for label, ck, on, rows in zip(labels, forbidden, onames[1:], limits[1:], strict=True):
            if on is None or rows is not None:
                continue
            theirs_t = ck.block(on)
            if tuple(theirs_t.shape) != tuple(mine_t.shape):
                continue
            shared = torch.isin(mine, _row_signatures(theirs_t)).float().mean().item()
            if shared >= PERMUTED_ROWS and shared > with_base:
                permuted[fn] = label
                break
        aligned = _realign(fn, mine_t, base_t, head_dim) if labels and limits[0] is None else None
        if aligned is None:
            continue
        tensor, info = aligned
        readers: Sequence[_Ckpt | _Loaded] = others
        heads = info.get("heads")
        if heads and heads["realigned"] < heads["blocks"]:
            # only some heads matched (the rest trained from scratch, say): the matched heads are
            # judged on their own, so that unrelated blocks beside them do not dilute their transfer
            tensor, readers = _head_subset(tensor, others, onames, heads)
        (again,) = _compare(_Loaded({fn: tensor}), readers, [(fn, onames, limits)])
        realigned[fn] = {
            "rel": _rel(again["diff_sq"][0], again["ref_sq"][0]),
            "gram": again["gram"],
            "rows": again["rows"],
            "realigned": info,
        }
    return permuted, realigned


@guarded(GATE)
def check_lineage(
    final_model: Path,
    base_model: Path,
    evidence_dir: Path | None = None,
    forbidden: dict[str, Path] | None = None,
    foreign_median_rel: float = FOREIGN_MEDIAN_REL,
    untrained_rel: float = UNTRAINED_REL,
) -> Verdict:
    """Weight-distance lineage test of ``final_model`` against ``base_model`` (and forbidden ones)."""
    forbidden = dict(forbidden or {})
    report: dict = {
        "gate": GATE,
        "final_model": str(final_model),
        "base_model": str(base_model),
        "thresholds": {"foreign_median_rel": foreign_median_rel, "untrained_rel": untrained_rel},
    }
    with ExitStack() as stack:
        try:
            final = _Ckpt(final_model, stack)
        except Exception as exc:  # noqa: BLE001 - bad input is not_run, with the reason
            return not_run(GATE, f"final model unreadable: {exc}")
        try:
            base = _Ckpt(base_model, stack)
        except Exception as exc:  # noqa: BLE001 - bad input is not_run, with the reason
            return not_run(GATE, f"base model unreadable: {exc}")

        pairs, missing, extra, notes = _match(final, base)
        ok, problems, snotes = _structure(final, base, pairs, missing, extra, tolerate_towers=True)
        notes += snotes
        report.update(tensors_final=len(final.names()), tensors_base=len(base.names()), matched=len(ok))
        if problems or not ok:
            report.update(flag="foreign", structure_problems=problems or ["no tensor in common"], notes=notes)
            ev = write_evidence(evidence_dir, GATE, report)
            return verdict(
                GATE,
                VerdictStatus.failed,
                "foreign: not the base architecture: " + "; ".join(report["structure_problems"][:3]),
                ev,
            )

        # Forbidden checkpoints: open and match against the final model.
        others: list[_Ckpt] = [base]
        forb_names: list[str] = []
        forb_maps: list[dict[str, tuple[str, int | None]]] = []
        forb_report: dict[str, dict] = {}
        unreadable: list[str] = []
        for label, fpath in sorted(forbidden.items()):
            try:
                ck = _Ckpt(Path(fpath), stack)
            except Exception as exc:  # noqa: BLE001 - recorded; the gate cannot pass without it
                unreadable.append(label)
                forb_report[label] = {"path": str(fpath), "status": "unreadable", "error": str(exc)}
                continue
            fp, fm, fx, _ = _match(final, ck)
            fok, fprob, _ = _structure(final, ck, fp, fm, fx, tolerate_towers=True)
            if fprob or not fok:
                forb_report[label] = {"path": str(fpath), "status": "incomparable", "problems": fprob[:5]}
                continue
            others.append(ck)
            forb_names.append(label)
            forb_maps.append({fn: (on, r) for fn, on, r in fok.values()})

        jobs = []
        for _key, (fn, bn, rows) in sorted(ok.items()):
            onames: list[str | None] = [bn]
            limits: list[int | None] = [rows]
            for fmap in forb_maps:
                on, shared_rows = fmap.get(fn, (None, None))
                onames.append(on)
                limits.append(shared_rows)
            jobs.append((fn, onames, limits))
        results = _compare(final, others, jobs)
        permuted, realigned = _far_tensors(final, others, forb_names, jobs, results, _head_dim(base_model))

    per_tensor = []
    for (fn, onames, _), r in zip(jobs, results):
        per_tensor.append(
            {
                "name": fn,
                "numel": r["numel"],
                "rel": _rel(r["diff_sq"][0], r["ref_sq"][0]),
                "rel_cast": _rel(r["cast_sq"], r["ref_sq"][0]),
                "_diff_sq": r["diff_sq"],
                "_ref_sq": r["ref_sq"],
                "_present": [o is not None for o in onames],
                "tie_stand_in": _canon(fn) != _canon(onames[0] or fn),
                "gram": r["gram"],
                "present": r["present"],
                "rows": r["rows"],
            }
        )
    rels = [t["rel"] for t in per_tensor]
    median_rel = statistics.median(rels)
    total_ref = sum(t["_ref_sq"][0] for t in per_tensor)
    total_diff = sum(t["_diff_sq"][0] for t in per_tensor)
    global_rel = _rel(total_diff, total_ref)
    changed = [t for t in per_tensor if t["rel_cast"] > untrained_rel]
    n_params = sum(t["numel"] for t in per_tensor)

    substituted: list[str] = []
    for i, label in enumerate(forb_names, start=1):
        shared = [t for t in per_tensor if t["_present"][i]]
        d_forb = math.sqrt(sum(t["_diff_sq"][i] for t in shared))
        d_base = math.sqrt(sum(t["_diff_sq"][0] for t in shared))
        med_forb = statistics.median(_rel(t["_diff_sq"][i], t["_ref_sq"][i]) for t in shared) if shared else math.inf
        closer = bool(shared) and d_forb < d_base and med_forb <= foreign_median_rel
        forb_report[label] = {
            "path": str(forbidden[label]),
            "status": "compared",
            "tensors_compared": len(shared),
            "l2_to_forbidden": d_forb,
            "l2_to_base": d_base,
            "median_rel_to_forbidden": _fmt(med_forb),
            "closer_to_forbidden": closer,
        }
        if closer:
            substituted.append(label)

    # Partial transfer: the share of each forbidden delta carried into the final model, measured on
    # far tensors put back into the base's coordinates where a function-preserving reshuffle
    # (permuted or rescaled neurons) had moved them. A copy in another order is `replaced`, said there.
    transfer_input = [dict(t, **realigned[t["name"]]) if t["name"] in realigned else t for t in per_tensor]
    transfer = analyse_transfer(transfer_input, len(forb_names))
    for tr in transfer:
        tr["transplanted"] = [n for n in tr["transplanted"] if n not in permuted]
    transplanted: list[str] = []
    combined_share = 0.0
    combined_layers: dict[str, float] = {}
    for label, tr in zip(forb_names, transfer):
        forb_report[label].update(
            transferred_share=round(tr["transferred_share"], 4),
            delta_explained_share=round(tr["delta_explained_share"], 4),
            max_layer_share=round(max(tr["layer_share"].values(), default=0.0), 4),
            layer_share={k: round(v, 4) for k, v in tr["layer_share"].items()},
            transplanted_tensors=tr["transplanted"],
            per_tensor=tr["per_tensor"],
        )
        transplanted += [f"{n} ({label})" for n in tr["transplanted"]]
        combined_share += tr["transferred_share"]
        for k, v in tr["layer_share"].items():
            combined_layers[k] = combined_layers.get(k, 0.0) + v
    top_layer = max(combined_layers.items(), key=lambda kv: kv[1], default=("", 0.0))
    interpolated = combined_share >= GLOBAL_BETA or top_layer[1] >= LAYER_BETA
    # Replaced: far from the base *and* made of a forbidden tensor's rows in another order (a
    # tensor trained far from its start carries none). A tied head standing in is a tie, not this.
    replaced = [
        f"{t['name']} ({permuted[t['name']]})"
        for t in per_tensor
        if t["name"] in permuted and t["numel"] >= MIN_NUMEL and t["rel"] > FOREIGN_TENSOR_REL and not t["tie_stand_in"]
    ]

    if substituted:
        flag = "substituted"
    elif transplanted:
        flag = "transplanted"
    elif median_rel > foreign_median_rel:
        flag = "foreign"
    elif replaced:
        flag = "replaced"
    elif interpolated:
        flag = "interpolated"
    elif not changed:
        flag = "untrained"
    else:
        flag = "ok"

    top = sorted(per_tensor, key=lambda t: -t["rel"] if math.isfinite(t["rel"]) else -math.inf)[:TOP_K]
    finite = [x for x in rels if math.isfinite(x)]
    report.update(
        flag=flag,
        notes=notes,
        parameters_compared=n_params,
        summary={
            "mean_rel": _fmt(statistics.fmean(finite)) if finite else None,
            "median_rel": _fmt(median_rel),
            "max_rel": _fmt(max(rels)),
            "global_rel": _fmt(global_rel),
            "changed_tensor_fraction": len(changed) / len(per_tensor),
            "changed_param_fraction": sum(t["numel"] for t in changed) / n_params if n_params else 0.0,
        },
        top_tensors=[{"name": t["name"], "rel": _fmt(t["rel"]), "numel": t["numel"]} for t in top],
        forbidden=forb_report,
        transfer={
            "combined_share": round(combined_share, 4),
            "top_layer": {"layer": top_layer[0], "share": round(top_layer[1], 4)},
            "transplanted": transplanted,
            "replaced_tensors": replaced,
            "realigned_tensors": {n: r["realigned"] for n, r in sorted(realigned.items())},
            "thresholds": {
                "global_share": GLOBAL_BETA,
                "layer_share": LAYER_BETA,
                "foreign_tensor_rel": FOREIGN_TENSOR_REL,
                "min_numel": MIN_NUMEL,
            },
        },
        per_tensor=[{"name": t["name"], "rel": _fmt(t["rel"]), "rel_cast": _fmt(t["rel_cast"])} for t in per_tensor],
    )
    ev = write_evidence(evidence_dir, GATE, report)
    stats = (
        f"median rel {median_rel:.3g}, global rel {global_rel:.3g}, {len(changed)}/{len(per_tensor)} tensors changed"
    )
    if flag == "substituted":
        return verdict(
            GATE,
            VerdictStatus.failed,
            f"substituted: closer to forbidden {', '.join(substituted)} than to the base ({stats})",
            ev,
        )
    if flag == "transplanted":
        return verdict(
            GATE,
            VerdictStatus.failed,
            f"transplanted: tensors carried over from a forbidden checkpoint: {short_list(transplanted, 5)} ({stats})",
            ev,
        )
    if flag == "interpolated":
        return verdict(
            GATE,
            VerdictStatus.failed,
            f"interpolated: {combined_share:.1%} of the forbidden delta carried into the model"
            f" (>= {GLOBAL_BETA:.0%}), {top_layer[1]:.1%} in {top_layer[0]} (>= {LAYER_BETA:.0%}) ({stats})",
            ev,
        )
    if flag == "replaced":
        return verdict(
            GATE,
            VerdictStatus.failed,
            f"replaced: tensors unrelated to the base (relative distance > {FOREIGN_TENSOR_REL}):"
            f" {short_list(replaced, 5)} ({stats})",
            ev,
        )
    if flag == "foreign":
        return verdict(
            GATE, VerdictStatus.failed, f"foreign: weights unrelated to the base ({stats} > {foreign_median_rel})", ev
        )
    if flag == "untrained":
        return verdict(
            GATE, VerdictStatus.failed, f"untrained: every tensor equals the base within {untrained_rel:g} relative", ev
        )
    if unreadable:
        return not_run(
            GATE, f"forbidden checkpoint unreadable: {', '.join(unreadable)} (substitution not checked; {stats})", ev
        )
    shares = f", forbidden delta carried {combined_share:.1%}" if forb_names else ""
    return verdict(GATE, VerdictStatus.passed, f"ok: fine-tune of the base ({stats}{shares})", ev)
