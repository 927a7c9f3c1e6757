"""Suites and the published leaderboards shipped with the package (v1, v1.2), and ranking real run folders
among the published agents."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.leaderboard import RankOptions, benchmark_weights, load_weights, read_grid
from posttrainbench.leaderboard.published import grid_score, published_board
from posttrainbench.leaderboard.suites import SUITES, get_suite
from posttrainbench.leaderboard.tables import build_report, ranked_rows, to_csv, to_markdown
from posttrainbench.testing import write_synthetic_baseline, write_synthetic_run

REF = Path(__file__).parent / "fixtures" / "leaderboard_reference"
BASES = ["Qwen3-1.7B-Base", "Qwen3-4B-Base", "SmolLM3-3B-Base", "gemma-3-4b-pt"]
INSTRUCT = {"Qwen3-1.7B-Base": "Qwen3-1.7B", "Qwen3-4B-Base": "Qwen3-4B", "SmolLM3-3B-Base": "SmolLM3-3B"}
INSTRUCT["gemma-3-4b-pt"] = "gemma-3-4b-it"
# v1 agents whose v1 grid is not stored upstream (only their later v1.1 files are): ranked by avg only
V1_WITHOUT_GRID = {"GPT-5.1-Codex-Max High", "GPT-5.1-Codex-Max Low"}


# ---------------------------------------------------------------------------- suites


def test_suites_declare_their_benchmarks_and_published_factors() -> None:
    v1, v12 = get_suite("v1"), get_suite("v1.2")
    assert set(SUITES) == {"v1", "v1.2"}
    assert len(v1.benchmarks) == 7 and "bfcl" in v1.benchmarks
    assert set(v12.benchmarks) == set(v1.benchmarks) - {"bfcl"}
    assert v1.factors == load_weights(REF / "factors.json")  # the paper's factors, shipped as package data
    assert abs(sum(v12.factors.values()) - 1) < 1e-12 and set(v12.factors) == set(v12.benchmarks)
    assert (v1.protocol, v12.protocol) == ("ptb-v1", "ptb-v1.2")
    with pytest.raises(ValueError, match=r"unknown suite 'v2' \(known: v1, v1\.2\)"):
        get_suite("v2")


def test_v12_factors_are_the_zero_shot_baseline_weights_over_its_six_benchmarks() -> None:
    """factors-v1.2 is 1/(instruct − base) of the same published baseline grid, normalised over 6 benchmarks
    (bit for bit), so recorded baselines give the published weights; over 7 they give the v1 factors instead."""
    baseline = read_grid(REF / "aggregated_baseline.csv")
    v12 = get_suite("v1.2")
    assert benchmark_weights(baseline, BASES, INSTRUCT, list(v12.benchmarks)) == v12.factors
    assert benchmark_weights(baseline, BASES, INSTRUCT)["gsm8k"] != v12.factors["gsm8k"]


# ---------------------------------------------------------------------------- published boards


@pytest.mark.parametrize("suite", ["v1", "v1.2"])
def test_every_shipped_grid_reproduces_its_published_score(suite: str) -> None:
    board = published_board(suite)
    factors = get_suite(suite).factors
    checked = 0
    for agent in board.agents:
        if agent.avg is None:
            continue
        assert sorted(agent.avg.models) == sorted(BASES), agent.name
        assert abs(grid_score(agent.avg, factors) - agent.score) < 1e-9, agent.name
        checked += 1
    without = {a.name for a in board.agents if a.avg is None}
    if suite == "v1.2":
        assert len(board.agents) == checked == 29 and not without
        assert all(a.std_grid is not None and a.n_runs in (2, 3) and a.std is not None for a in board.agents)
        assert max(a.score for a in board.agents) == pytest.approx(0.43764256347042646)  # the best, 43.8
    else:
        assert (len(board.agents), checked, without) == (10, 8, V1_WITHOUT_GRID)


def test_a_wrong_grid_does_not_reproduce_the_score() -> None:
    """The check can fail: the v1.2 grid of an agent scored with the v1 factors, or another agent's grid."""
    board = published_board("v1.2")
    opus, kimi = board.agent("Opus-4.6"), board.agent("Kimi K3")
    assert opus.avg is not None and kimi.avg is not None
    assert abs(grid_score(kimi.avg, board.factors) - opus.score) > 0.1
    with pytest.raises(ValueError, match="bfcl"):
        grid_score(opus.avg, get_suite("v1").factors)  # no BFCL column in v1.2


