"""Domain model shared by every layer (the lowest layer: it imports nothing of ours).

Every object a run is made of is a pydantic model, so that it validates on input,
serialises to JSON for ``run.json`` and reads back identically.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel as _PydanticModel
from pydantic import ConfigDict, Field, field_validator

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
    """A target benchmark: where its data comes from and how it is evaluated."""

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
    local_test_file: str | None = Field(
        None, description="File name under the data root (e.g. 'gsm8k/test.jsonl')."
    )
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


class BaseModel(Frozen):
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
    """How an agent scaffold is launched; the code lives in ``posttrainbench.agents``."""

    id: str
    display_name: str
    secret_env: tuple[str, ...] = Field((), description="Env var names of the agent's own keys.")
    api_hosts: tuple[str, ...] = Field(
        (), description="Hosts of the agent's own LLM API (calls to other LLM APIs are findings)."
    )
    default_config: str = "default"
    llm: bool = True


class SandboxKind(str, Enum):
    bwrap = "bwrap"
    docker = "docker"
    apptainer = "apptainer"
    none = "none"


class NetworkPolicy(str, Enum):
    """``none``: no network (an LLM agent reaches only its own API host, through the logging
    proxy); ``allowlist``: the logging proxy with model hub, package index and the agent's API
    host; ``open``: the host network."""

    none = "none"
    allowlist = "allowlist"
    open = "open"


LauncherKind = Literal["local", "slurm", "htcondor"]
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

    def run_id(self) -> str:
        """Deterministic 12-hex id from every field (repeat included)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class VerdictStatus(str, Enum):
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


class PhaseState(_PydanticModel):
    """Status of one pipeline phase in ``run.json``."""

    status: Literal["pending", "done", "failed"] = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RunRecord(_PydanticModel):
    """Everything a run produced; serialised as ``run.json`` (versioned schema)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = RUN_RECORD_SCHEMA_VERSION
    run_id: str
    spec: RunSpec
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    versions: dict[str, str] = Field(default_factory=dict)
    phases: dict[str, PhaseState] = Field(
        default_factory=lambda: {p: PhaseState() for p in PHASES}
    )
    manifest: dict[str, str] = Field(default_factory=dict, description="harness file -> sha256")
    final_model_hashes: dict[str, str] = Field(default_factory=dict)
    submission: dict[str, Any] | None = Field(
        None,
        description="The canonical submission made at collect (models.canonical.CanonicalSubmission): "
        "files and hashes, weights digest, ignored files, renamed tensors, config overrides.",
    )
    verdicts: list[Verdict] = Field(default_factory=list)
    required_gates: list[str] = Field(default_factory=list)
    final_verdict: VerdictStatus | None = Field(
        None, description="pass only if every required gate ran and passed."
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
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

    @property
    def completed(self) -> bool:
        return self.phases["record"].status == "done"

    @property
    def verified(self) -> bool:
        """True only if every required gate ran and passed (missing is never clean)."""
        return self.final_verdict == VerdictStatus.passed
