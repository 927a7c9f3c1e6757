"""Seeded decoding of the reference protocols: which seeds run, how a model samples, how seeds average.

The reference (aisa-group/PostTrainBench ``src/eval/run_final_eval.sh``) evaluates the final model once
per fixed seed (``FINAL_EVAL_SEEDS``, :data:`.protocols.REFERENCE_SEEDS`), each through the max-tokens
ladder: the first seed walks the whole ladder, and if it fails at every stage the other seeds are
skipped and no score is written; later seeds start at the stage where the first succeeded, and a later
seed that fails at every stage is left out of the mean. A model vLLM decodes greedily (its default
temperature below vLLM's ``_SAMPLING_EPS``, ``src/utils/default_temperature.py``) is evaluated with the
first seed only, except on GPQA whose seed also shuffles the choices (``SEED_ONLY_SAMPLES=0``).
``src/utils/aggregate_seed_metrics.py`` then writes the mean of every top-level numeric metric
(``accuracy`` *and* ``stderr``: the std written is the mean of the seeds' stderrs, not a spread over
seeds) with ``num_seeds``, ``num_seeds_succeeded`` and ``per_seed``; :func:`aggregate_seed_metrics`
does the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VLLM_DEFAULT_TEMPERATURE = 1.0
"""vLLM's temperature of a request that sets none when the generation config sets none either."""
VLLM_SAMPLING_EPS = 1e-5
"""vLLM's ``_SAMPLING_EPS``: below this temperature it decodes greedily."""
SEED_SHUFFLES_PROMPTS = frozenset({"gpqamain"})
"""Benchmarks whose seed also changes the prompts (``SEED_ONLY_SAMPLES=0``): every seed runs, greedy or not."""
RESERVED_KEYS = ("num_seeds", "num_seeds_succeeded", "per_seed")


SAMPLING_KEYS = ("top_k", "min_p", "repetition_penalty")
"""The sampling parameters besides temperature and top-p that vLLM takes from a model's generation config
(``ModelConfig.get_diff_sampling_param``: ``repetition_penalty``, ``temperature``, ``top_k``, ``top_p``,
``min_p``; its ``max_new_tokens`` only applies to a request without ``max_tokens``, and the reference always sets
one)."""
GENERATION_CONFIG_DEFAULTS: dict[str, float] = {"top_k": 50, "repetition_penalty": 1.0}
"""transformers' ``GenerationConfig`` defaults of those keys: vLLM reads the config's ``to_diff_dict()``, so a value
equal to its default is not applied (a ``top_k`` of 50 leaves vLLM's top-k off; ``min_p`` has no default)."""


class ModelSampling(BaseModel):
    """How the reference samples a model that sets its own decoding: vLLM's defaults from the model's
    generation config (``generation_config.json``, else ``config.json``), as a request without a
    temperature gets them."""

    model_config = ConfigDict(frozen=True)

    temperature: float
    top_p: float | None = None
    top_k: int | None = Field(None, description="None: off (unset, 50, or 0/-1 in the config).")
    min_p: float | None = Field(None, description="None: off (unset or 0).")
    repetition_penalty: float | None = Field(None, description="None: off (unset or 1.0).")
    source: str = Field(..., description="Where the values come from (a file name, or 'vLLM default').")

    def extras(self) -> dict[str, float]:
        """The parameters besides temperature and top-p that apply (:data:`SAMPLING_KEYS` not None), as the
        ``sampling`` model arg of ``ptb-hf`` / ``ptb-vllm`` takes them."""
        values = {"top_k": self.top_k, "min_p": self.min_p, "repetition_penalty": self.repetition_penalty}
        return {k: v for k, v in values.items() if v is not None}

    @property
    def greedy(self) -> bool:
        """vLLM decodes this model greedily (``do_sample`` is not read: vLLM ignores it)."""
        return self.temperature < VLLM_SAMPLING_EPS


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _applied(data: dict[str, Any], key: str) -> float | None:
    """``data[key]`` as vLLM applies it: None when unset, equal to transformers' default, or neutral."""
    value = _number(data.get(key))
    if value is None or value == GENERATION_CONFIG_DEFAULTS.get(key):
        return None
    neutral = value <= 0 if key == "top_k" else value == 0 if key == "min_p" else value == 1
    return None if neutral else value


