"""The verifier of an exported Harbor task (``tests/test.sh`` runs it in the verifier's container).

It resumes the run prepared by ``ptb export harbor`` from ``collect``: the agent's ``/app`` (a
Harbor artifact, re-materialised by Harbor at the same path in the verifier's container) becomes
the run's workspace, the agent's ``/logs/agent`` (another artifact) its raw output, then the
pipeline's own collect -> verify (gates) -> evaluate -> record run unchanged. Harbor ran the
agent, so the solve phase is recorded as done *by Harbor*: what our sandbox would have measured
(exit code, time, limits, the kernel's log of what ran) is not known here.

Outputs, under ``--out`` (Harbor's ``/logs/verifier``, copied back to the trial folder):

- ``reward.json``: ``reward`` (the evaluated score when every required gate passed and the
  evaluation succeeded, else 0), ``verified`` (1/0), ``score`` (the raw score, -1 when none);
  the leaderboard applies our fallback policy on import, not this number;
- ``ptb-run/``: the run folder (``run.json``, ``metrics.json``, ``evidence/``, ``trace.json``,
  eval logs), without the workspace and ``final_model/`` (they are Harbor's artifacts already).

Exit status 0 whenever a reward was written (a failed gate is a result, not a crash).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from ..domain import SolveResult
from ..fsutil import atomic_write_json
from ..pipeline import Pipeline
from ..pipeline.common import now
from ..results import load_record, save_record
from ..settings import Settings

#: Folders of the run not copied into the verifier's output (they are Harbor artifacts, or large).
_NOT_KEPT = ("task", "final_model", "harness")


def reward_of(run_json: Path) -> dict[str, float]:
    """Harbor's rewards for a finished run record (all numbers, as Harbor requires)."""
    rec = load_record(run_json)
    score = rec.metrics.score if rec.metrics is not None and rec.metrics.status == "ok" else None
    ok = rec.verified and score is not None
    return {"reward": float(score) if ok and score is not None else 0.0, "verified": float(rec.verified),
            "score": float(score) if score is not None else -1.0}  # fmt: skip


def verify_artifacts(
    prepared: Path, workspace: Path, agent_logs: Path, out: Path, settings: Settings
) -> dict[str, float]:
    """Resume the prepared run folder ``prepared`` on the agent's ``workspace`` and logs; write the outputs."""
    results = Path(tempfile.mkdtemp(prefix="ptb-harbor-"))  # scratch: only what is kept goes to out
    rel = Path(*prepared.parts[-2:])  # <group>/<run>
    run_dir = results / rel
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(prepared, run_dir)
    rec = load_record(run_dir / "run.json")
    ws = run_dir / "task"
    if workspace.is_dir():
        shutil.copytree(workspace, ws, symlinks=True)
    else:
        ws.mkdir()
    logs = sorted(p for p in agent_logs.rglob("*") if p.is_file()) if agent_logs.is_dir() else []
    (run_dir / "solve_out.txt").write_text("".join(p.read_text(errors="replace") for p in logs))
    (run_dir / "solve_err.txt").write_text("")
    st = rec.phases.solve
    st.status, st.started_at, st.finished_at = "done", now(), now()
    st.details = SolveResult(argv=["harbor"], exit_code=None, timed_out=False, duration_s=0.0,
                             enforced={"runner": "harbor"}, agent_version="harbor")  # fmt: skip
    save_record(run_dir / "run.json", rec)
    pipe = Pipeline(
        rec.spec, results, settings=settings, progress=lambda phase, msg: print(f"[{phase}] {msg}", flush=True)
    )
    if pipe.paths.root != run_dir:
        raise RuntimeError(f"the prepared run folder {prepared} is not where its spec puts it ({pipe.paths.root})")
    pipe.run()
    rewards = reward_of(run_dir / "run.json")
    kept = out / "ptb-run"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(run_dir, kept, ignore=lambda d, names: [n for n in names if Path(d) == run_dir and n in _NOT_KEPT])
    atomic_write_json(out / "reward.json", rewards)
    shutil.rmtree(results, ignore_errors=True)
    return rewards


def main(argv: list[str] | None = None) -> int:
    """``python -m posttrainbench.launch.harbor_verifier --prepared RUN [--workspace /app] --out DIR``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, required=True, help="the prepared run folder (in /tests)")
    ap.add_argument("--workspace", type=Path, default=Path("/app"), help="the agent's workspace (artifact)")
    ap.add_argument("--agent-logs", type=Path, default=Path("/logs/agent"), help="the agent's logs (artifact)")
    ap.add_argument("--out", type=Path, required=True, help="Harbor's verifier folder (/logs/verifier)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rewards = verify_artifacts(args.prepared, args.workspace, args.agent_logs, args.out, Settings.from_env())
    print(json.dumps(rewards))
    return 0


if __name__ == "__main__":  # pragma: no cover - the task's tests/test.sh
    sys.exit(main())
