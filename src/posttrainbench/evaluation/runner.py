"""``evaluate_model``: the harness's pristine evaluation of a model folder.

Runs the Inspect task with the ``ptb-hf`` provider (under a seeded protocol once per seed, with the
reference's policy: :mod:`.seeds`), walks the max-tokens retry ladder on failure, then recomputes
the score from the raw Inspect log and refuses a result that disagrees with Inspect's metric or
that scored fewer samples than expected. It never raises for a bad model: every failure becomes
``EvalResult(status="failed", error=<cause>)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec

from pydantic import BaseModel as _Model
from pydantic import Field

from .. import interrupts
from ..catalog import reference_chat_template
from ..data import DataError, DataProvenance, Item
from ..domain import BaseModelSpec, Decoding, VerdictStatus
from ..fsutil import atomic_write_json
from ..settings import Settings
from .backends import BACKENDS, SERVER_TEMPLATE, make_model, uses_model_folder
from .contract import EvaluableBenchmark
from .graders import DROPPED, UNSCORED, Grader, GraderConfig, GraderError
from .hf_provider import free_accelerator_memory
from .limits import HarnessLimits, limits_from_folder
from .progress import SampleFn, counting
from .protocols import REF_V1, STRICT, get_protocol
from .seeds import ModelSampling, aggregate_seed_metrics, model_sampling, seeds_to_run
from .tasks import build_task

if TYPE_CHECKING:
    from inspect_ai.util import DisplayType

log = logging.getLogger(__name__)
P = ParamSpec("P")


class Attempt(_Model):
    """One rung of the retry ladder."""

    max_tokens: int
    seed: int | None = None
    error: str | None = None
    log_path: str | None = None


class SeedResult(_Model):
    """One seed's evaluation under a seeded protocol."""

    seed: int
    status: Literal["ok", "failed"]
    max_tokens_stage: int | None = Field(None, description="The ladder rung (0 = the first) that produced it.")
    max_tokens_used: int | None = None
    score: float | None = None
    stderr: float | None = None
    heldout_score: float | None = None
    log_path: str | None = None
    error: str | None = None
    resumed: bool = Field(False, description="Read back from an earlier, interrupted run instead of run again.")

    @classmethod
    def of(cls, seed: int, r: EvalResult, stage: int | None, resumed: bool) -> SeedResult:
        """The summary of ``r``, the evaluation of ``seed``."""
        return cls(
            seed=seed, status=r.status, max_tokens_stage=stage, max_tokens_used=r.max_tokens_used, score=r.score,
            stderr=r.stderr, heldout_score=r.heldout_score, log_path=r.log_path, error=r.error, resumed=resumed,
        )  # fmt: skip


class LogCheck(_Model):
    """Score recomputed from a raw Inspect log and compared with what Inspect reported."""

    ok: bool
    score: float | None = None
    reported_score: float | None = None
    stderr: float | None = None
    n_scored: int = 0
    n_expected: int = 0
    problems: list[str] = Field(default_factory=list)
    heldout_score: float | None = None
    n_heldout: int = 0


