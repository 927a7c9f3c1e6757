"""The run-folder layout. It keeps the published PostTrainBench one:

``results/<agent>_<agentconfig>_<H>h[_suffix]/<benchmark>_<Org>_<Model>_<runid>/``

with ``metrics.json``, ``time_taken.txt``, ``prompt.txt``, the trace (``solve_out.txt``),
judgement files (the text ones and upstream v1.1+'s ``judgement_<id>.json``), ``final_model/``
and ``task/`` (the agent's workspace), plus our ``run.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..domain import BaseModelSpec, RunSpec

_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


def _safe(part: str) -> str:
    """Make a name component safe for a folder name (no '/', '_' kept as separator only)."""
    return _UNSAFE.sub("-", part).strip("-") or "x"


def hours_label(hours: float) -> str:
    """``10`` -> ``10h``, ``0.25`` -> ``0.25h``."""
    return f"{hours:g}h"


def group_name(spec: RunSpec) -> str:
    """``<agent>_<agentconfig>_<H>h[_suffix]``."""
    name = f"{_safe(spec.agent)}_{_safe(spec.agent_config)}_{hours_label(spec.hours)}"
    return f"{name}_{_safe(spec.suffix)}" if spec.suffix else name


def run_name(spec: RunSpec, base: BaseModelSpec) -> str:
    """``<benchmark>_<Org>_<Model>_<runid>``."""
    return f"{_safe(spec.benchmark)}_{_safe(base.org)}_{_safe(base.name)}_{spec.run_id()}"


@dataclass(frozen=True)
class RunPaths:
    """Every path inside one run folder, in one place."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def time_taken(self) -> Path:
        return self.root / "time_taken.txt"

    @property
    def prompt(self) -> Path:
        return self.root / "prompt.txt"

    @property
    def workspace(self) -> Path:
        """The agent's workspace (published name: ``task/``)."""
        return self.root / "task"

    @property
    def final_model(self) -> Path:
        return self.root / "final_model"

    @property
    def solve_out(self) -> Path:
        """Raw agent output (the trace)."""
        return self.root / "solve_out.txt"

    @property
    def trace_json(self) -> Path:
        """The agent's trace in the common schema (``posttrainbench.trace``)."""
        return self.root / "trace.json"

    @property
    def solve_err(self) -> Path:
        return self.root / "solve_err.txt"

    @property
    def egress_log(self) -> Path:
        """The egress proxy's request log (one ALLOW/DENY line per request)."""
        return self.root / "egress.log"

    @property
    def sandbox_tmp(self) -> Path:
        """The sandbox's ``/tmp``: a host folder (mode 1777) in the run folder that the sandbox binds
        at ``/tmp``, so what the agent keeps there is observed during the run, outlives the sandbox
        and is scanned at verify."""
        return self.root / "sandbox_tmp"

    @property
    def contamination_observed(self) -> Path:
        """What a contamination scan fed during the run saw (``IncrementalScan.save_results``):
        files written, even if deleted later; the gate loads it when present."""
        return self.root / "contamination_observed.json"

    @property
    def observed(self) -> Path:
        """The independent log of what ran in the sandbox (``sandbox.observer``): JSON lines."""
        return self.root / "observed.jsonl"

    @property
    def preserved(self) -> Path:
        """Content of the files the agent wrote, kept as written (deleted ones included) for the scan."""
        return self.root / "preserved"

    @property
    def harness(self) -> Path:
        """Pristine copies of every harness-owned workspace file (for the tamper diff)."""
        return self.root / "harness"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def contamination_judgement(self) -> Path:
        return self.root / "contamination_judgement.txt"

    @property
    def disallowed_model_judgement(self) -> Path:
        return self.root / "disallowed_model_judgement.txt"

    def judgement_json(self, output_id: str) -> Path:
        """Upstream v1.1+'s judgement file of one judge: ``judgement_<id>.json`` (``gpt5_4``,
        ``api``, ``ptb_lookup``, ``general``, ``derived_contamination``)."""
        return self.root / f"judgement_{output_id}.json"


def run_paths(results_root: Path, spec: RunSpec, base: BaseModelSpec) -> RunPaths:
    """The run folder of ``spec`` under ``results_root``."""
    return RunPaths(Path(results_root) / group_name(spec) / run_name(spec, base))


def baseline_dir(
    results_root: Path, benchmark: str, base: BaseModelSpec, limit: int | None, checkpoint: str = "base"
) -> Path:
    """Folder of a zero-shot baseline evaluation of a base model (the fallback score) or, with
    ``checkpoint="instruct"``, of its official instruct model (for the benchmark weights)."""
    scope = "full" if limit is None else f"limit{limit}"
    kind = "" if checkpoint == "base" else f"_{_safe(checkpoint)}"
    return (
        Path(results_root)
        / "baseline_zeroshot"
        / f"{_safe(benchmark)}_{_safe(base.org)}_{_safe(base.name)}_{scope}{kind}"
    )
