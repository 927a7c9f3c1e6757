"""Live progress: the agent's latest step, tokens and cost while it runs (read with the scaffold's
own parser as its output grows), evaluation samples with rate and ETA (Inspect's hooks), shown as
one transient line on a terminal and as timestamped lines at a low rate elsewhere."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rich.console import Console

from posttrainbench.agents.trace_parsers import TraceTail, parse_trace, training_progress
from posttrainbench.console import LiveStatus
from posttrainbench.pipeline.watch import SolveWatch, describe_call, printable
from posttrainbench.results.loss_curve import latest_trainer_loss

PTB = [sys.executable, "-m", "posttrainbench"]
TESTS = Path(__file__).parent


def _claude_events() -> list[dict]:
    def assistant(i: int, tool: str, inp: dict) -> dict:
        return {"type": "assistant", "message": {"model": "claude-sonnet-4-5-20250929", "content": [
            {"type": "text", "text": f"step {i}"}, {"type": "tool_use", "id": f"t{i}", "name": tool, "input": inp}],
            "usage": {"input_tokens": 1000 * i, "output_tokens": 100 * i}}}  # fmt: skip

    def result(i: int) -> dict:
        return {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": f"t{i}", "content": f"{{'loss': {2.0 / i}, 'epoch': {i / 10}}}"}]}}  # fmt: skip

    return [
        {"type": "system", "subtype": "init", "model": "claude-sonnet-4-5-20250929"},
        assistant(1, "Bash", {"command": "python train.py --epochs 1"}), result(1),
        assistant(2, "Read", {"file_path": "/work/notes.md"}), result(2),
        assistant(3, "Bash", {"command": "ls\x1b[2J\x1b]0;owned\x07 final_model"}),
        {"type": "result", "subtype": "success", "total_cost_usd": 0.42, "result": "done",
         "usage": {"input_tokens": 7000, "output_tokens": 700}},
    ]  # fmt: skip


def test_the_tail_reads_complete_lines_as_they_come_and_adds_up_as_the_whole_file(tmp_path: Path) -> None:
    raw = tmp_path / "solve_out.txt"
    text = "".join(json.dumps(ev) + "\n" for ev in _claude_events())
    tail = TraceTail("claude", raw)
    assert tail.poll() is False and tail.last_call is None  # no file yet: nothing, no error
    cut = text.index('"name": "Read"')  # mid-line: the half line waits for its newline
    raw.write_text(text[:cut])
    assert tail.poll() is True
    assert tail.last_call is not None and tail.last_call.name == "Bash"
    assert tail.training == ("epoch 0.10", 2.0)  # the loss dict printed by the training command
    raw.write_text(text)
    tail.poll()
    assert tail.last_call is not None and tail.last_call.name == "Bash"
    assert tail.training == ("epoch 0.20", 1.0)
    whole, live = parse_trace("claude", raw).usage(), tail.usage()
    assert (live.input_tokens, live.output_tokens, live.cost_usd) == (7000, 700, 0.42)
    assert (whole.input_tokens, whole.output_tokens, whole.cost_usd) == (7000, 700, 0.42)
    # the display never shows the agent's terminal escapes
    shown = describe_call(tail.last_call)
    assert "\x1b" not in shown and "\x07" not in shown and shown.startswith("Bash ls") and "final_model" in shown
    raw.write_text("")  # replaced (a re-run): read from the start again
    assert tail.poll() is False and tail.offset == 0


def test_training_progress_reads_trainer_dicts_python_or_json_and_ignores_junk() -> None:
    assert training_progress("{'loss': 1.5, 'grad_norm': 3.2, 'learning_rate': 5e-05, 'epoch': 0.5}") == (
        "epoch 0.50",
        1.5,
    )
    ref = '{"event": "train", "step": 40, "max_steps": 100, "loss": 0.8123, "lr": 1e-05}'
    assert training_progress("noise\n" + ref) == ("step 40/100", 0.8123)
    assert training_progress("{'loss': 2.0, 'step': 1}\n{'loss': 1.0, 'step': 2}") == ("step 2", 1.0)
    assert training_progress("{'loss': __import__('os').system('x')}") is None
    assert training_progress("{'loss': 'nan?'} loss went down") is None


def test_trainer_state_is_read_from_the_newest_checkpoint_never_through_a_symlink(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    old, new = ws / "out" / "checkpoint-10", ws / "out" / "checkpoint-20"
    for d, step, loss in ((old, 10, 2.0), (new, 20, 1.25)):
        d.mkdir(parents=True)
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": [
            {"loss": loss + 1, "step": step - 5}, {"loss": loss, "step": step}, {"eval_loss": 9.0, "step": step}]}))  # fmt: skip
    os.utime(old / "trainer_state.json", (time.time() - 60, time.time() - 60))
    assert latest_trainer_loss(ws) == ("step 20", 1.25)
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"log_history": [{"loss": 0.001, "step": 999}]}))
    (ws / "evil").mkdir()
    (ws / "evil" / "trainer_state.json").symlink_to(outside)
    assert latest_trainer_loss(ws) == ("step 20", 1.25)


def _plain() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def test_plain_lines_are_timestamped_and_rate_limited() -> None:
    out, buf = _plain()
    with LiveStatus(out, "solve", min_interval_s=0.5, heartbeat_s=1.5) as status:
        status.update("step 1", key="1")
        status.update("step 2", key="2")  # news, but too soon after the last line
        status.update("step 2 again", key="2")
        time.sleep(0.6)
        status.update("step 3", key="3")  # news, and late enough
        status.update("step 3", key="3")
        time.sleep(1.6)
        status.update("step 3 still", key="3")  # no news, but the heartbeat is due
    lines = buf.getvalue().splitlines()
    assert [line[9:] for line in lines] == ["solve step 1", "solve step 3", "solve step 3 still"], lines
    assert all(re.match(r"\d\d:\d\d:\d\d solve ", line) for line in lines)
    muted_out, muted_buf = _plain()
    muted_out.quiet = True
    with LiveStatus(muted_out, "solve") as status:
        status.update("x")
    assert muted_buf.getvalue() == ""


def test_a_broken_display_never_breaks_the_watch(tmp_path: Path) -> None:
    out, buf = _plain()
    raw = tmp_path / "out.txt"
    raw.write_bytes(b"\xff\xfe not utf-8 {'loss': \n" + b'{"type": "assistant", "message": 7}\n')
    watch = SolveWatch(LiveStatus(out, "solve"), TraceTail("claude", raw), 60, tmp_path)
    watch.tick()  # junk read by the real parser: no step, no error
    assert "0:00:00 / 0:01:00" in buf.getvalue()
    assert printable("a\x1b[31mb\nc" * 40, 20).endswith("…") and "\x1b" not in printable("a\x1b[31mb")


def test_ptb_run_not_on_a_terminal_prints_timestamped_steps_and_losses(tmp_path: Path) -> None:
    """A real ``ptb run`` (a subprocess, stdout a pipe as in a Slurm log) with a scripted agent
    that prints HF Trainer log lines and sleeps: the progress lines name its step and loss."""
    script = textwrap.dedent("""\
        echo "{'loss': 2.5, 'grad_norm': 1.0, 'learning_rate': 5e-05, 'epoch': 0.1, 'step': 1}"
        sleep 12
        echo "{'loss': 1.75, 'epoch': 0.2, 'step': 2}"
        sleep 12
        echo "{'loss': 1.25, 'epoch': 0.3}"
        sleep 4
    """)
    driver = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from conftest import ScriptAgent
        from posttrainbench.agents import AGENTS
        from posttrainbench.cli.main import app
        with AGENTS.registered(ScriptAgent.with_script({script!r})):
            app(sys.argv[1:], prog_name="ptb")
    """)
    argv = [sys.executable, "-c", driver, "run", "--agent", "script-test", "--model", "ptb/tiny-random",
            "--benchmark", "gsm8k-calc", "--hours", "0.03", "--until", "solve", "--results", str(tmp_path / "r")]  # fmt: skip
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d solve \d:\d\d:\d\d / 0:01:48", ln)]
    assert any("step 1 loss 2.5" in ln for ln in lines), res.stdout
    assert any("step 2 loss 1.75" in ln for ln in lines), res.stdout
    assert any("epoch 0.30 loss 1.25" in ln for ln in lines), res.stdout
    assert len(lines) <= 5, "plain progress lines at a low rate, not one per poll"


