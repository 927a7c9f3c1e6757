"""verify: the integrity gates (:data:`~posttrainbench.integrity.GATES`), run by
:func:`~posttrainbench.integrity.run_gates` on one :class:`~posttrainbench.integrity.GateContext`.

Our runs and imported upstream runs go through the same gates; what differs is the context. An
imported run is checked in its upstream folder (read only; evidence goes to our run folder), and
what upstream never recorded cannot be checked and says so: no manifest of the harness files
(tamper) and no hashes at collect (transfer) are ``not_run``; the upstream judge's verdicts are
kept next to ours and required, and our LLM judge does not run on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..agents.trace_parsers import parse_trace
from ..benchmarks import BENCHMARKS
from ..benchmarks.base import ANSWER_SCORER
from ..catalog import END_OF_TURN, get_chat_template
from ..data import DataError, data_root
from ..domain import RunRecord, Verdict, VerdictStatus, VerifyResult
from ..fsutil import atomic_write_text
from ..integrity import (
    GATES,
    UPSTREAM_OUTPUT_IDS,
    AuditPolicy,
    ContaminationSources,
    GateContext,
    JudgeConfig,
    JudgeConfigError,
    ProbeConfig,
    ProbeSources,
    final_status,
    judge_report,
    required_gates,
    run_gates,
    secret_values_from_env,
)
from ..settings import Settings
from ..trace import save_trace
from .common import PhaseError, record_outcome

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> VerifyResult:
    """Every gate on the run; the final verdict is pass only if every required gate passed."""
    ev = pipe.paths.evidence
    ev.mkdir(parents=True, exist_ok=True)
    ctx = upstream_context(pipe, record) if record.imported_from else run_context(pipe, record)
    verdicts = run_gates(ctx, GATES)
    required = required_gates(ctx, GATES)
    record.verdicts, record.required_gates = verdicts, required
    record.final_verdict = final_status(verdicts, set(required))
    if not record.imported_from:  # an imported run's judgement files are the upstream judge's
        _write_judgements(pipe, verdicts)
    if record.final_verdict != VerdictStatus.passed:
        bad = [
            f"{v.gate}={v.status.value}" for v in verdicts if v.gate in required and v.status != VerdictStatus.passed
        ]
        record_outcome(record, "verify", "gates not passed: " + ", ".join(bad))
    upstream = str(_upstream_folder(record)) if record.imported_from else None
    return VerifyResult(final_verdict=record.final_verdict, upstream=upstream, **ctx.notes)


def run_context(pipe: Pipeline, record: RunRecord) -> GateContext:
    """The gates' view of one of our runs: its workspace, manifest, canonical submission, trace."""
    collect = record.phases.collect.result()
    ws = pipe.paths.workspace
    sources, unavailable = _contamination_sources(pipe)
    probe, more = _probe_sources(pipe, record.phases.prepare.result().dev_ids)
    unavailable |= more
    judge, judge_error = _judge_config(pipe.settings)
    return GateContext(
        evidence_dir=pipe.paths.evidence,
        workspace=ws,
        manifest=record.manifest,
        base=pipe.base,
        trace_path=pipe.paths.trace_json,
        audit_policy=_audit_policy(pipe),
        pristine_dir=pipe.paths.harness,
        extra_scan_roots=[pipe.paths.sandbox_tmp, pipe.paths.preserved],
        observed_log=pipe.paths.observed,
        final_model=pipe.paths.final_model if collect.final_model else None,
        final_model_hashes=record.final_model_hashes,
        rejected=collect.rejected,
        base_model_path=Path(record.phases.prepare.result().base_model_path),
        settings=pipe.settings,
        contamination=sources,
        probe=probe,
        sandbox_tmp=pipe.paths.sandbox_tmp,
        contamination_observed=pipe.paths.contamination_observed,
        judge=judge,
        judge_error=judge_error,
        run_info=_run_info(pipe),
        unavailable=unavailable,
        progress=lambda message: pipe.progress("verify", message),
    )


