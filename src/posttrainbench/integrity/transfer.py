"""The transfer gate: the collected final_model is still exactly what was collected.

Collect itself (the only way a model leaves the sandbox) makes the canonical submission
(:func:`posttrainbench.models.canonicalize`) and records the sha256 of every file it wrote;
this gate, and the evaluator just before it loads the folder, compare the folder with them.
"""

from __future__ import annotations

from pathlib import Path

from ..domain import Verdict, VerdictStatus
from ..fsutil import hash_tree
from ._common import guarded, not_run, short_list, verdict, write_evidence

GATE = "transfer"


@guarded(GATE)
def check_transfer(final_model: Path, recorded: dict[str, str], evidence_dir: Path | None = None) -> Verdict:
    """Fail if the collected final_model changed (file modified, added or removed) since collect."""
    final_model = Path(final_model)
    if not recorded:
        return not_run(GATE, "no hashes were recorded at collect")
    actual = hash_tree(final_model) if final_model.is_dir() and not final_model.is_symlink() else {}
    missing = sorted(set(recorded) - set(actual))
    added = sorted(set(actual) - set(recorded))
    changed = sorted(k for k in set(recorded) & set(actual) if recorded[k] != actual[k])
    evidence = write_evidence(
        evidence_dir,
        GATE,
        {
            "gate": GATE,
            "final_model": str(final_model),
            "missing": missing,
            "added": {k: actual[k] for k in added},
            "changed": {k: {"recorded": recorded[k], "actual": actual[k]} for k in changed},
            "files_checked": len(recorded),
        },
    )
    problems = [
        f"{kind}: {short_list(paths)}"
        for kind, paths in (("changed", changed), ("added", added), ("missing", missing))
        if paths
    ]
    if problems:
        return verdict(
            GATE, VerdictStatus.failed, "final_model differs from what was collected: " + "; ".join(problems), evidence
        )
    return verdict(GATE, VerdictStatus.passed, f"{len(recorded)} collected files unchanged", evidence)
