"""`ptb import`: upstream result folders (sentinels included) into our records, reproducing the
published post-fallback grid and factors through our own leaderboard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.cli import app
from posttrainbench.leaderboard.tables import build_report
from posttrainbench.results.importer import import_upstream, parse_method

REF = Path(__file__).parent / "fixtures" / "leaderboard_reference"
METHOD = "opencode_zai_glm-5_10h_run2"
HUB = {
    "Qwen3-1.7B-Base": "Qwen_Qwen3-1.7B-Base",
    "Qwen3-4B-Base": "Qwen_Qwen3-4B-Base",
    "SmolLM3-3B-Base": "HuggingFaceTB_SmolLM3-3B-Base",
    "gemma-3-4b-pt": "google_gemma-3-4b-pt",
}


def _grid(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    rows = list(csv.reader(path.open()))
    return rows[0][1:], {r[0]: dict(zip(rows[0][1:], r[1:])) for r in rows[1:]}


def _write_upstream(src: Path) -> None:
    """Upstream folders for the raw glm-5 grid: numbers -> metrics.json; ERR -> eval retries
    exhausted; 'not stored' -> no metrics, no final model. Plus an older superseded run."""
    benches, grid = _grid(REF / f"aggregated_{METHOD}.csv")
    job = 1000
    for model, cells in grid.items():
        for bench in benches:
            job += 1
            run = src / METHOD / f"{bench}_{HUB[model]}_{job}"
            run.mkdir(parents=True)
            (run / "time_taken.txt").write_text("5:30:00\n")
            (run / "judgement_gpt5_4.json").write_text(json.dumps({"contamination": False, "disallowed_model": False}))
            value = cells[bench]
            if value == "ERR":
                (run / "final_eval_9.txt").write_text("CUDA error\n")
                (run / "final_model").mkdir()
            elif value != "not stored":
                (run / "metrics.json").write_text(json.dumps({"accuracy": float(value), "stderr": 0.01}))
                (run / "final_model").mkdir()
    old = src / METHOD / f"gsm8k_{HUB['Qwen3-4B-Base']}_17"  # lower job id: superseded
    old.mkdir()
    (old / "metrics.json").write_text(json.dumps({"accuracy": 0.99}))


def test_import_reproduces_the_published_post_fallback_grid_and_factors(tmp_path: Path) -> None:
    src, res = tmp_path / "upstream", tmp_path / "results"
    _write_upstream(src)
    runner = CliRunner()
    out = runner.invoke(
        app, ["import", str(src), "--results", str(res), "--baselines", str(REF / "aggregated_baseline.csv")]
    )
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "imported 28 runs (1 superseded)" in text and "problem" not in text
    rep = build_report(res)
    # weights from the imported base + instruct baselines are the published factors
    factors = json.loads((REF / "factors.json").read_text())
    assert rep.weights.keys() == factors.keys()
    for b, f in factors.items():
        assert rep.weights[b] == pytest.approx(f, rel=1e-12, abs=0)
    # every post-fallback cell equals the published final grid, to the bit
    benches, final = _grid(REF / f"final_{METHOD}.csv")
    short = {v.replace("_", "/", 1): k for k, v in HUB.items()}
    got = {(short[c.base_model], c.benchmark): c.score for c in rep.cells}
    assert len(got) == 28
    for model, cells in final.items():
        for bench in benches:
            assert repr(got[(model, bench)]) == cells[bench], (model, bench)
    fallback = sorted((short[c.base_model], c.benchmark, c.reason) for c in rep.cells if c.fallback)
    assert [f[:2] for f in fallback] == [
        ("Qwen3-4B-Base", "bfcl"),
        ("SmolLM3-3B-Base", "bfcl"),
        ("SmolLM3-3B-Base", "gpqamain"),
        ("SmolLM3-3B-Base", "humaneval"),
    ]
    assert "exhausted its retries" in fallback[0][2] and "not stored" in fallback[1][2]
    (agent,) = rep.agents
    assert agent.label == "opencode/zai_glm-5@10h" and agent.mean_time_s == 5.5 * 3600
    # importing again is idempotent
    again = runner.invoke(app, ["import", str(src), "--results", str(res)])
    assert again.exit_code == 0 and len(build_report(res).cells) == 28


def test_sentinels_and_bad_folders(tmp_path: Path) -> None:
    src, res = tmp_path / "up", tmp_path / "res"
    m = src / "claude_claude-opus-4-5_10h_v5"

    def run(name: str, **files: str) -> Path:
        d = m / name
        d.mkdir(parents=True)
        for f, text in files.items():
            (d / f.replace("__", ".")).write_text(text)
        return d

    ok = {"metrics__json": '{"accuracy": 0.5}', "time_taken__txt": "1:00:00"}
    run(
        "gsm8k_Qwen_Qwen3-4B-Base_1",
        **ok,
        contamination_judgement__txt="contamination detected: uses test set",
        disallowed_model_judgement__txt="only allowed use detected",
    )
    run("humaneval_Qwen_Qwen3-4B-Base_2", **ok)  # no judgement at all
    run("aime2025_Qwen_Qwen3-4B-Base_3", **ok, judgement_gpt5_4__json="the judge said: fine")
    run(
        "bfcl_Qwen_Qwen3-4B-Base_4",
        metrics__json='{"accuracy": "high"}',
        judgement_gpt5_4__json='{"contamination": false, "disallowed_model": false}',
    )
    run(
        "gpqamain_Qwen_Qwen3-4B-Base_5",
        metrics__json='{"accuracy": 0.3}',
        time_taken__txt="garbage",
        judgement_gpt5_4_rerun__json='{"contamination": false, "disallowed_model": true}',
        judgement_gpt5_4__json='{"contamination": false, "disallowed_model": false}',
    )
    run("mmlu_Qwen_Qwen3-4B-Base_6", **ok)
    run("gsm8k_Meta_Llama-3-8B_7", **ok)
    run("not-a-run-folder", **ok)
    (src / "weird-method-name").mkdir()
    rep = import_upstream(src, res)
    problems = "\n".join(rep.problems)
    assert len(rep.imported) == 5
    assert "unknown benchmark id 'mmlu'" in problems and "unknown base model 'Meta/Llama-3-8B'" in problems
    assert "does not parse" in problems and "weird-method-name" in problems
    report = build_report(res)
    cells = {c.benchmark: c for c in report.cells}
    assert cells["gsm8k"].fallback and cells["gsm8k"].flags == ["C"]
    assert cells["humaneval"].fallback and cells["humaneval"].flags == ["C?", "M?"]
    assert cells["aime2025"].reason == "verification not_run" and cells["aime2025"].flags == ["C?", "M?"]
    rec = json.loads((res / cells["aime2025"].path / "run.json").read_text())
    assert "judgement_gpt5_4.json unreadable" in rec["verdicts"][0]["summary"]
    assert cells["bfcl"].raw is None and "not a number" in (cells["bfcl"].reason or "")
    assert cells["gpqamain"].flags == ["M"], "the rerun judgement wins over the original"
    assert cells["gpqamain"].time_used_s is None
    assert all(c.fallback for c in report.cells)


def test_parse_method_names() -> None:
    assert parse_method("claude_claude-opus-4-5_10h_final_v3") == ("claude", "claude-opus-4-5", 10.0, "final_v3")
    assert parse_method("codex_non_api_high_gpt-5.4_10h_run1") == ("codex", "non_api_high_gpt-5.4", 10.0, "run1")
    assert parse_method("claude_non_api_claude-opus-4-6_1m__10h_run1")[2:] == (10.0, "run1")
    assert parse_method("reference_sft_0.5h") == ("reference", "sft", 0.5, "")
    with pytest.raises(ValueError, match="does not look like"):
        parse_method("baseline")


def test_verify_runs_our_gates_on_imported_upstream_folders(tmp_path: Path, monkeypatch) -> None:
    """`ptb verify` on an imported run checks the upstream folder itself (read only): a submitted
    instruct checkpoint is caught by lineage although the upstream judge passed it; what upstream
    never recorded (manifest, collect hashes) is not_run, never pass."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from posttrainbench.models.tiny import build_tiny_model

    models = tmp_path / "models"
    build_tiny_model(models / "Qwen" / "Qwen3-4B-Base", seed=0)
    build_tiny_model(models / "Qwen" / "Qwen3-4B", seed=1)  # the "instruct" model
    monkeypatch.setenv("PTB_MODELS_DIR", str(models))
    src = tmp_path / "up" / "claude_claude-opus-4-5_10h_run1"
    judge_ok = json.dumps({"contamination": False, "disallowed_model": False})
    step = {
        "type": "assistant",
        "message": {"content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls"}}]},
    }
    for name, source in (
        ("gsm8k_Qwen_Qwen3-4B-Base_1", "Qwen3-4B"),
        ("humaneval_Qwen_Qwen3-4B-Base_2", "Qwen3-4B-Base"),
    ):
        run = src / name
        (run / "task").mkdir(parents=True)
        (run / "task" / "train.py").write_text("print('training on allowed data')\n")
        shutil.copytree(models / "Qwen" / source, run / "final_model")
        if source.endswith("Base"):  # an honest fine-tune: every weight moved a little
            w = load_file(run / "final_model" / "model.safetensors")
            save_file(
                {k: v + 0.01 * v.std() * torch.randn_like(v) for k, v in w.items()},
                run / "final_model" / "model.safetensors",
            )
        (run / "metrics.json").write_text('{"accuracy": 0.4}')
        (run / "judgement_gpt5_4.json").write_text(judge_ok)
        (run / "solve_out.txt").write_text(json.dumps(step) + "\n")
    res = tmp_path / "res"
    rep = import_upstream(src.parent, res)
    assert len(rep.imported) == 2 and not rep.problems
    runner = CliRunner()
    verdicts = {}
    for run_dir in sorted(res.glob("*/*/")):
        before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
        out = runner.invoke(app, ["verify", str(run_dir)], terminal_width=200)
        assert out.exit_code == 1, out.output  # never a pass: tamper/transfer could not be checked
        assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == before, "the upstream folder is read only"
        rec = json.loads((run_dir / "run.json").read_text())
        verdicts[rec["spec"]["benchmark"]] = {v["gate"]: v["status"] for v in rec["verdicts"]}
        assert rec["imported_from"]["kind"] == "upstream"
    assert verdicts["gsm8k"]["lineage"] == "fail", "the instruct checkpoint submitted as a fine-tune"
    assert verdicts["gsm8k"]["judge_disallowed_model"] == "pass", "the upstream judge missed it"
    honest = verdicts["humaneval"]
    assert honest["lineage"] == "pass" and honest["contamination"] == "pass" and honest["trace_audit"] == "pass"
    assert honest["tamper"] == "not_run" and honest["transfer"] == "not_run"
    report = build_report(res)
    assert all(c.fallback for c in report.cells)
    assert {c.benchmark: c.flags for c in report.cells}["gsm8k"] == ["T?", "X?", "M"]


