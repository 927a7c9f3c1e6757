"""``ptb view``: the live server over a results folder, checked over real HTTP and in a real
headless Chromium (as tests/test_report.py checks the static site).

The results folder is test_report's (three agents, a failed and an unverified run, a broken run
folder, a hostile trace) plus: a run still in progress (``solve`` started, the reference agent's
loss lines in ``solve_out.txt``), and a finished run with a real Inspect log (written by Inspect
with its mock model, one hostile reply) and a ``trainer_state.json``. The server runs in a thread
on port 0; ``ptb view`` itself runs as a subprocess inside a read-only bind mount and is stopped
with SIGINT.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from posttrainbench.catalog import get_base_model
from posttrainbench.domain import PHASES, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
from posttrainbench.report.server import ViewServer, make_server
from posttrainbench.report.site import CSP
from posttrainbench.results import load_record, run_paths, save_record
from posttrainbench.results.loss_curve import find_loss_curve
from test_cli_read_only import _ro_mount_argv, _tree
from test_report import (
    BASELINE,
    HOSTILE_RUN,
    HOSTILE_TEXT,
    INSTRUCT,
    MODELS,
    _Markup,
    _Page,
    write_results,
)

HOSTILE_REPLY = '</pre><script>window.__pwned_reply = 1</script><img src=x onerror="window.__pwned_img = 1"> 42'
HOSTILE_PROMPT = "<b>bold?</b> What is 6 * 7?"
T = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LOSSES = [2.5, 1.9, 1.4, 1.1, 0.9]


def _live_record(spec: RunSpec, upto: str, *, done: bool = False) -> RunRecord:
    """A run record whose phases before ``upto`` are done and ``upto`` has started (``done``: all done)."""
    phases: dict[str, PhaseState] = {}
    for p in PHASES:
        if done or PHASES.index(p) < PHASES.index(upto):
            phases[p] = PhaseState(status="done", started_at=T, finished_at=T)
        elif p == upto:
            phases[p] = PhaseState(status="pending", started_at=T)
        else:
            phases[p] = PhaseState(status="pending")
    return RunRecord(
        run_id=spec.run_id(),
        spec=spec,
        created_at=T,
        phases=phases,
        final_verdict=VerdictStatus.passed if done else None,
        metrics={"status": "ok", "score": 0.5} if done else None,
    )


def _train_line(step: int, loss: float) -> str:
    return json.dumps({"event": "train", "step": step, "max_steps": 40, "loss": loss}) + "\n"


def _write_inspect_log(eval_dir: Path) -> Path:
    """A real Inspect log of two GSM8K-style items (a right and a hostile reply), by Inspect's mock model."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from posttrainbench.benchmarks import get_benchmark
    from posttrainbench.data import Item
    from posttrainbench.evaluation import build_task

    items = [Item(id="q1", input=HOSTILE_PROMPT, target="42"), Item(id="q2", input="What is 2 + 2?", target="4")]
    replies = {HOSTILE_PROMPT: HOSTILE_REPLY, "What is 2 + 2?": "It is 5."}

    def reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", replies[input[-1].text])
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return out

    model = get_model("mockllm/model", custom_outputs=reply, memoize=False)
    (log,) = inspect_eval(
        build_task(get_benchmark("gsm8k"), items),
        model=model,
        log_dir=str(eval_dir),
        log_format="eval",
        display="none",
        ctl_server=False,
    )
    assert log.status == "success"
    return Path(log.location)


