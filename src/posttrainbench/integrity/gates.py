"""The gates of a verification, in the order they run (:data:`GATES`).

Each gate adapts one gate function (``check_tamper``, ``check_lineage``, ``scan``, ...) to the
:class:`~.gate.Gate` protocol: it picks its inputs from the :class:`~.gate.GateContext`, and
says ``not_run`` with the reason when one is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..domain import Verdict, VerdictStatus
from ..fsutil import sha256_file
from ..models.store import resolve_base_model, resolve_forbidden_models
from ._common import not_run, write_evidence
from .contamination import IncrementalScan, build_index_cached, scan
from .contamination.token_ids import load_id_decoder
from .fingerprint import behavioural_fingerprint
from .gate import Gate, GateContext
from .judge import OBSERVED_LOG, run_judge
from .lineage import check_lineage
from .manifest import check_tamper
from .model_check import check_model_folder
from .observed_audit import agent_inputs, check_observed, observer_ran
from .probe import check_probe
from .trace_audit import DEFAULT_MAX_UNREADABLE, check_trace
from .transfer import check_transfer


class TamperGate:
    """Harness files in the workspace against the manifest (diffs against the pristine copies)."""

    name = "tamper"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        return check_tamper(ctx.workspace, dict(ctx.manifest), ctx.evidence_dir, pristine_dir=ctx.pristine_dir)


class TransferGate:
    """The canonical submission against its hashes at collect."""

    name = "transfer"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        if ctx.final_model is None:
            return not_run(self.name, "no final_model was collected")
        return check_transfer(ctx.final_model, dict(ctx.final_model_hashes), ctx.evidence_dir)


class ModelFormatGate:
    """One unambiguous safetensors model folder (a submission refused at collect fails here)."""

    name = "model_format"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        if ctx.final_model is None:
            if ctx.rejected:
                return Verdict(
                    gate=self.name, status=VerdictStatus.failed, summary=f"final_model/ rejected: {ctx.rejected}"
                )
            return not_run(self.name, "no final_model to check")
        return check_model_folder(ctx.final_model)


def _model_and_base(gate: str, ctx: GateContext, no_model: str) -> tuple[Path, Path] | Verdict:
    """The final model folder (once :class:`ModelFormatGate` passed it) and the base model's
    folder, or the ``not_run`` verdict saying which is missing (the gates that compare weights)."""
    if ctx.final_model is None:
        return not_run(gate, no_model)
    fmt = ctx.verdicts.get(ModelFormatGate.name)
    if fmt is None or fmt.status != VerdictStatus.passed:
        return not_run(gate, "final_model is not a readable model folder")
    if ctx.base_model_path is not None:
        return ctx.final_model, ctx.base_model_path
    try:
        return ctx.final_model, resolve_base_model(ctx.base, ctx.settings)
    except Exception as exc:  # noqa: BLE001 - offline, gated: recorded, never a pass
        return not_run(gate, f"base model unavailable: {exc}")


class LineageGate:
    """A fine-tune of the base model, not of a forbidden checkpoint, not untouched. Runs on a
    readable model folder only (after :class:`ModelFormatGate`)."""

    name = "lineage"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        models = _model_and_base(self.name, ctx, "no final_model to check")
        if isinstance(models, Verdict):
            return models
        final_model, base_path = models
        forbidden, unavailable = resolve_forbidden_models(ctx.base, ctx.settings)
        ctx.notes["forbidden_checked"], ctx.notes["forbidden_unavailable"] = sorted(forbidden), unavailable
        v = check_lineage(final_model, base_path, ctx.evidence_dir, forbidden=forbidden)
        if v.status != VerdictStatus.passed or not forbidden:
            return v
        return _with_fingerprint(v, final_model, base_path, forbidden, ctx)


def _with_fingerprint(v: Verdict, final: Path, base: Path, forbidden: dict[str, Path], ctx: GateContext) -> Verdict:
    """Add the behavioural fingerprint to a passed lineage: evidence for the judge, and a fail only
    where the final model computes a forbidden model's function (``copied_function``)."""
    ctx.progress("lineage: behavioural fingerprint (greedy probes)")
    try:
        params = json.loads(Path(v.evidence[0]).read_text()).get("parameters_compared", 0) if v.evidence else 0
        rep = behavioural_fingerprint(final, base, forbidden, int(params))
    except Exception as exc:  # noqa: BLE001 - evidence only: its failure is recorded, the verdict stands
        rep = {"error": f"{type(exc).__name__}: {exc}"}
    ev = write_evidence(ctx.evidence_dir, "lineage_fingerprint", rep)
    per = rep.get("agreement_with_forbidden") or {}
    copied = rep.get("copied_function") or []
    if copied:
        # the forbidden model's function under a weight disguise the weight tests did not read
        figures = ", ".join(
            f"{k}: logit ratio {per[k]['logit_ratio']:.2g}, agreement {per[k]['final']:.0%}" for k in copied
        )
        return v.model_copy(
            update={
                "status": VerdictStatus.failed,
                "summary": f"copied function: the final model computes what forbidden {', '.join(copied)}"
                f" computes on the probe prompts ({figures}; weights read: {v.summary})",
                "evidence": tuple(v.evidence) + ev,
            }
        )
    if per:
        note = "; ".join(
            f"greedy agreement with {k} {x['final']:.0%} (base {x['base']:.0%})" for k, x in sorted(per.items())
        )
    else:
        note = "fingerprint " + str(rep.get("skipped") or rep.get("error") or "not computed")
    return v.model_copy(update={"summary": f"{v.summary} [{note}]", "evidence": tuple(v.evidence) + ev})


