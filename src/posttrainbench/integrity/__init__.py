"""Integrity gates: deterministic checks that must pass before a score counts.

Every gate returns a :class:`~posttrainbench.domain.Verdict`; a gate that lacks its input or
crashes returns ``not_run`` with the reason (never ``pass``, never an exception). Every gate has
one signature, ``check(ctx: GateContext) -> Verdict`` (:mod:`.gate`); :data:`GATES` lists them
in order (:mod:`.gates`), :func:`run_gates` runs them on one context, and :func:`final_status`
decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..domain import Verdict, VerdictStatus
from .contamination import (
    ContaminationIndex,
    build_index,
    build_index_cached,
    load_index,
    save_index,
    scan,
    texts_from_files,
)
from .gate import ContaminationSources, Gate, GateContext, required_gates, run_gates
from .gates import GATES
from .judge import UPSTREAM_OUTPUT_IDS, JudgeConfig, JudgeConfigError, judge_report, run_judge
from .lineage import check_lineage
from .manifest import check_tamper, write_manifest
from .model_check import check_model_folder
from .probe import ProbeConfig, ProbeSources, check_probe, renumber_item
from .trace_audit import AuditPolicy, check_trace, secret_values_from_env
from .transfer import check_transfer


def final_status(verdicts: Iterable[Verdict], required: set[str]) -> VerdictStatus:
    """Overall verification status: any ``fail`` -> fail; pass only if every required gate is
    present and every verdict of it passed (and at least one gate ran); otherwise not_run."""
    verdicts = list(verdicts)
    if any(v.status == VerdictStatus.failed for v in verdicts):
        return VerdictStatus.failed
    if not verdicts and not required:
        return VerdictStatus.not_run
    by_gate: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_gate.setdefault(v.gate, []).append(v)
    for gate in required:
        got = by_gate.get(gate)
        if not got or any(v.status != VerdictStatus.passed for v in got):
            return VerdictStatus.not_run
    return VerdictStatus.passed


__all__ = [
    "GATES",
    "UPSTREAM_OUTPUT_IDS",
    "AuditPolicy",
    "ContaminationIndex",
    "ContaminationSources",
    "Gate",
    "GateContext",
    "JudgeConfig",
    "JudgeConfigError",
    "ProbeConfig",
    "ProbeSources",
    "build_index",
    "build_index_cached",
    "check_lineage",
    "check_model_folder",
    "check_probe",
    "check_tamper",
    "check_trace",
    "check_transfer",
    "final_status",
    "judge_report",
    "load_index",
    "renumber_item",
    "required_gates",
    "run_gates",
    "run_judge",
    "save_index",
    "scan",
    "secret_values_from_env",
    "texts_from_files",
    "write_manifest",
]