def test_v11_judgement_files_are_read(tmp_path: Path) -> None:
    """Upstream v1.1+: the manual override and the majority of three slots decide the
    contamination verdict; the API, PTB-lookup, derived-contamination and general judges add a
    verdict each when their file exists (``_rerun`` first); a general anomaly is a human review."""
    src, res = tmp_path / "up", tmp_path / "res"
    m = src / "codex_non_api_high_gpt-5.4_10h_run1"
    ok = {"metrics.json": '{"accuracy": 0.5}', "time_taken.txt": "1:00:00"}
    clean = {"contamination": False, "disallowed_model": False}
    dirty = {"contamination": True, "disallowed_model": False}

    def run(name: str, files: dict[str, object]) -> None:
        d = m / name
        for f, content in (ok | files).items():
            (d / f).parent.mkdir(parents=True, exist_ok=True)
            (d / f).write_text(content if isinstance(content, str) else json.dumps(content))

    def api(flag: bool) -> dict[str, object]:
        return {"disallowed_api_usage": flag, "justification_disallowed_api_usage": "x"}

    run("gsm8k_Qwen_Qwen3-4B-Base_1", {"judgement_gpt5_4.json": clean, "judgement_api.json": api(False)})
    # majority of 3: slot 1 clean, slots 2 and 3 flag contamination
    run(
        "humaneval_Qwen_Qwen3-4B-Base_2",
        {
            "judgement_gpt5_4.json": clean,
            "judgement_multi_runs/judgement_gpt5_4_run2.json": dirty,
            "judgement_multi_runs/judgement_gpt5_4_run3.json": dirty,
        },
    )
    # the manual override wins over a flagged judge
    run("aime2025_Qwen_Qwen3-4B-Base_3", {"judgement_gpt5_4.json": dirty, "judgement_gpt5_4_manual.json": clean})
    run(
        "gpqamain_Qwen_Qwen3-4B-Base_4",
        {
            "judgement_gpt5_4.json": clean,
            "judgement_api.json": api(False),
            "judgement_api_rerun.json": api(True),
            "judgement_ptb_lookup.json": {"disallowed_ptb_lookup": True, "justification_disallowed_ptb_lookup": "y"},
        },
    )
    run(
        "bfcl_Qwen_Qwen3-4B-Base_5",
        {
            "judgement_gpt5_4.json": clean,
            "judgement_general.json": {"general_anomaly": True, "justification_general_anomaly": "ended early"},
        },
    )
    run("arenahardwriting_Qwen_Qwen3-4B-Base_6", {"judgement_gpt5_4.json": clean, "judgement_ptb_lookup.json": "{"})
    rep = import_upstream(src, res)
    assert len(rep.imported) == 6, rep.problems

    def verdicts(bench: str) -> dict[str, str]:
        path = next(res.glob(f"*/{bench}_*/run.json"))
        rec = json.loads(path.read_text())
        assert rec["required_gates"] == [v["gate"] for v in rec["verdicts"]]
        return {v["gate"]: v["status"] for v in rec["verdicts"]} | {"final": rec["final_verdict"]}

    assert verdicts("gsm8k") == {
        "judge_contamination": "pass",
        "judge_disallowed_model": "pass",
        "judge_api_usage": "pass",
        "final": "pass",
    }, "a judge whose file is absent (ptb_lookup, general) adds nothing"
    assert verdicts("humaneval")["judge_contamination"] == "fail", "majority of three slots"
    assert verdicts("aime2025")["final"] == "pass", "the manual override wins"
    got = verdicts("gpqamain")
    assert got["judge_api_usage"] == "fail" and got["judge_ptb_lookup"] == "fail", "the _rerun file wins"
    assert verdicts("bfcl")["judge_general"] == "not_run" and verdicts("bfcl")["final"] == "not_run"
    assert verdicts("arenahardwriting")["judge_ptb_lookup"] == "not_run"
    copied = {p.name for p in res.glob("*/gpqamain_*/*")}
    assert {"judgement_api_rerun.json", "judgement_ptb_lookup.json", "judgement_api.json"} <= copied
    report = build_report(res)
    assert {c.benchmark: c.flags for c in report.cells}["gpqamain"] == ["A", "L"]


