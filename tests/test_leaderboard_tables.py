"""The leaderboard report object and its exports (CSV, Markdown, JSON), from real run folders."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.leaderboard.tables import LeaderboardReport, build_report, to_csv, to_json, to_markdown
from posttrainbench.testing import write_synthetic_baseline, write_synthetic_run

M1, M2 = "ptb/tiny-random", "ptb/SmolLM2-135M"
BASE = {("gsm8k", M1): 0.2, ("gsm8k", M2): 0.4, ("gsm8k-calc", M1): 0.0, ("gsm8k-calc", M2): 0.1}
INST = {("gsm8k", M1): 0.6, ("gsm8k", M2): 0.8, ("gsm8k-calc", M1): 0.2, ("gsm8k-calc", M2): 0.3}


def _results(root: Path, *, instruct: bool = True) -> None:
    for (b, m), s in BASE.items():
        write_synthetic_baseline(root, benchmark=b, base_model=m, score=s)
    if instruct:
        for (b, m), s in INST.items():
            write_synthetic_baseline(root, benchmark=b, base_model=m, score=s, checkpoint="instruct")
    usage = {"input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.25}
    for m in (M1, M2):
        write_synthetic_run(
            root,
            agent="reference",
            agent_config="sft",
            benchmark="gsm8k",
            base_model=m,
            score=0.5,
            time_used_s=1800,
            usage=usage,
        )
        write_synthetic_run(
            root,
            agent="reference",
            agent_config="sft",
            benchmark="gsm8k-calc",
            base_model=m,
            score=0.2,
            time_used_s=900,
            usage=usage,
        )
    # a second agent with a contaminated cell (falls back) and a missing cell
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k", base_model=M1, score=0.9, verdict="fail")
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k", base_model=M2, score=0.45)
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k-calc", base_model=M1, score=0.3)


def test_report_weights_gain_time_cost_and_flags(tmp_path: Path) -> None:
    _results(tmp_path)
    rep = build_report(tmp_path)
    # weights ∝ 1/(instruct − base) with model means: gsm8k gap 0.4, gsm8k-calc gap 0.2
    assert rep.weights_source.startswith("1/(instruct")
    assert rep.weights == pytest.approx({"gsm8k": 1 / 3, "gsm8k-calc": 2 / 3})
    sft, lora = rep.agents
    assert (sft.label, sft.rank) == ("reference/sft@1h", 1)
    assert sft.score == pytest.approx(0.5 / 3 + 0.2 * 2 / 3)
    assert sft.per_model == {M1: pytest.approx(0.3), M2: pytest.approx(0.3)}
    # normalised gains: gsm8k (0.5-0.2)/0.4=0.75, (0.5-0.4)/0.4=0.25; calc (0.2-0)/0.2=1, (0.2-0.1)/0.2=0.5
    assert sft.normalised_gain == pytest.approx((0.75 + 0.25 + 1 + 0.5) / 4)
    assert sft.mean_time_s == 1350 and sft.time_pct_of_budget == pytest.approx(37.5)
    assert (sft.input_tokens, sft.output_tokens) == (4000, 400) and sft.cost_usd == pytest.approx(1.0)
    # lora: one cell missing -> no score, reported; the flagged cell falls back to the base score
    assert lora.score is None and lora.missing == [(0, M2, "gsm8k-calc")]
    assert lora.n_fallback == 1 and lora.cost_usd is None  # usage unknown: not shown as 0
    flagged = [c for c in rep.cells if c.fallback]
    assert len(flagged) == 1 and flagged[0].flags == ["M"] and flagged[0].score == 0.2 and flagged[0].raw == 0.9
    assert lora.per_model[M2] is None


def test_a_cell_evaluated_on_an_unpinned_set_falls_back_flagged_d(tmp_path: Path) -> None:
    """Only possible with PTB_ALLOW_UNPINNED_DATA=1: verified, but not comparable, so it scores
    the base model like any flagged cell (raw score kept)."""
    _results(tmp_path)
    write_synthetic_run(tmp_path, agent_config="lora", benchmark="gsm8k-calc", base_model=M2, score=0.9,
                        data_status="differs")  # fmt: skip
    write_synthetic_run(tmp_path, agent_config="lora", benchmark="gsm8k", base_model=M2, score=0.45,
                        data_status="pinned", created_at=datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
    rep = build_report(tmp_path)
    cells = {(c.benchmark, c.base_model): c for c in rep.cells if c.label.startswith("reference/lora")}
    d = cells[("gsm8k-calc", M2)]
    assert d.fallback and d.flags == ["D"] and d.raw == 0.9 and d.score == 0.1
    assert d.reason == "evaluated on a set that is not the pinned one"
    pinned = cells[("gsm8k", M2)]
    assert not pinned.fallback and pinned.flags == [] and pinned.score == 0.45
    assert "| D |" in to_markdown(rep)


def test_equal_weights_without_instruct_baselines_is_said(tmp_path: Path) -> None:
    _results(tmp_path, instruct=False)
    rep = build_report(tmp_path)
    assert rep.weights == {"gsm8k": 0.5, "gsm8k-calc": 0.5}
    assert "equal" in rep.weights_source
    assert rep.agents[0].normalised_gain is None


def test_exports_round_trip(tmp_path: Path) -> None:
    _results(tmp_path)
    rep = build_report(tmp_path)
    assert LeaderboardReport.model_validate_json(to_json(rep)) == rep
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert [r["agent_config"] for r in rows] == ["sft", "lora"]
    assert float(rows[0]["score"]) == rep.agents[0].score and rows[1]["score"] == ""
    assert float(rows[0]["gsm8k-calc"]) == pytest.approx(0.2)
    md = to_markdown(rep)
    assert md.count("\n| 1 | reference/sft@1h |") == 1
    assert "## Fallback and flagged cells" in md and "verification fail" in md
    assert "1/(instruct − base)" in md


def test_cli_formats_and_index(tmp_path: Path) -> None:
    _results(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["agents"][0]["label"] == "reference/sft@1h"
    out = tmp_path / "lb.md"
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--format", "markdown", "--out", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("# Leaderboard")
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--format", "yaml"])
    assert res.exit_code == 2 and "'yaml' is not one of 'table'" in res.output  # the choices come from FORMATS
    res = runner.invoke(app, ["index", "--results", str(tmp_path), "--full"])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "7 runs, 8 baselines" in text and "0 problems" in text
