"""Domain model shared by every layer (the lowest layer: it imports nothing of ours).

Every object a run is made of is a pydantic model, so that it validates on input,
serialises to JSON for ``run.json`` and reads back identically.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel as _PydanticModel
from pydantic import ConfigDict, Field, SerializerFunctionWrapHandler, field_serializer, field_validator

RUN_RECORD_SCHEMA_VERSION = 1


class Frozen(_PydanticModel):
    """Immutable, strict base for catalog entries and specs."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Decoding(Frozen):
    """Decoding settings pinned by the harness for a benchmark (never taken from the submission)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()


class Benchmark(Frozen):
    """The spec of a target benchmark: where its data comes from, its pins, sizes and decoding.
    Each benchmark is a subclass with its behaviour (loaders, prompts, scoring) in its own module
    of ``posttrainbench.benchmarks``."""

    id: str
    display_name: str
    hub_id: str | None = None
    hub_config: str | None = None
    hub_aliases: tuple[str, ...] = Field(
        (), description="Other hub ids of the same test data (legacy names the hub redirects); refused with hub_id."
    )
    hub_revision: str | None = Field(
        None, description="Hub commit to load; None: the default branch, resolved to its commit and recorded."
    )
    items_sha256: str | None = Field(
        None, description="Pin: sha256 of the full evaluation set as asked (see data.provenance)."
    )
    fewshot_sha256: str | None = Field(None, description="Pin: sha256 of the few-shot turns, if any.")
    test_split: str = "test"
    local_test_file: str | None = Field(None, description="File name under the data root (e.g. 'gsm8k/test.jsonl').")
    full_size: int = Field(..., gt=0, description="Number of items of the full test set.")
    dev_size: int = Field(..., gt=0, description="Items the agent's evaluate.py uses by default.")
    max_tokens_ladder: tuple[int, ...] = Field(..., min_length=1)
    decoding: Decoding = Decoding()
    fewshot: int = 0
    allowed_training_data: str = ""
    local_train_file: str | None = None
    grader: Literal["local", "llm"] = "local"
    metric: str = "accuracy"
    demo: bool = False

    @field_validator("max_tokens_ladder")
    @classmethod
    def _ladder_descends(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if list(v) != sorted(v, reverse=True) or len(set(v)) != len(v):
            raise ValueError("max_tokens_ladder must be strictly decreasing")
        return v


class BaseModelSpec(Frozen):
    """A base model agents may fine-tune, with its forbidden (official post-trained) counterparts."""

    hub_id: str
    family: str
    chat_template: str = Field(..., description="Name of a template in catalog.chat_templates.")
    forbidden: tuple[str, ...] = ()
    instruct_id: str | None = None
    local_path: str | None = Field(
        None, description="Folder with config + safetensors; if set, used instead of the hub."
    )
    demo: bool = False

    @property
    def org(self) -> str:
        return self.hub_id.split("/")[0] if "/" in self.hub_id else "local"

    @property
    def name(self) -> str:
        return self.hub_id.split("/")[-1]


class AgentSpec(Frozen):
    """What the harness knows of an agent scaffold: declared as ``spec`` by its class in
    ``posttrainbench.agents`` and registered with it (``agents.AGENTS``)."""

    id: str
    display_name: str
    secret_env: tuple[str, ...] = Field((), description="Env var names of the agent's own keys.")
    api_hosts: tuple[str, ...] = Field(
        (), description="Hosts of the agent's own LLM API (calls to other LLM APIs are findings)."
    )
    default_config: str = "default"
    llm: bool = True


class SandboxKind(str, Enum):  # noqa: UP042 - a StrEnum would change str(member)
    bwrap = "bwrap"
    docker = "docker"
    apptainer = "apptainer"
    none = "none"


class NetworkPolicy(str, Enum):  # noqa: UP042 - a StrEnum would change str(member)
    """``none``: no network (an LLM agent reaches only its own API host, through the logging
    proxy); ``allowlist``: the logging proxy with model hub, package index and the agent's API
    host; ``open``: the host network."""

    none = "none"
    allowlist = "allowlist"
    open = "open"


LauncherKind = Literal["local", "slurm", "htcondor", "skypilot"]
"""Where a sweep's runs execute: a local process pool, Slurm (submitit) or HTCondor."""

EvalBackend = Literal["hf", "vllm", "openai"]
"""The evaluator's inference backend: transformers, vLLM (GPU) or an OpenAI-compatible server."""


class RunSpec(Frozen):
    """Everything that defines one run. Its hash (with the repeat) is the run id."""

    agent: str
    agent_config: str = "default"
    base_model: str
    benchmark: str
    hours: float = Field(..., gt=0)
    gpus: int = Field(0, ge=0)
    repeat: int = Field(0, ge=0)
    sandbox: SandboxKind = SandboxKind.bwrap
    network: NetworkPolicy = NetworkPolicy.none
    eval_limit: int | None = Field(None, gt=0, description="Evaluate only the first N items.")
    suffix: str = ""
    protocol: str = Field(
        "strict",
        pattern=r"^[a-z0-9][a-z0-9.-]*$",
        description="Evaluation protocol (posttrainbench.evaluation.protocols); part of the cell identity.",
    )

    def run_id(self) -> str:
        """Deterministic 12-hex id from every field (repeat included; ``protocol`` only when it is
        not ``strict``, so that ids of runs made before protocols existed are unchanged)."""
        fields = self.model_dump(mode="json")
        if fields["protocol"] == "strict":
            del fields["protocol"]
        blob = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class VerdictStatus(str, Enum):  # noqa: UP042 - a StrEnum would change str(member)
    passed = "pass"
    failed = "fail"
    not_run = "not_run"


