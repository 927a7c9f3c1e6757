"""``ptb-hf``: an Inspect model provider doing batched generation with transformers (CPU or GPU).

Differences from Inspect's built-in ``hf`` provider, all on purpose:

* the chat template is the one the harness names (``model_args chat_template=<name>`` from the
  catalog), never the submission's own tokenizer template;
* decoding is pinned by the harness: the submission's ``generation_config.json`` is replaced by a
  blank ``GenerationConfig`` at load time, and only temperature / top_p / max_tokens / stop
  strings from Inspect's ``GenerateConfig`` (which the harness sets) are applied; with a temperature
  above 0 and a ``seed`` (the reference protocols) sampling draws from torch's generator seeded per batch;
* stop strings are ``GenerateConfig.stop_seqs`` + the template's end-of-turn strings + the
  tokenizer's EOS; the output is cut at the first of them;
* tools (BFCL) are offered in the system turn in the Qwen3/Hermes wording
  (``catalog.tools_system_prompt``) and ``<tool_call>`` blocks of the reply become Inspect
  ``ToolCall``s (``tool_calls.parse_tool_calls``);
* concurrent ``generate()`` calls are gathered into batches of ``batch_size`` (Inspect runs one
  call per sample; ``max_connections`` should equal the batch size), so N samples take
  ceil(N / batch_size) ``model.generate`` loops, and no fixed multi-second wait per batch.

* the context length and the end-of-sequence text are the harness's (``context_length`` and
  ``eos_token`` model args, taken from the declared base model by the runner: see ``limits``),
  not what the submission's config or tokenizer say;
* after loading, the tensors held are checked against the folder's files and the recorded
  weights digest (``models.loaded_check``): a loader that read anything else fails the load.

Model args: ``model_path`` (folder; default the model name), ``chat_template`` (required),
``batch_size`` (16), ``device`` (auto), ``dtype`` (bfloat16 on CUDA, float32 on CPU),
``batch_window_s`` (0.1: how long a partial batch waits for more requests),
``context_length`` / ``eos_token`` (the harness's limits; default: the model's own),
``weights_digest`` (the digest recorded for the submission; default: that of the files),
``fail_above_max_tokens`` (testing hook: raise when max_tokens exceeds it, to exercise the ladder),
``fail_seeds`` (testing hook: raise for a request with one of these seeds, to exercise the seed policy).
``sampling`` (``{"top_k", "min_p", "repetition_penalty"}``: the model's own, which the reference protocols apply as
the reference's vLLM does; ``top_k`` and ``min_p`` when sampling, ``repetition_penalty`` in greedy decoding too).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo

from .. import interrupts
from ..catalog import END_OF_TURN, TOOL_TEMPLATES, get_chat_template, render_chat, tools_system_prompt
from .tool_calls import parse_tool_calls


def free_accelerator_memory() -> None:
    """Drop unreferenced models and return cached GPU memory (best effort)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort; pragma: no cover
        pass


PROVIDER = "ptb-hf"


class ModelLoadError(RuntimeError):
    """The submitted model folder cannot be loaded; the message says why."""


class GenerationError(RuntimeError):
    """A batch failed to generate (out of memory, context too long, ...); the message says why."""


