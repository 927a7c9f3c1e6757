"""``ptb report``: the static HTML site, checked in a real headless Chromium.

The results folder is written directly (run.json, trace.json, evidence, baselines) with the
results layout and store: no model runs. It holds three agents with repeats, a failed run
(fallback cell), an unverified run (fallback cell), a broken run folder, and a hostile trace.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrainbench.catalog import get_base_model
from posttrainbench.cli import app
from posttrainbench.domain import PHASES, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
from posttrainbench.fsutil import atomic_write_json
from posttrainbench.report import build_site
from posttrainbench.results import load_record, run_paths, save_baseline, save_record
from posttrainbench.trace import ToolCall, ToolResult, Trace, TraceStep, save_trace

MODELS = ("Qwen/Qwen3-1.7B-Base", "google/gemma-3-4b-pt")
BENCHES = ("gsm8k", "humaneval")
BASELINE = {
    ("gsm8k", MODELS[0]): 0.30,
    ("gsm8k", MODELS[1]): 0.20,
    ("humaneval", MODELS[0]): 0.25,
    ("humaneval", MODELS[1]): 0.15,
}
INSTRUCT = {
    ("gsm8k", MODELS[0]): 0.85,
    ("gsm8k", MODELS[1]): 0.65,
    ("humaneval", MODELS[0]): 0.70,
    ("humaneval", MODELS[1]): 0.50,
}
LABEL = "{}/default@1h"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

HOSTILE_TEXT = "<script>window.__pwned = 1</script> hello"
HOSTILE_CMD = '<img src=x onerror="window.__pwned2 = 1">'
HOSTILE_OUT = "</pre></details><script>window.__pwned3 = 1</script><b>bold?</b>"
NEEDLE = "needle-qx7"

# Raw scores by (agent, repeat, benchmark, model); None = the run failed.
SCORES: dict[str, dict[int, dict[tuple[str, str], float | None]]] = {
    "alpha": {
        0: {
            ("gsm8k", MODELS[0]): 0.80,
            ("gsm8k", MODELS[1]): 0.70,
            ("humaneval", MODELS[0]): 0.60,
            ("humaneval", MODELS[1]): 0.50,
        },
        1: {
            ("gsm8k", MODELS[0]): 0.84,
            ("gsm8k", MODELS[1]): 0.74,
            ("humaneval", MODELS[0]): 0.62,
            ("humaneval", MODELS[1]): 0.52,
        },
    },
    "beta": {  # repeat 1, gsm8k on Qwen failed -> fallback to 0.30
        0: {
            ("gsm8k", MODELS[0]): 0.50,
            ("gsm8k", MODELS[1]): 0.40,
            ("humaneval", MODELS[0]): 0.30,
            ("humaneval", MODELS[1]): 0.20,
        },
        1: {
            ("gsm8k", MODELS[0]): None,
            ("gsm8k", MODELS[1]): 0.44,
            ("humaneval", MODELS[0]): 0.34,
            ("humaneval", MODELS[1]): 0.24,
        },
    },
    "gamma": {  # one repeat; humaneval on gemma fails verification (tamper) -> fallback 0.15
        0: {
            ("gsm8k", MODELS[0]): 0.97,
            ("gsm8k", MODELS[1]): 0.95,
            ("humaneval", MODELS[0]): 0.70,
            ("humaneval", MODELS[1]): 0.99,
        },
    },
}
UNVERIFIED = ("gamma", 0, "humaneval", MODELS[1])
HOSTILE_RUN = ("gamma", 0, "gsm8k", MODELS[0])


def _weights() -> dict[str, float]:
    """w_b ∝ 1 / (mean instruct − mean base), computed here by hand."""
    inv = {
        b: 1 / (statistics.fmean(INSTRUCT[(b, m)] for m in MODELS) - statistics.fmean(BASELINE[(b, m)] for m in MODELS))
        for b in BENCHES
    }
    return {b: v / sum(inv.values()) for b, v in inv.items()}


def _expected_scores() -> dict[str, tuple[float, float | None]]:
    """Agent scores computed here by hand: weights as above, fallback = zero-shot baseline."""
    w = _weights()
    out = {}
    for agent, repeats in SCORES.items():
        per_repeat = []
        for r, cells in repeats.items():
            vals = {}
            for key, raw in cells.items():
                unverified = (agent, r, *key) == UNVERIFIED
                vals[key] = BASELINE[key] if raw is None or unverified else raw
            per_repeat.append(sum(w[b] * statistics.fmean(vals[(b, m)] for m in MODELS) for b in BENCHES))
        out[agent] = (statistics.fmean(per_repeat), statistics.stdev(per_repeat) if len(per_repeat) > 1 else None)
    return out


def _trace(agent: str, hostile: bool) -> Trace:
    steps = [
        TraceStep(index=0, role="system", text="session start"),
        TraceStep(
            index=1,
            role="assistant",
            text=HOSTILE_TEXT if hostile else "Let me look around.",
            tool_calls=[ToolCall(id="c1", name="Bash", input={"command": HOSTILE_CMD if hostile else "ls"})],
            input_tokens=1200,
            output_tokens=80,
            cost_usd=0.0123,
        ),
        TraceStep(
            index=2, role="user", tool_results=[ToolResult(call_id="c1", output=HOSTILE_OUT if hostile else "a b")]
        ),
        TraceStep(
            index=3,
            role="assistant",
            text="Train now.",
            tool_calls=[ToolCall(id="c2", name="Bash", input={"command": "python train.py"})],
            input_tokens=1500,
            output_tokens=40,
            cost_usd=0.01,
        ),
        TraceStep(
            index=4, role="user", tool_results=[ToolResult(call_id="c2", output=f"loss 0.1 {NEEDLE}", is_error=False)]
        ),
        TraceStep(index=5, role="assistant", text="Done.", input_tokens=1600, output_tokens=10, cost_usd=0.009),
    ]
    return Trace(agent=agent, model="claude-x", source="solve_out.txt", steps=steps)


def write_results(root: Path) -> dict[tuple[str, int, str, str], Path]:
    """A results folder of synthetic runs; returns run folders by (agent, repeat, bench, model)."""
    folders = {}
    for checkpoint, scores in (("base", BASELINE), ("instruct", INSTRUCT)):
        for (bench, model), score in scores.items():
            save_baseline(root, benchmark=bench, base_model=get_base_model(model), score=score, checkpoint=checkpoint)
    for agent, repeats in SCORES.items():
        for repeat, cells in repeats.items():
            for (bench, model), raw in cells.items():
                key = (agent, repeat, bench, model)
                spec = RunSpec(agent=agent, base_model=model, benchmark=bench, hours=1.0, repeat=repeat)
                paths = run_paths(root, spec, get_base_model(model))
                phases: dict[str, PhaseState] = {}
                start = T0 + timedelta(hours=repeat)
                for i, p in enumerate(PHASES):
                    failed = raw is None and p == "evaluate"
                    later = raw is None and PHASES.index(p) > PHASES.index("evaluate")
                    phases[p] = PhaseState(
                        status="failed" if failed else "pending" if later else "done",
                        started_at=None if later else start + timedelta(minutes=10 * i),
                        finished_at=None if later else start + timedelta(minutes=10 * i + 5),
                        error="CUDA out of memory <oom>" if failed else None,
                    )
                evidence = paths.evidence / "tamper.json"
                atomic_write_json(evidence, {"gate": "tamper", "changed": ["evaluate.py"] if key == UNVERIFIED else []})
                tamper_failed = key == UNVERIFIED
                verdicts = [
                    Verdict(
                        gate="tamper",
                        status=VerdictStatus.failed if tamper_failed else VerdictStatus.passed,
                        summary="evaluate.py changed" if tamper_failed else "3 harness files unchanged",
                        evidence=(str(evidence),),
                    ),
                    Verdict(gate="lineage", status=VerdictStatus.passed, summary="fine-tune of the base model"),
                ]
                time_used = 1800.0 + 600 * repeat + 60 * len(agent)
                record = RunRecord(
                    run_id=spec.run_id(),
                    spec=spec,
                    created_at=start,
                    phases=phases,
                    verdicts=verdicts,
                    required_gates=["tamper", "lineage"],
                    final_verdict=VerdictStatus.failed if tamper_failed else VerdictStatus.passed,
                    metrics={"status": "ok", "score": raw, "metric": "accuracy", "n_scored": 100}
                    if raw is not None
                    else {"status": "failed", "error": "CUDA out of memory"},
                    time_used_s=time_used,
                    exit_code=0,
                    usage={
                        "input_tokens": 4300.0,
                        "output_tokens": 130.0,
                        "cost_usd": 0.0313,
                        "steps": 6.0,
                        "tool_calls": 2.0,
                    },
                    failure="evaluate: CUDA out of memory" if raw is None else None,
                )
                save_record(paths.run_json, record)
                save_trace(paths.trace_json, _trace(agent, hostile=key == HOSTILE_RUN))
                paths.prompt.write_text(f"Post-train the model. {HOSTILE_TEXT}\n", encoding="utf-8")
                folders[key] = paths.root
    # An older run of alpha's (repeat 0, gsm8k, Qwen) cell: superseded by the latest, not counted.
    spec = RunSpec(agent="alpha", base_model=MODELS[0], benchmark="gsm8k", hours=1.0, gpus=1)
    old = run_paths(root, spec, get_base_model(MODELS[0]))
    save_record(
        old.run_json,
        RunRecord(
            run_id=spec.run_id(),
            spec=spec,
            created_at=T0 - timedelta(days=1),
            metrics={"status": "ok", "score": 0.01},
            phases={p: PhaseState(status="done") for p in PHASES},
            final_verdict=VerdictStatus.passed,
        ),
    )
    folders[("alpha-old", 0, "gsm8k", MODELS[0])] = old.root
    # A broken run folder: must be listed on the site, not crash it.
    broken = root / "delta_default_1h" / "gsm8k_Qwen_Qwen3-1.7B-Base_0123456789ab"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("{not json", encoding="utf-8")
    return folders


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("results")
    folders = write_results(root)
    out = tmp_path_factory.mktemp("site")
    result = build_site(root, out)
    return root, folders, result


class _Page:
    """A page that records console errors, page errors and failed requests."""

    def __init__(self, browser, url: str) -> None:
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"requestfailed: {r.url}"))
        self.page.goto(url, wait_until="load")

    def close(self) -> None:
        self.page.close()


def _col(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


def test_site_files_and_problems(site) -> None:
    _root, folders, result = site
    assert result.index.is_file()
    for name in ("benchmarks.html", "models.html", "runs.html", "assets/report.css", "assets/report.js"):
        assert (result.out_dir / name).is_file(), name
    for stem in ("scores", "time_vs_score", "heatmap"):
        for ext in ("png", "svg"):
            assert (result.out_dir / "plots" / f"{stem}.{ext}").stat().st_size > 1000
    assert len(list((result.out_dir / "runs").glob("*/*/index.html"))) == len(folders)
    # The broken folder is reported with its path; everything else still aggregated.
    assert [p for p in result.problems if "0123456789ab" in p and "unreadable run.json" in p]
    assert result.n_runs == len(folders) - 1 and result.n_agents == 3  # one run is superseded
    # Evidence copied next to the run page.
    copied = list((result.out_dir / "runs").glob("*/*/evidence/tamper.json"))
    assert len(copied) == len(folders) - 1  # the superseded run has no evidence
    # No inline script anywhere: the only script is our own file.
    for page in result.pages:
        text = page.read_text(encoding="utf-8")
        assert text.count("<script") == 1 and '<script src="' in text, page


def test_leaderboard_page_in_chromium(site, browser, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    _, _, result = site
    p = _Page(browser, result.index.as_uri())
    page = p.page
    expected = _expected_scores()
    order = sorted(expected, key=lambda a: -expected[a][0])
    assert order == ["gamma", "alpha", "beta"]  # the fixture is built so, keep it so
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in order]
    assert _col(page, "leaderboard", 2) == [f"{expected[a][0]:.3f}" for a in order]
    stds = _col(page, "leaderboard", 3)
    assert stds[order.index("gamma")] == "—"  # one repeat: no std, no crash
    assert stds[order.index("alpha")] == f"± {expected['alpha'][1]:.3f}"
    # verified, fallback counts
    assert _col(page, "leaderboard", 6) == ["3 / 4", "8 / 8", "8 / 8"]
    assert _col(page, "leaderboard", 7) == ["1", "0", "1"]

    shot = tmp_path / "index.png"
    page.screenshot(path=str(shot))
    img = Image.open(shot)
    assert img.format == "PNG" and img.size == (1280, 900)
    stat = ImageStat.Stat(img.convert("L"))
    assert stat.stddev[0] > 20, stat.stddev  # not a blank page
    if os.environ.get("PTB_REPORT_SCREENSHOT"):  # used to refresh docs/report-screenshot.png
        img.save(os.environ["PTB_REPORT_SCREENSHOT"])

    # Sorting: agent name A-Z, then score twice (descending, ascending).
    page.click("#leaderboard th:has-text('agent')")
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in ("alpha", "beta", "gamma")]
    assert page.get_attribute("#leaderboard th:has-text('agent')", "aria-sort") == "ascending"
    score_th = "#leaderboard thead th:nth-child(3)"
    page.click(score_th)
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in order]
    page.click(score_th)
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in reversed(order)]
    assert page.get_attribute(score_th, "aria-sort") == "ascending"
    assert "1/(instruct − base) from recorded baselines" in page.inner_text("main")
    std_th = "#leaderboard thead th:nth-child(4)"  # gamma has one repeat: no std, always last
    page.click(std_th)
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in ("alpha", "beta", "gamma")]
    page.click(std_th)
    assert _col(page, "leaderboard", 1) == [LABEL.format(a) for a in ("beta", "alpha", "gamma")]

    # Plots loaded.
    sizes = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 3 and all(ok and w > 100 for ok, w in sizes), sizes
    # The broken run folder is listed.
    assert "0123456789ab" in page.inner_text("#problems ~ ul.problems")

    # An agent's name links to the runs page filtered to its runs.
    page.click("#leaderboard a:has-text('beta')")
    page.wait_for_load_state("load")
    assert page.url.endswith("runs.html#q=" + LABEL.format("beta").replace("/", "%2F").replace("@", "%40"))
    assert page.input_value("#runs-filter") == LABEL.format("beta")
    visible = page.eval_on_selector_all(
        "#runs tbody tr, #superseded-runs tbody tr", "rs => rs.filter(r => !r.hidden).map(r => r.cells[0].textContent)"
    )
    assert visible == [LABEL.format("beta")] * 8
    assert page.inner_text("#runs-count") == "8 of 21 runs"
    page.fill("#runs-filter", "CUDA out of memory")
    assert page.inner_text("#runs-count") == "1 of 21 runs"

    assert p.errors == []
    p.close()


def test_grouped_views_in_chromium(site, browser) -> None:
    _, _, result = site
    for name in ("benchmarks.html", "models.html", "runs.html"):
        p = _Page(browser, (result.out_dir / name).as_uri())
        links = p.page.eval_on_selector_all("main a[href*='runs/']", "as => as.map(a => a.href)")
        assert links, name
        for href in links[:3]:  # links resolve to run pages
            assert Path(href.removeprefix("file://")).is_file(), href
        assert p.errors == [], name
        p.close()
    p = _Page(browser, (result.out_dir / "benchmarks.html").as_uri())
    text = p.page.inner_text("main")
    # beta on gsm8k/Qwen: mean over repeats of 0.50 and the fallback 0.30, marked as fallback.
    row = p.page.inner_text("#bench-gsm8k + p + table tbody tr:has-text('beta')")
    assert f"{(0.50 + 0.30) / 2:.3f}" in row and "1 fb" in row
    assert "humaneval" in text
    p.close()
    p = _Page(browser, (result.out_dir / "runs.html").as_uri())
    assert len(_col(p.page, "runs", 0)) == 20
    superseded = _col(p.page, "superseded-runs", 0)
    assert superseded == [LABEL.format("alpha")]
    href = p.page.eval_on_selector("#superseded-runs a", "a => a.href")
    old_page = Path(href.removeprefix("file://"))
    assert "Superseded" in old_page.read_text() and "0.0100" not in old_page.read_text()
    p.close()


def test_run_page_with_hostile_trace(site, browser) -> None:
    _root, folders, result = site
    folder = folders[HOSTILE_RUN]
    page_path = result.out_dir / "runs" / folder.parent.name / folder.name / "index.html"
    p = _Page(browser, page_path.as_uri())
    page = p.page
    # The hostile script did not run; its text is shown as text.
    assert page.evaluate("[window.__pwned, window.__pwned2, window.__pwned3]") == [None, None, None]
    assert page.evaluate("document.querySelectorAll('main script, #trace img, #trace b').length") == 0
    assert HOSTILE_TEXT in page.inner_text("#trace")
    assert HOSTILE_TEXT in page.text_content("#files")  # prompt.txt, shown as text
    # Spec, phases, verdicts with evidence, metrics.
    assert "gsm8k" in page.inner_text("#spec") and MODELS[0] in page.inner_text("#spec")
    assert page.locator("#phases tbody tr").count() == len(PHASES)
    # one time format everywhere: UTC to the minute, durations H:MM:SS
    assert re.search(r"\b\d{4}-\d\d-\d\d \d\d:\d\dZ\b.*\b0:05:00\b", page.inner_text("#phases")), page.inner_text(
        "#phases"
    )
    assert page.locator("#verdicts tbody tr").count() == 2
    href = page.get_attribute("#verdicts a.evidence", "href")
    assert json.loads((page_path.parent / href).read_text())["gate"] == "tamper"
    assert "0.97" in page.inner_text("#metrics")

    # Tool calls are collapsed; the search filters steps and opens the matching tool result.
    steps = page.locator("#trace .step")
    assert steps.count() == 6
    assert page.evaluate("[...document.querySelectorAll('#trace details')].every(d => !d.open)")
    page.fill("#trace-search", NEEDLE)
    visible = page.eval_on_selector_all("#trace .step", "s => s.filter(x => !x.hidden).map(x => x.dataset.step)")
    assert visible == ["4"]
    assert page.inner_text("#trace-count") == "1 of 6 steps"
    assert page.evaluate("document.querySelector('#trace .step[data-step=\"4\"] details').open") is True
    assert page.locator(f"#trace .step[data-step='4'] pre:has-text('{NEEDLE}')").is_visible()
    page.fill("#trace-search", "python train")
    assert page.eval_on_selector_all("#trace .step", "s => s.filter(x => !x.hidden).length") == 1
    page.fill("#trace-search", "")
    assert page.eval_on_selector_all("#trace .step", "s => s.filter(x => !x.hidden).length") == 6
    page.click("button[data-details='open']")
    assert page.evaluate("[...document.querySelectorAll('#trace details')].every(d => d.open)")
    # Still nothing executed after opening everything.
    assert page.evaluate("[window.__pwned, window.__pwned2, window.__pwned3]") == [None, None, None]
    assert p.errors == []
    p.close()


# One hostile value per kind of field the templates print (text, attribute, link, <pre>): each
# would run script or break out of its attribute if it were not escaped, and ends in an entity
# that must show literally (escaped exactly once).
FIELDS = (
    "agent",
    "config",
    "bench",
    "text",
    "tool",
    "input",
    "result",
    "evidence",
    "ref",
    "gate",
    "summary",
    "failure",
    "error",
    "metric",
    "prompt",
)


def _hostile(field: str) -> str:
    return (
        f'{field}"\'><script>window.__pwned_{field} = 1</script><img src=x onerror="window.__pwned_{field} = 1">&amp;'
    )


class _Markup(html.parser.HTMLParser):
    """Every tag with its attributes, and the page's text, entities decoded."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_value_in_every_field(tmp_path: Path, browser) -> None:
    """Agent name, config, benchmark, trace text, tool name/input/output, evidence file name, gate,
    verdict summary, failure, phase error, metric and prompt: shown as text wherever they appear."""
    root = tmp_path / "results"
    for checkpoint, score in (("base", 0.2), ("instruct", 0.7)):
        save_baseline(root, benchmark="gsm8k", base_model=get_base_model(MODELS[0]), score=score, checkpoint=checkpoint)
    # A benchmark the catalog does not know is not ranked: it reaches the site in the problems list.
    odd = RunSpec(agent="other", base_model=MODELS[0], benchmark=_hostile("bench"), hours=1.0)
    save_record(
        run_paths(root, odd, get_base_model(MODELS[0])).run_json,
        RunRecord(
            run_id=odd.run_id(),
            spec=odd,
            metrics={"status": "ok", "score": 0.5},
            phases={p: PhaseState(status="done") for p in PHASES},
            final_verdict=VerdictStatus.passed,
        ),
    )
    spec = RunSpec(
        agent=_hostile("agent"), agent_config=_hostile("config"), base_model=MODELS[0], benchmark="gsm8k", hours=1.0
    )
    paths = run_paths(root, spec, get_base_model(MODELS[0]))
    evidence = paths.evidence / (_hostile("evidence").replace("/", "|") + ".json")  # "/" cannot be in a name
    atomic_write_json(evidence, {"gate": "tamper"})
    save_record(
        paths.run_json,
        RunRecord(
            run_id=spec.run_id(),
            spec=spec,
            created_at=T0,
            phases={
                p: PhaseState(
                    status="failed" if p == "evaluate" else "done", error=_hostile("error") if p == "evaluate" else None
                )
                for p in PHASES
            },
            verdicts=[
                Verdict(
                    gate=_hostile("gate"),
                    status=VerdictStatus.passed,
                    summary=_hostile("summary"),
                    evidence=(str(evidence), _hostile("ref")),
                )
            ],
            required_gates=[_hostile("gate")],
            final_verdict=VerdictStatus.passed,
            metrics={"status": "ok", "score": 0.5, _hostile("metric"): [_hostile("metric")]},
            failure=_hostile("failure"),
        ),
    )
    save_trace(
        paths.trace_json,
        Trace(
            agent=spec.agent,
            steps=[
                TraceStep(
                    index=0,
                    role="assistant",
                    text=_hostile("text"),
                    tool_calls=[ToolCall(id="c1", name=_hostile("tool"), input={"command": _hostile("input")})],
                ),
                TraceStep(index=1, role="user", tool_results=[ToolResult(call_id="c1", output=_hostile("result"))]),
            ],
        ),
    )
    paths.prompt.write_text(_hostile("prompt"), encoding="utf-8")

    result = build_site(root, tmp_path / "site")
    assert result.n_runs == 1 and not [p for p in result.problems if "run page failed" in p], result.problems
    assert [p for p in result.problems if "unknown benchmark" in p and _hostile("bench").split("'", 1)[1] in p]
    run_page = next(p for p in result.pages if p.parent.parent.parent.name == "runs")
    expect = {  # where each value must appear as text (at least)
        run_page: set(FIELDS) - {"evidence", "bench"} | {"evidence-name"},
        result.index: {"agent", "config", "bench"},
        result.out_dir / "runs.html": {"agent", "config", "bench", "failure"},
        result.out_dir / "benchmarks.html": {"agent", "config"},
        result.out_dir / "models.html": {"agent", "config"},
    }
    shown = {field: _hostile(field) for field in FIELDS}
    shown["evidence-name"] = evidence.name
    shown["bench"] = _hostile("bench").split("'", 1)[1]  # the problem quotes it with repr(): \' before this
    for page, fields in expect.items():
        markup = _Markup(page.read_text(encoding="utf-8"))
        text = "".join(markup.text)
        for field in fields:
            assert shown[field] in text, (str(page.relative_to(result.out_dir)), field)
        # Nothing of the values became markup: one script (ours), images only the plots', no handlers.
        up = "" if page.parent == result.out_dir else "../../../"
        assert [a for t, a in markup.tags if t == "script"] == [{"src": up + "assets/report.js"}], page
        assert all(t != "img" or (a.get("id") or "").startswith("plot-") for t, a in markup.tags), page
        assert not [a for _, attrs in markup.tags for a in attrs if a.startswith("on")], page
    # In attributes the values stay whole (quotes did not end them), e.g. the agent's row and link.
    index = _Markup(result.index.read_text(encoding="utf-8"))
    label = next(a["data-agent"] for t, a in index.tags if t == "tr" and "data-agent" in a)
    assert label.startswith(_hostile("agent")) and _hostile("config") in label

    for page in expect:
        p = _Page(browser, page.as_uri())
        assert p.page.evaluate(f"[{', '.join(f'window.__pwned_{f}' for f in FIELDS)}]") == [None] * len(FIELDS)
        assert p.page.evaluate("document.scripts.length") == 1
        assert p.errors == [], page
        if page == run_page:  # opening every tool call and result does not run anything either
            p.page.click("button[data-details='open']")
            assert _hostile("input") in p.page.inner_text("#trace")
            assert p.page.evaluate(f"[{', '.join(f'window.__pwned_{f}' for f in FIELDS)}]") == [None] * len(FIELDS)
        p.close()


