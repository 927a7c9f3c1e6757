"""Escape attempts that must fail inside the real sandbox and be reported: fill the disk,
flood the output, read the judge's key, reach a host that is not allow-listed, smuggle a
foreign secret in. (Writing outside the workspace, harness files, time and memory limits are
in test_sandbox.py.)"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from posttrainbench.domain import NetworkPolicy, RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.sandbox import BwrapSandbox, SandboxConfig, UnsandboxedSandbox
from posttrainbench.sandbox.process import TRUNCATED_MARK
from posttrainbench.settings import SettingsError

PY_BINDS = sorted({Path(sys.prefix), Path(sys.base_prefix)})
JUDGE_KEY = "sk-ant-judge-0123456789abcdefghijklmnopqrstu"
GRADER_KEY = "grader-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def bwrap() -> BwrapSandbox:
    sb = BwrapSandbox()
    ok, reason = sb.available()
    assert ok, f"bwrap unavailable: {reason}"
    return sb


def _run(sb, argv: list[str], tmp_path: Path, **cfg: Any):
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    cfg.setdefault("time_limit_s", 60)
    cfg.setdefault("kill_grace_s", 1)
    config = SandboxConfig(workspace=ws, ro_binds=PY_BINDS, env={"PATH": "/usr/bin:/bin"}, **cfg)
    out, err = tmp_path / "out", tmp_path / "err"
    t0 = time.monotonic()
    res = sb.run(argv, config, stdout=out, stderr=err)
    return res, out, err, time.monotonic() - t0


@pytest.mark.parametrize("backend", ["bwrap", "none"])
def test_output_flood_is_capped_and_stopped(backend: str, bwrap: BwrapSandbox, tmp_path: Path) -> None:
    sb = bwrap if backend == "bwrap" else UnsandboxedSandbox()
    # `yes` writes as fast as it can, to stdout and (through a second process) to stderr.
    res, out, err, took = _run(sb, ["bash", "-c", "yes >&2 & exec yes"], tmp_path, max_output_mb=2)
    cap = 2 * 2**20
    assert res.limit_exceeded and "exceeded the output cap" in res.limit_exceeded
    assert res.exit_code is None and not res.timed_out and took < 30
    for f in (out, err):
        size = f.stat().st_size
        assert size <= cap + len(TRUNCATED_MARK % cap) + 16, (f, size)
    assert any(f.read_bytes().endswith(TRUNCATED_MARK % cap) for f in (out, err))
    assert res.enforced["output_cap"] is True


def test_workspace_quota_stops_a_disk_filler(bwrap: BwrapSandbox, tmp_path: Path) -> None:
    # Writes 1 MiB every 20 ms (real data), then would go on forever.
    script = "i=0; while true; do head -c 1048576 /dev/zero > chunk$i; i=$((i+1)); sleep 0.02; done"
    res, _, _, took = _run(bwrap, ["bash", "-c", script], tmp_path, max_workspace_mb=8)
    assert res.limit_exceeded == "workspace exceeded its quota of 8 MiB"
    assert not res.timed_out and took < 30
    used = sum(p.stat().st_size for p in (tmp_path / "ws").iterdir())
    assert 8 * 2**20 < used < 1024 * 2**20  # stopped within a few polls, host disk unharmed


def test_sparse_100gb_file_counts_in_full(bwrap: BwrapSandbox, tmp_path: Path) -> None:
    res, _, _, took = _run(
        bwrap, ["bash", "-c", "truncate -s 100G big.bin; sleep 1000"], tmp_path, max_workspace_mb=100
    )
    assert res.limit_exceeded and "quota" in res.limit_exceeded and took < 30


def _spec(agent: str, network: NetworkPolicy = NetworkPolicy.none) -> RunSpec:
    return RunSpec(
        agent=agent,
        agent_config="x",
        base_model="ptb/tiny-random",
        benchmark="gsm8k-calc",
        hours=0.05,
        eval_limit=4,
        network=network,
    )


STEAL = r"""
set +e
{
  echo "== env"; env
  echo "== proc environ"; for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f"; done
  echo "== harness dirs"; ls -la /root /home /work /run 2>&1
  echo "== dotfiles"; cat /root/.bashrc /root/.netrc /root/.config/*/* 2>&1 | head -50
} > loot.txt 2>&1
python - <<'EOF'
import urllib.request
for url in ("http://example.com/", "https://example.com/"):
    try:
        urllib.request.urlopen(url, timeout=10); print("REACHED", url)
    except Exception as e:
        print("blocked", url, type(e).__name__, e)
EOF
exit 0
"""


def test_judge_and_grader_keys_never_enter_and_foreign_hosts_are_denied(
    tmp_path: Path,
    script_agent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_JUDGE_API_KEY", JUDGE_KEY)
    monkeypatch.setenv("GRADER_OPENAI_API_KEY", GRADER_KEY)
    agent = script_agent(STEAL)
    pipe = Pipeline(_spec(agent, NetworkPolicy.allowlist), tmp_path)
    record = pipe.run(until="collect")
    assert record.exit_code == 0, pipe.paths.solve_err.read_text()
    loot = (pipe.paths.workspace / "loot.txt").read_text()
    assert "== proc environ" in loot and "PATH=" in loot  # the probe really ran
    assert JUDGE_KEY not in loot and GRADER_KEY not in loot and "PTB_JUDGE_API_KEY" not in loot
    out = pipe.paths.solve_out.read_text()
    assert "REACHED" not in out and out.count("blocked") == 2, out
    log = pipe.paths.egress_log.read_text()
    assert "DENY\tGET\texample.com:80" in log and "DENY\tCONNECT\texample.com:443" in log, log
    assert "ALLOW" not in log
    assert str(record.phases.solve.result().enforced["egress"]).startswith("allow-list proxy")


def test_a_foreign_secret_in_the_agent_env_refuses_to_start(
    tmp_path: Path,
    script_agent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import conftest

    monkeypatch.setenv("PTB_JUDGE_API_KEY", JUDGE_KEY)

    class Leaky(conftest.ScriptAgent):
        script = "touch ran.txt\n"

        def environment(self, ctx) -> dict[str, str]:
            return {"HELPFUL_SETTING": f"prefix-{JUDGE_KEY}"}

    name = script_agent(Leaky)
    pipe = Pipeline(_spec(name), tmp_path)
    record = pipe.run()
    solve = record.phases["solve"]
    assert solve.status == "failed" and "HELPFUL_SETTING" in (solve.error or "")
    assert not (pipe.paths.workspace / "ran.txt").exists()
    assert JUDGE_KEY not in pipe.paths.run_json.read_text()


def test_agent_writing_100gb_is_stopped_and_recorded(
    tmp_path: Path,
    script_agent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_MAX_WORKSPACE_MB", "64")
    agent = script_agent("echo filling; truncate -s 100G huge.bin; sleep 1000\n")
    pipe = Pipeline(_spec(agent), tmp_path)
    record = pipe.run()
    assert record.completed and not record.timed_out
    assert record.failure == "solve: agent stopped: workspace exceeded its quota of 64 MiB"
    assert record.phases.solve.result().limit_exceeded.startswith("workspace exceeded")
    assert "filling" in pipe.paths.solve_out.read_text()  # trace kept as far as it got


def test_bad_limit_setting_is_a_clear_error(tmp_path: Path, script_agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_MAX_OUTPUT_MB", "lots")
    monkeypatch.setenv("PTB_MAX_WORKSPACE_MB", "0")
    with pytest.raises(SettingsError) as err:
        Pipeline(_spec(script_agent("true\n")), tmp_path).run()
    assert err.value.problems == (
        "PTB_MAX_OUTPUT_MB='lots': expected a positive integer",
        "PTB_MAX_WORKSPACE_MB='0': expected a positive integer",
    )
    assert not any(tmp_path.iterdir()), "nothing was made"