def test_v1_paper_opus_46_is_the_published_v1_figure() -> None:
    """The v1 paper's "Opus 4.6 = 23.2" is data/single_metrics_aggregated.csv at the v1 commit, and our
    shipped v1 grid of Opus-4.6 reproduces it; on the v1.2 leaderboard the same agent scores 14.9."""
    v1 = published_board("v1").agent("Opus-4.6")
    assert round(100 * v1.score, 1) == 23.2 and v1.n_runs == 3
    assert v1.avg is not None and round(100 * grid_score(v1.avg, get_suite("v1").factors), 1) == 23.2
    assert round(100 * published_board("v1.2").agent("Opus-4.6").score, 1) == 14.9


# ---------------------------------------------------------------------------- ranking our runs among them

M1, M2 = "ptb/tiny-random", "ptb/SmolLM2-135M"
V12 = get_suite("v1.2").benchmarks
SCORES = {b: 0.1 + 0.08 * i for i, b in enumerate(V12)}  # per benchmark; M2 scores 0.05 more


def _results(root: Path, *, instruct: bool = False, skip: str | None = None) -> None:
    for b in V12:
        for m, base in ((M1, 0.05), (M2, 0.1)):
            write_synthetic_baseline(root, benchmark=b, base_model=m, score=base)
            if instruct:
                write_synthetic_baseline(root, benchmark=b, base_model=m, score=base + 0.5, checkpoint="instruct")
            if b != skip:
                write_synthetic_run(root, benchmark=b, base_model=m, score=SCORES[b] + (0.05 if m == M2 else 0))
    # runs the suite does not rank: a benchmark outside it, and an agent with one benchmark only
    write_synthetic_run(root, benchmark="gsm8k-calc", base_model=M1, score=0.9)
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k", base_model=M1, score=0.9)
    write_synthetic_run(root, agent_config="lora", benchmark="gsm8k", base_model=M2, score=0.9)


def _expected(weights: dict[str, float]) -> float:
    return sum(w * (SCORES[b] + SCORES[b] + 0.05) / 2 for b, w in weights.items())


def test_our_runs_ranked_among_published_v12_with_the_suite_factors(tmp_path: Path) -> None:
    _results(tmp_path)
    rep = build_report(tmp_path, RankOptions(published="v1.2"))
    factors = get_suite("v1.2").factors
    assert rep.suite == "v1.2" and rep.weights == factors and rep.benchmarks == list(factors)
    assert rep.weights_source == "published factors of suite v1.2 (factors-v1.2.json), as the published agents"
    assert any("gsm8k-calc" in p and "not in suite v1.2" in p for p in rep.problems)
    assert rep.notes == [
        "your runs were evaluated under protocol 'strict', the published v1.2 agents under 'ptb-v1.2': prompts, "
        "decoding and scoring differ, the scores are not comparable"
    ]
    ours = {a.label: a for a in rep.agents}
    sft = ours["reference/sft@1h"]
    assert sft.score == pytest.approx(_expected(factors), abs=1e-12)
    assert ours["reference/lora@1h"].score is None  # ran one of the six benchmarks: not ranked
    rows = ranked_rows(rep)
    assert len(rows) == 29 + 2 and [r.rank for r in rows] == list(range(1, 32))
    published = [r for r in rows if r.source == "published v1.2"]
    assert len(published) == 29 and {r.label for r in published} == {a.name for a in published_board("v1.2").agents}
    mine = next(r for r in rows if r.label == "reference/sft@1h")
    above = sum(1 for a in published_board("v1.2").agents if a.score > _expected(factors))
    assert mine.rank == above + 1 and 0 < above < 29  # somewhere in the middle, where its score puts it
    locus = next(r for r in rows if r.label == "Locus")
    assert locus.n_runs == 3 and locus.std == pytest.approx(0.008207421886564655)
    assert rows[-1].label == "reference/lora@1h"  # no score: last
    # every view carries the published rows, marked
    text = to_markdown(rep)
    assert "## Notes\n\n- your runs were evaluated under protocol 'strict'" in text
    assert f"| {mine.rank} | reference/sft@1h | ours |" in text and "| Opus-5.5 (Max) | published v1.2 |" in text
    table = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert len(table) == 31 and {r["source"] for r in table} == {"ours", "published v1.2"}
    assert next(r for r in table if r["agent_config"] == "sft")["rank"] == str(mine.rank)
    astra = next(r for r in table if r["agent"] == "GPT-6-Astra")
    assert (float(astra["score"]), astra["n_repeats"]) == (0.41414924709695056, "2")


