#!/usr/bin/env python3
"""Evaluate a model on this task's dev items (PostTrainBench).

The harness copies this file into your workspace as ``evaluate.py``. It scores a model folder on
the dev subset in ``task/dev.jsonl`` with exactly the prompts, chat template, decoding and scoring
the final evaluation uses (the final evaluation runs the harness's own copy on the full test set).

    python evaluate.py --model-path final_model [--limit N] [--max-tokens N]
                       [--max-connections N] [--json-output-file result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASK_DIR = HERE / "task"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default="final_model", help="model folder (default: final_model)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N dev items")
    parser.add_argument("--max-tokens", type=int, default=None, help="generation budget (default: the benchmark's)")
    parser.add_argument("--max-connections", type=int, default=16, help="batch size (default: 16)")
    parser.add_argument("--json-output-file", default=None, help="write the result as JSON here")
    parser.add_argument("--log-dir", default=None, help="Inspect logs (default: eval_logs/ next to this file)")
    parser.add_argument("--task-dir", default=str(TASK_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from posttrainbench.benchmarks import get_benchmark
    from posttrainbench.catalog import get_base_model
    from posttrainbench.data import read_items_file
    from posttrainbench.evaluation import evaluate_model

    task_dir = Path(args.task_dir)
    try:
        task = json.loads((task_dir / "task.json").read_text(encoding="utf-8"))
        benchmark = get_benchmark(task["benchmark"])
        base_model = get_base_model(task["base_model_id"])
        items = read_items_file(task_dir / "dev.jsonl")
    except Exception as exc:  # noqa: BLE001 - a broken task folder: say what is wrong, do not print a traceback
        print(f"evaluate.py: cannot read the task in {task_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    result = evaluate_model(
        Path(args.model_path),
        benchmark,
        base_model,
        Path(args.log_dir) if args.log_dir else HERE / "eval_logs",
        items=items,
        limit=args.limit,
        max_tokens=args.max_tokens,
        batch_size=args.max_connections,
        # This script runs inside the agent's sandbox, where a nested bwrap cannot start; generated
        # code (HumanEval) then runs in a plain subprocess with a time limit, inside that sandbox.
        # The harness's final evaluation always executes it in its own bwrap sandbox.
        code_sandbox="none",
        # The harness's limits (context length, end of sequence) are the base model's.
        base_model_path=Path(task["base_model_path"]) if task.get("base_model_path") else None,
        # the run's protocol: its prompts and template are the ones the final evaluation asks
        protocol=str(task.get("protocol", "strict")),
        # one evaluation, unseeded: the reference's evaluate.py (only its final evaluation runs every seed)
        seeds=(),
    )
    out = {
        **result.to_metrics_json(),
        "attempts": [a.model_dump() for a in result.attempts],
        "log_path": result.log_path,
    }
    if args.json_output_file:
        Path(args.json_output_file).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    if result.status != "ok":
        print(f"evaluation failed: {result.error}", file=sys.stderr)
        return 1
    print(
        f"{benchmark.id} {result.metric}: {result.score:.4f} (stderr {result.stderr or 0:.4f}) "
        f"on {result.n_scored}/{result.n_expected} dev items, max_tokens {result.max_tokens_used}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