def model_sampling(model_path: Path) -> ModelSampling:
    """The decoding the reference's vLLM server gives ``model_path``: ``temperature``/``top_p`` of its
    ``generation_config.json`` (else of ``config.json``), and its ``top_k``, ``min_p`` and ``repetition_penalty``
    where vLLM applies them (:data:`GENERATION_CONFIG_DEFAULTS`); a temperature set nowhere is 1.0. An unreadable
    file raises ``ValueError`` (the reference then evaluates with every seed)."""
    for name in ("generation_config.json", "config.json"):
        f = Path(model_path) / name
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{f}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{f}: not a JSON object")
        temperature = _number(data.get("temperature"))
        top_k = _applied(data, "top_k")
        return ModelSampling(
            temperature=VLLM_DEFAULT_TEMPERATURE if temperature is None else temperature,
            top_p=_number(data.get("top_p")),
            top_k=int(top_k) if top_k is not None else None,
            min_p=_applied(data, "min_p"),
            repetition_penalty=_applied(data, "repetition_penalty"),
            source=name,
        )
    return ModelSampling(temperature=VLLM_DEFAULT_TEMPERATURE, source="vLLM default")


def seeds_to_run(seeds: Sequence[int], benchmark_id: str, sampling: ModelSampling | None) -> tuple[int, ...]:
    """The seeds the reference evaluates ``benchmark_id`` with: all of ``seeds``, or the first only for a
    greedy model where the seed drives sampling alone (``sampling`` None: unknown, so every seed)."""
    seeds = tuple(seeds)
    if len(seeds) > 1 and benchmark_id not in SEED_SHUFFLES_PROMPTS and sampling is not None and sampling.greedy:
        return seeds[:1]
    return seeds


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aggregate_seed_metrics(num_seeds: int, per_seed: Mapping[int, tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """The reference's aggregated ``metrics.json`` of the seeds that succeeded.

    ``per_seed``: seed -> (the ladder stage that produced it, its metrics), in evaluation order;
    ``num_seeds``: the seeds attempted. Every top-level metric numeric for all seeds is averaged over them
    (a metric numeric for some seeds only is an error; non-numeric ones are kept under ``per_seed`` only),
    then ``num_seeds``, ``num_seeds_succeeded`` and ``per_seed`` (keyed by the seed as text) are added."""
    if not per_seed:
        raise ValueError("no seed succeeded: nothing to aggregate")
    if len(per_seed) > num_seeds:
        raise ValueError(f"{len(per_seed)} seed results given, but num_seeds is {num_seeds}")
    metrics = [dict(m) for _, m in per_seed.values()]
    keys = list(metrics[0])
    for seed, (_, m) in per_seed.items():
        if set(m) != set(keys):
            raise ValueError(f"seed {seed} has metric keys {sorted(m)}, expected {sorted(keys)}")
    out: dict[str, Any] = {}
    for key in keys:
        if key in RESERVED_KEYS:
            raise ValueError(f"metric key {key!r} collides with an aggregation field")
        values = [m[key] for m in metrics]
        numeric = [_is_number(v) for v in values]
        if all(numeric):
            out[key] = sum(values) / len(values)
        elif any(numeric):
            raise TypeError(f"metric {key!r} is numeric for some seeds but not others: {values!r}")
    out["num_seeds"] = num_seeds
    out["num_seeds_succeeded"] = len(per_seed)
    out["per_seed"] = {
        str(s): {"max_tokens_stage": int(stage), "metrics": dict(m)} for s, (stage, m) in per_seed.items()
    }
    return out
