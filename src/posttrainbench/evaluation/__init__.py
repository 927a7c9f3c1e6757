"""Evaluation: Inspect tasks and scorers, the ``ptb-hf`` batched transformers provider,
the retry ladder and the log recomputation (``evaluate_model``)."""

from __future__ import annotations

from pathlib import Path

from ..data import write_dev_file
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
from .tasks import SCORER_NAME, build_task, generate_config, item_messages, item_to_sample

WORKSPACE_SCRIPT = "workspace_evaluate.py"
"""File name (in this package) of the agent-facing ``evaluate.py``."""

__all__ = [
    "ANSWER_RULES",
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
