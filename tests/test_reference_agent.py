"""The reference agent's training script, run as the sandbox runs it: a subprocess on a tiny model."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from posttrainbench.catalog.chat_templates import PLAIN
from posttrainbench.models.tiny import build_tiny_model

SCRIPT = Path(str(files("posttrainbench.agents").joinpath("templates", "reference_sft.py")))
ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"torch", "transformers", "trl", "peft", "datasets"}


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("base") / "tiny", seed=0)


def make_workspace(root: Path, base: Path, *, n: int = 48, **task_overrides) -> Path:
    ws = root / "ws"
    (ws / "task").mkdir(parents=True)
    (ws / "train_data").mkdir()
    rows = [
        {"prompt": f"Calculate {a}+{a % 7}. Reply with the number only.", "completion": str(a + a % 7)}
        for a in range(n)
    ]
    (ws / "train_data" / "calc_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = {
        "benchmark": "gsm8k-calc",
        "base_model_path": str(base),
        "chat_template": PLAIN,
        "train_files": ["train_data/calc_train.jsonl"],
        "deadline_epoch": time.time() + 3600,
        **task_overrides,
    }
    (ws / "task" / "task.json").write_text(json.dumps(task))
    return ws


def run_script(ws: Path, *args: str, script: Path = SCRIPT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-u", str(script)]
    if script == SCRIPT:
        cmd += ["--workspace", str(ws)]
    return subprocess.run([*cmd, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)


def summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    out = json.loads(last)
    assert out["event"] == "done"
    return out


def train_events(proc: subprocess.CompletedProcess) -> list[dict]:
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"event": "train"')]
    return rows


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_script_is_standalone():
    """Agent code: it must not import the harness (whose data is hidden in the sandbox)."""
    tree = ast.parse(SCRIPT.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    assert mods <= ALLOWED_IMPORTS, mods - ALLOWED_IMPORTS


def test_full_finetune_trains_and_saves_a_loadable_model(tmp_path, base_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws = make_workspace(tmp_path, base_model)
    # Run it the way the harness does: a copy inside the workspace, default --workspace.
    shutil.copy2(SCRIPT, ws / "reference_sft.py")
    proc = run_script(ws, "--max-steps", "12", "--batch-size", "8", "--lr", "3e-3", script=ws / "reference_sft.py")
    out = summary(proc)
    assert out["steps"] == 12 and out["stopped_by"] == "max_steps"
    events = train_events(proc)
    assert events and events[-1]["step"] == 12 and all("elapsed_s" in e for e in events)
    assert out["last_loss"] < out["first_loss"]

    final = ws / "final_model"
    assert sorted(p.name for p in ws.iterdir()) == ["final_model", "reference_sft.py", "task", "train_data"]
    assert (final / "model.safetensors").is_file() and not list(final.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert tok.chat_template == PLAIN
    assert model.config.vocab_size == len(tok)

    base, tuned = weights(base_model), weights(final)
    assert set(base) == set(tuned)
    changed = [k for k in base if not torch.equal(base[k], tuned[k])]
    assert any("layers" in k for k in changed)
    # Embeddings are frozen by default in full fine-tuning.
    assert torch.equal(base["model.embed_tokens.weight"], tuned["model.embed_tokens.weight"])


def test_settings_from_task_reference_and_seeded_reproducibility(tmp_path, base_model):
    # 48 examples, batch 16, at most one epoch: 3 steps, whatever max_steps says.
    ref = {"max_steps": 100, "batch_size": 16, "lr": 1e-3, "lora": False, "max_epochs": 1}
    ws1 = make_workspace(tmp_path / "a", base_model, reference=ref)
    ws2 = make_workspace(tmp_path / "b", base_model, reference=ref)
    out1, out2 = summary(run_script(ws1, "--seed", "7")), summary(run_script(ws2, "--seed", "7"))
    assert out1["steps"] == out2["steps"] == 3
    w1, w2 = weights(ws1 / "final_model"), weights(ws2 / "final_model")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_stops_early_when_the_deadline_is_near(tmp_path, base_model):
    # 35 s left: the 30 s saving margin leaves ~5 s, most of which the imports use up; it
    # must still finish at least one step and save (no wall-time assertion: CI may be loaded).
    ws = make_workspace(tmp_path, base_model, deadline_epoch=time.time() + 35)
    proc = run_script(ws, "--max-steps", "100000", "--batch-size", "2")
    out = summary(proc)
    assert out["stopped_by"] == "deadline"
    assert 1 <= out["steps"] < 100000
    assert (ws / "final_model" / "model.safetensors").is_file()
    assert "deadline near" in proc.stdout


def test_lora_is_merged_into_plain_weights(tmp_path, base_model):
    ws = make_workspace(tmp_path, base_model)
    out = summary(run_script(ws, "--lora", "--max-steps", "6", "--batch-size", "8", "--lr", "1e-2"))
    assert out["steps"] == 6
    final = ws / "final_model"
    names = {p.name for p in final.iterdir()}
    assert not {n for n in names if n.startswith("adapter")}, names
    base, tuned = weights(base_model), weights(final)
    assert set(base) == set(tuned), "merged model must have exactly the base model's tensors"
    assert not any("lora" in k for k in tuned)
    assert any(not torch.equal(base[k], tuned[k]) for k in base if "proj" in k)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ws: (ws / "task" / "task.json").unlink(), "missing task file"),
        (lambda ws: (ws / "task" / "task.json").write_text("{not json"), "cannot read"),
        (lambda ws: _edit_task(ws, train_files=[]), "'train_files' must be a non-empty list"),
        (lambda ws: _edit_task(ws, base_model_path="/nonexistent/model"), "has no config.json"),
        (lambda ws: _edit_task(ws, train_files=["train_data/nope.jsonl"]), "missing train file"),
        (lambda ws: (ws / "train_data" / "calc_train.jsonl").write_text('{"prompt": 1}\n'), "expected"),
        (lambda ws: _edit_task(ws, reference={"lora": "maybe"}), "bad training setting"),
        (lambda ws: _edit_task(ws, deadline_epoch="soon"), "'deadline_epoch' must be a number"),
    ],
    ids=[
        "missing",
        "not-json",
        "no-train-files",
        "no-base",
        "missing-train-file",
        "bad-row",
        "bad-setting",
        "bad-deadline",
    ],
)
def test_bad_task_fails_clearly(tmp_path, base_model, mutate, message):
    ws = make_workspace(tmp_path, base_model)
    mutate(ws)
    proc = run_script(ws, "--max-steps", "1", timeout=90)
    assert proc.returncode == 2
    assert "bad task" in proc.stderr and message in proc.stderr, proc.stderr[-2000:]
    assert not (ws / "final_model").exists()


def _edit_task(ws: Path, **changes) -> None:
    path = ws / "task" / "task.json"
    task = json.loads(path.read_text())
    task.update(changes)
    path.write_text(json.dumps(task))