class Verdict(Frozen):
    """Outcome of one integrity gate. Missing or crashed is ``not_run``, never ``pass``."""

    gate: str
    status: VerdictStatus
    summary: str = ""
    evidence: tuple[str, ...] = ()


Phase = Literal["prepare", "solve", "collect", "verify", "evaluate", "record"]
PHASES: tuple[Phase, ...] = ("prepare", "solve", "collect", "verify", "evaluate", "record")


class PhaseResult(_PydanticModel):
    """What one phase hands on to the next ones, stored in ``run.json`` as the phase's
    ``details``. Keys written by other ptb versions are kept as they are (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow")


class PrepareResult(PhaseResult):
    """The run folder and the agent's workspace are ready."""

    base_model_path: str = Field(..., description="The base model's folder (read-only inside the sandbox).")
    train_files: list[str] = Field(default_factory=list, description="Allowed training data in the workspace.")
    n_test_items: int
    dev_ids: list[str] = Field(
        default_factory=list,
        description="The items the agent sees with their answers; the result also scores without them (held-out).",
    )
    data: dict[str, Any] | None = Field(None, description="The evaluation set's provenance (data.DataProvenance).")
    harness_files: list[str] = Field(..., description="Workspace files the harness owns (manifest, read-only).")
    agent_files: list[str] = Field(default_factory=list, description="Files the agent scaffold put there.")


class SolveResult(PhaseResult):
    """The agent ran in the sandbox, and how it ended."""

    argv: list[str]
    exit_code: int | None
    timed_out: bool
    limit_exceeded: str | None = None
    duration_s: float
    enforced: dict[str, bool | str] = Field(
        default_factory=dict, description="Isolation properties and limits really enforced (sandbox.SandboxResult)."
    )
    limits: dict[str, Any] = Field(default_factory=dict, description="Requested limits and their sources.")
    oom_killed: bool = False
    pids_limit_hits: int = 0
    read_only: list[str] = Field(default_factory=list, description="Workspace paths overlaid read-only.")
    agent_version: str = ""
    agent_install: str | None = None
    egress_allow: list[str] = Field(default_factory=list)
    hub_gateway: dict[str, Any] | None = Field(None, description="The hub gateway's spec (network=allowlist).")


class CollectResult(PhaseResult):
    """The canonical submission made from the agent's ``final_model/`` (when it left one)."""

    final_model: bool = Field(..., description="Whether a canonical submission was made.")
    rejected: str | None = Field(None, description="Why final_model/ was refused.")
    files: int | None = None
    bytes: int | None = None
    weights_digest: str | None = None
    ignored_files: list[str] = Field(default_factory=list)
    redacted_files: list[str] = Field(default_factory=list, description="Workspace files secrets were redacted from.")


class VerifyResult(PhaseResult):
    """What the gates decided (the verdicts themselves are ``RunRecord.verdicts``)."""

    final_verdict: VerdictStatus
    forbidden_checked: list[str] | None = Field(None, description="Forbidden checkpoints lineage compared with.")
    forbidden_unavailable: dict[str, str] | None = Field(None, description="Forbidden checkpoints not available here.")
    upstream: str | None = Field(None, description="The upstream run folder the gates read (imported runs).")


class EvaluateResult(PhaseResult):
    """The score of the evaluation, or why there was none (the whole result is ``RunRecord.metrics``)."""

    status: Literal["ok", "failed"] | None = None
    score: float | None = None
    heldout_score: float | None = None
    skipped: str | None = None


class RecordResult(PhaseResult):
    """The record is complete."""

    completed_at: datetime


ResultT = TypeVar("ResultT", bound=PhaseResult)


class PhaseState(_PydanticModel, Generic[ResultT]):
    """Status of one pipeline phase in ``run.json``, with its result once it is done."""

    model_config = ConfigDict(validate_assignment=True)

    # interrupted: stopped by Ctrl-C / SIGTERM (not a failure); resuming runs the phase again
    status: Literal["pending", "done", "failed", "interrupted"] = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    details: ResultT | None = Field(None, description="The phase's result; None (stored as {}) until it is done.")

    @field_validator("details", mode="before")
    @classmethod
    def _no_result(cls, v: Any) -> Any:
        # {}: no result (pending, failed); {"imported": True}: what `ptb import` wrote before the
        # results were typed (an imported run's phases have no result of ours).
        return None if v == {} or v == {"imported": True} else v

    @field_serializer("details", mode="wrap")
    def _as_stored(self, v: ResultT | None, handler: SerializerFunctionWrapHandler) -> Any:
        return {} if v is None else handler(v)

    def result(self) -> ResultT:
        """The phase's result; ValueError when the phase has none (not done)."""
        if self.details is None:
            raise ValueError(f"the phase has no result (status {self.status})")
        return self.details


