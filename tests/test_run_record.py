"""run.json: typed phase results and metrics, and the files earlier versions wrote still load."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from posttrainbench.domain import (
    PHASES,
    CollectResult,
    PhaseState,
    PrepareResult,
    RunMetrics,
    RunRecord,
    SolveResult,
    VerdictStatus,
    VerifyResult,
)
from posttrainbench.results import RecordError, load_record, save_record
from posttrainbench.results.summary import summarize

OLD = Path(__file__).parent / "fixtures" / "run_json_v1"


def _kept(old: object, new: object, where: str = "") -> list[str]:
    """Where ``new`` lost or changed a value of ``old`` (keys ``new`` adds are fine)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            p for k, v in old.items() for p in (_kept(v, new[k], f"{where}.{k}") if k in new else [f"{where}.{k} lost"])
        ]
    if isinstance(old, str) and isinstance(new, str) and old != new:
        try:  # the same instant, written as +00:00 or Z
            return (
                [] if datetime.fromisoformat(old) == datetime.fromisoformat(new) else [f"{where}: {old!r} -> {new!r}"]
            )
        except ValueError:
            pass
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


@pytest.mark.parametrize("name", ["honest", "no_model", "imported"])
def test_old_run_json_loads_typed_and_saves_without_losing_anything(name: str, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text((OLD / f"{name}.json").read_text())
    record = load_record(path)
    save_record(path, record)
    # the only value dropped: the marker `ptb import` put in each phase (imported_from says it)
    dropped = [f".phases.{p}.details.imported lost" for p in PHASES] if name == "imported" else []
    assert _kept(json.loads((OLD / f"{name}.json").read_text()), json.loads(path.read_text())) == dropped
    assert load_record(path) == record, "a saved record reads back identically"


def test_old_run_json_fields_are_typed() -> None:
    honest = RunRecord.model_validate_json((OLD / "honest.json").read_text())
    prep = honest.phases.prepare.result()
    assert isinstance(prep, PrepareResult) and prep.harness_files and prep.dev_ids and Path(prep.base_model_path).name
    solve = honest.phases["solve"].result()
    assert isinstance(solve, SolveResult) and solve.exit_code == 0 and solve.argv == ["bash", "agent.sh"]
    assert isinstance(honest.phases.collect.details, CollectResult) and honest.phases.collect.details.final_model
    verify = honest.phases.verify.result()
    assert isinstance(verify, VerifyResult) and verify.final_verdict == VerdictStatus.passed
    assert isinstance(honest.metrics, RunMetrics) and honest.metrics.scored and honest.metrics.n_scored == 2
    assert honest.metrics.model_extra and "attempts" in honest.metrics.model_extra, "the evaluator's detail is kept"
    assert summarize(honest).raw_score == honest.metrics.score

    no_model = RunRecord.model_validate_json((OLD / "no_model.json").read_text())
    assert no_model.phases.collect.result() == CollectResult(final_model=False)
    assert no_model.metrics is None and no_model.phases.evaluate.result().skipped == "no final_model"
    assert summarize(no_model).raw_score is None

    imported = RunRecord.model_validate_json((OLD / "imported.json").read_text())
    assert [imported.phases[p].status for p in PHASES] == ["done"] * 6
    assert all(imported.phases[p].details is None for p in PHASES), "an imported run has no results of ours"
    assert imported.metrics == RunMetrics(status="ok", score=0.4, stderr=0.01)
    assert summarize(imported).raw_score == 0.4 and summarize(imported).source == "upstream"


def test_a_phase_state_reads_like_a_mapping_and_results_are_checked() -> None:
    record = RunRecord.model_validate_json((OLD / "no_model.json").read_text())
    assert list(type(record.phases).model_fields) == list(PHASES), "one typed state per phase, in run order"
    assert list(record.phases) == list(PHASES) and len(record.phases) == 6 and "solve" in record.phases
    assert dict(record.phases.items())["verify"] is record.phases.verify and record.phases.get("nope") is None
    with pytest.raises(KeyError):
        record.phases["nope"]
    with pytest.raises(ValueError):
        record.phases.collect.details = {"files": 3}  # type: ignore[assignment]  # on purpose: final_model is required
    record.phases.collect.details = None
    with pytest.raises(ValueError, match="no result"):
        record.phases.collect.result()
    # what tests and tools build by hand still validates into the typed record
    record.phases = {p: PhaseState(status="done") for p in PHASES}  # type: ignore[assignment]  # on purpose
    record.metrics = {"status": "failed", "error": "x"}  # type: ignore[assignment]  # on purpose
    assert record.phases.solve.status == "done" and record.metrics == RunMetrics(status="failed", error="x")
    record.metrics = {}  # type: ignore[assignment]  # on purpose
    assert record.metrics is None and json.loads(record.model_dump_json())["metrics"] == {}


def test_keys_of_other_versions_are_kept_and_bad_scores_refused(tmp_path: Path) -> None:
    data = json.loads((OLD / "honest.json").read_text())
    data["phases"]["solve"]["details"]["future_key"] = {"a": 1}
    data["metrics"]["future_metric"] = 3
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    save_record(path, load_record(path))
    again = json.loads(path.read_text())
    assert again["phases"]["solve"]["details"]["future_key"] == {"a": 1} and again["metrics"]["future_metric"] == 3
    for bad in ("0.9 (approx)", True):
        data["metrics"]["score"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(RecordError, match=r"not a finite number"):
            load_record(path)