class EvalResult(_Model):
    """Outcome of evaluating one model on one benchmark."""

    benchmark: str
    status: Literal["ok", "failed"]
    metric: str
    protocol: str = Field(STRICT, description="The evaluation protocol's id (posttrainbench.evaluation.protocols).")
    protocol_digest: str | None = Field(None, description="Digest of every setting of that protocol.")
    score: float | None = None
    stderr: float | None = None
    n_scored: int = 0
    n_expected: int = 0
    max_tokens_used: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    log_path: str | None = None
    decoding: Decoding
    submission_generation_config: dict[str, Any] | None = None
    error: str | None = None
    reported_score: float | None = Field(None, description="Inspect's own metric, for audit.")
    model_path: str | None = None
    chat_template: str | None = None
    batch_size: int | None = None
    backend: str = "hf"
    wall_time_s: float | None = None
    grader: dict[str, Any] | None = Field(
        None, description="LLM grader used (provider, model, base_url, ...; never the key), its call and token counts."
    )
    data: DataProvenance | None = Field(
        None, description="The evaluation set used: sources (files, hub commit), digest, pin status."
    )
    heldout_score: float | None = Field(
        None, description="The score on the items the agent was not given (the full set minus its dev items)."
    )
    n_heldout: int = Field(0, description="Scored items that count for heldout_score.")
    n_dev_excluded: int = Field(0, description="Items excluded from heldout_score (the agent's dev items).")
    limits: HarnessLimits | None = Field(
        None, description="Context length and end-of-sequence text enforced, from the declared base model."
    )
    weights_check: dict[str, Any] | None = Field(
        None, description="Post-load check that the tensors held are the verified submission's."
    )
    sampling: ModelSampling | None = Field(
        None, description="The model's own decoding a reference protocol samples with (None: the harness's greedy)."
    )
    seeds: list[SeedResult] = Field(default_factory=list, description="Per-seed results (seeded protocols).")
    num_seeds: int | None = Field(None, description="Seeds attempted (after the greedy-model rule).")
    seeds_left_out: list[int] = Field(default_factory=list, description="Seeds that failed at every stage.")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def seed_metrics(self) -> dict[str, Any]:
        """What the reference's evaluation of one seed writes: ``{metric: score, "stderr": stderr}``."""
        return {self.metric: self.score, "stderr": self.stderr}

    def to_metrics_json(self) -> dict[str, Any]:
        """The published ``metrics.json`` shape: ``{"accuracy": x, "stderr": y, ...}``; under a seeded protocol
        also the reference's ``num_seeds``, ``num_seeds_succeeded`` and ``per_seed``
        (``aggregate_seed_metrics.py``)."""
        seeded: dict[str, Any] = {}
        if self.num_seeds is not None and self.ok:
            seeded = aggregate_seed_metrics(
                self.num_seeds,
                {
                    s.seed: (s.max_tokens_stage or 0, {self.metric: s.score, "stderr": s.stderr})
                    for s in self.seeds
                    if s.status == "ok"
                },
            )
        return {
            self.metric: self.score,
            "stderr": self.stderr,
            "benchmark": self.benchmark,
            "protocol": self.protocol,
            "protocol_digest": self.protocol_digest,
            "status": self.status,
            "n_scored": self.n_scored,
            "n_expected": self.n_expected,
            "max_tokens_used": self.max_tokens_used,
            "error": self.error,
            **(
                {
                    "heldout": {
                        self.metric: self.heldout_score,
                        "n_scored": self.n_heldout,
                        "dev_excluded": self.n_dev_excluded,
                    }
                }
                if self.n_dev_excluded
                else {}
            ),
            **({"grader": self.grader} if self.grader else {}),
            **({"data": self.data.model_dump(mode="json")} if self.data else {}),
            **seeded,
        }


SEED_RESULT = "seed_result.json"
"""A seed's result in its folder (``<out>/seed-<S>/``), written when it succeeded: what a resumed run reuses."""


