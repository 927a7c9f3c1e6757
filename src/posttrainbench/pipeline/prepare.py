"""prepare: the run folder and the agent's workspace (``task/``): ``evaluate.py`` (dev subset),
``task/task.json``, ``task/dev.jsonl``, the allowed training data, the chat template, the
agent's own files and the rendered prompt. Nothing of the test set beyond the dev subset."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..agents.prompt import render_prompt
from ..catalog import get_chat_template
from ..data import DataError
from ..domain import PrepareResult, RunRecord
from ..evaluation import write_dev_file
from ..evaluation.protocols import get_protocol
from ..evaluation.runner import protocol_chat_template
from ..fsutil import atomic_write_json, atomic_write_text
from ..models.store import resolve_base_model

if TYPE_CHECKING:
    from .lifecycle import Pipeline


def run(pipe: Pipeline, record: RunRecord) -> PrepareResult:
    """Make a fresh workspace (a stale one from an interrupted agent is removed first)."""
    ws, paths = pipe.paths.workspace, pipe.paths
    record.failure = None
    for stale in (ws, paths.harness, paths.final_model):
        shutil.rmtree(stale, ignore_errors=True)
    (ws / "task").mkdir(parents=True)
    (ws / "templates").mkdir()
    base_path = resolve_base_model(pipe.base, pipe.settings)

    items, provenance = pipe.benchmark.load_test_set(settings=pipe.settings)
    provenance.require()  # before the agent's hours: the harness will only score the pinned set
    dev = pipe.benchmark.dev_items(items)
    write_dev_file(ws / "task" / "dev.jsonl", dev)
    train_files: list[str] = []
    try:
        examples = pipe.benchmark.load_train_examples(settings=pipe.settings)
    except DataError:
        examples = []
    if examples:
        rel = f"train_data/{pipe.benchmark.id}_train.jsonl"
        atomic_write_text(ws / rel, "".join(json.dumps(e) + "\n" for e in examples))
        train_files.append(rel)

    # the template the final evaluation asks with under the run's protocol (ptb-v1: the reference's for this base model)
    variant = get_protocol(pipe.spec.protocol).prompt_variant(pipe.benchmark.id)
    template_name = protocol_chat_template(pipe.base, variant)
    template = get_chat_template(template_name)
    atomic_write_text(ws / "templates" / f"{template_name}.jinja", template)
    evaluator = files("posttrainbench.evaluation").joinpath("workspace_evaluate.py")
    shutil.copy2(Path(evaluator), ws / "evaluate.py")  # type: ignore[arg-type]  # on disk: files() gives a Path
    task = {
        "benchmark": pipe.benchmark.id,
        "base_model_id": pipe.base.hub_id,
        "base_model_path": str(base_path),
        "chat_template": template,
        "protocol": pipe.spec.protocol,
        "train_files": train_files,
        "hours": pipe.spec.hours,
        "deadline_epoch": None,  # set when the agent starts
    }
    atomic_write_json(ws / "task" / "task.json", task)
    ctx = pipe.launch_context()
    agent_files = pipe.agent.setup_workspace(ws, ctx)

    prompt = render_prompt(
        pipe.spec,
        pipe.benchmark,
        pipe.base,
        base_model_path=str(base_path),
        train_files=train_files,
        gpu_name=pipe.settings.run.gpu_name,
    )
    atomic_write_text(paths.prompt, prompt)
    harness_files = sorted(
        ["evaluate.py", "timer.sh", "task/task.json", "task/dev.jsonl", *train_files]
        + [f"templates/{p.name}" for p in (ws / "templates").iterdir()]
    )
    return PrepareResult(
        base_model_path=str(base_path),
        train_files=train_files,
        n_test_items=len(items),
        # The items the agent sees with their answers; the final result also reports the
        # score without them (held-out).
        dev_ids=[it.id for it in dev],
        data=provenance.model_dump(mode="json"),
        harness_files=harness_files,
        agent_files=agent_files,
    )
