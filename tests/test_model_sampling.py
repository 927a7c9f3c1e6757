"""The model's own sampling parameters besides temperature and top-p (the reference protocols): ``top_k``,
``min_p`` and ``repetition_penalty`` of its generation config, read as the reference's vLLM reads them
(``ModelConfig.get_diff_sampling_param`` on the config's ``to_diff_dict()``), recorded in the result's ``sampling``
and applied by ``ptb-hf`` (transformers' generate) and ``ptb-vllm`` (``SamplingParams``)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model

from posttrainbench.benchmarks import get_benchmark
from posttrainbench.catalog import get_base_model
from posttrainbench.evaluation import evaluate_model
from posttrainbench.evaluation.hf_provider import PtbHFAPI
from posttrainbench.evaluation.protocols import REF_V1, STRICT
from posttrainbench.evaluation.seeds import ModelSampling, model_sampling
from posttrainbench.models.tiny import build_tiny_model
from posttrainbench.settings import Settings

DATA = Path(__file__).parent / "fixtures" / "data"
TINY = get_base_model("ptb/tiny-random")


def _folder(tmp: Path, name: str, **files: dict[str, Any]) -> Path:
    folder = tmp / name
    folder.mkdir()
    for stem, data in files.items():
        (folder / f"{stem}.json").write_text(json.dumps(data))
    return folder


def test_the_generation_configs_top_k_min_p_and_repetition_penalty_are_read_where_vllm_applies_them(
    tmp_path: Path,
) -> None:
    cfg = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1}
    s = model_sampling(_folder(tmp_path, "all", generation_config=cfg))
    assert (s.top_k, s.min_p, s.repetition_penalty) == (20, 0.05, 1.1)
    assert s.extras() == {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1}
    # transformers' defaults are not in to_diff_dict(), so vLLM does not apply them: top_k 50 leaves top-k off
    defaults = model_sampling(_folder(tmp_path, "d", generation_config={"top_k": 50, "repetition_penalty": 1.0}))
    assert defaults.extras() == {} and defaults.top_k is None
    neutral = model_sampling(_folder(tmp_path, "n", generation_config={"top_k": -1, "min_p": 0}))
    assert neutral.extras() == {}
    # config.json when there is no generation_config.json (vLLM's from_model_config), nothing: none
    assert model_sampling(_folder(tmp_path, "c", config={"top_k": 40})).extras() == {"top_k": 40}
    assert model_sampling(_folder(tmp_path, "e")) == ModelSampling(temperature=1.0, source="vLLM default")
    assert model_sampling(_folder(tmp_path, "b", generation_config={"top_k": True})).top_k is None  # not a number


def _reply(model: Path, sampling: dict[str, float] | None, temperature: float = 0.0, seed: int | None = None) -> str:
    args: dict[str, Any] = {"model_path": str(model), "chat_template": "plain"}
    if sampling is not None:
        args["sampling"] = sampling
    m = get_model("ptb-hf/m", memoize=False, **args)
    assert isinstance(m.api, PtbHFAPI)
    config = GenerateConfig(max_tokens=24, temperature=temperature, seed=seed)
    out = asyncio.run(m.generate([ChatMessageUser(content="one two three")], config=config))
    return out.completion


@pytest.mark.slow
def test_ptb_hf_applies_them_repetition_penalty_even_greedy_top_k_when_sampling(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny", seed=0)
    greedy = _reply(model, None)
    assert _reply(model, None) == greedy  # greedy is deterministic: a difference below is the parameter's
    assert _reply(model, {"repetition_penalty": 50.0}) != greedy
    assert _reply(model, {"top_k": 1, "min_p": 0.5}) == greedy  # greedy: top-k / min-p do not apply
    # sampled with top_k 1: the most likely token each time, i.e. the greedy reply whatever the seed
    assert {_reply(model, {"top_k": 1}, temperature=1.0, seed=s) for s in (1, 2, 3)} == {greedy}
    assert len({_reply(model, None, temperature=1.0, seed=s) for s in (1, 2, 3)}) > 1  # the control: top-k off
    with pytest.raises(ValueError, match="sampling must be a dict with keys among"):
        _reply(model, {"typical_p": 0.5})


@pytest.mark.slow
def test_the_result_records_them_and_the_evaluation_applies_them_under_ptb_v1_only(tmp_path: Path) -> None:
    aime = get_benchmark("aime2025")
    items = aime.load_test_items(root=DATA)[:2]
    settings = Settings.from_env({**os.environ, "PTB_ALLOW_UNPINNED_DATA": "1"})
    base = build_tiny_model(tmp_path / "base", seed=0, max_positions=2048)  # room for AIME's longest prompt

    def completions(model: Path, protocol: str, out: str) -> tuple[Any, list[str]]:
        from inspect_ai.log import read_eval_log

        r = evaluate_model(
            model, aime, TINY, tmp_path / out, items=items, max_tokens=8, batch_size=2, settings=settings,
            protocol=protocol, base_model_path=base,
        )  # fmt: skip
        assert r.ok, r.error
        return r, [s.output.completion for s in read_eval_log(r.log_path or "").samples or []]

    plain = build_tiny_model(tmp_path / "plain", seed=0, max_positions=2048)
    gen = json.loads((plain / "generation_config.json").read_text())
    (plain / "generation_config.json").write_text(json.dumps({**gen, "temperature": 0.0}))  # greedy
    penalised = build_tiny_model(tmp_path / "pen", seed=0, max_positions=2048)
    (penalised / "generation_config.json").write_text(
        json.dumps({**gen, "temperature": 0.0, "repetition_penalty": 50.0, "top_k": 7})
    )
    r_plain, c_plain = completions(plain, REF_V1, "a")
    r_pen, c_pen = completions(penalised, REF_V1, "b")
    assert r_plain.sampling is not None and r_plain.sampling.extras() == {}
    assert r_pen.sampling is not None and (r_pen.sampling.repetition_penalty, r_pen.sampling.top_k) == (50.0, 7)
    assert r_pen.model_dump(mode="json")["sampling"]["repetition_penalty"] == 50.0  # as the result stores it
    assert c_pen != c_plain  # the same weights, greedy: the penalty from the model's config changed the replies
    r_strict, c_strict = completions(penalised, STRICT, "c")  # strict pins decoding: the model's config is not read
    assert r_strict.sampling is None and c_strict == completions(plain, STRICT, "d")[1]