def test_suite_weights_come_from_recorded_baselines_when_complete(tmp_path: Path) -> None:
    _results(tmp_path, instruct=True)
    rep = build_report(tmp_path, RankOptions(suite="v1.2"))
    assert rep.weights_source == "1/(instruct − base) from recorded baselines" and not rep.published
    assert rep.weights == pytest.approx(dict.fromkeys(V12, 1 / 6))  # every gap is 0.5 here
    sft = next(a for a in rep.agents if a.label == "reference/sft@1h")
    assert sft.score == pytest.approx(_expected(rep.weights))


def test_published_scores_ours_with_the_published_factors_even_with_baselines(tmp_path: Path) -> None:
    _results(tmp_path, instruct=True)  # complete baselines would give equal weights here
    for b in V12:  # ptb-v1.2 runs of the same agent: the comparison the published board is for, no caveat
        for m in (M1, M2):
            write_synthetic_run(tmp_path, benchmark=b, base_model=m, score=0.5, protocol="ptb-v1.2")
    assert build_report(tmp_path, RankOptions(published="v1.2", protocol="ptb-v1.2")).notes == []
    rep = build_report(tmp_path, RankOptions(published="v1.2", protocol="strict"))
    assert rep.weights == get_suite("v1.2").factors and "as the published agents" in rep.weights_source
    sft = next(a for a in rep.agents if a.label == "reference/sft@1h")
    assert sft.score == pytest.approx(_expected(get_suite("v1.2").factors), abs=1e-12)
    with pytest.raises(ValueError, match="not a weights file"):
        build_report(tmp_path, RankOptions(weights=dict.fromkeys(V12, 1 / 6), published="v1.2"))


def test_a_suite_benchmark_without_runs_leaves_the_agent_unranked(tmp_path: Path) -> None:
    _results(tmp_path, skip="healthbench")
    rep = build_report(tmp_path, RankOptions(suite="v1.2"))
    sft = next(a for a in rep.agents if a.label == "reference/sft@1h")
    assert sft.score is None and {b for _, _, b in sft.missing} == {"healthbench"}
    plain = build_report(tmp_path)  # without a suite: today's behaviour, the benchmarks present
    assert "healthbench" not in plain.benchmarks and "equal" in plain.weights_source


