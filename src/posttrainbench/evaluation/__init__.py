"""Evaluation machinery, benchmark-agnostic: the Inspect task glue, the ``ptb-hf`` batched
transformers provider, the ``ptb-vllm`` and OpenAI-compatible backends, the sandboxed code
executor, the LLM graders, answer-extraction rules, the retry ladder and the log recomputation
(``evaluate_model``), and the zero-shot baselines (``evaluate_baseline``). Benchmarks
(``posttrainbench.benchmarks``) build on it and are passed in by the caller; nothing here imports
them."""

from __future__ import annotations

from pathlib import Path

from ..data import write_dev_file
from .backends import BACKENDS, make_model
from .baselines import evaluate_baseline
from .code_exec import ExecResult, Program, SandboxUnavailableError, run_programs
from .contract import STRICT, EvaluableBenchmark
from .graders import Grader, GraderConfig, GraderError
from .hf_provider import PROVIDER, ModelLoadError, PtbHFAPI
from .runner import (
    Attempt,
    EvalResult,
    LogCheck,
    check_log,
    check_model_folder,
    evaluate_model,
    ladder,
    read_generation_config,
)
from .scoring import numbers_match
from .tasks import build_task, generate_config, item_messages, item_to_sample
from .vllm_provider import VLLM_PROVIDER, PtbVLLMAPI, vllm_available

WORKSPACE_SCRIPT = "workspace_evaluate.py"
"""File name (in this package) of the agent-facing ``evaluate.py``."""

__all__ = [
    "BACKENDS",
    "PROVIDER",
    "STRICT",
    "VLLM_PROVIDER",
    "WORKSPACE_SCRIPT",
    "Attempt",
    "EvalResult",
    "EvaluableBenchmark",
    "ExecResult",
    "Grader",
    "GraderConfig",
    "GraderError",
    "LogCheck",
    "ModelLoadError",
    "Program",
    "PtbHFAPI",
    "PtbVLLMAPI",
    "SandboxUnavailableError",
    "build_task",
    "check_log",
    "check_model_folder",
    "evaluate_baseline",
    "evaluate_model",
    "generate_config",
    "item_messages",
    "item_to_sample",
    "ladder",
    "make_model",
    "numbers_match",
    "read_generation_config",
    "run_programs",
    "vllm_available",
    "workspace_script_path",
    "write_dev_file",
]


def workspace_script_path() -> Path:
    """Path of the agent-facing script the harness copies into the workspace as ``evaluate.py``."""
    return Path(__file__).with_name(WORKSPACE_SCRIPT)
