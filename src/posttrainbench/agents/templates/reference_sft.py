#!/usr/bin/env python
"""PostTrainBench reference agent: a human-designed supervised fine-tuning recipe (TRL).

This file is agent code. The harness copies it into the agent's workspace and runs it inside
the sandbox, so it imports nothing of the harness: only the standard library, torch,
transformers, trl, peft and datasets.

    python reference_sft.py [--workspace DIR] [--max-steps N] [--batch-size B] [--lr LR]
                            [--lora | --no-lora] [--lora-r R] [--seed S] [--max-length L]
                            [--freeze-embeddings | --no-freeze-embeddings] [--max-epochs E]

It reads ``DIR/task/task.json``::

    {"benchmark": "gsm8k-calc",
     "base_model_path": "/abs/path/to/base/model",          # read-only folder
     "chat_template": "<jinja>",                           # the evaluator applies the same one
     "train_files": ["train_data/gsm8k-calc_train.jsonl"],  # relative to DIR (or absolute)
     "deadline_epoch": 1767000000.0,                       # when the sandbox is killed
     "reference": {"max_steps": 40, "batch_size": 8, "lr": 1e-4, "lora": false}}  # optional

Each train file holds one ``{"prompt": str, "completion": str}`` object per line, already in
the evaluator's wording. The recipe: a conversational prompt-completion dataset, the given
chat template, completion-only loss, AdamW; full fine-tuning by default or LoRA merged back
into the weights. Training stops at ``max_steps`` or when the deadline nears (a margin of
15% of the time left at start, at least 30 s, is kept for saving). The model and tokenizer
(with the chat template) are written to ``DIR/final_model/`` atomically.

Command-line values win over ``task.json``'s ``reference`` block, which wins over the
built-in defaults. Exit status: 0 on success, 2 on a bad task, 1 on a training failure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import (
        PreTrainedModel,
        PreTrainedTokenizerBase,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
    from trl import SFTConfig


# Built-in defaults on a CPU, calibrated on the CPU demo (SmolLM2-135M, gsm8k-calc, 2 cores):
# ~3 minutes of training that lifts accuracy from ~3% to ~55%.
DEFAULTS = {
    "max_steps": 60,
    "batch_size": 8,
    "lr": 1e-4,
    "lora": False,
    "lora_r": 16,
    "max_length": 128,
    "seed": 0,
    "freeze_embeddings": True,
    "max_epochs": 0.0,  # 0: no cap on passes over the data
}
# On a GPU (multi-billion-parameter base models, hours of budget): LoRA on every linear layer,
# many steps, stopped by the deadline. Not calibrated like the CPU values.
GPU_DEFAULTS = {
    **DEFAULTS,
    "max_steps": 5000,
    "batch_size": 16,
    "lr": 1e-4,
    "lora": True,
    "lora_r": 32,
    "max_length": 1024,
    "freeze_embeddings": False,
    "max_epochs": 3.0,
}
MIN_SAVE_MARGIN_S = 30.0
SAVE_MARGIN_FRACTION = 0.15


class TaskError(Exception):
    """The task description or its training data is unusable."""


def log(msg: str) -> None:
    print(f"[reference_sft] {msg}", flush=True)


# --------------------------------------------------------------------------- task


def load_task(workspace: Path) -> dict:
    """Read and validate ``task/task.json``; raise TaskError with a clear message."""
    path = workspace / "task" / "task.json"
    if not path.is_file():
        raise TaskError(f"missing task file {path}")
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskError(f"cannot read {path}: {exc}") from None
    if not isinstance(task, dict):
        raise TaskError(f"{path}: expected a JSON object, got {type(task).__name__}")
    for key, kind in (("benchmark", str), ("base_model_path", str), ("chat_template", str)):
        if not isinstance(task.get(key), kind) or not task[key]:
            raise TaskError(f"{path}: '{key}' must be a non-empty string")
    files = task.get("train_files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise TaskError(f"{path}: 'train_files' must be a non-empty list of paths")
    deadline = task.get("deadline_epoch")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))):
        raise TaskError(f"{path}: 'deadline_epoch' must be a number (unix time)")
    ref = task.get("reference", {})
    if ref is None:
        ref = {}
    if not isinstance(ref, dict):
        raise TaskError(f"{path}: 'reference' must be an object")
    base = Path(task["base_model_path"])
    if not (base / "config.json").is_file():
        raise TaskError(f"base model folder {base} has no config.json")
    return task


def load_examples(workspace: Path, train_files: list[str]) -> list[dict]:
    """Prompt-completion pairs from the JSONL train files (paths relative to the workspace)."""
    examples: list[dict] = []
    for name in train_files:
        path = Path(name) if Path(name).is_absolute() else workspace / name
        if not path.is_file():
            raise TaskError(f"missing train file {path}")
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TaskError(f"{path}:{lineno}: not JSON ({exc})") from None
                if not (
                    isinstance(row, dict)
                    and isinstance(row.get("prompt"), str)
                    and isinstance(row.get("completion"), str)
                ):
                    raise TaskError(f"{path}:{lineno}: expected {{'prompt': str, 'completion': str}}")
                examples.append(
                    {
                        "prompt": [{"role": "user", "content": row["prompt"]}],
                        "completion": [{"role": "assistant", "content": row["completion"]}],
                    }
                )
    if not examples:
        raise TaskError("the train files hold no examples")
    return examples


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise ValueError(f"not a boolean: {value!r}")


def resolve_settings(args: argparse.Namespace, task: dict, on_gpu: bool = False) -> dict:
    """CLI value > task.json 'reference' value > built-in default (CPU or GPU)."""
    ref = task.get("reference") or {}
    out = {}
    for key, default in (GPU_DEFAULTS if on_gpu else DEFAULTS).items():
        cli = getattr(args, key, None)
        out[key] = cli if cli is not None else ref.get(key, default)
    try:
        out["max_steps"] = int(out["max_steps"])
        out["batch_size"] = int(out["batch_size"])
        out["lr"] = float(out["lr"])
        out["lora_r"] = int(out["lora_r"])
        out["max_length"] = int(out["max_length"])
        out["seed"] = int(out["seed"])
        out["lora"] = _as_bool(out["lora"])
        out["freeze_embeddings"] = _as_bool(out["freeze_embeddings"])
        out["max_epochs"] = float(out["max_epochs"] or 0.0)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"bad training setting: {exc}") from None
    if out["max_steps"] < 1 or out["batch_size"] < 1 or out["max_length"] < 8:
        raise TaskError("max_steps and batch_size must be >= 1, max_length >= 8")
    if not (out["lr"] > 0 and math.isfinite(out["lr"])):
        raise TaskError("lr must be a positive number")
    return out


# ------------------------------------------------------------------------ training


def make_callbacks(stop_at: float | None, max_steps: int, started: float) -> Any:
    """The ``Progress`` callback (a TrainerCallback made here, where transformers is imported)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Prints one line per logging step and stops training before the deadline."""

        def __init__(self) -> None:
            self.stopped_by_deadline = False
            self.train_start: float | None = None
            self.first_loss: float | None = None
            self.last_loss: float | None = None

        def on_train_begin(
            self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
        ) -> None:
            self.train_start = time.time()

        def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
            if stop_at is None or state.global_step >= max_steps:
                return
            assert self.train_start is not None  # set by on_train_begin
            now = time.time()
            per_step = (now - self.train_start) / max(state.global_step, 1)
            # Stop if the next step would run into the saving margin.
            if now + per_step > stop_at:
                self.stopped_by_deadline = True
                control.should_training_stop = True
                control.should_log = True
                log(f"stopping at step {state.global_step}: deadline near ({stop_at - now:.0f} s to margin)")

        def on_log(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            logs: dict[str, float] | None = None,
            **kw: Any,
        ) -> None:
            logs = logs or {}
            if "loss" not in logs:
                return
            loss = float(logs["loss"])
            if self.first_loss is None:
                self.first_loss = loss
            self.last_loss = loss
            print(
                json.dumps(
                    {
                        "event": "train",
                        "step": state.global_step,
                        "max_steps": max_steps,
                        "loss": round(loss, 5),
                        "lr": logs.get("learning_rate"),
                        "elapsed_s": round(time.time() - started, 1),
                        "cpu_s": round(time.process_time(), 1),
                    }
                ),
                flush=True,
            )

    return Progress()


def sft_config(output_dir: Path, s: dict, on_gpu: bool, logging_steps: int) -> SFTConfig:
    from trl import SFTConfig

    fields = set(SFTConfig.__dataclass_fields__)
    kwargs = {
        "output_dir": str(output_dir),
        "max_steps": s["max_steps"],
        "per_device_train_batch_size": s["batch_size"],
        "gradient_accumulation_steps": 1,
        "learning_rate": s["lr"],
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, s["max_steps"] // 20),
        "weight_decay": 0.0,
        "max_length": s["max_length"],
        "completion_only_loss": True,
        "packing": False,
        "logging_steps": logging_steps,
        "logging_first_step": True,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": s["seed"],
        "data_seed": s["seed"],
        "dataloader_num_workers": 0,
        "bf16": on_gpu,
        "use_cpu": not on_gpu,
        "optim": "adamw_torch",
    }
    # Activation checkpointing saves GPU memory on big models; on a CPU it only costs time.
    ckpt = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    kwargs[ckpt] = on_gpu
    return SFTConfig(**{k: v for k, v in kwargs.items() if k in fields})


def save_atomically(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, final: Path) -> None:
    """Write to ``final_model.tmp`` then rename, so a kill never leaves a half final_model."""
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old.{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def train(workspace: Path, task: dict, s: dict, examples: list[dict], started: float) -> dict:
    # Progress bars of datasets/transformers flood a non-interactive log; our own lines suffice.
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.set_seed(s["seed"])
    on_gpu = torch.cuda.is_available()
    deadline = task.get("deadline_epoch")
    stop_at = None
    if deadline is not None:
        remaining = float(deadline) - started
        stop_at = float(deadline) - max(MIN_SAVE_MARGIN_S, SAVE_MARGIN_FRACTION * remaining)
        log(f"deadline in {remaining:.0f} s; training stops by {stop_at - started:.0f} s from start")

    log(f"{len(examples)} training examples from {len(task['train_files'])} file(s)")

    base = task["base_model_path"]
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = task["chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    log(f"base model {base} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, {dtype})")

    peft_config = None
    if s["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=s["lora_r"],
            lora_alpha=2 * s["lora_r"],
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    elif s["freeze_embeddings"]:
        # The input embedding (tied to the output head in many small models, which then stays
        # fixed too) is a large share of the parameters; freezing it makes each step cheaper
        # and keeps the vocabulary stable.
        for p in model.get_input_embeddings().parameters():
            p.requires_grad_(False)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"mode={'lora' if s['lora'] else 'full'} trainable={trainable / 1e6:.2f} M settings={json.dumps(s)}")

    if s["max_epochs"] > 0:
        cap = max(1, math.ceil(s["max_epochs"] * len(examples) / s["batch_size"]))
        if cap < s["max_steps"]:
            log(f"max_steps {s['max_steps']} -> {cap} ({s['max_epochs']:g} epochs of {len(examples)} examples)")
            s = {**s, "max_steps": cap}

    dataset = Dataset.from_list(examples).shuffle(seed=s["seed"])
    # Tokenize only what max_steps can consume (plus slack for examples TRL drops).
    needed = s["max_steps"] * s["batch_size"] * 5 // 4 + s["batch_size"]
    if len(dataset) > needed:
        dataset = dataset.select(range(needed))
    run_dir = workspace / ".reference_sft_run"
    progress = make_callbacks(stop_at, s["max_steps"], started)
    logging_steps = max(1, min(10, s["max_steps"] // 20))
    trainer = SFTTrainer(
        model=model,
        args=sft_config(run_dir, s, on_gpu, logging_steps),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[progress],
    )
    # Our Progress callback prints one JSON line per logging step; drop the Trainer's own dict
    # printer (added when tqdm is disabled) so the log stays one format.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    log(f"training starts {time.time() - started:.1f} s after launch")
    t0 = time.time()
    result = trainer.train()
    train_s = time.time() - t0
    steps = trainer.state.global_step

    trained: Any = trainer.model  # a PEFT model with LoRA (merged here), else the transformers model
    if s["lora"]:
        trained = trained.merge_and_unload()
    trained.config.use_cache = True
    final = workspace / "final_model"
    log(f"saving to {final}")
    save_atomically(trained, tokenizer, final)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "event": "done",
        "steps": steps,
        "max_steps": s["max_steps"],
        "stopped_by": "deadline" if progress.stopped_by_deadline else "max_steps",
        "first_loss": progress.first_loss,
        "last_loss": progress.last_loss,
        "train_loss": getattr(result, "training_loss", None),
        "train_s": round(train_s, 1),
        "total_s": round(time.time() - started, 1),
        "final_model": str(final),
    }


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workspace", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lora", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--lora-r", dest="lora_r", type=int)
    p.add_argument("--max-length", dest="max_length", type=int)
    p.add_argument(
        "--freeze-embeddings",
        dest="freeze_embeddings",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="full fine-tuning only: keep the token embedding fixed",
    )
    p.add_argument("--max-epochs", dest="max_epochs", type=float, help="cap on passes over the data (0: none)")
    p.add_argument("--seed", type=int)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    args = parse_args(argv)
    workspace = args.workspace.resolve()
    try:
        task = load_task(workspace)
        examples = load_examples(workspace, task["train_files"])  # fail fast, before torch loads
        import torch

        settings = resolve_settings(args, task, on_gpu=torch.cuda.is_available())
        log(f"benchmark={task['benchmark']} workspace={workspace}")
        summary = train(workspace, task, settings, examples, started)
    except TaskError as exc:
        print(f"[reference_sft] error: bad task: {exc}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
