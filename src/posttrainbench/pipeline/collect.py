"""collect: the raw outputs and the trace (secrets redacted first), and the canonical submission
made from the agent's ``final_model/`` (:mod:`posttrainbench.models.canonical`): what every gate
and the evaluator read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..agents.trace_parsers import parse_trace
from ..domain import CollectResult, RunRecord
from ..models import SubmissionRejected, base_weight_bytes, canonicalize
from ..sandbox.secrets import redact_file, redact_trace, redact_tree, secret_values
from ..trace import save_trace
from .common import record_outcome

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> CollectResult:
    """Redact, parse the trace, and canonicalize the submission (an outcome if there is none)."""
    # Nothing secret is stored: raw outputs, egress log and trace are redacted first.
    secrets = secret_values(os.environ, pipe.agent.secret_values(pipe.launch_context()))
    for raw in (pipe.paths.solve_out, pipe.paths.solve_err, pipe.paths.egress_log, pipe.paths.observed):
        redact_file(raw, secrets)
    redacted = redact_tree(pipe.paths.workspace, secrets)  # CLI session transcripts
    for kept in (pipe.paths.sandbox_tmp, pipe.paths.preserved):  # the sandbox's /tmp, the observer's copies
        redact_tree(kept, secrets)
    trace = parse_trace(pipe.spec.agent, pipe.paths.solve_out, model=pipe.agent.model(pipe.spec.agent_config))
    trace = redact_trace(trace, secrets)
    save_trace(pipe.paths.trace_json, trace)
    record.usage = trace.usage().model_dump()
    src = pipe.paths.workspace / "final_model"
    shutil.rmtree(pipe.paths.final_model, ignore_errors=True)
    record.final_model_hashes, record.submission = {}, None
    if not (src.is_dir() or src.is_symlink()):
        record_outcome(record, "collect", "agent left no final_model/")
        return CollectResult(final_model=False, redacted_files=redacted)
    # The canonical submission: what every gate and the evaluator read (models.canonical).
    base_path = Path(record.phases.prepare.result().base_model_path)
    factor = pipe.settings.run.submission_size_factor
    limit = int(factor * max(base_weight_bytes(base_path), 1 << 20))
    try:
        canon = canonicalize(
            src, pipe.paths.final_model, base_path, allowed_root=pipe.paths.workspace, max_weight_bytes=limit
        )
    except SubmissionRejected as exc:
        record_outcome(record, "collect", f"final_model/ rejected: {exc}")
        return CollectResult(final_model=False, rejected=str(exc), redacted_files=redacted)
    record.final_model_hashes = canon.files
    record.submission = canon.model_dump(mode="json")
    return CollectResult(
        final_model=True,
        files=len(canon.files),
        bytes=sum(p.stat().st_size for p in pipe.paths.final_model.iterdir()),
        weights_digest=canon.weights_digest,
        ignored_files=canon.ignored_files,
        redacted_files=redacted,
    )