def items_sha(ids: list[str]) -> str:
    """sha256 of the item ids evaluated, in order (a per-seed result is reused only for the same items)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def folder_fingerprint(path: Path) -> str:
    """sha256 of the names, sizes and modification times of the files in ``path`` (a model folder rewritten in
    place, e.g. by a collect phase run again, no longer matches the per-seed results of the old one)."""
    p = Path(path)
    rows = sorted(
        f"{f.relative_to(p)}\t{f.stat().st_size}\t{f.stat().st_mtime_ns}" for f in p.rglob("*") if f.is_file()
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest() if p.is_dir() else ""


def load_seed_result(seed_dir: Path, key: dict[str, str]) -> EvalResult | None:
    """The successful result stored in ``seed_dir`` by an earlier run with the same ``key`` (protocol digest,
    model folder and its files, items), else None: anything else is evaluated again."""
    f = seed_dir / SEED_RESULT
    try:
        stored = json.loads(f.read_text(encoding="utf-8"))
        if stored.get("key") != key:
            return None
        result = EvalResult.model_validate(stored["result"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return result if result.ok and result.log_path and Path(result.log_path).is_file() else None


def ladder(benchmark: EvaluableBenchmark, max_tokens: int | None = None) -> list[int]:
    """Budgets to try in order: the benchmark's ladder, or ``max_tokens`` then the lower rungs
    (never more attempts than the ladder has rungs)."""
    rungs = list(benchmark.max_tokens_ladder)
    if max_tokens is None:
        return rungs
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    return ([max_tokens] + [t for t in rungs if t < max_tokens])[: len(rungs)]


def harness_limits(
    base_model: BaseModelSpec, base_model_path: Path | None = None, settings: Settings | None = None
) -> HarnessLimits:
    """The limits the evaluator enforces: those of the base model's folder (``base_model_path``,
    else the catalog entry resolved without downloading anything new where it is local, in the
    model store of ``settings``: default read from the environment now)."""
    from ..models.store import ModelUnavailableError, resolve_base_model

    if base_model_path is None:
        try:
            base_model_path = resolve_base_model(base_model, settings)
        except ModelUnavailableError as exc:
            raise ValueError(f"the harness's limits come from the base model, which is unavailable: {exc}") from exc
    return limits_from_folder(Path(base_model_path))


def check_model_folder(path: Path) -> str | None:
    """A clear reason why ``path`` is not a loadable model folder, or None if it looks complete.

    What a well-formed model folder is has one definition, the ``model_format`` gate of
    ``posttrainbench.integrity.model_check``; the evaluator refuses what that gate refuses.
    """
    from ..integrity.model_check import check_model_folder as model_format_gate

    path = Path(path)
    if not path.exists():
        return f"model folder {path} does not exist"
    if not path.is_dir():
        return f"model path {path} is not a folder"
    verdict = model_format_gate(path)
    return None if verdict.status == VerdictStatus.passed else f"{path}: {verdict.summary}"


def read_generation_config(path: Path) -> dict[str, Any] | None:
    """The submission's ``generation_config.json`` (recorded only, never applied)."""
    f = Path(path) / "generation_config.json"
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {"_value": data}
    except (OSError, ValueError) as exc:
        return {"_unreadable": f"{type(exc).__name__}: {exc}"}


