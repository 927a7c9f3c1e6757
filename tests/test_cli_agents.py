"""The real Claude Code and Codex CLIs (pinned npm releases) inside the real bwrap sandbox.

Each CLI talks to a local server speaking its vendor's wire protocol (Anthropic Messages /
OpenAI Responses, streamed) that replays a scripted tool-use session: look at the environment
and the files, run ``bash timer.sh``, copy the base model into ``final_model/``. The API is
reached only through the egress proxy (the sandbox has no network of its own). The harness
must collect the model, parse the trace, count the tokens, keep every other key out of the
sandbox and redact the agent's own key from everything it stores.

The CLIs are installed by ``scripts/setup.sh`` (``ptb agents install claude codex``); when they
are missing the test installs them from npm itself (and fails, not skips, without npm).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_llm_api import FakeLLM, Step
from posttrainbench.agents import AgentLaunchError, ClaudeCodeAgent, CodexAgent, get_agent
from posttrainbench.benchmarks import BENCHMARKS
from posttrainbench.catalog import get_base_model
from posttrainbench.domain import NetworkPolicy, RunSpec
from posttrainbench.integrity.observed_audit import check_observed, load_observed
from posttrainbench.integrity.trace_audit import AuditPolicy, audit_trace
from posttrainbench.pipeline import Pipeline
from posttrainbench.results import load_record
from posttrainbench.trace import load_trace

BASE = "ptb/tiny-random"
BENCH = "gsm8k-calc"
AGENT_KEY = {
    "claude": "sk-ant-api03-agentOwnKey0123456789abcdef",
    "codex": "sk-proj-agentOwnKey0123456789abcdefXYZ",
    "opencode": "sk-ant-api03-opencodeOwnKey0123456789ab",
    "gemini": "AIzaSyAgentOwnKey0123456789abcdefghijklm",
}
#: agent -> (key variable, base-URL variable, base-URL suffix, model config)
SETUP = {
    "claude": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "", "claude-sonnet-4-5"),
    "codex": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1", "gpt-5.1-codex"),
    "opencode": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "", "anthropic/claude-sonnet-4-5"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "", "gemini-2.5-pro"),
}
JUDGE_KEY = "judge-secret-value-0123456789"
GRADER_KEY = "sk-grader-0123456789abcdefghijklmnop"
# No command substitution: Gemini CLI refuses shell commands with $(...).
COPY_BASE = (
    "python -c \"import json, shutil; shutil.copytree(json.load(open('task/task.json'))['base_model_path'], "
    "'final_model', dirs_exist_ok=True)\" && ls final_model"
)
SCRIPT = [
    Step(bash="env | sort; ls -la"),
    Step(bash="bash timer.sh"),
    Step(bash=COPY_BASE),
    Step(text="Done: final_model/ is in place."),
]


@pytest.fixture(scope="module", params=["claude", "codex", "opencode", "gemini"])
def installed(request: pytest.FixtureRequest) -> str:
    agent = get_agent(request.param)
    agent.install()  # no-op when scripts/setup.sh installed it
    return request.param


def _spec(agent: str, config: str, network: NetworkPolicy = NetworkPolicy.none) -> RunSpec:
    return RunSpec(
        agent=agent, agent_config=config, base_model=BASE, benchmark=BENCH, hours=0.05, eval_limit=4, network=network
    )


@pytest.mark.parametrize("network", [NetworkPolicy.none, NetworkPolicy.allowlist])
def test_real_cli_runs_scripted_session_in_sandbox(
    installed: str, network: NetworkPolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = installed
    key_var, url_var, suffix, model = SETUP[agent]
    with FakeLLM(list(SCRIPT)) as api:
        monkeypatch.setenv(key_var, AGENT_KEY[agent])
        monkeypatch.setenv(url_var, api.base_url + suffix)
        monkeypatch.setenv("PTB_JUDGE_API_KEY", JUDGE_KEY)  # must never enter the sandbox
        monkeypatch.setenv("OPENAI_API_KEY" if key_var != "OPENAI_API_KEY" else "ANTHROPIC_API_KEY", GRADER_KEY)
        pipe = Pipeline(_spec(agent, model, network), tmp_path)
        record = pipe.run(until="collect")
    p = pipe.paths
    out = p.solve_out.read_text(errors="replace")
    assert record.phases["solve"].status == "done", (record.failure, p.solve_err.read_text()[-2000:])
    assert record.exit_code == 0, (out[-2000:], p.solve_err.read_text()[-2000:])
    solve = record.phases.solve.result()
    assert solve.agent_version == get_agent(agent).version()
    assert "egress" in solve.enforced and solve.enforced["net_ns"] != "not enforced"

    # The scripted conversation happened: every step's tool result came back to the server.
    scripted = api.scripted()
    assert len(scripted) >= len(SCRIPT), [r.path for r in api.requests]
    auth = {k.lower(): v for k, v in scripted[0].headers.items()}
    assert AGENT_KEY[agent] in (
        auth.get("x-api-key", "") + auth.get("authorization", "") + auth.get("x-goog-api-key", "")
    )
    assert scripted[0].body.get("model", scripted[0].path.rsplit("/", 1)[-1].split(":")[0]) == model.split("/")[-1]

    # The model was collected by the harness.
    assert record.phases.collect.result().final_model is True
    assert (p.final_model / "config.json").is_file()

    # Trace: parsed into steps with the three shell calls, tokens counted like the server did.
    trace = load_trace(p.trace_json)
    assert not trace.parse_errors, trace.parse_errors[:5]
    calls = [json.dumps(c.input) for s in trace.steps for c in s.tool_calls]
    assert any("timer.sh" in c for c in calls) and any("final_model" in c for c in calls)
    results = "\n".join(r.output for s in trace.steps for r in s.tool_results)
    assert "remaining" in results.lower() or "time" in results.lower()  # timer.sh ran
    usage = record.usage
    server_in = sum(r.input_tokens for r in scripted)
    server_out = sum(r.output_tokens for r in scripted)
    assert usage["input_tokens"] == server_in and usage["output_tokens"] == server_out, (usage, server_in, server_out)
    assert usage["cost_usd"] > 0

    # Secrets: judge/grader keys never entered; the agent's own key is redacted wherever stored.
    assert "PTB_JUDGE_API_KEY" not in results and JUDGE_KEY not in out
    assert GRADER_KEY not in out
    assert f"{key_var}=[REDACTED" in results, results[:3000]  # `env` printed it inside; redacted
    for f in (p.solve_out, p.solve_err, p.trace_json, p.egress_log, p.run_json, p.observed):
        assert AGENT_KEY[agent] not in f.read_text(errors="replace"), f
    # ... including the CLI's own session files in the stored workspace
    for f in p.workspace.rglob("*"):
        if f.is_file() and not f.is_symlink():
            assert AGENT_KEY[agent].encode() not in f.read_bytes(), f

    # Issue 13 part 4, on a real CLI: its output reads whole (no unreadable line); the kernel's log
    # saw the session (the CLI's tool processes and the model folder it wrote), lost nothing, and
    # finds nothing but the script's one violation (`env`: secret_access; the `env` process may
    # exit before its argv is read, so it is not always there).
    assert trace.unreadable_lines == 0 and not trace.unparsed, trace.unparsed[:3]
    header, observed = load_observed(p.observed)
    assert header["available"] and header["complete"], header
    assert any(r["kind"] == "exec" and r.get("argv") for r in observed), observed[:5]
    assert any(r["kind"] == "write" and r["path"].startswith(str(p.workspace / "final_model")) for r in observed)
    policy = AuditPolicy.for_run(
        agent_hosts=get_agent(agent).spec.api_hosts, base=get_base_model(BASE), benchmarks=BENCHMARKS.values()
    )
    v = check_observed(p.observed, policy, tmp_path / "ev", trace_path=p.trace_json, workspace=p.workspace)
    seen = {f["category"] for f in json.loads((tmp_path / "ev" / "observed_audit.json").read_text())["findings"]}
    assert seen <= {"secret_access"}, (v.summary, seen)
    assert "secret_access" in {f.category for f in audit_trace(trace, policy)}  # the trace audit sees it too

    # Egress: the API was reached through the proxy, and logged.
    log = p.egress_log.read_text()
    assert f"ALLOW\tCONNECT\t127.0.0.1:{api.port}" in log, log
    allowed = {ln.split("\t")[3] for ln in log.splitlines() if "\tALLOW\t" in ln}
    assert allowed == {f"127.0.0.1:{api.port}"}, log  # nothing else got out (Codex's own
    # update / analytics requests to github.com and chatgpt.com are denied and logged)


def test_cli_agent_configs_validated_up_front() -> None:
    claude, codex = ClaudeCodeAgent(), CodexAgent()
    assert claude.parse_config("default").model == "claude-opus-4-5"
    assert codex.parse_config("gpt-5.1-codex-max:effort=high,reprompt=30").options == {
        "effort": "high",
        "reprompt": "30",
    }
    for bad in ("bad model name", "claude-x:auth=password", "claude-x:nokey", "claude-x:reprompt=-1"):
        with pytest.raises(AgentLaunchError):
            claude.validate_config(bad)
    with pytest.raises(AgentLaunchError, match="effort must be one of"):
        codex.validate_config("gpt-5:effort=extreme")


def test_unknown_agent_config_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(AgentLaunchError, match="auth must be one of"):
        Pipeline(_spec("claude", "claude-sonnet-4-5:auth=stolen"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_missing_key_is_a_clear_solve_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: str) -> None:
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    record = Pipeline(_spec(installed, "default"), tmp_path).run()
    assert record.phases["solve"].status == "failed"
    assert "needs" in record.phases["solve"].error and "_API_KEY" in record.phases["solve"].error
    assert load_record(Pipeline(_spec(installed, "default"), tmp_path).paths.run_json).failure.startswith("solve:")


def test_missing_cli_install_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_AGENTS_DIR", str(tmp_path / "agents"))
    monkeypatch.setenv("PATH", "/nonexistent")  # no npm to install with
    monkeypatch.setenv("ANTHROPIC_API_KEY", AGENT_KEY["claude"])
    record = Pipeline(_spec("claude", "default"), tmp_path / "runs").run()
    err = record.phases["solve"].error or ""
    assert record.phases["solve"].status == "failed" and "npm not found" in err, err


@pytest.mark.parametrize("agent", ["claude", "codex"])  # OpenCode's and Gemini's sessions are too slow to
def test_reprompt_resumes_the_session_while_time_remains(  # end the loop quickly here
    agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reprompt=1``: the CLI stops after its first session with ~3 min left, so the driver
    resumes it with "You still have ..."; two short sessions in a row end the loop."""
    get_agent(agent).install()
    key_var, url_var, suffix, model = SETUP[agent]
    with FakeLLM([Step(bash="bash timer.sh"), Step(text="Done.")]) as api:
        monkeypatch.setenv(key_var, AGENT_KEY[agent])
        monkeypatch.setenv(url_var, api.base_url + suffix)
        pipe = Pipeline(_spec(agent, f"{model}:reprompt=1"), tmp_path)
        record = pipe.run(until="collect")
    assert record.exit_code == 0, pipe.paths.solve_err.read_text()[-2000:]
    argv = record.phases.solve.result().argv
    assert "reprompt_driver.py" in " ".join(argv)
    reprompts = [r for r in api.scripted() if "You still have" in json.dumps(r.body)]
    assert reprompts, [json.dumps(r.body)[-300:] for r in api.scripted()]
    assert "resuming" in pipe.paths.solve_err.read_text()
    trace = load_trace(pipe.paths.trace_json)
    starts = [s for s in trace.steps if s.text.startswith("session start")]
    assert len(starts) >= 2  # both sessions are in one trace


