"""The Gate protocol: one signature for every integrity gate, and the context it reads.

A gate is ``check(ctx) -> Verdict``: it picks its inputs from a :class:`GateContext` (run folder
paths, manifest, the canonical submission and its hashes, the base model, the test items to
look for, the trace, the judge's configuration) and never raises for what the run did.
:func:`run_gates` runs a list of gates in order on one context. What a run cannot offer a gate
is said in the context, not by skipping the gate: ``unavailable`` maps a gate to the reason it
cannot run here (it is then ``not_run`` with that reason: missing is never clean), and
``prior`` holds verdicts recorded before ours (an imported run's upstream judge), kept and
required. Our runs and imported upstream runs are verified by the same gates this way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..domain import BaseModelSpec, Verdict
from ..settings import Settings
from ._common import not_run
from .judge import JudgeConfig
from .probe import ProbeSources
from .trace_audit import AuditPolicy


@dataclass(frozen=True)
class ContaminationSources:
    """What the contamination gate indexes: test items ``(id, text)`` of the run's benchmark and
    of every other benchmark available locally, the texts the agent was allowed to train on, and
    which benchmarks were (not) covered."""

    items: list[tuple[str, str]]
    allowed: list[str]
    covered: list[str]
    uncovered: list[str] = field(default_factory=list)
    cache_dir: Path | None = None
    #: ``(item_id, question, answer)`` for the pair channel (a question-prefix -> answer table).
    pairs: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class GateContext:
    """Everything the gates of one verification read, and what they found on the way."""

    evidence_dir: Path
    #: The agent's workspace (tamper, contamination, judge) and its harness files' hashes.
    workspace: Path
    manifest: Mapping[str, str]
    base: BaseModelSpec
    trace_path: Path
    audit_policy: AuditPolicy
    #: More folders the contamination scan reads: the sandbox's /tmp (a host folder) and the
    #: content the observer preserved of every file the agent wrote (deleted ones included).
    extra_scan_roots: list[Path] = field(default_factory=list)
    #: The independent log of what ran in the sandbox (``observed.jsonl``; None: not recorded).
    observed_log: Path | None = None
    #: Pristine copies of the harness files (tamper diffs against them).
    pristine_dir: Path | None = None
    #: The canonical submission (None: none was collected) and its hashes at collect.
    final_model: Path | None = None
    final_model_hashes: Mapping[str, str] = field(default_factory=dict)
    #: Why collect refused the agent's final_model/ (model_format fails with it).
    rejected: str | None = None
    #: The base model's folder (None: resolved from the local model store when lineage runs).
    base_model_path: Path | None = None
    #: Where the model store looks (``paths``; None: read from the environment when needed).
    settings: Settings | None = None
    contamination: ContaminationSources | None = None
    #: The memorisation probe's test items, dev ids, template and knobs (None: not available).
    probe: ProbeSources | None = None
    #: The sandbox's /tmp kept in the run folder (None or absent: nothing to scan there).
    sandbox_tmp: Path | None = None
    #: The observer's saved contamination scan of what was written during the run (None or absent: none).
    contamination_observed: Path | None = None
    #: The LLM judge (None: not configured) or why its configuration is invalid.
    judge: JudgeConfig | None = None
    judge_error: str | None = None
    #: What the judge's prompt says about the run (benchmark, base_model, forbidden, agent).
    run_info: Mapping[str, str] = field(default_factory=dict)
    #: Verdicts recorded before this verification (an upstream judge's): kept and required.
    prior: list[Verdict] = field(default_factory=list)
    #: gate -> why it cannot run on this run (it is not_run with this reason).
    unavailable: Mapping[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda message: None
    #: Filled by run_gates: the verdicts so far (a gate may depend on an earlier one).
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    #: Filled by gates: facts the verify phase records (e.g. the forbidden checkpoints checked).
    notes: dict[str, Any] = field(default_factory=dict)


class Gate(Protocol):
    """One integrity gate."""

    name: str

    def required(self, ctx: GateContext) -> bool:
        """Whether the gate must pass for the score to count on this run."""
        ...

    def check(self, ctx: GateContext) -> Verdict:
        """The gate's verdict on the run described by ``ctx``; ``not_run`` when an input is missing."""
        ...


def run_gates(ctx: GateContext, gates: Sequence[Gate]) -> list[Verdict]:
    """The verdicts of one verification: ``ctx.prior`` first, then one per gate in order (a gate
    that ``ctx.unavailable`` names is ``not_run`` with its reason and is not called). What an
    earlier call left in ``ctx.verdicts`` and ``ctx.notes`` is cleared first."""
    ctx.verdicts.clear()
    ctx.notes.clear()
    out = list(ctx.prior)
    for gate in gates:
        reason = ctx.unavailable.get(gate.name)
        verdict = not_run(gate.name, reason) if reason is not None else gate.check(ctx)
        ctx.verdicts[gate.name] = verdict
        out.append(verdict)
    return out


def required_gates(ctx: GateContext, gates: Sequence[Gate]) -> list[str]:
    """The gates that must pass on this run: the prior verdicts' and each required gate."""
    return [*(v.gate for v in ctx.prior), *(g.name for g in gates if g.required(ctx))]