def check_log(
    log_path: str | Path,
    benchmark: EvaluableBenchmark,
    expected_ids: list[str],
    *,
    code_sandbox: str = "bwrap",
    heldout_exclude: Collection[str] = (),
    protocol: str = STRICT,
) -> LogCheck:
    """Re-score every sample of a raw Inspect log of ``benchmark`` from what it holds and compare
    with Inspect.

    The per-sample values are recomputed by the benchmark's ``rescore`` (the reply for answer
    rules, a new sandboxed execution for HumanEval, the tool calls for BFCL, the grader's raw
    verdict for graded benchmarks) and aggregated by its ``aggregate``; the same aggregate over
    the samples not in ``heldout_exclude`` (the agent's dev items) is the held-out score.
    """
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import value_to_float

    problems: list[str] = []
    try:
        elog = read_eval_log(str(log_path))
    except Exception as exc:  # noqa: BLE001 - an unreadable log is a failed check, with the reason
        return LogCheck(ok=False, n_expected=len(expected_ids), problems=[f"cannot read log {log_path}: {exc}"])
    if elog.status != "success":
        problems.append(f"log status is {elog.status!r}")
    expected = set(expected_ids)
    seen: set[str] = set()
    scored: list[Any] = []
    stored: dict[str, float] = {}
    unscored: list[str] = []
    dropped: set[str] = set()
    to_float = value_to_float()
    for s in elog.samples or []:
        sid = str(s.id)
        if sid not in expected:
            problems.append(f"unexpected sample id {sid!r} in the log")
            continue
        if sid in seen:
            problems.append(f"sample {sid!r} appears twice in the log")
            continue
        score = (s.scores or {}).get(benchmark.scorer_name)
        if s.error is not None or score is None:
            continue
        cause = (score.metadata or {}).get(UNSCORED)
        if cause:  # a grader failed for this sample: not scored, and said so
            unscored.append(f"{sid}: {cause}")
            continue
        if (score.metadata or {}).get(DROPPED):  # left out by the protocol's own rule: accounted for
            dropped.add(sid)
            continue
        seen.add(sid)
        scored.append(s)
        stored[sid] = to_float(score.value)
    n = len(seen)
    mine: float | None = None
    heldout_score: float | None = None
    n_heldout = 0
    if scored:
        try:
            values = benchmark.rescore(scored, code_sandbox=code_sandbox, protocol=protocol)
            missing = [sid for sid in stored if sid not in values]
            if missing:
                raise RuntimeError(f"{len(missing)} sample(s) could not be re-scored, e.g. {missing[0]!r}")
            disagreements = sum(1 for sid, v in stored.items() if not math.isclose(v, values[sid], abs_tol=1e-9))
            if disagreements:
                problems.append(f"{disagreements} sample score(s) in the log disagree with re-scoring their output")
            mine = benchmark.aggregate(scored, values, protocol=protocol)
            excluded = set(heldout_exclude)
            heldout = [s for s in scored if str(s.id) not in excluded]
            if excluded and heldout:
                heldout_score, n_heldout = benchmark.aggregate(heldout, values, protocol=protocol), len(heldout)
        except Exception as exc:  # noqa: BLE001 - a scorer error is a problem of the check, not a crash
            problems.append(f"cannot re-score the log: {type(exc).__name__}: {exc}")
    if unscored:
        problems.append(f"{len(unscored)} sample(s) could not be graded (first: {unscored[0]})")
    if n + len(dropped) < len(expected):
        problems.append(f"only {n} of {len(expected)} samples were scored")

    reported = reported_stderr = None
    for es in elog.results.scores if elog.results else []:
        if es.name == benchmark.scorer_name:
            if benchmark.inspect_metric in es.metrics:
                reported = float(es.metrics[benchmark.inspect_metric].value)
            if benchmark.inspect_stderr in es.metrics:
                reported_stderr = float(es.metrics[benchmark.inspect_stderr].value)
    metric = benchmark.inspect_metric
    if reported is None:
        problems.append(f"the log reports no {metric}")
    elif mine is None or not math.isclose(mine, reported, abs_tol=1e-9):
        problems.append(f"recomputed {metric} {mine} != Inspect's reported {metric} {reported}")
    if reported_stderr is not None and not math.isfinite(reported_stderr):
        reported_stderr = None
    return LogCheck(
        ok=not problems,
        score=mine,
        reported_score=reported,
        stderr=reported_stderr,
        n_scored=n,
        n_expected=len(expected),
        problems=problems,
        heldout_score=heldout_score,
        n_heldout=n_heldout,
    )


def _never_raises(fn: Callable[P, EvalResult]) -> Callable[P, EvalResult]:
    """Make an evaluation callable from inside a running event loop (it then runs in a worker
    thread, as Inspect's ``eval`` needs a loop of its own) and turn any unforeseen exception into
    a failed result. The wrapped function keeps its signature and docstring."""

    def guarded(*args: P.args, **kwargs: P.kwargs) -> EvalResult:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            bound = inspect.signature(fn).bind(*args, **kwargs)
            model_path, benchmark, base_model = (bound.arguments[k] for k in ("model_path", "benchmark", "base_model"))
            log.exception("evaluation of %s on %s crashed", model_path, benchmark.id)
            return EvalResult(
                benchmark=benchmark.id,
                status="failed",
                metric=benchmark.metric,
                decoding=benchmark.decoding,
                model_path=str(model_path),
                chat_template=base_model.chat_template,
                error=f"evaluation crashed: {type(exc).__name__}: {exc}",
            )

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> EvalResult:
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        if not in_loop:  # (not inside the except block: errors would chain to that RuntimeError)
            return guarded(*args, **kwargs)
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(guarded, *args, **kwargs).result()

    return wrapper