def test_driver_and_harness_share_the_reprompt_message() -> None:
    import importlib.util

    from posttrainbench.agents import reprompt

    spec = importlib.util.spec_from_file_location("reprompt_driver", reprompt.DRIVER)
    driver = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(driver)
    for seconds in (0, 59, 3600 + 5 * 60 + 7, 10 * 3600):
        assert driver.remaining_text(seconds) == reprompt.remaining_text(seconds)
    assert reprompt.remaining_text(3600 + 5 * 60 + 7).startswith("You still have 1h 05m remaining.")


def test_ptb_trace_prints_a_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from posttrainbench.cli import app

    run = tmp_path / "run"
    run.mkdir()
    (run / "solve_out.txt").write_text("\n".join(json.dumps(e) for e in [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution", "command": "bash timer.sh",
                                            "aggregated_output": "Remaining time (hours:minutes): 0:02", "exit_code": 0}},
        {"type": "turn.completed", "usage": {"input_tokens": 1200, "output_tokens": 30}},
    ]) + "\nnot json\n")  # fmt: skip
    res = CliRunner().invoke(app, ["trace", str(run), "--agent", "codex"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "→ shell" in res.output and "bash timer.sh" in res.output and "Remaining time" in res.output
    assert "1200 input / 30 output tokens" in res.output and "1 unparsed line" in res.output
    res = CliRunner().invoke(app, ["trace", str(tmp_path / "nothing")], terminal_width=200)
    assert res.exit_code == 2 and "no trace.json" in res.output
