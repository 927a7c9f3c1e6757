"""The sweep file: agents × base models × benchmarks × repeats, and how to launch them.

A sweep file is TOML (``.toml``) or YAML (``.yaml``/``.yml``)::

    name = "paper"
    results = "results"            # relative to the sweep file's folder
    hours = 10
    gpus_per_run = 1
    repeats = 3
    base_models = ["Qwen/Qwen3-1.7B-Base", "Qwen/Qwen3-4B-Base"]
    benchmarks = ["gsm8k", "humaneval"]
    launcher = "slurm"             # local | slurm | htcondor | skypilot
    # suite = "v1.2"               # instead of benchmarks: the suite's (or check that benchmarks are in it)

    [[agents]]
    name = "reference"
    config = "sft"

    [slurm]
    partition = "gpu"
    mem_gb = 64

:func:`load_sweep` validates everything (unknown names, ranges, duplicates, unknown keys)
before anything is launched and reports *every* fault with the line it is on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel as _Model
from pydantic import ConfigDict, Field, ValidationError

from ..agents import AGENTS, AgentLaunchError, get_agent
from ..benchmarks import get_benchmark
from ..catalog import UnknownNameError, get_base_model
from ..domain import BaseModelSpec, NetworkPolicy, RunSpec, SandboxKind
from ..leaderboard.suites import get_suite


class _Strict(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentEntry(_Strict):
    """One agent scaffold with one configuration (for LLM agents: the model it drives)."""

    name: str
    config: str | None = Field(None, description="Agent config; default: the catalog's default.")


class LocalSettings(_Strict):
    """The local pool: ``parallel`` runs at once, each with its own GPUs from ``gpus``."""

    parallel: int = Field(1, ge=1, description="Runs at once (capped by the GPU pool).")
    gpus: list[int] = Field(
        default_factory=list,
        description="Host GPU indices to share out (CUDA_VISIBLE_DEVICES); empty: CPU-only.",
    )
    cpus_per_run: int | None = Field(None, ge=1, description="OMP/MKL threads per run.")


class SlurmSettings(_Strict):
    """Slurm job parameters (through submitit)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    cpus_per_run: int = Field(4, ge=1)
    mem_gb: float = Field(64, gt=0)
    time_margin_min: int = Field(60, ge=0, description="Added to the agent's hours (verify + evaluate).")
    array_parallelism: int = Field(64, ge=1, description="Array tasks running at once.")
    scratch: str | None = Field(
        "/tmp", description="Per-job scratch parent; the job uses <scratch>/ptb-<jobid> as TMPDIR."
    )
    split_eval: bool = Field(
        False,
        description="Three dependent jobs per run: agent (GPUs), verification (CPU), evaluation (eval_gpus).",
    )
    eval_gpus: int = Field(1, ge=0, description="GPUs of the evaluation job when split_eval.")
    setup: list[str] = Field(default_factory=list, description="Shell lines run before the worker.")
    extra: dict[str, str] = Field(default_factory=dict, description="More sbatch options.")


class HTCondorSettings(_Strict):
    """HTCondor submit-description settings (through the htcondor bindings)."""

    cpus_per_run: int = Field(4, ge=1)
    mem_gb: float = Field(64, gt=0)
    disk_gb: float = Field(100, gt=0)
    time_margin_min: int = Field(60, ge=0)
    requirements: str | None = Field(None, description="A ClassAd expression, e.g. 'CUDACapability >= 8.0'.")
    accounting_group: str | None = None
    extra: dict[str, str] = Field(default_factory=dict, description="More submit commands.")