def test_cli_published_and_suite(tmp_path: Path) -> None:
    _results(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--published", "v1.2", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["suite"] == "v1.2" and len(data["published"]) == 29
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--published", "v1.2"], terminal_width=400)
    assert res.exit_code == 0 and "published v1.2" in res.output and "GPT-6-Astra" in res.output
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--suite", "v9"])
    assert res.exit_code == 2 and "unknown suite 'v9'" in res.output
    res = runner.invoke(app, ["leaderboard", "--results", str(tmp_path), "--suite", "v1", "--published", "v1.2"])
    assert res.exit_code == 2 and "ranks under suite v1.2" in res.output


# ---------------------------------------------------------------------------- the report (ptb report)


def _leaderboard_rows(index_html: str) -> list[dict[str, str]]:
    """The leaderboard table of a report's index.html: per row its label and source (``_label``, ``_source``) and
    its cells by column header (as text)."""
    from html.parser import HTMLParser

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.head: list[str] = []
            self.rows: list[dict[str, str]] = []
            self.cells: list[str] | None = None
            self.in_table = self.in_head = False
            self.text = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "table" and a.get("id") == "leaderboard":
                self.in_table = True
            elif self.in_table and tag == "thead":
                self.in_head = True
            elif self.in_table and tag == "tr" and not self.in_head:
                self.cells = []
                self.rows.append({"_label": a.get("data-agent") or "", "_source": a.get("data-source") or "ours"})
            elif self.in_table and tag in ("td", "th"):
                self.text = ""

        def handle_endtag(self, tag: str) -> None:
            if tag == "table":
                self.in_table = False
            elif tag == "thead":
                self.in_head = False
            elif self.in_table and tag == "th" and self.in_head:
                self.head.append(" ".join(self.text.split()))
            elif self.in_table and tag == "td" and self.cells is not None:
                self.cells.append(" ".join(self.text.split()))
            elif self.in_table and tag == "tr" and self.cells is not None:
                self.rows[-1].update(zip(self.head, self.cells, strict=True))
                self.cells = None

        def handle_data(self, data: str) -> None:
            self.text += data

    p = Rows()
    p.feed(index_html)
    return p.rows


def test_report_ranks_on_the_suite_and_lists_the_published_agents_beside_ours(tmp_path: Path) -> None:
    from posttrainbench.report import build_site

    _results(tmp_path / "r")
    site = build_site(tmp_path / "r", tmp_path / "site", RankOptions(published="v1.2"))
    html = (tmp_path / "site" / "index.html").read_text()
    rows = _leaderboard_rows(html)
    rep = build_report(tmp_path / "r", RankOptions(published="v1.2"))
    want = ranked_rows(rep)  # the leaderboard's one ranking: the page shows it as is
    assert [(r["_label"], r["#"]) for r in rows] == [(w.label, str(w.rank)) for w in want]
    published = [r for r in rows if r["_source"] == "published v1.2"]
    assert len(published) == 29 and all(
        r["agent"] == r["_label"] + " published" and r["runs"] == "—" for r in published
    )
    astra = next(r for r in published if r["_label"] == "GPT-6-Astra")
    assert (astra["score"], astra["repeats"]) == ("0.414", "2")
    mine = next(r for r in rows if r["_label"] == "reference/sft@1h")
    assert mine["_source"] == "ours" and mine["score"] == f"{_expected(get_suite('v1.2').factors):.3f}"
    assert set(V12) <= set(mine) and "gsm8k-calc" not in mine and "bfcl" not in mine  # the suite's benchmarks
    assert "published factors of suite v1.2 (factors-v1.2.json)" in html and 'id="published-note"' in html
    assert "the published v1.2 agents under &#39;ptb-v1.2&#39;" in html  # the protocol caveat, on the page too
    assert site.n_agents == len(rep.agents)
    # --suite alone: v1's seven benchmarks, no published rows; ours lack bfcl, so the sft agent is unranked
    build_site(tmp_path / "r", tmp_path / "v1", RankOptions(suite="v1"))
    v1 = _leaderboard_rows((tmp_path / "v1" / "index.html").read_text())
    assert {r["_source"] for r in v1} == {"ours"} and "bfcl" in v1[0]
    assert next(r for r in v1 if r["_label"] == "reference/sft@1h")["score"] == "—"
    # without either: the benchmarks present, as before (the control)
    build_site(tmp_path / "r", tmp_path / "plain")
    plain = _leaderboard_rows((tmp_path / "plain" / "index.html").read_text())
    assert "gsm8k-calc" in plain[0] and 'id="published-note"' not in (tmp_path / "plain" / "index.html").read_text()


def test_cli_report_suite_and_published(tmp_path: Path) -> None:
    _results(tmp_path / "r")
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(tmp_path / "r"), "--out", str(tmp_path / "s"), "--published", "v1.2"])
    assert res.exit_code == 0, res.output
    assert 'data-source="published v1.2"' in (tmp_path / "s" / "index.html").read_text()
    res = runner.invoke(app, ["report", str(tmp_path / "r"), "--out", str(tmp_path / "s"), "--suite", "v9"])
    assert res.exit_code == 2 and "unknown suite 'v9'" in res.output
    bad = ["report", str(tmp_path / "r"), "--out", str(tmp_path / "s"), "--suite", "v1", "--published", "v1.2"]
    res = runner.invoke(app, bad)
    assert res.exit_code == 2 and "ranks under suite v1.2" in res.output