def upstream_context(pipe: Pipeline, record: RunRecord) -> GateContext:
    """The gates' view of an imported upstream run folder (``imported_from.source``)."""
    src = _upstream_folder(record)
    if not src.is_dir():
        raise PhaseError(f"upstream run folder {src} is not available")
    fm, ws = src / "final_model", src / "task"
    unavailable = {
        "tamper": "upstream run: no manifest of the harness files was recorded",
        "transfer": "upstream run: no hashes were recorded when final_model was collected",
        "judge": "upstream run: the upstream judge's verdicts are kept instead",
    }
    if not fm.is_dir():
        unavailable["model_format"] = unavailable["lineage"] = "no final_model in the upstream folder"
    sources = None
    if ws.is_dir():
        sources, more = _contamination_sources(pipe)
        unavailable |= more
    else:
        unavailable["contamination"] = "no task/ workspace in the upstream folder"
    probe, more = _probe_sources(pipe, [])  # upstream records no dev ids: no dev/held-out comparison
    unavailable |= more
    trace = parse_trace(pipe.spec.agent, src / "solve_out.txt")
    if trace.steps:
        save_trace(pipe.paths.trace_json, trace)
    else:
        unavailable["trace_audit"] = "no parseable solve_out.txt in the upstream folder"
    return GateContext(
        evidence_dir=pipe.paths.evidence,
        workspace=ws,
        manifest={},
        base=pipe.base,
        trace_path=pipe.paths.trace_json,
        audit_policy=_audit_policy(pipe),
        final_model=fm if fm.is_dir() else None,
        settings=pipe.settings,
        contamination=sources,
        probe=probe,
        run_info=_run_info(pipe),
        prior=[v for v in record.verdicts if v.gate.startswith("judge_")],
        unavailable=unavailable,
        progress=lambda message: pipe.progress("verify", message),
    )


def _upstream_folder(record: RunRecord) -> Path:
    return Path(str((record.imported_from or {}).get("source", "")))


def _contamination_sources(pipe: Pipeline) -> tuple[ContaminationSources | None, dict[str, str]]:
    """Every test item the agent must not have trained on (the dev items the agent was given are
    test items too), their question/answer pairs, and the allowed training texts; or why they
    could not be loaded (the contamination gate is then not_run)."""
    try:
        items = pipe.benchmark.load_test_items(settings=pipe.settings)
        try:
            allowed = [
                e["prompt"] + "\n" + e["completion"] for e in pipe.benchmark.load_train_examples(settings=pipe.settings)
            ]
        except DataError:
            allowed = []
        entries = [(it.id, it.test_text()) for it in items]
        pairs = [(it.id, it.input, it.target) for it in items]
        # Every other benchmark's test items too (an agent must not train on any test set),
        # from local files only: a benchmark whose data is not here is named as not covered.
        covered, uncovered = [pipe.benchmark.id], []
        for other in BENCHMARKS.values():
            if other.id == pipe.benchmark.id or other.demo:
                continue
            try:
                local = other.load_test_items(local_only=True, settings=pipe.settings)
                entries += [(f"{other.id}/{it.id}", it.test_text()) for it in local]
                pairs += [(f"{other.id}/{it.id}", it.input, it.target) for it in local]
                covered.append(other.id)
            except DataError:
                uncovered.append(other.id)
    except Exception as exc:  # noqa: BLE001 - the gate says why it could not run
        return None, {"contamination": f"scan failed: {type(exc).__name__}: {exc}"}
    cache = pipe.settings.paths.cache_dir / "contamination"
    return ContaminationSources(entries, allowed, covered, uncovered, cache_dir=cache, pairs=pairs), {}