class SkyPilotSettings(_Strict):
    """SkyPilot managed-job settings (``launcher = "skypilot"``): resources and the sync bucket."""

    accelerator: str = Field("H100", description="GPU type; a run asks for gpus_per_run of them.")
    infra: str | None = Field(None, description="Where to run: 'aws', 'gcp/us-central1', 'k8s', ...; default: any.")
    cpus: str = Field("8+", description="SkyPilot's cpus request.")
    memory: str = Field("64+", description="SkyPilot's memory request (GB).")
    disk_gb: int = Field(256, ge=1, description="Boot disk (final_model can be 3x the base model).")
    use_spot: bool = False
    cpus_per_run: int = Field(8, ge=1, description="OMP/MKL threads per run.")
    python: str | None = Field(
        None, description="SkyPilot's interpreter; default: the one the `sky` command runs with."
    )
    sync_bucket: str | None = Field(None, description="Bucket the jobs push run folders to (s3://..., gs://...).")
    sync_mirror: str | None = Field(None, description="Where this machine sees sync_bucket (a mount or synced folder).")
    setup: list[str] = Field(default_factory=list, description="Shell lines run after installing the harness.")
    envs: dict[str, str] = Field(default_factory=dict, description="Environment of the job (PTB_* settings).")
    secrets: list[str] = Field(
        default_factory=list,
        description="More variables passed as SkyPilot secrets from this shell at launch (a judge's or grader's "
        "key, HF_TOKEN); the agent's own key goes without listing it.",
    )
    resources: dict[str, Any] = Field(default_factory=dict, description="More SkyPilot resources fields.")


class Sweep(_Strict):
    """A validated sweep: the run matrix and the launcher settings."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    results: Path
    agents: list[AgentEntry] = Field(..., min_length=1)
    base_models: list[str] = Field(..., min_length=1)
    benchmarks: list[str] = Field(..., min_length=1)
    suite: str | None = Field(
        None, description="A suite (v1, v1.2): its benchmarks when `benchmarks` is not given, else a superset of them."
    )
    hours: float = Field(..., gt=0)
    gpus_per_run: int = Field(0, ge=0)
    repeats: int = Field(1, ge=1)
    sandbox: SandboxKind = SandboxKind.bwrap
    network: NetworkPolicy = NetworkPolicy.none
    eval_limit: int | None = Field(None, gt=0)
    suffix: str = ""
    protocol: str = Field("strict", description="Evaluation protocol of every run (ptb-v1, ptb-v1.2, strict).")
    baselines: bool = Field(True, description="Also evaluate each base model zero-shot (the fallback).")
    max_retries: int = Field(2, ge=0, description="Re-runs of an infrastructure failure.")
    launcher: str = Field("local", description="A registered launcher: local, slurm, htcondor, skypilot.")
    local: LocalSettings = LocalSettings()
    slurm: SlurmSettings = SlurmSettings()
    htcondor: HTCondorSettings = HTCondorSettings()
    skypilot: SkyPilotSettings = SkyPilotSettings()

    def run_specs(self) -> list[RunSpec]:
        """Every run of the sweep, in a stable order (agent, model, benchmark, repeat)."""
        out = []
        for a in self.agents:
            for m in self.base_models:
                for b in self.benchmarks:
                    for r in range(self.repeats):
                        out.append(
                            RunSpec(
                                agent=a.name,
                                agent_config=a.config or AGENTS.get(a.name).spec.default_config,
                                base_model=get_base_model(m).hub_id,
                                benchmark=b,
                                hours=self.hours,
                                gpus=self.gpus_per_run,
                                repeat=r,
                                sandbox=self.sandbox,
                                network=self.network,
                                eval_limit=self.eval_limit,
                                suffix=self.suffix,
                                protocol=self.protocol,
                            )
                        )
        return out


# ---------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Fault:
    """One problem of a sweep file: where (line, dotted path) and what."""

    line: int | None
    where: str
    message: str


class SweepError(ValueError):
    """An invalid sweep file; ``faults`` lists every problem, each with its line."""

    def __init__(self, path: Path, faults: list[Fault]) -> None:
        self.path, self.faults = Path(path), sorted(faults, key=lambda f: (f.line or 0, f.where))
        lines = [f"{self.path}:{f.line or '?'}: {f.where + ': ' if f.where else ''}{f.message}" for f in self.faults]
        super().__init__(f"invalid sweep file ({len(self.faults)} problem(s)):\n" + "\n".join(lines))


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ----------------------------------------------------------------- line locations

_TABLE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=\s*(.*)$")


def _array_item_lines(text: str, start_line: int) -> list[int]:
    """Lines of the top-level items of the array literal that ``text`` starts with ('[...')."""
    lines, depth, line, i, expect = [], 0, start_line, 0, False
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#" and depth:
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c in "\"'":
            if depth == 1 and expect:
                lines.append(line)
                expect = False
            q = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else c
            j = text.find(q, i + len(q))
            while q == '"' and j > 0 and text[j - 1] == "\\":
                j = text.find(q, j + 1)
            if j < 0:
                break
            line += text[i:j].count("\n")
            i = j + len(q)
            continue
        elif c in "[{":
            if depth == 1 and expect:
                lines.append(line)
                expect = False
            depth += 1
            if depth == 1:
                expect = True
        elif c in "]}":
            depth -= 1
            if depth == 0:
                break
        elif c == ",":
            if depth == 1:
                expect = True
        elif not c.isspace() and depth == 1 and expect:
            lines.append(line)
            expect = False
        i += 1
    return lines


def toml_locations(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path (tables, array-of-tables indices, array items) to its 1-based line."""
    locs: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    src = text.splitlines()
    for n, raw in enumerate(src, 1):
        m = _TABLE.match(raw)
        if m and not _KEY.match(raw):
            name = tuple(p.strip().strip('"') for p in m.group(2).split("."))
            if m.group(1) == "[[":
                idx = counts.get(name, 0)
                counts[name] = idx + 1
                table = (*name, idx)
            else:
                table = name
            locs.setdefault(table, n)
            continue
        m = _KEY.match(raw)
        if not m:
            continue
        path = (*table, *(p.strip() for p in m.group(1).split(".")))
        locs.setdefault(path, n)
        value = m.group(2)
        if value.startswith("["):
            rest = value + "\n" + "\n".join(src[n:])
            for i, ln in enumerate(_array_item_lines(rest, n)):
                locs.setdefault((*path, i), ln)
    return locs


