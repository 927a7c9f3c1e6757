"""``ptb-vllm``: the ``ptb-hf`` provider with vLLM's offline engine doing the generation (GPU).

Everything the harness pins is shared with ``ptb-hf`` (it is a subclass): the chat template from
the catalog, the stop strings, the pinned sampling, tool rendering and parsing, and the batcher
that gathers Inspect's concurrent ``generate()`` calls. The evaluator sets ``batch_size`` to the
number of samples, so the whole test set reaches ``LLM.generate`` in one call and vLLM schedules
it with continuous batching (not a few connections at a time). The submission's
``generation_config.json`` is ignored (``generation_config="vllm"``), as in ``ptb-hf``: under the reference
protocols the evaluator reads it as the reference's vLLM does (``seeds.model_sampling``) and passes temperature and
top-p per request, ``top_k`` / ``min_p`` / ``repetition_penalty`` as the ``sampling`` model arg.

vLLM is an optional dependency (``pip install 'posttrainbench[gpu]'``); importing this module
does not need it, constructing the provider does.

Model args (besides ``ptb-hf``'s ``model_path``, ``chat_template``, ``batch_size``,
``batch_window_s``): ``gpu_memory_utilization`` (0.9), ``tensor_parallel_size`` (1),
``max_model_len`` (the harness's ``context_length``, i.e. the base model's), ``dtype``
("auto"), ``seed`` (0).

vLLM loads the weights in its own worker (fusing projections), so the post-load comparison of
``ptb-hf`` (``models.loaded_check``) is not made here: ``weights_check`` says so. What vLLM reads
is the canonical folder, which holds one weight set and nothing that selects another.
"""

from __future__ import annotations

import time
from typing import Any

from inspect_ai.model import modelapi

from .hf_provider import GenKey, GenResult, ModelLoadError, PtbHFAPI

VLLM_PROVIDER = "ptb-vllm"


def vllm_available() -> tuple[bool, str]:
    """Whether vLLM can be imported here, and why not."""
    try:
        import vllm  # noqa: F401 - only: does vLLM import here?
    except Exception as exc:  # noqa: BLE001 - ImportError, or a CUDA / driver error raised at import
        return False, f"vLLM is not usable: {type(exc).__name__}: {exc} (install the [gpu] extra on a CUDA machine)"
    return True, ""


class PtbVLLMAPI(PtbHFAPI):
    """vLLM offline generation behind the ``ptb-hf`` batching, template and decoding rules."""

    def _load(self, device: str | None, dtype: str | None, args: dict[str, Any]) -> None:
        ok, why = vllm_available()
        if not ok:
            raise ModelLoadError(why)
        from transformers import AutoTokenizer
        from vllm import LLM

        path = self.model_path
        try:
            tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the tokenizer from {path}: {type(exc).__name__}: {exc}") from exc
        self.tokenizer = tok
        engine_args = {
            "model": str(path),
            "tokenizer": str(path),
            "trust_remote_code": False,
            "dtype": dtype or args.pop("vllm_dtype", "auto"),
            "gpu_memory_utilization": float(args.pop("gpu_memory_utilization", 0.9)),
            "tensor_parallel_size": int(args.pop("tensor_parallel_size", 1)),
            "seed": int(args.pop("seed", 0)),
            "generation_config": "vllm",  # ignore the submission's generation_config.json
        }
        max_len = args.pop("max_model_len", None) or self.harness_context
        if max_len is not None:
            engine_args["max_model_len"] = int(max_len)
        try:
            self.llm = LLM(**engine_args)
        except Exception as exc:
            raise ModelLoadError(f"vLLM cannot load {path}: {type(exc).__name__}: {exc}") from exc
        self.model = None
        self.device = "cuda"
        self.weights_check = {"method": "not checked after loading: vLLM holds the weights in its own worker"}

    def context_length(self) -> int | None:
        return int(self.llm.llm_engine.model_config.max_model_len)

    def close(self) -> None:
        self.llm = None
        super().close()

    def _generate_batch(self, prompts: list[str], key: GenKey) -> list[GenResult]:
        from vllm import SamplingParams

        start = time.monotonic()
        stops = list(self.stop_strings(key))
        sample = key.temperature > 0
        extra = self.sampling  # the model's own top_k / min_p / repetition_penalty (reference protocols)
        params = SamplingParams(
            temperature=key.temperature,
            top_p=key.top_p if sample else 1.0,
            top_k=int(extra.get("top_k", 0)) if sample else 0,  # 0: disabled (vLLM >= 0.11; -1 "quietly accepted")
            min_p=float(extra.get("min_p", 0.0)) if sample else 0.0,
            repetition_penalty=float(extra.get("repetition_penalty", 1.0)),
            max_tokens=key.max_tokens,
            stop=stops,
            stop_token_ids=self._eos_ids(tuple(stops)),
            skip_special_tokens=True,
            seed=(key.seed if key.seed is not None else 0) if key.temperature > 0 else None,
        )
        # tokenized here exactly as ptb-hf does (the template already holds any BOS it wants)
        token_prompts = [
            {"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts
        ]
        outs = self.llm.generate(token_prompts, params, use_tqdm=False)
        elapsed = time.monotonic() - start
        results = []
        for out in outs:
            c = out.outputs[0]
            results.append(
                GenResult(
                    text=c.text,
                    input_tokens=len(out.prompt_token_ids or []),
                    output_tokens=len(c.token_ids),
                    stop_reason="max_tokens" if c.finish_reason == "length" else "stop",
                    time=elapsed,
                )
            )
        return results


@modelapi(name=VLLM_PROVIDER)
def ptb_vllm() -> type[PtbVLLMAPI]:
    """Registers :class:`PtbVLLMAPI` with Inspect."""
    return PtbVLLMAPI