def test_templates_escape_everything() -> None:
    """Autoescape on, undefined names fail the build, and no template opts out of escaping."""
    import jinja2

    from posttrainbench.report.site import environment

    env = environment()
    assert env.autoescape is True and env.undefined is jinja2.StrictUndefined
    names = env.list_templates()
    assert {"base.html.j2", "index.html.j2", "run.html.j2", "trace.html.j2"} <= set(names)
    for name in names:
        source = env.loader.get_source(env, name)[0]
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", source), name
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("base.html.j2").render(title="t", up="")  # the footer's values are missing


def test_failed_and_unverified_run_pages(site, browser) -> None:
    _, folders, result = site
    ok = folders[("alpha", 0, "gsm8k", MODELS[0])]
    p = _Page(browser, (result.out_dir / "runs" / ok.parent.name / ok.name / "index.html").as_uri())
    gain = (0.80 - BASELINE[("gsm8k", MODELS[0])]) / (INSTRUCT[("gsm8k", MODELS[0])] - BASELINE[("gsm8k", MODELS[0])])
    assert f"normalised gain\n{gain:.3f}" in p.page.inner_text("#outcome")  # scores and gains: 3 decimals everywhere
    assert p.errors == []
    p.close()
    failed = folders[("beta", 1, "gsm8k", MODELS[0])]
    p = _Page(browser, (result.out_dir / "runs" / failed.parent.name / failed.name / "index.html").as_uri())
    assert "evaluate: CUDA out of memory" in p.page.inner_text("#failure")
    phases = p.page.inner_text("#phases")
    assert "CUDA out of memory <oom>" in phases and "failed" in phases
    outcome = p.page.inner_text("#outcome")
    assert "fallback" in outcome and "0.300" in outcome and "0.3000" not in outcome
    assert p.errors == []
    p.close()
    unverified = folders[UNVERIFIED]
    p = _Page(browser, (result.out_dir / "runs" / unverified.parent.name / unverified.name / "index.html").as_uri())
    outcome = p.page.inner_text("#outcome")
    assert "0.990" in outcome and "verification fail" in outcome  # raw kept, fallback shown
    assert "fail" in p.page.inner_text("#verdicts tbody tr:first-child")
    assert p.errors == []
    p.close()


