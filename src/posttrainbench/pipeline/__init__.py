"""The run lifecycle, phase by phase, resumable:

``prepare → solve → collect → verify → evaluate → record``

Each phase reads and writes only the run folder; ``run.json`` is written atomically before
and after every phase, so a killed process resumes at the phase it was in. A phase that raises
is an *infrastructure* failure (disk full, sandbox failed to start, evaluator crashed) and is
retried on resume; what the agent did (exit code, no model, a broken model, a failed gate) is an
*outcome*, recorded with its cause, and never re-run.

One module per phase (:mod:`.prepare`, :mod:`.solve`, :mod:`.collect`, :mod:`.verify`,
:mod:`.evaluate`, :mod:`.record`), each a ``run(pipeline, record)`` that returns the phase's
typed result (:class:`~posttrainbench.domain.PhaseResult`, stored as the phase's ``details``);
:mod:`.lifecycle` calls them in order.
"""

from __future__ import annotations

from .common import PhaseError, ProgressFn
from .lifecycle import PHASE_STEPS, Pipeline

__all__ = ["PHASE_STEPS", "PhaseError", "Pipeline", "ProgressFn"]
