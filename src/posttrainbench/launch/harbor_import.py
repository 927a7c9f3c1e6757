"""``ptb import --harbor JOB_DIR``: the trials of a Harbor job into our run folders.

A Harbor job folder holds one folder per trial, each with Harbor's ``result.json`` (task,
agent, timings, ``verifier_result.rewards``, ``exception_info``). For a task exported by
``ptb export harbor``, the verifier left our run folder in ``verifier/ptb-run/`` (``run.json``,
``metrics.json``, evidence, trace, eval logs): that folder becomes a run folder of the results
tree, where ``ptb leaderboard``, ``ptb report`` and ``ptb index`` read it like any other run
(the leaderboard applies the fallback policy, not Harbor's reward). A trial whose verifier never
ran (Harbor error, agent timeout before verification) is recorded from the task's prepared run
(``config.json`` names the task folder) as a failed run, so its cell falls back; when that folder
is not reachable the trial is reported as a problem and not imported.

Trials of the same cell (``-k`` attempts, several jobs) become repeats 0, 1, ... in the order
they are imported; importing the same trial again rewrites its own folder only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..catalog import get_base_model
from ..domain import RunRecord
from ..results import load_record, run_paths, save_record
from .harbor import HARBOR_AGENTS, prepared_record_path

#: Folders of a prepared run not copied for a failed trial (the workspace is the agent's).
_SKIP = ("task",)


@dataclass
class HarborImportReport:
    """What an import did: run folders written, trials left out (with why)."""

    imported: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _seconds(timing: Any) -> float | None:
    """Seconds between a Harbor ``TimingInfo``'s ``started_at`` and ``finished_at`` (None if unknown)."""
    if not isinstance(timing, dict) or not timing.get("started_at") or not timing.get("finished_at"):
        return None
    start = datetime.fromisoformat(str(timing["started_at"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(timing["finished_at"]).replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _trial_source(trial: Path, result: dict[str, Any]) -> tuple[Path, bool] | str:
    """(run folder to import, verifier ran) of a trial, or why there is none."""
    kept = trial / "verifier" / "ptb-run"
    if (kept / "run.json").is_file():
        return kept, True
    try:
        task_path = Path(json.loads((trial / "config.json").read_text())["task"]["path"])
        prepared = prepared_record_path(task_path).parent
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{trial.name}: no verifier/ptb-run and no reachable exported task ({type(exc).__name__}: {exc})"
    if not (prepared / "run.json").is_file():
        return f"{trial.name}: no verifier/ptb-run and no prepared run in {prepared}"
    return prepared, False


def _failure(result: dict[str, Any]) -> str:
    exc = result.get("exception_info") or {}
    if isinstance(exc, dict) and exc:
        return f"harbor: {exc.get('exception_type', 'error')}: {exc.get('exception_message', '')}".strip()
    return "harbor: the verifier left no run folder"


def import_harbor_job(job_dir: Path, results: Path) -> HarborImportReport:
    """Import every trial of the Harbor job ``job_dir`` into ``results``.

    Raises FileNotFoundError when ``job_dir`` holds no trial folder."""
    trials = sorted(d for d in Path(job_dir).iterdir() if d.is_dir() and (d / "result.json").is_file())
    if not trials:
        raise FileNotFoundError(f"{job_dir}: no Harbor trial folders (<trial>/result.json)")
    report = HarborImportReport()
    for trial in trials:
        result = json.loads((trial / "result.json").read_text())
        source = _trial_source(trial, result)
        if isinstance(source, str):
            report.problems.append(source)
            continue
        src, verified_by_us = source
        rec = load_record(src / "run.json")
        agent = str((result.get("agent_info") or {}).get("name", ""))
        expected = HARBOR_AGENTS.get(rec.spec.agent, rec.spec.agent)
        if agent and agent != expected:
            report.problems.append(f"{trial.name}: exported for {expected!r}, run by Harbor agent {agent!r}")
        if not verified_by_us:
            rec.failure = rec.failure or _failure(result)
        rec.time_used_s = _seconds(result.get("agent_execution"))
        rec.imported_from = {
            "kind": "harbor",
            "source": str(trial.resolve()),
            "job": Path(job_dir).resolve().name,
            "trial": result.get("trial_name", trial.name),
            "harbor_agent": agent,
            "prepared_run_id": rec.run_id,
            "rewards": (result.get("verifier_result") or {}).get("rewards"),
            "exception": (result.get("exception_info") or {}).get("exception_type"),
        }
        report.imported.append(_place(rec, src, results, verified_by_us))
    return report


def _place(rec: RunRecord, src: Path, results: Path, whole: bool) -> Path:
    """Copy ``src`` to the run folder of ``rec`` as the first repeat free for this trial."""
    base = get_base_model(rec.spec.base_model)
    repeat = 0
    while True:
        spec = rec.spec.model_copy(update={"repeat": repeat})
        dest = run_paths(Path(results), spec, base).root
        if not dest.exists():
            break
        old = load_record(dest / "run.json") if (dest / "run.json").is_file() else None
        if old is not None and old.imported_from and old.imported_from.get("source") == rec.imported_from["source"]:  # type: ignore[index]  # set by the caller
            shutil.rmtree(dest)
            break
        repeat += 1
    rec.spec, rec.run_id = spec, spec.run_id()
    tmp = dest.with_name(f".{dest.name}.importing")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(
        src, tmp, ignore=None if whole else lambda d, names: [n for n in names if Path(d) == src and n in _SKIP]
    )
    save_record(tmp / "run.json", rec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    return dest