def write_view_results(root: Path) -> dict:
    """test_report's results plus a run in progress and a finished run with a loss curve."""
    folders: dict = dict(write_results(root))
    folders["hostile"] = folders[HOSTILE_RUN]
    live = RunSpec(agent="live", base_model=MODELS[0], benchmark="gsm8k", hours=1.0)
    paths = run_paths(root, live, get_base_model(MODELS[0]))
    save_record(paths.run_json, _live_record(live, "solve"))
    paths.solve_out.write_text("".join(_train_line(5 * i, loss) for i, loss in enumerate(LOSSES[:3], 1)))
    folders["live"] = paths.root
    done = RunSpec(agent="evaluated", base_model=MODELS[0], benchmark="gsm8k", hours=1.0)
    paths = run_paths(root, done, get_base_model(MODELS[0]))
    record = _live_record(done, "record", done=True)
    record.verdicts = [Verdict(gate="tamper", status=VerdictStatus.passed, evidence=("evidence/tamper.json",))]
    (paths.evidence).mkdir(parents=True)
    (paths.evidence / "tamper.json").write_text('{"gate": "tamper"}')
    (paths.evidence / "escape.json").symlink_to(root.parent / "secret.json")  # a symlink out of the run folder
    (root.parent / "secret.json").write_text('{"secret": "do not serve"}')
    record.verdicts.append(Verdict(gate="lineage", status=VerdictStatus.passed, evidence=("evidence/escape.json",)))
    save_record(paths.run_json, record)
    state = {"log_history": [{"step": 10 * i, "loss": loss} for i, loss in enumerate(LOSSES, 1)] + [{"eval_x": 1}]}
    (paths.final_model / "checkpoint-50").mkdir(parents=True)
    (paths.final_model / "checkpoint-50" / "trainer_state.json").write_text(json.dumps(state))
    folders["evaluated"] = paths.root  # its Inspect log is written by the test that reads it (Inspect costs 4 s)
    return folders


@pytest.fixture(scope="module")
def view_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path], ViewServer]]:
    root = tmp_path_factory.mktemp("results")
    folders = write_view_results(root)
    db = tmp_path_factory.mktemp("cache") / "view.db"
    server = make_server(root, db)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield root, folders, server
    finally:
        server.shutdown()
        server.server_close()
        server.view.close()
        thread.join(timeout=10)