@dataclass(frozen=True)
class GenKey:
    """Generation settings a batch must share."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None = None


@dataclass
class GenResult:
    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    time: float


@dataclass
class _Request:
    prompt: str
    key: GenKey
    future: asyncio.Future[GenResult]


@dataclass
class _Batcher:
    """Gathers concurrent requests into batches and runs them one at a time in a worker thread."""

    run: Any  # (prompts, key) -> list[GenResult]
    batch_size: int
    window_s: float
    pending: list[_Request] = field(default_factory=list)
    inflight: list[_Request] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    batches_run: int = 0

    async def submit(self, prompt: str, key: GenKey) -> GenResult:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new eval() runs a new event loop: drop the old one's state
            self.loop, self.worker, self.pending = loop, None, []
        fut: asyncio.Future[GenResult] = loop.create_future()
        self.pending.append(_Request(prompt, key, fut))
        if self.worker is None or self.worker.done():
            self.worker = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            await self._drain_batches()
        except BaseException as exc:  # the worker died (cancelled, bug): no request may hang
            for r in (*self.inflight, *self.pending):
                if not r.future.done():
                    r.future.set_exception(GenerationError(f"batch worker stopped: {type(exc).__name__}: {exc}"))
            self.pending = []
            raise

    async def _drain_batches(self) -> None:
        while self.pending:
            # Let the batch fill: stop waiting when it is full or no request came for window_s.
            while len(self.pending) < self.batch_size:
                n = len(self.pending)
                await asyncio.sleep(self.window_s)
                if len(self.pending) == n:
                    break
            key = self.pending[0].key
            batch = [r for r in self.pending if r.key == key and not r.future.done()][: self.batch_size]
            chosen = {id(r) for r in batch}
            self.pending = [r for r in self.pending if id(r) not in chosen and not r.future.done()]
            if not batch:
                continue
            self.batches_run += 1
            self.inflight = batch
            try:
                results = await asyncio.to_thread(self.run, [r.prompt for r in batch], key)
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} outputs for a batch of {len(batch)}")
            except Exception as exc:  # noqa: BLE001 - any batch failure goes to each waiting sample
                self.inflight = []
                for r in batch:  # one exception object per sample: tracebacks must not pile up
                    if not r.future.done():
                        err = GenerationError(f"{type(exc).__name__}: {exc}")
                        err.__cause__ = exc
                        r.future.set_exception(err)
            else:
                self.inflight = []
                for r, res in zip(batch, results):
                    if not r.future.done():
                        r.future.set_result(res)


def _weights_dtype(device: str, dtype: str | None) -> Any:
    import torch

    if dtype:
        return getattr(torch, dtype)
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_model_and_tokenizer(
    path: Path, device: str, dtype: str | None = None, *, weights_digest: str | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    """Load a submitted folder for evaluation: no remote code, no network, pinned decoding.

    Returns (model, tokenizer, weights check): the loaded tensors are verified against the
    folder's safetensors and ``weights_digest`` (see :mod:`posttrainbench.models.loaded_check`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from ..models.loaded_check import WeightsMismatchError, check_loaded_weights

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot load the tokenizer from {path}: {type(exc).__name__}: {exc}") from exc
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelLoadError(f"the tokenizer in {path} has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model: Any
    info: dict[str, Any]
    try:
        # With output_loading_info=True, from_pretrained returns (model, loading info); its
        # annotation names the model alone.
        model, info = AutoModelForCausalLM.from_pretrained(  # type: ignore[misc]  # see above
            str(path),
            dtype=_weights_dtype(device, dtype),
            trust_remote_code=False,
            local_files_only=True,
            output_loading_info=True,
        )
    except Exception as exc:
        raise ModelLoadError(f"cannot load the model from {path}: {type(exc).__name__}: {exc}") from exc
    # transformers silently initialises absent weights at random; a partial checkpoint is a failure.
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelLoadError(f"the checkpoint in {path} lacks {len(missing)} weight(s) of the model: {shown}")
    for kind in ("unexpected_keys", "mismatched_keys"):
        extra = sorted(map(str, info.get(kind) or []))
        if extra:  # a tensor the loader skipped is one the gates saw and the evaluator did not
            raise ModelLoadError(f"the checkpoint in {path} has {len(extra)} {kind.replace('_', ' ')}: {extra[0]}")
    try:
        check = check_loaded_weights(model, path, weights_digest)
    except WeightsMismatchError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    model.to(device)
    model.eval()
    # Pinned decoding: nothing of the submission's generation_config.json may reach generate().
    model.generation_config = GenerationConfig()
    return model, tok, check


_DEFAULT_CONFIG = GenerateConfig()


SAMPLING_ARGS = ("top_k", "min_p", "repetition_penalty")


def sampling_extras(value: Any) -> dict[str, float]:
    """The ``sampling`` model arg (``{"top_k", "min_p", "repetition_penalty"}``, each optional: the model's own,
    under the reference protocols, ``seeds.ModelSampling.extras``) checked; None or empty: none applied."""
    if not value:
        return {}
    if not isinstance(value, dict) or not set(value) <= set(SAMPLING_ARGS):
        raise ValueError(f"{PROVIDER}: sampling must be a dict with keys among {SAMPLING_ARGS}, not {value!r}")
    out: dict[str, float] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{PROVIDER}: sampling {k} must be a number, not {v!r}")
        out[k] = v
    return out


def tool_specs(tools: Sequence[ToolInfo]) -> list[dict[str, Any]]:
    """``tools`` as a chat template receives them from a vLLM server: what Inspect's OpenAI client sends (the
    parameters as JSON Schema without None fields), in the field order of vLLM's request model."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters.model_dump(exclude_none=True),
            },
        }
        for t in tools
    ]


def render_prompt(
    template_name: str,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolInfo] | None = None,
    *,
    bos_token: str = "",
    eos_token: str = "",
    now: datetime.datetime | None = None,
) -> str:
    """The prompt text: the chat template ``template_name`` with the generation prompt appended. ``tools`` are
    offered by the template itself when it is a reference one (``TOOL_TEMPLATES``: BFCL's functions written as the
    reference's template writes them), else in the (first) system turn in the harness's wording. ``now``: the
    day a template that writes it (SmolLM3's reference template) reads (default: today)."""
    turns = [{"role": m.role, "content": m.text} for m in messages]
    specs = tool_specs(tools or [])
    if specs and template_name in TOOL_TEMPLATES:
        return render_chat(template_name, turns, bos_token=bos_token, eos_token=eos_token, now=now, tools=specs)
    if specs:
        system = turns.pop(0)["content"] if turns and turns[0]["role"] == "system" else None
        turns.insert(0, {"role": "system", "content": tools_system_prompt(specs, system)})
    return render_chat(template_name, turns, bos_token=bos_token, eos_token=eos_token, now=now)


class PtbHFAPI(ModelAPI):
    """Batched transformers generation with the harness's chat template and decoding."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = _DEFAULT_CONFIG,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, api_key_vars=[], config=config)
        args = dict(model_args)
        template_name = args.pop("chat_template", None)
        if not template_name:
            raise ValueError(f"{PROVIDER}: model_args must name the chat_template (catalog name)")
        self.template_name = str(template_name)
        self.template = get_chat_template(self.template_name)
        self.end_of_turn: tuple[str, ...] = END_OF_TURN.get(self.template_name, ())
        self.model_path = Path(args.pop("model_path", None) or model_name)
        self.batch_size = int(args.pop("batch_size", 16))
        if self.batch_size < 1:
            raise ValueError(f"{PROVIDER}: batch_size must be >= 1")
        device = args.pop("device", None)
        dtype = args.pop("dtype", None)
        window_s = float(args.pop("batch_window_s", 0.1))
        fail_above = args.pop("fail_above_max_tokens", None)
        self.fail_above_max_tokens = int(fail_above) if fail_above is not None else None
        self.fail_seeds = frozenset(int(s) for s in args.pop("fail_seeds", ()))
        ctx = args.pop("context_length", None)
        self.harness_context = int(ctx) if ctx is not None else None
        self.harness_eos: str | None = args.pop("eos_token", None) or None
        self.weights_digest: str | None = args.pop("weights_digest", None) or None
        self.sampling = sampling_extras(args.pop("sampling", None))
        self.weights_check: dict[str, Any] | None = None
        self._load(device, dtype, args)
        if args:
            raise ValueError(f"{self.__class__.__name__}: unknown model_args {sorted(args)}")
        self.seeded_batches: dict[int, int] = {}
        self.batcher = _Batcher(run=self._generate_batch, batch_size=self.batch_size, window_s=window_s)

    def _load(self, device: str | None, dtype: str | None, args: dict[str, Any]) -> None:
        """Load the model (subclasses: another engine; pop the model args they consume)."""
        if args:  # fail before an expensive load
            raise ValueError(f"{PROVIDER}: unknown model_args {sorted(args)}")
        import torch

        self.device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.tokenizer, self.weights_check = load_model_and_tokenizer(
            self.model_path, self.device, dtype, weights_digest=self.weights_digest
        )

    # -- Inspect hooks ------------------------------------------------------------------------

    def max_connections(self) -> int:
        return self.batch_size

    def max_tokens(self) -> int | None:
        return 512

    def connection_key(self) -> str:
        return f"{self.model_path}"

    def close(self) -> None:
        self.model = None
        free_accelerator_memory()

    @property
    def batches_run(self) -> int:
        """Number of ``model.generate`` loops so far (to check batching)."""
        return self.batcher.batches_run

    async def generate(
        self,
        input: list[ChatMessage],  # noqa: A002 - ModelAPI.generate's parameter name
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        key = GenKey(
            max_tokens=int(config.max_tokens or 512),
            temperature=float(config.temperature or 0.0),
            top_p=float(config.top_p if config.top_p is not None else 1.0),
            stop=tuple(config.stop_seqs or ()),
            seed=config.seed,
        )
        if key.seed is not None and key.seed in self.fail_seeds:
            raise RuntimeError(f"injected failure: seed {key.seed} is in fail_seeds")
        if self.fail_above_max_tokens is not None and key.max_tokens > self.fail_above_max_tokens:
            raise RuntimeError(
                f"injected failure: max_tokens {key.max_tokens} > fail_above_max_tokens {self.fail_above_max_tokens}"
            )
        prompt = self.render(input, tools)
        res = await self.batcher.submit(prompt, key)
        message = ChatMessageAssistant(content=res.text, model=self.model_name, source="generate")
        stop_reason = res.stop_reason
        if tools:
            content, calls, _ = parse_tool_calls(res.text)
            if calls:
                message = ChatMessageAssistant(
                    content=content,
                    model=self.model_name,
                    source="generate",
                    # the generated text, for a scorer that reads the calls its own way (BFCL under ptb-v1)
                    metadata={"tool_call_text": res.text},
                    tool_calls=[
                        ToolCall(id=f"call_{i}", function=name, arguments=args) for i, (name, args) in enumerate(calls)
                    ],
                )
                stop_reason = "tool_calls"
        return ModelOutput(
            model=self.model_name,
            choices=[ChatCompletionChoice(message=message, stop_reason=stop_reason)],
            usage=ModelUsage(
                input_tokens=res.input_tokens,
                output_tokens=res.output_tokens,
                total_tokens=res.input_tokens + res.output_tokens,
            ),
            time=res.time,
        )

    # -- rendering and generation -------------------------------------------------------------

    def render(self, messages: list[ChatMessage], tools: list[ToolInfo] | None = None) -> str:
        """The prompt text of ``messages`` (and ``tools``) in this provider's template (:func:`render_prompt`)."""
        tok = self.tokenizer
        return render_prompt(
            self.template_name, messages, tools, bos_token=tok.bos_token or "", eos_token=tok.eos_token or ""
        )

    def context_length(self) -> int | None:
        """The harness's context length (the base model's), else the loaded model's."""
        if self.harness_context is not None:
            return self.harness_context
        cfg = self.model.config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        value = getattr(cfg, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    def stop_strings(self, key: GenKey) -> tuple[str, ...]:
        out: list[str] = []
        eos = self.harness_eos if self.harness_eos is not None else self.tokenizer.eos_token
        for s in (*key.stop, *self.end_of_turn, eos):
            if s and s not in out:
                out.append(s)
        return tuple(out)

    def _eos_ids(self, stops: tuple[str, ...]) -> list[int]:
        tok = self.tokenizer
        # With harness limits, only the harness's stop strings end generation token-wise.
        ids = {tok.eos_token_id} if tok.eos_token_id is not None and self.harness_eos is None else set()
        unk = tok.unk_token_id
        vocab = tok.get_vocab()
        for s in stops:  # stop strings that are single tokens also end generation token-wise
            if s in vocab and vocab[s] != unk:
                ids.add(vocab[s])
        return sorted(ids)

    @contextlib.contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        """Sample with torch's generator seeded from ``seed`` and the number of batches it seeded so far (each
        batch draws other numbers; the same batches in the same order draw the same), leaving the global RNG
        state as it was."""
        if seed is None:
            yield
            return
        import torch

        n = self.seeded_batches.get(seed, 0)
        self.seeded_batches[seed] = n + 1
        cuda = [torch.device(self.device)] if str(self.device).startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda, device_type="cuda"):
            torch.manual_seed(seed * 1_000_003 + n)
            yield

    def _generate_batch(self, prompts: list[str], key: GenKey) -> list[GenResult]:
        import torch
        from transformers import GenerationConfig

        start = time.monotonic()
        tok, model = self.tokenizer, self.model
        stops = self.stop_strings(key)
        eos_ids = self._eos_ids(stops)
        sample = key.temperature > 0
        extra = self.sampling
        gen_config = GenerationConfig(
            max_new_tokens=key.max_tokens,
            do_sample=sample,
            temperature=key.temperature if sample else None,
            top_p=key.top_p if sample else None,
            top_k=int(extra.get("top_k", 0)) if sample else None,  # pinned: no top-k cut unless the model sets one
            min_p=extra.get("min_p") if sample else None,
            repetition_penalty=extra.get("repetition_penalty"),  # greedy too, as vLLM
            eos_token_id=eos_ids or None,
            pad_token_id=tok.pad_token_id,
            stop_strings=list(stops) or None,
        )
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        longest = int(enc["attention_mask"].sum(dim=1).max())
        context = self.context_length()
        if context is not None and longest + key.max_tokens > context:
            # as vLLM does: refuse rather than run past the trained positions (the ladder goes lower)
            raise ValueError(
                f"prompt ({longest} tokens) + max_tokens ({key.max_tokens}) exceeds the model's "
                f"context length ({context})"
            )
        with torch.inference_mode(), self._seeded(key.seed if sample else None):
            out = model.generate(
                **enc, generation_config=gen_config, tokenizer=tok, stopping_criteria=_stop_on_interrupt()
            )
        prompt_len = enc["input_ids"].shape[1]
        eos_set = set(eos_ids)
        specials = [t for t in tok.all_special_tokens if t]
        elapsed = time.monotonic() - start
        results = []
        for i, row in enumerate(out[:, prompt_len:].tolist()):
            n, stopped = len(row), False
            for j, t in enumerate(row):
                if t in eos_set:
                    n, stopped = j, True
                    break
            text = tok.decode(row[:n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            cuts = [p for p in (text.find(s) for s in stops) if p >= 0]
            if cuts:
                text, stopped = text[: min(cuts)], True
            for special in specials:  # what remains of special tokens is not text (as in vLLM)
                text = text.replace(special, "")
            pad = tok.pad_token_id
            n_out = sum(1 for t in row[:n] if t != pad) if pad not in eos_set else n
            results.append(
                GenResult(
                    text=text,
                    input_tokens=int(enc["attention_mask"][i].sum()),
                    output_tokens=n_out,
                    stop_reason="stop" if stopped or n < key.max_tokens else "max_tokens",
                    time=elapsed,
                )
            )
        return results


@modelapi(name=PROVIDER)
def ptb_hf() -> type[PtbHFAPI]:
    """Registers :class:`PtbHFAPI` with Inspect (the class itself stays subclassable)."""
    return PtbHFAPI


def _stop_on_interrupt() -> Any:
    """A ``StoppingCriteriaList`` that ends every sequence at the next token once an interrupt is
    requested (generation runs in a worker thread, which a signal cannot reach)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _OnInterrupt(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            return torch.full((input_ids.shape[0],), interrupts.requested(), dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]  # a bool tensor is what generate() wants

    return StoppingCriteriaList([_OnInterrupt()])
