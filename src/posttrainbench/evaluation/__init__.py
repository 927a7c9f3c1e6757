"""Evaluation: Inspect tasks and scorers for the seven benchmarks, the ``ptb-hf`` batched
transformers provider, the ``ptb-vllm`` and OpenAI-compatible backends, the sandboxed code
executor (HumanEval), the LLM graders (Arena-Hard, HealthBench), the retry ladder and the log
recomputation (``evaluate_model``), and the zero-shot baselines (``evaluate_baseline``)."""

from __future__ import annotations

from pathlib import Path

from ..data import write_dev_file
from .backends import BACKENDS, make_model
from .baselines import evaluate_baseline
from .code_exec import ExecResult, Program, SandboxUnavailableError, run_programs
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
from .scoring import ANSWER_RULES, extract_answer, numbers_match, score_completion
from .scorers import SCORED, ScoringSpec, scoring_spec
from .tasks import SCORER_NAME, build_task, generate_config, item_messages, item_to_sample
from .vllm_provider import VLLM_PROVIDER, PtbVLLMAPI, vllm_available

WORKSPACE_SCRIPT = "workspace_evaluate.py"
"""File name (in this package) of the agent-facing ``evaluate.py``."""

__all__ = [
    "ANSWER_RULES",
    "BACKENDS",
    "SCORED",
    "VLLM_PROVIDER",
    "ExecResult",
    "Grader",
    "GraderConfig",
    "GraderError",
    "Program",
    "PtbVLLMAPI",
    "SandboxUnavailableError",
    "ScoringSpec",
    "make_model",
    "run_programs",
    "scoring_spec",
    "vllm_available",
    "PROVIDER",
    "SCORER_NAME",
    "WORKSPACE_SCRIPT",
    "Attempt",
    "EvalResult",
    "LogCheck",
    "ModelLoadError",
    "PtbHFAPI",
    "build_task",
    "check_log",
    "check_model_folder",
    "evaluate_baseline",
    "evaluate_model",
    "extract_answer",
    "generate_config",
    "item_messages",
    "item_to_sample",
    "ladder",
    "numbers_match",
    "read_generation_config",
    "score_completion",
    "workspace_script_path",
    "write_dev_file",
]


def workspace_script_path() -> Path:
    """Path of the agent-facing script the harness copies into the workspace as ``evaluate.py``."""
    return Path(__file__).with_name(WORKSPACE_SCRIPT)