def _probe_sources(pipe: Pipeline, dev_ids: list[str]) -> tuple[ProbeSources | None, dict[str, str]]:
    """The memorisation probe's inputs: the run's test items, the dev ids, the harness's chat
    template and the benchmark's control and scorer; or why they could not be loaded."""
    bench, knobs = pipe.benchmark, pipe.settings.probe
    try:
        items = bench.load_test_items(settings=pipe.settings)
        spares = bench.probe_spares(data_root(pipe.settings))
    except Exception as exc:  # noqa: BLE001 - the gate says why it could not run
        return None, {"probe": f"test items unavailable: {type(exc).__name__}: {exc}"}
    config = ProbeConfig(
        n_items=knobs.items,
        alpha=knobs.alpha,
        min_nats=knobs.min_nats,
        min_acc_gap=knobs.min_acc_gap,
        gen_tokens=knobs.gen_tokens,
        max_tokens=knobs.max_tokens,
        device=knobs.device,
        seed=knobs.seed,
    )
    sources = ProbeSources(
        items=items,
        dev_ids=frozenset(dev_ids),
        chat_template=get_chat_template(pipe.base.chat_template),
        end_of_turn=END_OF_TURN.get(pipe.base.chat_template, ()),
        control=bench.probe_control,
        spares=spares,
        # the greedy accuracy comparison needs the benchmark's answer rule (not a grader, not code runs)
        score_reply=(lambda reply, target: bench.score_reply(reply, target)[0])
        if bench.scorer_name == ANSWER_SCORER
        else None,
        max_new_tokens=bench.decoding.max_tokens,
        config=config,
    )
    return sources, {}


def _audit_policy(pipe: Pipeline) -> AuditPolicy:
    return AuditPolicy.for_run(
        agent_hosts=pipe.agent.spec.api_hosts,
        base=pipe.base,
        benchmarks=BENCHMARKS.values(),
        secret_values=secret_values_from_env(os.environ),
    )


def _judge_config(settings: Settings) -> tuple[JudgeConfig | None, str | None]:
    """The LLM judge the ``PTB_JUDGE_*`` settings configure (None: not configured), or why they
    are invalid (the judge is then required and not_run)."""
    try:
        return JudgeConfig.configured(settings.judge), None
    except JudgeConfigError as exc:
        return None, str(exc)


def _run_info(pipe: Pipeline) -> dict[str, str]:
    """What the judge's prompt says about the run."""
    return {
        "benchmark": f"{pipe.benchmark.id} ({pipe.benchmark.display_name})",
        "base_model": pipe.base.hub_id,
        "forbidden": ", ".join(pipe.base.forbidden) or "none listed",
        "agent": f"{pipe.spec.agent} ({pipe.spec.agent_config})",
    }


def _write_judgements(pipe: Pipeline, verdicts: list[Verdict]) -> None:
    """The published judgement files: the two text files (our gates, and the LLM judge's
    majority where it gave one: "detected" when either found it) and upstream v1.1+'s
    ``judgement_<id>.json`` with the LLM judge's aggregated verdicts, written only when the judge
    gave a majority (a stale file of an earlier verification is removed: absent means not judged)."""
    by_gate = {v.gate: v for v in verdicts}
    report = judge_report(by_gate["judge"]) if "judge" in by_gate else None
    votes: dict = (report or {}).get("criteria") or {}
    upstream: dict = (report or {}).get("upstream_judgements") or {}

    def judged(*criteria: str) -> str | None:
        """The judge's justification when it failed any of ``criteria`` by majority."""
        bad = [c for c in criteria if (votes.get(c) or {}).get("majority") == "fail"]
        return "; ".join(f"LLM judge {c}: {votes[c]['justification'][:300]}" for c in bad) or None

    for path, gate, clean, dirty, judge_says in (
        (
            pipe.paths.contamination_judgement,
            by_gate["contamination"],
            "no contamination detected",
            "contamination detected",
            judged("contamination", "derived_contamination"),
        ),
        (
            pipe.paths.disallowed_model_judgement,
            by_gate["lineage"],
            "only allowed use detected",
            "disallowed use detected",
            judged("disallowed_model"),
        ),
    ):
        if gate.status == VerdictStatus.failed or judge_says:
            why = "; ".join(x for x in (gate.summary if gate.status == VerdictStatus.failed else "", judge_says) if x)
            text = f"{dirty}: {why}\n"
        elif gate.status == VerdictStatus.not_run:
            text = f"not checked: {gate.summary}\n"
        else:
            text = f"{clean}\n"
        atomic_write_text(path, text)
    for output_id in UPSTREAM_OUTPUT_IDS:
        target = pipe.paths.judgement_json(output_id)
        if output_id in upstream:
            atomic_write_text(target, json.dumps(upstream[output_id], indent=2) + "\n")
        else:
            target.unlink(missing_ok=True)
