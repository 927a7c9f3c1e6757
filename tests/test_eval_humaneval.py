"""HumanEval: the shipped data, the sandboxed executor (real bwrap), the Inspect scorer, the log
recomputation (which executes the logged replies again) and a tiny model end to end."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.benchmarks.humaneval import build_program, extract_code
from posttrainbench.catalog import get_base_model
from posttrainbench.data import data_root
from posttrainbench.evaluation import build_task, check_log, evaluate_model
from posttrainbench.evaluation.code_exec import run_programs
from posttrainbench.models.tiny import build_tiny_model

HE = get_benchmark("humaneval")
TINY = get_base_model("ptb/tiny-random")
EVAL_KW: dict[str, Any] = {"display": "none", "ctl_server": False, "log_format": "eval"}
HE_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    path = data_root() / "humaneval" / "HumanEval.jsonl.gz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == HE_SHA256
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {r["task_id"]: r for r in map(json.loads, fh)}


@pytest.fixture(scope="module")
def items():
    return HE.load_test_items()


def test_loader_reads_all_164_problems(items, raw):
    assert len(items) == 164 == HE.full_size
    assert [it.id for it in items] == list(raw)
    it = items[0]
    assert raw[it.id]["prompt"] in it.input and it.target == raw[it.id]["entry_point"]
    assert set(it.metadata) == {"prompt", "test", "entry_point"}
    assert all(raw[i.id]["canonical_solution"] not in i.input for i in items)


def test_all_canonical_solutions_pass_in_the_sandbox(items, raw):
    programs = [(it.id, build_program(raw[it.id]["canonical_solution"], it.metadata)) for it in items]
    results = run_programs(programs)
    failed = {k: (r.status, r.stderr_tail[-300:]) for k, r in results.items() if not r.passed}
    assert not failed and len(results) == 164


def test_wrong_and_hostile_solutions_fail(items, raw):
    it = {i.id: i for i in items}
    meta = it["HumanEval/0"].metadata
    body = raw["HumanEval/0"]["canonical_solution"]
    cases = {
        "wrong": "    return not (" + body.strip().splitlines()[-1].replace("return", "").strip() + ")\n",
        "none": "    return None\n",
        "syntax": "    return (\n",
        "loop": "    while True:\n        pass\n",
        "exit0": "    pass\nimport sys\nsys.exit(0)\n",
        "os_exit": "    pass\nimport os\nos._exit(0)\n",
        # each hostile statement runs inside the function, before the correct body
        "write_outside": "    open('/work/ptb_evil', 'w').write('x')\n" + body,
        "network": "    import socket\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n" + body,
        "memory": "    x = b'1' * (3 * 1024 ** 3)\n" + body,
    }
    programs = [(k, build_program(v, meta)) for k, v in cases.items()]
    programs.append(("right", build_program(body, meta)))
    res = run_programs(programs, timeout_s=3, memory_mb=512)
    assert res["right"].passed
    for k in cases:
        assert not res[k].passed, k
    assert res["loop"].status == "timeout"
    assert res["memory"].status == "oom"
    tail = res["write_outside"].stderr_tail  # /work is absent inside, or read-only if an interpreter lives there
    assert "No such file or directory: '/work/ptb_evil'" in tail or "Read-only file system" in tail
    assert not Path("/work/ptb_evil").exists()
    assert "Network is unreachable" in res["network"].stderr_tail
    assert "SystemExit" in res["exit0"].stderr_tail


def test_extract_code_from_chat_replies():
    assert extract_code("Sure:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"  # unterminated
    assert extract_code("    return 1\n") == "    return 1\n"


def _mock_model(replies: dict[str, str]):
    def reply(input, tools, tool_choice, config):  # noqa: A002 - the names Inspect passes
        out = ModelOutput.from_content("mockllm/model", replies[input[-1].text])
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else tiktoken downloads
        return out

    return get_model("mockllm/model", custom_outputs=reply, memoize=False)


def test_inspect_task_and_log_recomputation(items, raw, tmp_path):
    chosen = items[:6]
    replies = {}
    for n, it in enumerate(chosen):
        r = raw[it.id]
        full = r["prompt"] + r["canonical_solution"]  # a complete function, as chat models reply
        replies[it.input] = f"Here it is:\n```python\n{full}```" if n % 2 == 0 else "```python\ndef nope(:\n```"
    elog = inspect_eval(build_task(HE, chosen), model=_mock_model(replies), log_dir=str(tmp_path), **EVAL_KW)[0]
    assert elog.status == "success"
    assert elog.results.scores[0].metrics["accuracy"].value == 0.5
    ids = [it.id for it in chosen]
    check = check_log(elog.location, HE, ids)
    assert check.ok and check.score == 0.5 and check.n_scored == 6, check.problems

    # a failed sample's stored score flipped to correct: re-execution disagrees
    bad = read_eval_log(elog.location)
    name = next(iter(bad.samples[1].scores))
    bad.samples[1].scores[name] = bad.samples[1].scores[name].model_copy(update={"value": "C"})
    write_eval_log(bad, tmp_path / "flipped.eval")
    check = check_log(tmp_path / "flipped.eval", HE, ids)
    assert not check.ok and any("disagree" in p for p in check.problems)


def test_tiny_model_end_to_end(tmp_path, items):
    tiny = build_tiny_model(tmp_path / "tiny")
    short = sorted(items, key=lambda it: len(it.input))[:3]  # the tiny model has 512 positions
    res = evaluate_model(tiny, HE, TINY, tmp_path / "out", items=short, max_tokens=24, batch_size=3)
    assert res.status == "ok", res.error
    assert (res.n_scored, res.n_expected, res.max_tokens_used) == (3, 3, 24)
    assert res.score == 0.0 and res.metric == "pass@1"  # random weights do not write code
    elog = read_eval_log(res.log_path)
    assert all(next(iter(s.scores.values())).metadata["status"] in ("failed", "timeout") for s in elog.samples)


def test_inside_the_agent_sandbox_code_runs_in_a_subprocess(tmp_path):
    """bwrap cannot nest: the agent's evaluate.py (already in bwrap) runs programs with the
    ``none`` backend (a subprocess with the time limit); a nested bwrap fails cleanly."""
    import sys

    from posttrainbench.domain import NetworkPolicy
    from posttrainbench.sandbox import SandboxConfig, get_sandbox

    src = Path(__file__).resolve().parents[1] / "src"
    ws = tmp_path / "ws"
    ws.mkdir()
    code = (
        "from posttrainbench.evaluation.code_exec import Program, run_programs, SandboxUnavailableError\n"
        "t = 'def check(candidate):\\n    assert candidate(2) == 4\\n'\n"
        "p = {k: Program(f'def f(x):\\n    {body}\\n', t, 'f') for k, body in\n"
        "     [('a', 'return x * 2'), ('b', 'return 5'), ('c', 'while True: pass')]}\n"
        "r = run_programs(sorted(p.items()), sandbox='none', timeout_s=2)\n"
        "print({k: v.status for k, v in sorted(r.items())})\n"
        "try:\n    run_programs([('a', p['a'])])\nexcept SandboxUnavailableError as e:\n    print('nested:', e)\n"
    )
    cfg = SandboxConfig(
        workspace=ws, ro_binds=sorted({Path(sys.prefix), Path(sys.base_prefix), src}),
        env={"PATH": "/usr/bin:/bin", "HOME": str(ws), "PYTHONPATH": str(src)},
        network=NetworkPolicy.none, time_limit_s=60,
    )  # fmt: skip
    res = get_sandbox("bwrap").run([sys.executable, "-c", code], cfg, stdin=None, stdout=ws / "out", stderr=ws / "err")
    out = (ws / "out").read_text()
    assert res.exit_code == 0, (ws / "err").read_text()
    assert "{'a': 'passed', 'b': 'failed', 'c': 'timeout'}" in out
    assert "nested: cannot execute generated code: sandbox 'bwrap' unavailable" in out


def test_workspace_evaluate_script_on_humaneval(tmp_path, items, monkeypatch):
    import importlib.util
    import shutil

    from posttrainbench.data import write_dev_file
    from posttrainbench.evaluation import workspace_script_path

    ws = tmp_path / "ws"
    (ws / "task").mkdir(parents=True)
    shutil.copy(workspace_script_path(), ws / "evaluate.py")
    (ws / "task" / "task.json").write_text(json.dumps({"benchmark": "humaneval", "base_model_id": "ptb/tiny-random"}))
    write_dev_file(ws / "task" / "dev.jsonl", sorted(items, key=lambda it: len(it.input))[:2])
    build_tiny_model(ws / "final_model")
    monkeypatch.chdir(ws)
    spec = importlib.util.spec_from_file_location("ptb_ws_eval_he", ws / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--max-tokens", "8", "--json-output-file", "out.json"]) == 0
    out = json.loads((ws / "out.json").read_text())
    assert out["status"] == "ok" and out["n_scored"] == 2 and out["pass@1"] == 0.0