def test_bad_input_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "results"
    folders = write_results(root)
    victim = folders[("alpha", 0, "gsm8k", MODELS[0])]
    (victim / "trace.json").write_text('{"steps": "nope"', encoding="utf-8")
    raw_only = folders[("alpha", 1, "gsm8k", MODELS[0])]
    (raw_only / "trace.json").unlink()  # like an imported upstream run: only the raw output
    (raw_only / "solve_out.txt").write_text("epoch 1 <b>loss</b> 0.5\n\nepoch 2 done\n", encoding="utf-8")
    # Evidence outside the run folder is never copied; missing evidence is said to be missing.
    secret = tmp_path / "secret.txt"
    secret.write_text("do not publish", encoding="utf-8")
    odd_run = folders[("beta", 0, "gsm8k", MODELS[0])]
    rec = load_record(odd_run / "run.json")
    rec.verdicts = [Verdict(gate="tamper", status=VerdictStatus.passed, evidence=(str(secret), "gone.json"))]
    save_record(odd_run / "run.json", rec)
    # An agent name that matplotlib would read as mathtext, and HTML as markup.
    spec = RunSpec(agent="odd$\\nope{$<i>", base_model=MODELS[0], benchmark="gsm8k", hours=1.0)
    save_record(
        run_paths(root, spec, get_base_model(MODELS[0])).run_json,
        RunRecord(
            run_id=spec.run_id(),
            spec=spec,
            metrics={"status": "ok", "score": 0.5},
            phases={p: PhaseState(status="done") for p in PHASES},
            final_verdict=VerdictStatus.passed,
        ),
    )

    result = build_site(root, tmp_path / "site")
    assert [p for p in result.problems if str(victim / "trace.json") in p and "unreadable trace" in p]
    assert not [p for p in result.problems if p.startswith("plot ")], result.problems
    page = result.out_dir / "runs" / victim.parent.name / victim.name / "index.html"
    assert "Unreadable trace.json" in page.read_text()
    raw_page = (result.out_dir / "runs" / raw_only.parent.name / raw_only.name / "index.html").read_text()
    assert "parsed from the raw agent output" in raw_page and "epoch 1 &lt;b&gt;loss&lt;/b&gt; 0.5" in raw_page
    assert raw_page.count('class="step ') == 2
    odd_page = (result.out_dir / "runs" / odd_run.parent.name / odd_run.name / "index.html").read_text()
    assert "not found in the run folder" in odd_page and "gone.json" in odd_page
    assert not [
        p for p in result.out_dir.rglob("*") if p.is_file() and "do not publish" in p.read_text(errors="replace")
    ]
    index = result.index.read_text()
    assert "odd$\\nope{$&lt;i&gt;" in index and "<i>" not in index
    # An empty results folder still gives a site saying so.
    (tmp_path / "none").mkdir()
    text = build_site(tmp_path / "none", tmp_path / "site2").index.read_text()
    assert "0 agents, 0 runs" in text and "No agent could be ranked" in text
    with pytest.raises(ValueError, match="results folder itself"):
        build_site(root, root)
    # Never clears a folder that is not an earlier report; rebuilding a report is fine.
    own = tmp_path / "mine"
    (own / "runs").mkdir(parents=True)
    (own / "runs" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a ptb report site"):
        build_site(root, own)
    assert (own / "runs" / "keep.txt").read_text() == "mine"
    assert build_site(root, tmp_path / "site").index.is_file()


def test_cli_report(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_results(root)
    out = tmp_path / "site"
    res = CliRunner().invoke(app, ["report", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "0123456789ab" in res.output and (out / "index.html").is_file()
    assert "3 agents, 20 runs" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(out)])
    assert res.exit_code == 2 and "missing: no such folder" in res.output
    weights = tmp_path / "factors.json"
    weights.write_text(json.dumps({"gsm8k": 0.5, "humaneval": 0.5}))
    res = CliRunner().invoke(app, ["report", str(root), "--out", str(out), "--weights", str(weights), "--reindex"])
    assert res.exit_code == 0, res.output
    assert "gsm8k 0.500, humaneval 0.500 (weights file)" in (out / "index.html").read_text()
    weights.write_text(json.dumps({"gsm8k": 2.0}))
    res = CliRunner().invoke(app, ["report", str(root), "--out", str(out), "--weights", str(weights)])
    assert res.exit_code == 2 and "sum to" in res.output


def test_site_of_imported_upstream_results(tmp_path: Path, browser) -> None:
    """The published glm-5 grid, imported from upstream folders, shown as the leaderboard has it."""
    from posttrainbench.leaderboard.tables import build_report
    from test_import import METHOD, REF, _write_upstream

    src, res = tmp_path / "upstream", tmp_path / "results"
    _write_upstream(src)
    first = next(p for p in sorted((src / METHOD).iterdir()) if (p / "metrics.json").is_file())
    (first / "solve_out.txt").write_text("Reading the task <script>window.__pwned = 1</script>\nTraining\n")
    out = CliRunner().invoke(
        app, ["import", str(src), "--results", str(res), "--baselines", str(REF / "aggregated_baseline.csv")]
    )
    assert out.exit_code == 0, out.output
    report = build_report(res)
    result = build_site(res, tmp_path / "site")
    p = _Page(browser, result.index.as_uri())
    (agent,) = report.agents
    assert _col(p.page, "leaderboard", 1) == [agent.label]
    assert _col(p.page, "leaderboard", 2) == [f"{agent.score:.3f}"]
    assert _col(p.page, "leaderboard", 7) == [str(agent.n_fallback)] == ["4"]
    assert "from recorded baselines" in p.page.inner_text("main")
    assert p.errors == []
    p.close()
    p = _Page(browser, (result.out_dir / "runs.html").as_uri())
    assert len(_col(p.page, "runs", 0)) == 28  # the importer already left out the superseded job
    reasons = " ".join(_col(p.page, "runs", 9))
    assert "exhausted its retries" in reasons and "not stored" in reasons
    assert p.errors == []
    p.close()
    # The run with a raw agent output: its trace parsed from solve_out.txt, shown as text.
    pages = [pg for pg in result.pages if "Reading the task" in pg.read_text()]
    assert len(pages) == 1
    p = _Page(browser, pages[0].as_uri())
    assert p.page.locator("#trace .step").count() == 2
    assert p.page.evaluate("window.__pwned") is None
    assert p.errors == []
    p.close()


def test_site_served_over_http(site, browser) -> None:
    """The same site from a static web server (as on a website): CSP still allows its own files."""
    import functools
    import http.server
    import threading

    _, _, result = site
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(result.out_dir))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]  # silence the partial's handler
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        p = _Page(browser, base + "index.html")
        assert len(_col(p.page, "leaderboard", 1)) == 3
        sizes = p.page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(sizes) == 3 and min(sizes) > 100
        p.page.click("#leaderboard thead th:nth-child(2)")  # the script runs: sorting works
        assert p.page.get_attribute("#leaderboard thead th:nth-child(2)", "aria-sort") == "ascending"
        assert p.errors == []
        p.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