def yaml_locations(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path of a YAML document to its 1-based line."""
    import yaml

    locs: dict[tuple[Any, ...], int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        locs.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                locs.setdefault((*path, k.value), k.start_mark.line + 1)
                walk(v, (*path, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    if root is not None:
        walk(root, ())
    return locs


def _line(locs: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for k in range(len(loc), 0, -1):
        if tuple(loc[:k]) in locs:
            return locs[tuple(loc[:k])]
    return None


# ---------------------------------------------------------------------- loading


def _parse(path: Path, text: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise SweepError(path, [Fault(int(m.group(1)) if m else None, "", f"not valid TOML: {exc}")]) from None
        return data, toml_locations(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
            locs = yaml_locations(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise SweepError(path, [Fault(mark.line + 1 if mark else None, "", f"not valid YAML: {exc}")]) from None
        if not isinstance(data, dict):
            raise SweepError(path, [Fault(1, "", "the document must be a mapping")])
        return data, locs
    raise SweepError(path, [Fault(None, "", f"unknown sweep file type {suffix!r}: use .toml, .yaml or .yml")])


def load_sweep(path: Path, *, results: Path | None = None, launcher: str | None = None) -> Sweep:
    """Read and validate a sweep file; raise :class:`SweepError` listing every fault with its line.

    ``results`` / ``launcher`` override the file's values. A relative ``results`` in the file
    is relative to the file's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(path, [Fault(None, "", f"cannot read: {exc}")]) from None
    data, locs = _parse(path, text)
    if launcher is not None:
        data["launcher"] = launcher
    faults = _suite_faults(data, locs)
    faults += _semantic_faults(data, locs)
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            faults.append(Fault(_line(locs, loc), _dotted(loc), msg))
    if faults:
        raise SweepError(path, faults)
    root = Path(results) if results is not None else sweep.results
    if not root.is_absolute() and results is None:
        root = path.parent / root
    return sweep.model_copy(update={"results": root.resolve()})


def _suite_faults(data: dict[str, Any], locs: dict[tuple[Any, ...], int]) -> list[Fault]:
    """``suite``: a known one; it fills in ``benchmarks`` when they are not given, else holds them all."""
    name = data.get("suite")
    if name is None:
        return []
    try:
        suite = get_suite(name) if isinstance(name, str) else get_suite(repr(name))
    except ValueError as exc:
        return [Fault(_line(locs, ("suite",)), "suite", str(exc))]
    if "benchmarks" not in data:
        data["benchmarks"] = list(suite.benchmarks)
        return []
    given = data["benchmarks"] if isinstance(data["benchmarks"], list) else []
    return [
        Fault(_line(locs, ("benchmarks", i)), f"benchmarks[{i}]", f"{b!r} is not in suite {suite.name}")
        for i, b in enumerate(given)
        if isinstance(b, str) and b not in suite.benchmarks
    ]


def _semantic_faults(data: dict[str, Any], locs: dict[tuple[Any, ...], int]) -> list[Fault]:
    """Names the catalog does not know, configs the agent rejects, duplicate entries.

    Works on the raw document so that these are reported together with type/range faults;
    entries of the wrong type are left to the schema validation."""
    faults: list[Fault] = []

    def fault(loc: tuple[Any, ...], msg: str) -> None:
        faults.append(Fault(_line(locs, loc), _dotted(loc), msg))

    def entries(key: str) -> list[tuple[int, Any]]:
        value = data.get(key)
        return list(enumerate(value)) if isinstance(value, list) else []

    seen_agents: dict[tuple[str, str], int] = {}
    for i, a in entries("agents"):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            continue
        try:
            runner = get_agent(a["name"])
        except UnknownNameError as exc:
            fault(("agents", i, "name"), str(exc))
            continue
        spec = runner.spec
        config = a.get("config") or spec.default_config
        if not isinstance(config, str):
            continue
        try:
            runner.validate_config(config)
        except (AgentLaunchError, ValueError) as exc:
            fault(("agents", i, "config"), str(exc))
        key = (spec.id, config)
        if key in seen_agents:
            fault(("agents", i), f"duplicate agent {spec.id} with config {config!r} (also agents[{seen_agents[key]}])")
        seen_agents.setdefault(key, i)
    for field, lookup in (("base_models", get_base_model), ("benchmarks", get_benchmark)):
        seen: dict[str, int] = {}
        for i, name in entries(field):
            if not isinstance(name, str):
                continue
            try:
                entry = lookup(name)
            except UnknownNameError as exc:
                fault((field, i), str(exc))
                continue
            cid = entry.hub_id if isinstance(entry, BaseModelSpec) else entry.hub_id or entry.id
            protocol = data.get("protocol", "strict")
            if not isinstance(entry, BaseModelSpec) and isinstance(protocol, str):
                try:
                    entry.require_protocol(protocol)
                except ValueError as exc:
                    fault(("protocol",), str(exc))
            if cid in seen:
                fault((field, i), f"duplicate entry {name!r} (also {field}[{seen[cid]}])")
            seen.setdefault(cid, i)
    from .base import LAUNCHERS

    launcher = data.get("launcher", "local")
    if isinstance(launcher, str) and launcher not in LAUNCHERS:
        fault(("launcher",), str(UnknownNameError("launcher", launcher, LAUNCHERS.names())))
    local_table = data.get("local")
    local = local_table if isinstance(local_table, dict) else {}
    gpus = local.get("gpus", [])
    per_run = data.get("gpus_per_run", 0)
    if data.get("launcher", "local") == "local" and isinstance(gpus, list) and isinstance(per_run, int) and per_run > 0:
        if not gpus:
            fault(("gpus_per_run",), "the local launcher needs [local] gpus = [...] to share out GPUs")
        elif per_run > len(gpus):
            fault(("local", "gpus"), f"{len(gpus)} GPU(s) in the pool, but gpus_per_run = {per_run}")
    if isinstance(gpus, list) and len(set(map(str, gpus))) != len(gpus):
        fault(("local", "gpus"), "GPU indices must be distinct")
    return faults
