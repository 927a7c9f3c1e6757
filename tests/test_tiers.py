"""The test tiers: markers come from the table in conftest.py, so the fast tier is what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FAST = "not slow and not slurm and not docker and not browser and not npm"


def _collected(marker_expr: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", marker_expr],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("[")[0] for line in out.splitlines() if "::" in line}


def test_the_fast_tier_leaves_out_what_is_slow_or_needs_a_service() -> None:
    fast, slow = _collected(FAST), _collected("slow")
    assert "tests/test_demo.py::test_demo_shows_a_real_improvement" in slow
    assert "tests/test_demo.py::test_demo_shows_a_real_improvement" not in fast
    assert not any(
        t.startswith(("tests/test_sweep_slurm.py", "tests/test_docker_sandbox.py", "tests/test_cli_agents.py"))
        for t in fast
    )
    assert "tests/test_report.py::test_leaderboard_page_in_chromium" in _collected("browser")
    assert "tests/test_canonical_submission.py::test_honest_single_file_is_accepted_and_loads_as_verified" in fast
    assert fast & slow == set()