def _screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: lines, carriage returns, erase-line and cursor-up
    (what rich's live display uses); other escape sequences (colours, cursor visibility) ignored."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", raw):
        if token == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            if token.endswith("K"):
                lines[row] = ""
            elif token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
        else:
            lines[row] = lines[row][:col] + token + lines[row][col + 1 :]
            col += 1
    return lines


def test_ptb_eval_on_a_terminal_shows_one_live_line_that_ends_clean(tmp_path: Path) -> None:
    from posttrainbench.models.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", seed=0)
    out = tmp_path / "eval"
    master, slave = pty.openpty()
    env = {**os.environ, "PTB_CACHE_DIR": str(tmp_path / "cache"), "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [*PTB, "eval", str(model), "--benchmark", "gsm8k-calc", "--base-model", "ptb/tiny-random", "--out", str(out),
         "--limit", "4", "--batch-size", "1"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=30) == 0, data.decode(errors="replace")
    raw = data.decode("utf-8", errors="replace")
    assert re.search(r"eval \d/4 samples · [\d.]+/s · ETA \d:\d\d:\d\d", raw), "the live line was shown"
    assert "4/4 samples" in raw
    shown = [ln for ln in _screen(raw) if ln.strip()]
    assert not any("samples" in ln for ln in shown), f"the live line was left on screen: {shown}"
    assert shown[0].startswith("evaluating ") and shown[1].startswith("log: "), shown
    assert "it/s]" not in raw and "Loading weights" not in raw, "a third-party progress bar"


def test_the_wait_for_the_first_sample_ticks_and_stops_at_the_first_sample() -> None:
    """Model loading says so, with a clock, until the first sample; then the count takes over."""
    from posttrainbench.evaluation.progress import SampleMeter

    buf = io.StringIO()
    status = LiveStatus(
        Console(file=buf, force_terminal=False, width=200), "evaluate", min_interval_s=0, heartbeat_s=0.15
    )
    with status:
        meter = SampleMeter(status, tick_s=0.05)
        meter(0, 8)
        time.sleep(0.6)
        waiting = buf.getvalue()
        meter(1, 8)
        time.sleep(0.4)
        after = buf.getvalue()[len(waiting) :]
    lines = [ln for ln in waiting.splitlines() if "loading the model, first answers pending" in ln]
    assert len(lines) >= 2 and all("0/8 samples" in ln for ln in lines), waiting
    assert re.search(r"pending · 0:00:0\d", lines[-1]), lines[-1]
    assert "1/8 samples" in after and "loading the model" not in after, after
    assert meter._ticker is None  # the clock stopped with the first sample