class Phases(_PydanticModel):
    """The phases' states in run order; reads like a mapping from phase name to state
    (``record.phases["solve"]``, ``.items()``), each result typed (``record.phases.solve.details``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    prepare: PhaseState[PrepareResult] = Field(default_factory=PhaseState[PrepareResult])
    solve: PhaseState[SolveResult] = Field(default_factory=PhaseState[SolveResult])
    collect: PhaseState[CollectResult] = Field(default_factory=PhaseState[CollectResult])
    verify: PhaseState[VerifyResult] = Field(default_factory=PhaseState[VerifyResult])
    evaluate: PhaseState[EvaluateResult] = Field(default_factory=PhaseState[EvaluateResult])
    record: PhaseState[RecordResult] = Field(default_factory=PhaseState[RecordResult])

    def __getitem__(self, phase: str) -> PhaseState[Any]:
        if phase not in PHASES:
            raise KeyError(phase)
        return getattr(self, phase)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # a mapping's keys, not pydantic's (field, value) pairs
        return iter(PHASES)

    def __len__(self) -> int:
        return len(PHASES)

    def __contains__(self, phase: object) -> bool:
        return phase in PHASES

    def keys(self) -> list[str]:
        return list(PHASES)

    def values(self) -> list[PhaseState[Any]]:
        return [self[p] for p in PHASES]

    def items(self) -> list[tuple[str, PhaseState[Any]]]:
        return [(p, self[p]) for p in PHASES]

    def get(self, phase: str, default: PhaseState[Any] | None = None) -> PhaseState[Any] | None:
        return self[phase] if phase in PHASES else default


class RunMetrics(_PydanticModel):
    """The evaluation outcome in ``run.json``: the harness's ``EvalResult``
    (:mod:`posttrainbench.evaluation`, every field of it kept) or what an imported upstream run
    recorded (status, score, stderr, error)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "failed"]
    benchmark: str | None = None
    metric: str = "accuracy"
    score: float | None = None
    stderr: float | None = None
    heldout_score: float | None = Field(None, description="The score without the agent's dev items.")
    n_scored: int | None = None
    n_expected: int | None = None
    n_heldout: int | None = None
    n_dev_excluded: int | None = None
    log_path: str | None = Field(None, description="The Inspect log of the evaluation.")
    error: str | None = None
    data: dict[str, Any] | None = Field(None, description="The evaluation set's provenance (data.DataProvenance).")

    @field_validator("score", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ValueError(f"metrics.score is not a finite number ({v!r})")
        return v

    @property
    def scored(self) -> bool:
        """The evaluation succeeded and gave a score."""
        return self.status == "ok" and self.score is not None


class RunRecord(_PydanticModel):
    """Everything a run produced; serialised as ``run.json`` (versioned schema)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = RUN_RECORD_SCHEMA_VERSION
    run_id: str
    spec: RunSpec
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    versions: dict[str, str] = Field(default_factory=dict)
    phases: Phases = Field(default_factory=Phases)
    manifest: dict[str, str] = Field(default_factory=dict, description="harness file -> sha256")
    final_model_hashes: dict[str, str] = Field(default_factory=dict)
    submission: dict[str, Any] | None = Field(
        None,
        description="The canonical submission made at collect (models.canonical.CanonicalSubmission): "
        "files and hashes, weights digest, ignored files, renamed tensors, config overrides.",
    )
    verdicts: list[Verdict] = Field(default_factory=list)
    required_gates: list[str] = Field(default_factory=list)
    final_verdict: VerdictStatus | None = Field(None, description="pass only if every required gate ran and passed.")
    metrics: RunMetrics | None = Field(None, description="The evaluation outcome; None (stored as {}) if none.")
    time_used_s: float | None = None
    exit_code: int | None = None
    timed_out: bool = False
    usage: dict[str, float] = Field(
        default_factory=dict, description="Trace totals: input_tokens, output_tokens, cost_usd, steps, tool_calls."
    )
    failure: str | None = Field(None, description="'<phase>: <cause>' of the first failure.")
    imported_from: dict[str, Any] | None = Field(
        None, description="For records made by `ptb import`: kind, source path and upstream run id."
    )

    @field_validator("metrics", mode="before")
    @classmethod
    def _no_metrics(cls, v: Any) -> Any:
        return None if v == {} else v

    @field_serializer("metrics", mode="wrap")
    def _metrics_as_stored(self, v: RunMetrics | None, handler: SerializerFunctionWrapHandler) -> Any:
        return {} if v is None else handler(v)

    @property
    def completed(self) -> bool:
        return self.phases["record"].status == "done"

    @property
    def verified(self) -> bool:
        """True only if every required gate ran and passed (missing is never clean)."""
        return self.final_verdict == VerdictStatus.passed