def _get(server: ViewServer, path: str, method: str = "GET", host: str | None = None) -> tuple[int, dict, bytes]:
    """A raw request (the path is sent exactly as given: no client-side normalisation)."""
    conn = http.client.HTTPConnection(str(server.server_address[0]), server.server_address[1], timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{server.server_address[1]}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _wait(page, js: str, timeout: float = 15) -> None:
    """Poll ``js`` in the page until it is true, across reloads (``wait_for_function`` would eval
    a string, which the pages' CSP forbids)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(js):
                return
        except Exception:  # noqa: BLE001 - the page is reloading: its context is gone for a moment
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {js}"
        time.sleep(0.2)


def _page_of(folder: Path) -> str:
    return f"/runs/{folder.parent.name}/{folder.name}/index.html"


def test_pages_headers_and_methods(view_server) -> None:
    _root, folders, server = view_server
    for path in ("/", "/index.html", "/runs.html", "/benchmarks.html", "/models.html", _page_of(folders["live"])):
        status, headers, body = _get(server, path)
        assert status == 200, path
        assert headers["Content-Security-Policy"].startswith(CSP) and f'content="{CSP}"' in html.unescape(body.decode())
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Type"].startswith("text/html")
    status, headers, body = _get(server, "/index.html", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = _get(server, "/index.html", method)
        assert (status, headers["Allow"]) == (405, "GET, HEAD"), method
    # A page asked for under another host name (DNS rebinding) is refused; its own names work.
    assert _get(server, "/index.html", host="evil.example:80")[0] == 403
    assert _get(server, "/index.html", host=f"localhost:{server.server_address[1]}")[0] == 200
    # The runs list shows the live phase of the run in progress and the state of the others.
    runs = _get(server, "/runs.html")[2].decode()
    assert "solve running" in runs and "evaluate failed" in runs and runs.count(">done<") >= 10
    # The leaderboard lists the run in progress, with a link to its page.
    index = _get(server, "/")[2].decode()
    (progress,) = re.findall(r'<ul id="in-progress-runs">(.*?)</ul>', index)
    assert f'href="{_page_of(folders["live"]).lstrip("/")}"' in progress and "solve running for" in progress
    state = json.loads(_get(server, "/version.json")[2])
    assert state["running"] is True and re.fullmatch(r"[0-9a-f]{16}", state["version"])


def test_traversal_listings_and_symlinks_are_refused(view_server) -> None:
    _root, folders, server = view_server
    run = folders["evaluated"]
    base = f"/runs/{run.parent.name}/{run.name}"
    # The honest control: the evidence the record lists, inside the run folder, is served.
    status, headers, body = _get(server, f"{base}/evidence/tamper.json")
    assert status == 200 and json.loads(body) == {"gate": "tamper"}
    assert headers["Content-Type"] == "application/json"
    for path in (
        "/../../../../etc/passwd",
        "/runs/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        f"{base}/../../../secret.json",
        f"/runs/{run.parent.name}%2F{run.name}/index.html",  # an encoded slash
        f"{base}/evidence/..%2F..%2Frun.json",
        f"{base}/evidence/escape.json",  # listed by the record, but a symlink out of the run folder
        f"{base}/run.json",  # files of the run folder are not served as such
        f"{base}/",  # no folder listings
        "/runs/",
        "/assets/",
        "/assets/../../run.json",
        "/plots/../run.json",
        f"{base}/evidence/",
    ):
        status, _, body = _get(server, path)
        assert status == 404, path
        assert b"do not serve" not in body and b"root:" not in body, path


def test_read_only_tree_is_left_untouched(view_server) -> None:
    root, folders, server = view_server
    before = _tree(root)
    for path in ("/", "/runs.html", "/benchmarks.html", _page_of(folders["evaluated"]), _page_of(folders["live"])):
        assert _get(server, path)[0] == 200
    assert _tree(root) == before
    assert not (root / "results.db").exists() and server.view.db_path.is_file()


def test_a_corrupt_run_shows_on_its_page_and_the_server_goes_on(view_server) -> None:
    _root, _, server = view_server
    status, _, body = _get(server, "/runs/delta_default_1h/gsm8k_Qwen_Qwen3-1.7B-Base_0123456789ab/index.html")
    assert status == 200 and "could not be read" in body.decode() and "unreadable run.json" in body.decode()
    assert _get(server, "/runs/nobody/nothing/index.html")[0] == 404
    assert _get(server, "/index.html")[0] == 200


def test_loss_curve_rule(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "task" / "out").mkdir(parents=True)
    assert find_loss_curve(run) is None
    (run / "task" / ".venv").mkdir()  # hidden folders are not searched (an environment is no training log)
    (run / "task" / ".venv" / "pip.log").write_text("".join(_train_line(i, 5.0) for i in range(1, 9)))
    assert find_loss_curve(run) is None
    # A training log in the workspace, Trainer's printed dicts (no step: numbered by position).
    (run / "task" / "out" / "train.log").write_text(
        "starting\n{'loss': 2.0, 'grad_norm': 1.0, 'epoch': 0.1}\nnoise {'loss': 9}\n{'loss': 1.5, 'epoch': 0.2}\n"
    )
    curve = find_loss_curve(run)
    assert curve is not None and curve.source == "task/out/train.log"
    assert (curve.x_label, curve.points) == ("logged point", [(1.0, 2.0), (2.0, 1.5)])
    # A trainer_state.json wins over any log; a symlinked one (to a file outside) is not followed.
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"log_history": [{"step": s, "loss": 9.0} for s in range(50)]}))
    (run / "task" / "trainer_state.json").symlink_to(outside)
    os.mkfifo(run / "task" / "out" / "fifo.log")  # a FIFO would block a reader that opened it
    assert find_loss_curve(run).source == "task/out/train.log"
    (run / "final_model").mkdir()
    (run / "final_model" / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": float("nan")}, {"step": 3}]})
    )
    assert find_loss_curve(run).source == "task/out/train.log"  # one usable point is not a curve
    (run / "final_model" / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]})
    )
    curve = find_loss_curve(run)
    assert curve.source == "final_model/trainer_state.json" and curve.points == [(1.0, 3.0), (2.0, 2.0)]


def test_run_in_progress_reloads_with_its_next_phase(view_server, browser) -> None:
    _root, folders, server = view_server
    live = folders["live"]
    p = _Page(browser, server.url.rstrip("/") + _page_of(live))
    page = p.page
    assert "solve running" in page.inner_text("#outcome")
    assert page.get_attribute("body", "data-live") == "version.json"
    # The reference agent's loss lines so far: three points.
    assert page.inner_text("#loss-curve figcaption").startswith("loss 2.5 → 1.4")
    assert len(page.get_attribute("#loss-curve polyline", "points").split()) == 3
    # The agent logs two more steps: the page reloads by itself and draws five points.
    with live.joinpath("solve_out.txt").open("a") as fh:
        fh.write("".join(_train_line(5 * i, loss) for i, loss in enumerate(LOSSES, 1) if i > 3))
    _wait(page, "document.querySelector('#loss-curve polyline').getAttribute('points').split(' ').length === 5")
    # The run moves on to collect: the page shows it without a click.
    spec = load_record(live / "run.json").spec
    save_record(live / "run.json", _live_record(spec, "collect"))
    _wait(page, "document.querySelector('#outcome').innerText.includes('collect running')")
    assert page.locator("#phases tbody tr").count() == len(PHASES)
    # A manual refresh shows the same; once the run is done the page stops polling.
    page.reload()
    assert "collect running" in page.inner_text("#outcome")
    save_record(live / "run.json", _live_record(spec, "record", done=True))
    _wait(page, "document.querySelector('#outcome').innerText.includes('state\\ndone')")
    assert page.get_attribute("body", "data-live") is None
    assert p.errors == []
    p.close()
    # Put it back for the other tests (the module's fixture is shared).
    save_record(live / "run.json", _live_record(spec, "solve"))


def test_leaderboard_and_hostile_trace_in_chromium(view_server, browser) -> None:
    _root, folders, server = view_server
    p = _Page(browser, server.url)
    page = p.page
    labels = page.eval_on_selector_all("#leaderboard tbody tr", "rs => rs.map(r => r.cells[1].textContent.trim())")
    ranked = [label for label in labels if label.split("/")[0] in ("alpha", "beta", "gamma")]
    assert ranked == ["gamma/default@1h", "alpha/default@1h", "beta/default@1h"]  # as the static report ranks them
    sizes = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 3 and all(ok and w > 100 for ok, w in sizes), sizes
    page.click("#leaderboard thead th:nth-child(2)")  # our script runs under the CSP header: sorting works
    assert page.get_attribute("#leaderboard thead th:nth-child(2)", "aria-sort") == "ascending"
    assert p.errors == []
    p.close()
    # The runs list: each cell's base and instruct zero-shot scores beside it.
    p = _Page(browser, server.url + "runs.html")
    cols = {
        name: p.page.eval_on_selector_all("#runs tbody tr", f"rs => rs.map(r => r.cells[{i}].textContent.trim())")
        for name, i in (("bench", 1), ("model", 2), ("base", 15), ("instruct", 16))
    }
    assert cols["base"] == [f"{BASELINE[(b, m)]:.3f}" for b, m in zip(cols["bench"], cols["model"], strict=True)]
    assert cols["instruct"] == [f"{INSTRUCT[(b, m)]:.3f}" for b, m in zip(cols["bench"], cols["model"], strict=True)]
    assert p.errors == []
    p.close()
    p = _Page(browser, server.url.rstrip("/") + _page_of(folders["hostile"]))
    page = p.page
    assert page.evaluate("[window.__pwned, window.__pwned2, window.__pwned3]") == [None, None, None]
    assert HOSTILE_TEXT in page.inner_text("#trace")
    page.click("button[data-details='open']")
    assert page.evaluate("[window.__pwned, window.__pwned2, window.__pwned3]") == [None, None, None]
    assert page.evaluate("document.querySelectorAll('main script, #trace img').length") == 0
    # Base and instruct zero-shot scores beside the cell.
    outcome = page.inner_text("#outcome")
    key = (HOSTILE_RUN[2], HOSTILE_RUN[3])
    assert f"base model zero-shot\n{BASELINE[key]:.3f}" in outcome
    assert f"instruct model zero-shot\n{INSTRUCT[key]:.3f}" in outcome
    assert p.errors == []
    p.close()


def test_evaluation_samples_and_loss_curve_in_chromium(view_server, browser, tmp_path: Path) -> None:
    root, folders, server = view_server
    run = folders["evaluated"]
    p = _Page(browser, server.url.rstrip("/") + _page_of(run))
    assert "No Inspect logs" in p.page.inner_text("main")
    p.close()
    # The evaluation writes its log (in a thread: Playwright's sync API holds this one's event
    # loop, and Inspect runs its own): the next request shows it.
    done: list[Path] = []
    writer = threading.Thread(target=lambda: done.append(_write_inspect_log(run / "eval")))
    writer.start()
    writer.join(timeout=120)
    (log,) = done
    before = _tree(root)
    p = _Page(browser, server.url.rstrip("/") + _page_of(run))
    page = p.page
    row = page.inner_text("#eval-logs tbody tr")
    assert log.name in row and str(log.resolve()) in row and "success" in row and "2 of 2 samples" in row
    assert page.inner_text("#eval-logs code.command") == f"inspect view --log-dir {log.parent.resolve()}"
    # The loss curve from final_model/…/trainer_state.json: five points, first and last loss.
    page_points = page.get_attribute("#loss-curve polyline", "points")
    assert len(page_points.split()) == len(LOSSES)
    caption = page.inner_text("#loss-curve figcaption")
    assert "loss 2.5 → 0.9" in caption and "final_model/checkpoint-50/trainer_state.json" in caption
    # Evidence is served from the run folder; the one that is a symlink out is named, not linked.
    assert page.locator("#verdicts a.evidence").count() == 1
    assert "not found in the run folder" in page.inner_text("#verdicts")
    page.click(f"#eval-logs a:has-text('{log.name}')")
    page.wait_for_load_state("load")
    assert page.locator("#samples .sample").count() == 2
    first, second = page.locator("#samples .sample").all()
    assert HOSTILE_PROMPT in first.locator(".prompt").text_content() and HOSTILE_REPLY in first.inner_text()
    assert "42" in first.locator(".target").inner_text() and "= C" in first.inner_text()
    assert "It is 5." in second.inner_text() and "= I" in second.inner_text()
    assert second.locator(".verdict").inner_text().strip()  # the scorer's verdict with its answer
    assert page.evaluate("[window.__pwned_reply, window.__pwned_img]") == [None, None]
    assert page.evaluate("document.querySelectorAll('#samples img, #samples script, #samples b').length") == 0
    assert page.inner_text("#samples-range").startswith("Samples 1–2")
    assert p.errors == []
    p.close()
    assert _tree(root) == before  # reading the log wrote nothing
    # The static report's run page shows the same list of logs and the same curve (one template).
    from posttrainbench.leaderboard import RankOptions
    from posttrainbench.report import build_site

    site = build_site(root, tmp_path / "site", RankOptions(db_path=tmp_path / "index.db"))
    static = _Markup(next(pg for pg in site.pages if run.name in str(pg)).read_text(encoding="utf-8"))
    text = "".join(static.text)
    assert f"inspect view --log-dir {log.parent.resolve()}" in text and "2 of 2 samples" in text
    assert [a["points"] for t, a in static.tags if t == "polyline"] == [page_points]


def test_cli_view_read_only_mount_and_sigint(tmp_path: Path) -> None:
    """`ptb view` as a user runs it, over a results tree mounted read-only: it prints the URL,
    serves, and one SIGINT stops it with exit 0; the tree is unchanged."""
    root = tmp_path / "results"
    write_results(root)
    before = _tree(root)
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    env.pop("DISPLAY", None)
    ptb = str(Path(sys.executable).parent / "ptb")
    argv = [*_ro_mount_argv(root), ptb, "view", "--results", str(root), "--port", "0", "--no-open"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"at (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, line + proc.stderr.read()
        conn = http.client.HTTPConnection("127.0.0.1", int(m[2]), timeout=60)
        conn.request("GET", "/runs.html")
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200 and "gamma/default@1h" in body
        conn.close()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert _tree(root) == before and not (root / "results.db").exists()
    assert list((tmp_path / "cache" / "results-index").glob("*.db"))


def test_cli_view_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from posttrainbench.cli import app

    res = CliRunner().invoke(app, ["view", "--results", str(tmp_path / "typo"), "--no-open"])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {tmp_path / 'typo'}: no such folder")
    assert not (tmp_path / "typo").exists()
    res = CliRunner().invoke(app, ["view", "--port", "70000"])
    assert res.exit_code == 2
    (tmp_path / "results").mkdir()
    import socket

    with socket.socket() as taken:  # a port in use: one line, the fix named
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = CliRunner().invoke(app, ["view", "--results", str(tmp_path / "results"), "--port", str(port)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith(f"error: 127.0.0.1:{port}: cannot listen") and "--port" in res.stderr
    assert list((tmp_path / "results").iterdir()) == []
    res = CliRunner().invoke(app, ["view", "--help"])
    assert res.exit_code == 0 and "--no-open" in res.output and "Ctrl-C" in res.output


def test_big_files_are_capped_and_said_so(view_server) -> None:
    """A huge agent output, a huge JSON Inspect log and a huge training log: the pages say what
    was left out and stay small; nothing is read whole."""
    from posttrainbench.report.evallogs import MAX_JSON_LOG_BYTES
    from posttrainbench.report.site import MAX_RAW_TRACE_BYTES
    from posttrainbench.results.loss_curve import MAX_FILE_BYTES

    root, _, server = view_server
    spec = RunSpec(agent="huge", base_model=MODELS[0], benchmark="gsm8k", hours=1.0)
    paths = run_paths(root, spec, get_base_model(MODELS[0]))
    save_record(paths.run_json, _live_record(spec, "solve"))
    with paths.solve_out.open("wb") as fh:  # sparse: costs no disk
        fh.write(b"".join(_train_line(i, 1.0 / i).encode() for i in range(1, 4)))
        fh.truncate(MAX_RAW_TRACE_BYTES + 1)
    paths.eval_dir.mkdir()
    with (paths.eval_dir / "big.json").open("wb") as fh:
        fh.truncate(MAX_JSON_LOG_BYTES + 1)
    (paths.workspace).mkdir()
    with (paths.workspace / "train.log").open("wb") as fh:  # its loss lines lie past the part read
        fh.truncate(MAX_FILE_BYTES)
        fh.seek(MAX_FILE_BYTES)
        fh.write("".join(_train_line(i, 9.0) for i in range(1, 10)).encode())
    try:
        status, _, body = _get(server, _page_of(paths.root))
        text = html.unescape(body.decode())
        assert status == 200 and len(body) < 200_000
        assert f"solve_out.txt</code> is {(MAX_RAW_TRACE_BYTES + 1) / 2**20:.0f} MiB, too large to render" in text
        assert "too large to open here" in text
        # The loss curve: the three points at the head of solve_out.txt, not the nine past the cap.
        assert "3 points, from <code>solve_out.txt</code>" in text
        (href,) = re.findall(r'href="(samples-[^"]+)"', body.decode())
        status, _, body = _get(server, _page_of(paths.root).removesuffix("index.html") + href)
        assert status == 200 and "too large to open here" in body.decode()
    finally:
        import shutil

        shutil.rmtree(paths.root.parent)


def test_hostile_names_in_the_view_only_pages_are_text(view_server, browser) -> None:
    """The parts only the view (and the run page's new sections) print: a training log's file name
    (the loss curve's source), a broken run folder's name and its error, shown as text."""
    from posttrainbench.report.site import _safe_name
    from test_report import _hostile

    root, _, server = view_server
    spec = RunSpec(agent="named", base_model=MODELS[0], benchmark="gsm8k", hours=1.0)
    paths = run_paths(root, spec, get_base_model(MODELS[0]))
    save_record(paths.run_json, _live_record(spec, "record", done=True))
    paths.workspace.mkdir()
    log_name = _hostile("loss").replace("/", "|") + ".log"
    (paths.workspace / log_name).write_text("".join(_train_line(i, 2.0 / i) for i in (1, 2, 3)))
    broken = root / _hostile("group").replace("/", "|") / "run"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text(_hostile("json"))
    pages = {
        _page_of(paths.root): {f"task/{log_name}"},
        f"/runs/{_safe_name(broken.parent.name)}/run/index.html": {broken.parent.name},
    }
    try:
        for url, shown in pages.items():
            status, _, body = _get(server, url)
            assert status == 200, url
            markup = _Markup(body.decode())
            text = "".join(markup.text)
            assert all(s in text for s in shown), url
            assert [a for t, a in markup.tags if t == "script"] == [{"src": "../../../assets/report.js"}], url
            assert not [t for t, _ in markup.tags if t == "img"], url
            assert not [a for _, attrs in markup.tags for a in attrs if a.startswith("on")], url
            p = _Page(browser, server.url.rstrip("/") + url)
            assert p.page.evaluate("[window.__pwned_loss, window.__pwned_group, window.__pwned_json]") == [None] * 3
            assert p.errors == [], url
            p.close()
    finally:
        import shutil

        shutil.rmtree(paths.root.parent)
        shutil.rmtree(broken.parent)