class ContaminationGate:
    """Test items in anything the agent could have trained on: the workspace and the sandbox's
    /tmp (kept in the run folder), decoded by content. The harness's own files (dev subset,
    allowed data) are skipped while they are unmodified (their use in place is the memorisation
    probe's); the dev items are in the index, so a copy of them elsewhere is a hit."""

    name = "contamination"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        src = ctx.contamination
        if src is None:
            return not_run(self.name, "no test items to look for")
        ws = ctx.workspace
        untouched = [
            ws / rel
            for rel, digest in ctx.manifest.items()
            if (ws / rel).is_file() and not (ws / rel).is_symlink() and sha256_file(ws / rel) == digest
        ]
        roots = [ws]
        if ctx.sandbox_tmp is not None and ctx.sandbox_tmp.is_dir():
            roots.append(ctx.sandbox_tmp)
        decode_ids, vocab, ids_note = None, None, "token ids not decoded: no base model folder"
        if ctx.base_model_path is not None:
            try:
                decode_ids, vocab = load_id_decoder(ctx.base_model_path)
                ids_note = ""
            except Exception as exc:  # noqa: BLE001 - recorded in the summary: a hole, said so
                ids_note = f"token ids not decoded: {type(exc).__name__}: {exc}"[:200]
        try:
            index = build_index_cached(src.items, src.allowed, src.cache_dir, pairs=src.pairs)
            jit_cache = src.cache_dir / "jit" if src.cache_dir is not None else None  # harness-only, like the index
            inc = IncrementalScan(index, ctx.evidence_dir, decode_ids=decode_ids, vocab_size=vocab, jit_cache=jit_cache)
            observed = ctx.contamination_observed
            if observed is not None and observed.is_file():
                inc.load_results(observed)
            for name, blob in agent_inputs(ctx.trace_path, ctx.observed_log):
                inc.feed_text(name, blob)
            # the observer's preserved copies (files written, then deleted or changed) too
            roots += [r for r in ctx.extra_scan_roots if r.exists() and r not in roots]
            verdict = scan(index, roots, ctx.evidence_dir, exclude=untouched, incremental=inc)
        except Exception as exc:  # noqa: BLE001 - recorded, never a pass
            return not_run(self.name, f"scan failed: {type(exc).__name__}: {exc}")
        note = f" [test sets indexed: {', '.join(src.covered)}" + (
            f"; not available locally: {', '.join(src.uncovered)}" if src.uncovered else ""
        )
        note += f"; {ids_note}]" if ids_note else "]"
        return verdict.model_copy(update={"summary": verdict.summary + note})


class ProbeGate:
    """The behavioural memorisation probe: the final model's likelihood gain on test items
    against never-seen controls, and its accuracy on the dev items against held-out ones. Runs on
    a readable model folder only (after :class:`ModelFormatGate`)."""

    name = "probe"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        if ctx.probe is None:
            return not_run(self.name, "no test items to probe with")
        models = _model_and_base(self.name, ctx, "no final_model to probe")
        if isinstance(models, Verdict):
            return models
        final_model, base_path = models
        ctx.progress(f"memorisation probe ({ctx.probe.config.n_items} items)")
        return check_probe(final_model, base_path, ctx.probe, ctx.evidence_dir)


class TraceAuditGate:
    """What the agent ran, step by step, against the run's audit policy."""

    name = "trace_audit"

    def required(self, ctx: GateContext) -> bool:
        return True

    def check(self, ctx: GateContext) -> Verdict:
        limit = ctx.settings.run.trace_max_unreadable if ctx.settings is not None else DEFAULT_MAX_UNREADABLE
        return check_trace(ctx.trace_path, ctx.audit_policy, ctx.evidence_dir, max_unreadable=limit)


class ObservedAuditGate:
    """What ran in the sandbox by the kernel's account (``observed.jsonl``), against the same
    policy, compared with the trace. Required when the observer ran (it needs root)."""

    name = "observed_audit"

    def required(self, ctx: GateContext) -> bool:
        return ctx.observed_log is not None and observer_ran(ctx.observed_log)

    def check(self, ctx: GateContext) -> Verdict:
        return check_observed(
            ctx.observed_log,
            ctx.audit_policy,
            ctx.evidence_dir,
            trace_path=ctx.trace_path,
            workspace=ctx.workspace,
            harness_files=ctx.manifest,
        )


class JudgeGate:
    """The LLM judge: required exactly when configured (a configured but invalid or failing judge
    is required and not_run). Runs last: it reads the other gates' verdicts."""

    name = "judge"

    def required(self, ctx: GateContext) -> bool:
        return ctx.judge is not None or ctx.judge_error is not None

    def check(self, ctx: GateContext) -> Verdict:
        if ctx.judge_error is not None:
            return not_run(self.name, ctx.judge_error)
        if ctx.judge is None:
            return not_run(self.name, "no judge endpoint configured")
        config = ctx.judge
        ctx.progress(f"LLM judge {config.provider}:{config.model} x{config.n}")
        # the judge reads every gate verdict so far, and the independent log of the sandbox
        # (``observed.jsonl`` in the run folder, beside ``evidence/``; the prompt says when absent)
        return run_judge(
            config,
            ctx.workspace,
            ctx.trace_path,
            ctx.evidence_dir,
            run_info=dict(ctx.run_info),
            manifest=ctx.manifest,
            gate_verdicts=dict(ctx.verdicts),
            observed_log=ctx.evidence_dir.parent / OBSERVED_LOG,
            final_model=ctx.final_model,
        )


#: Every gate, in the order a verification runs them.
GATES: tuple[Gate, ...] = (
    TamperGate(),
    TransferGate(),
    ModelFormatGate(),
    LineageGate(),
    ContaminationGate(),
    ProbeGate(),
    TraceAuditGate(),
    ObservedAuditGate(),
    JudgeGate(),
)