# --- zero-shot baselines kept upstream as a method folder (issue 14, part "published") --------------------------

ORG = {"Qwen3": "Qwen", "SmolLM3": "HuggingFaceTB", "gemma": "google"}


def _write_upstream_baselines(src: Path, folder: str = "baseline_zeroshot") -> int:
    """The published zero-shot grid (base and instruct rows) as upstream baseline run folders, plus a
    superseded older job, a failed one and a few-shot folder that must not be read as zero-shot."""
    benches, grid = _grid(REF / "aggregated_baseline.csv")
    job = 5000
    for model, cells in grid.items():
        org = ORG[model.split("-")[0]]
        for bench in benches:
            job += 1
            run = src / folder / f"{bench}_{org}_{model}_{job}"
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps({"accuracy": float(cells[bench])}))
    older = src / folder / "gsm8k_Qwen_Qwen3-4B_17"  # lower job id: superseded, never read
    older.mkdir()
    (older / "metrics.json").write_text(json.dumps({"accuracy": 0.01}))
    stray = src / folder / "humaneval_meta_Llama-3-8B_9"  # not a catalogued model: a problem, the rest goes on
    stray.mkdir()
    (stray / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    fewshot = src / "baseline_fewshot" / "gsm8k_Qwen_Qwen3-4B-Base_99999"
    fewshot.mkdir(parents=True)
    (fewshot / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    return sum(len(cells) for cells in grid.values())


@pytest.mark.parametrize("folder", ["baseline_zeroshot", "baseline"])
def test_upstream_zero_shot_baseline_folders_are_imported_without_a_grid(tmp_path: Path, folder: str) -> None:
    src, res = tmp_path / "upstream", tmp_path / "results"
    _write_upstream(src)
    n = _write_upstream_baselines(src, folder)
    out = CliRunner().invoke(app, ["import", str(src), "--results", str(res)])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert f"imported 28 runs (2 superseded), {n} baselines" in text and n == 56
    assert "meta/Llama-3-8B is not a catalogued base or instruct model" in text and text.count("problem:") == 1
    rep = build_report(res)
    # weights from the imported base + instruct baselines are the published factors (the few-shot folder unread)
    factors = json.loads((REF / "factors.json").read_text())
    assert rep.weights_source == "1/(instruct − base) from recorded baselines"
    for b, f in factors.items():
        assert rep.weights[b] == pytest.approx(f, rel=1e-12, abs=0)
    # and the fallback cells take the imported base scores: the published post-fallback grid, to the bit
    benches, final = _grid(REF / f"final_{METHOD}.csv")
    short = {v.replace("_", "/", 1): k for k, v in HUB.items()}
    got = {(short[c.base_model], c.benchmark): c.score for c in rep.cells}
    assert all(repr(got[(m, b)]) == final[m][b] for m in final for b in benches)
    assert sum(c.fallback for c in rep.cells) == 4


def test_without_baseline_folders_the_failed_cells_have_nothing_to_fall_back_to(tmp_path: Path) -> None:
    """The control: the same runs without the baseline folder give equal weights and blank fallback cells."""
    src, res = tmp_path / "upstream", tmp_path / "results"
    _write_upstream(src)
    assert CliRunner().invoke(app, ["import", str(src), "--results", str(res)]).exit_code == 0
    rep = build_report(res)
    assert rep.weights_source.startswith("equal")
    assert [c.score for c in rep.cells if c.fallback] == [None] * 4