def protocol_chat_template(base_model: BaseModelSpec, prompt_variant: str) -> str:
    """The chat template a prompt variant asks ``base_model``'s submissions with: ``strict``, the
    harness's template of the base model; ``ptb-v1``, the reference's template of that base model
    (``catalog.REFERENCE_CHAT_TEMPLATES``), and for a base model the reference never evaluated (the
    CPU demo models) the harness's template again, which the result records in ``chat_template``."""
    if prompt_variant == REF_V1:
        return reference_chat_template(base_model.hub_id) or base_model.chat_template
    return base_model.chat_template


@_never_raises
def evaluate_model(
    model_path: Path,
    benchmark: EvaluableBenchmark,
    base_model: BaseModelSpec,
    out_dir: Path,
    *,
    items: list[Item] | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    model_args: dict[str, Any] | None = None,
    display: DisplayType = "none",
    grader: GraderConfig | None = None,
    backend: str = "hf",
    base_url: str | None = None,
    served_model: str | None = None,
    api_key_env: str | None = None,
    code_sandbox: str = "bwrap",
    base_model_path: Path | None = None,
    weights_digest: str | None = None,
    heldout_exclude: Collection[str] = (),
    settings: Settings | None = None,
    protocol: str = STRICT,
    on_sample: SampleFn | None = None,
    seeds: tuple[int, ...] | None = None,
) -> EvalResult:
    """Evaluate ``model_path`` on ``benchmark`` (full test set unless ``items``/``limit``).

    ``benchmark``: a definition from the ``posttrainbench.benchmarks`` registry (its data, prompts
    and scoring; see :class:`.contract.EvaluableBenchmark`). The chat template is the *declared*
    base model's; decoding is the benchmark's; logs go to ``out_dir``. Never raises for a bad model
    or a failed generation: see ``EvalResult.error``. ``settings``: the ``PTB_*`` settings it reads
    (data root, model store, grader, ``openai`` server); default read from the environment now.
    LLM-graded benchmarks use ``grader`` (default: the settings' ``PTB_GRADER_*``); its key is read
    from this process's environment only. ``backend``: ``hf`` (default), ``vllm`` (GPU; the whole
    set in one batch) or ``openai`` (a server at ``base_url``, default ``$PTB_OPENAI_BASE_URL``,
    serving ``served_model``, key from ``$api_key_env``); see :mod:`.backends`. ``code_sandbox``:
    the sandbox backend that runs generated code (HumanEval): ``bwrap``; ``none`` (a plain
    subprocess with the same limits where enforceable) only where the caller is already sandboxed
    (the agent's ``evaluate.py``). Callable from inside a running event loop (it then runs in a
    worker thread, as Inspect's ``eval`` needs a loop of its own).

    The context length and end-of-sequence text come from the base model's folder
    (``base_model_path``, else the catalog entry resolved locally; see :mod:`.limits`), never from
    the evaluated folder. ``weights_digest``: the digest recorded when the submission was made
    canonical; the loaded tensors must match it (``ptb-hf``). ``heldout_exclude``: item ids the
    agent was given (its dev items); the result also reports the score without them.
    ``on_sample(done, total)``: called as each attempt starts (0) and as its samples finish (live
    progress, :mod:`.progress`).

    ``protocol``: whose prompts, decoding and scoring. The reference protocols sample with the model's own
    ``temperature``/``top_p`` (:func:`.seeds.model_sampling`, recorded in ``sampling``); one with seeds
    (``ptb-v1.2``) runs one evaluation per seed in ``out_dir/seed-<S>/`` and scores their mean, reusing the
    per-seed results an interrupted evaluation left there (:mod:`.seeds` has the reference's rules).
    ``seeds``: other seeds than the protocol's (``()``: one unseeded evaluation, as the reference's
    ``evaluate.py`` handed to the agent runs).
    """
    start = time.monotonic()
    settings = settings if settings is not None else Settings.from_env()
    model_path, out_dir = Path(model_path), Path(out_dir)
    proto = get_protocol(protocol)
    template = protocol_chat_template(base_model, proto.prompt_variant(benchmark.id))
    common: dict[str, Any] = {
        "benchmark": benchmark.id,
        "protocol": proto.id,
        "protocol_digest": proto.digest,
        "metric": benchmark.metric,
        "decoding": benchmark.decoding,
        "submission_generation_config": read_generation_config(model_path) if model_path.is_dir() else None,
        "model_path": str(model_path),
        "chat_template": template if uses_model_folder(backend) else SERVER_TEMPLATE,
        "batch_size": batch_size,
        "backend": backend,
    }

    def failed(error: str, **kw: Any) -> EvalResult:
        log.warning("evaluation of %s on %s failed: %s", model_path, benchmark.id, error)
        return EvalResult(**{**common, **kw}, status="failed", error=error, wall_time_s=time.monotonic() - start)

    try:
        if items is None:  # the harness's own set: it must be the pinned one
            all_items, provenance = benchmark.load_test_set(settings=settings)
            common["data"] = provenance
            provenance.require()
        else:
            all_items = list(items)
            common["data"] = benchmark.provenance(
                all_items, ["items given by the caller"], allow_unpinned=settings.data.allow_unpinned
            )
    except DataError as exc:
        return failed(f"data: {exc}")
    chosen = all_items[:limit] if limit is not None else all_items
    n_expected = len(chosen)
    if n_expected == 0:
        return failed("no items to evaluate", n_expected=0)
    ids = [it.id for it in chosen]
    if len(set(ids)) != len(ids):
        return failed("item ids are not unique", n_expected=n_expected)
    try:
        budgets = ladder(benchmark, max_tokens)
    except ValueError as exc:
        return failed(str(exc), n_expected=n_expected)

    if backend not in BACKENDS:
        return failed(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}", n_expected=n_expected)
    if backend == "vllm":  # the whole test set in one generate call: vLLM schedules it
        batch_size = common["batch_size"] = n_expected
    if uses_model_folder(backend):
        problem = check_model_folder(model_path)
        if problem:
            return failed(problem, n_expected=n_expected)

    # The reference protocols (temperature None) sample with the model's own generation config, seeded per
    # protocol; a server (the openai backend) applies its own when the request sets none.
    bench_settings = proto.benchmarks.get(benchmark.id)
    reference_decoding = bench_settings is not None and bench_settings.temperature is None
    sampling: ModelSampling | None = None
    if reference_decoding and uses_model_folder(backend):
        try:
            sampling = common["sampling"] = model_sampling(model_path)
        except ValueError as exc:
            return failed(f"cannot read the model's decoding: {exc}", n_expected=n_expected)
    wanted = seeds if seeds is not None else bench_settings.seeds if bench_settings else ()
    run_seeds = seeds_to_run(wanted, benchmark.id, sampling) if reference_decoding else ()

    grader_client: Grader | None = None
    if benchmark.grader == "llm":  # before the model: a missing key must not cost a generation
        try:
            grader_config = grader or GraderConfig.from_settings(settings.grader)
            if bench_settings is not None and bench_settings.grader_model is not None:
                # the protocol's grader (the reference's judge): its model and call settings, on the configured
                # endpoint and key
                if grader_config.provider != "openai":
                    raise GraderError(
                        f"protocol {proto.id!r} grades {benchmark.id} with {bench_settings.grader_model}: it needs an "
                        f"OpenAI-compatible grader endpoint, not {grader_config.provider}"
                    )
                grader_config = grader_config.model_copy(update=benchmark.grader_settings(proto.id))
            grader_client = Grader(grader_config)
        except (GraderError, ValueError) as exc:
            return failed(f"grader: {exc}", n_expected=n_expected)
        common["grader"] = grader_client.config.describe()

    def grader_stats() -> dict[str, Any]:
        if grader_client is None:
            return {}
        g = grader_client
        return {"grader": {**g.config.describe(), **g.counters()}}

    from inspect_ai import eval as inspect_eval

    args = dict(model_args or {})
    if uses_model_folder(backend):
        try:
            limits = harness_limits(base_model, base_model_path, settings)
        except ValueError as exc:
            return failed(str(exc), n_expected=n_expected)
        common["limits"] = limits
        args = {"context_length": limits.context_length, "eos_token": limits.eos_token, **args}
        if weights_digest:
            args["weights_digest"] = weights_digest
        if sampling is not None and sampling.extras():  # the model's top_k / min_p / repetition_penalty
            args["sampling"] = sampling.extras()
    try:
        model = make_model(
            backend, model_path, chat_template=template, batch_size=batch_size, device=device,
            model_args=args, base_url=base_url or settings.evaluation.openai_base_url, served_model=served_model,
            api_key_env=api_key_env,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a model that cannot load is a failed evaluation
        return failed(f"cannot load model: {exc}", n_expected=n_expected)
    common["weights_check"] = getattr(model.api, "weights_check", None)
    dev_excluded = len(set(heldout_exclude) & set(ids))

    out_dir.mkdir(parents=True, exist_ok=True)

    def run_ladder(
        rungs: list[int], run_items: list[Item], log_dir: Path, gen: dict[str, Any], seed: int | None = None
    ) -> EvalResult:
        """One evaluation: the max-tokens ladder ``rungs`` (the first rung that succeeds is scored)."""
        attempts: list[Attempt] = []
        for budget in rungs:
            task = build_task(
                benchmark, run_items, max_tokens=budget, grader=grader_client, code_sandbox=code_sandbox,
                protocol=proto.id,
            )  # fmt: skip
            if gen:  # the reference's decoding: the model's own sampling, seeded
                task.config = task.config.model_copy(update=gen)
            try:
                with counting(on_sample, n_expected):
                    logs = inspect_eval(
                        task,
                        model=model,
                        log_dir=str(log_dir),
                        log_format="eval",
                        max_connections=batch_size,
                        max_samples=batch_size,
                        adaptive_connections=False,
                        fail_on_error=True,
                        retry_on_error=0,
                        display=display,
                        log_samples=True,
                        score=True,
                        ctl_server=False,
                    )
                elog = logs[0]
            except BaseException as exc:
                # Ctrl-C / SIGTERM: stop here (never the next rung, never a failure)
                if interrupts.requested() or isinstance(exc, KeyboardInterrupt):
                    raise interrupts.Interrupted() from None
                if not isinstance(exc, Exception):
                    raise
                attempts.append(Attempt(max_tokens=budget, seed=seed, error=f"{type(exc).__name__}: {exc}"))
                free_accelerator_memory()
                continue
            interrupts.check()  # Inspect may have turned the interrupt into a cancelled log
            if elog.status == "cancelled":  # interrupted: stop, a lower budget would not help
                attempts.append(Attempt(max_tokens=budget, seed=seed, error="cancelled", log_path=elog.location))
                return failed("evaluation cancelled", n_expected=n_expected, attempts=attempts)
            if elog.status != "success":
                err = elog.error.message if elog.error else f"Inspect eval status {elog.status!r}"
                attempts.append(Attempt(max_tokens=budget, seed=seed, error=err, log_path=elog.location))
                free_accelerator_memory()
                continue
            attempts.append(Attempt(max_tokens=budget, seed=seed, log_path=elog.location))
            check = check_log(
                elog.location,
                benchmark,
                ids,
                code_sandbox=code_sandbox,
                heldout_exclude=heldout_exclude,
                protocol=proto.id,
            )
            kw = dict(
                n_scored=check.n_scored,
                n_expected=n_expected,
                max_tokens_used=budget,
                attempts=attempts,
                log_path=elog.location,
                reported_score=check.reported_score,
                decoding=benchmark.decoding.model_copy(update={"max_tokens": budget}),
                heldout_score=check.heldout_score,
                n_heldout=check.n_heldout,
                n_dev_excluded=dev_excluded,
                **grader_stats(),
            )
            if not check.ok:
                return failed("log check failed: " + "; ".join(check.problems), **kw)
            return EvalResult(
                **{**common, **kw},
                status="ok",
                score=check.score,
                stderr=check.stderr,
                wall_time_s=time.monotonic() - start,
            )
        last = attempts[-1].error if attempts else "no attempt ran"
        return failed(
            f"all {len(attempts)} attempt(s) of the max-tokens ladder failed; last: {last}",
            n_expected=n_expected,
            attempts=attempts,
        )

    def run_seeded() -> EvalResult:
        """One evaluation per seed, the reference's policy (:mod:`.seeds`); per-seed results on disk are reused."""
        key = {
            "protocol_digest": proto.digest,
            "model_path": str(model_path),
            "model_files": folder_fingerprint(model_path),
            "weights_digest": weights_digest or "",
            "items": items_sha(ids),
        }
        gen = {"temperature": sampling.temperature if sampling else None, "top_p": sampling.top_p if sampling else None}
        per_seed: list[SeedResult] = []
        attempts: list[Attempt] = []
        ok: dict[int, EvalResult] = {}
        start_stage = 0
        for k, seed in enumerate(run_seeds):
            seed_dir = out_dir / f"seed-{seed}"
            r = load_seed_result(seed_dir, key)
            resumed = r is not None
            if r is None:
                r = run_ladder(budgets[start_stage:], benchmark.items_for_seed(chosen, seed), seed_dir,
                               {**gen, "seed": seed}, seed)  # fmt: skip
                if r.error == "evaluation cancelled":
                    return r
                if r.ok:
                    atomic_write_json(seed_dir / SEED_RESULT, {"key": key, "result": r.model_dump(mode="json")})
            attempts += r.attempts
            stage = budgets.index(r.max_tokens_used) if r.ok and r.max_tokens_used in budgets else None
            per_seed.append(SeedResult.of(seed, r, stage, resumed))
            if r.ok and stage is not None:
                ok[seed] = r
                if k == 0:  # later seeds start where the first succeeded
                    start_stage = stage
            elif k == 0:
                return failed(
                    f"the first seed ({seed}) failed at every stage, so the other seeds were skipped and no score "
                    f"is written (as the reference does): {r.error}",
                    n_expected=n_expected, attempts=attempts, seeds=per_seed, num_seeds=len(run_seeds),
                )  # fmt: skip
        first = ok[run_seeds[0]]
        agg = aggregate_seed_metrics(
            len(run_seeds), {s: (budgets.index(r.max_tokens_used or 0), r.seed_metrics()) for s, r in ok.items()}
        )
        heldouts = [r.heldout_score for r in ok.values()]
        kw: dict[str, Any] = dict(
            status="ok",
            score=agg[benchmark.metric],
            stderr=agg.get("stderr"),
            n_scored=first.n_scored,
            n_expected=n_expected,
            max_tokens_used=first.max_tokens_used,
            attempts=attempts,
            log_path=first.log_path,
            reported_score=sum(r.reported_score or 0.0 for r in ok.values()) / len(ok),
            decoding=first.decoding,
            heldout_score=None if None in heldouts else sum(h or 0.0 for h in heldouts) / len(heldouts),
            n_heldout=first.n_heldout,
            n_dev_excluded=dev_excluded,
            seeds=per_seed,
            num_seeds=len(run_seeds),
            seeds_left_out=[s for s in run_seeds if s not in ok],
            **grader_stats(),
            wall_time_s=time.monotonic() - start,
        )
        return EvalResult(**{**common, **kw})

    try:
        if not reference_decoding:  # the harness's pinned decoding: one evaluation
            return run_ladder(budgets, chosen, out_dir, {})
        if not run_seeds:  # ptb-v1: one unseeded evaluation with the model's own sampling
            gen = {
                "temperature": sampling.temperature if sampling else None,
                "top_p": sampling.top_p if sampling else None,
            }
            return run_ladder(budgets, chosen, out_dir, gen)
        return run_seeded()
    finally:
        with contextlib.suppress(Exception):  # best effort
            model.api.close()
