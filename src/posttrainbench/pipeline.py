"""The run lifecycle, phase by phase, resumable:

``prepare → solve → collect → verify → evaluate → record``

Each phase reads and writes only the run folder; ``run.json`` is written atomically before
and after every phase, so a killed process resumes at the phase it was in. A phase that raises
is an *infrastructure* failure (disk full, sandbox failed to start, evaluator crashed) and is
retried on resume; what the agent did (exit code, no model, a broken model, a failed gate) is an
*outcome*, recorded with its cause, and never re-run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

from . import __version__
from .agents import (
    LaunchContext,
    agent_egress,
    agent_model,
    agent_ro_binds,
    agent_secret_values,
    get_agent_runner,
    install_agent,
)
from .agents.prompt import render_prompt, render_timer
from .agents.trace import parse_trace, redact_trace, save_trace
from .benchmarks import BENCHMARKS, get_benchmark
from .catalog import get_base_model, get_chat_template
from .data import DataError
from .domain import PHASES, Phase, RunRecord, RunSpec, Verdict, VerdictStatus
from .evaluation import EvalResult, evaluate_model, write_dev_file
from .fsutil import atomic_write_json, atomic_write_text, sha256_file
from .integrity import (
    AuditPolicy,
    JudgeConfig,
    JudgeConfigError,
    check_trace,
    run_judge,
    secret_values_from_env,
    build_index_cached,
    check_lineage,
    check_model_folder,
    check_tamper,
    check_transfer,
    final_status,
    scan,
    write_manifest,
)
from .model_store import cache_root, resolve_base_model, resolve_forbidden_models
from .models import SubmissionRejected, base_weight_bytes, canonicalize
from .results import RunPaths, baseline_dir, load_record, run_paths, save_baseline, save_record
from .sandbox import SandboxConfig, get_sandbox
from .sandbox.limits import resolve_limits
from .sandbox.hub_gateway import DEFAULT_UPSTREAM, HubGatewaySpec
from .sandbox.secrets import foreign_secrets, redact_file, redact_tree, secret_values

#: Gates that must run and pass for a score to count (the LLM judge joins when configured).
REQUIRED_GATES = ("tamper", "transfer", "model_format", "lineage", "contamination", "trace_audit")

ProgressFn = Callable[[str, str], None]


class PhaseError(RuntimeError):
    """An infrastructure failure inside a phase; the phase is retried on resume."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _versions() -> dict[str, str]:
    out = {"posttrainbench": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "inspect-ai", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _package_dir() -> Path:
    return Path(files("posttrainbench")).resolve()  # type: ignore[arg-type]


def _env_int(name: str, default: int) -> int:
    """A positive integer setting from the environment (bad values: a clear error)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise PhaseError(f"{name}={raw!r} must be a positive integer")
    return int(raw)


def _env_float(name: str, default: float) -> float:
    """A positive number setting from the environment (bad values: a clear error)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise PhaseError(f"{name}={raw!r} must be a positive number")
    return value


def _read_only_overlays(ws: Path, pristine: Path, harness_files: list[str]) -> list[str]:
    """Workspace paths (relative) to cover with their pristine copy, read-only: each harness
    file at the top level, and each top-level directory holding harness files as a whole (a
    file bound alone could still be swapped by renaming its directory). The copies are made
    world-readable: the agent may run under another uid. Fails if such a directory holds
    anything else (the overlay would hide it)."""
    tops = sorted({rel.split("/", 1)[0] for rel in harness_files})
    for top in tops:
        if (ws / top).is_dir():
            extra = {p.relative_to(ws).as_posix() for p in (ws / top).rglob("*") if not p.is_dir()} - set(harness_files)
            if extra:
                raise PhaseError(f"{top}/ holds non-harness files {sorted(extra)}; it cannot be made read-only")
    for p in [pristine, *pristine.rglob("*")]:
        p.chmod(0o755 if p.is_dir() or p.stat().st_mode & 0o111 else 0o644)
    return tops


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


class Pipeline:
    """One run: validates its spec up front, then runs (or resumes) the phases."""

    def __init__(
        self,
        spec: RunSpec,
        results_root: Path,
        *,
        progress: ProgressFn | None = None,
        eval_batch_size: int = 16,
        gpu_ids: list[int] | None = None,
    ) -> None:
        # Validate every name before anything touches the disk.
        self.spec = spec
        self.benchmark = get_benchmark(spec.benchmark)
        self.base = get_base_model(spec.base_model)
        self.agent = get_agent_runner(spec.agent)
        self.agent.validate_config(spec.agent_config)
        self.sandbox = get_sandbox(spec.sandbox)
        self.paths: RunPaths = run_paths(results_root, spec, self.base)
        self.progress = progress or (lambda phase, msg: None)
        self.eval_batch_size = eval_batch_size
        # Host GPU indices a launcher assigned to this run (default: the first spec.gpus).
        self.gpu_ids = list(gpu_ids)[: spec.gpus] if gpu_ids is not None else list(range(spec.gpus))

    # ----------------------------------------------------------------- driving
    def load_or_create(self) -> RunRecord:
        """The run's record: read from ``run.json`` if the run exists, else a new one."""
        if self.paths.run_json.exists():
            return load_record(self.paths.run_json)
        record = RunRecord(run_id=self.spec.run_id(), spec=self.spec, versions=_versions())
        self.paths.root.mkdir(parents=True, exist_ok=True)
        save_record(self.paths.run_json, record)
        return record

    def run(self, *, until: Phase | None = None) -> RunRecord:
        """Run every phase not yet done, in order; stop at the first infrastructure failure."""
        record = self.load_or_create()
        solve = record.phases["solve"]
        if solve.started_at is not None and solve.status != "done":
            # The agent was interrupted mid-run (job killed, sandbox failed): its workspace is
            # dirty, so the agent restarts from a fresh workspace.
            record.phases["prepare"].status = "pending"
        for phase in PHASES:
            if record.phases[phase].status != "done":
                if not self._run_phase(record, phase):
                    break
            if phase == until:
                break
        return record

    def reverify(self) -> RunRecord:
        """Run the verify phase again on an existing run (e.g. after a gate or the judge
        configuration changed); the agent is not re-run and the other phases are kept."""
        if not self.paths.run_json.exists():
            raise FileNotFoundError(f"no run.json in {self.paths.root}")
        record = load_record(self.paths.run_json)
        if record.phases["collect"].status != "done":
            raise PhaseError("the run has not been collected yet; run it (ptb run) first")
        if record.failure and record.failure.startswith("verify:"):
            record.failure = None
        self._run_phase(record, "verify")
        return record

    def _run_phase(self, record: RunRecord, phase: Phase) -> bool:
        state = record.phases[phase]
        state.status, state.error, state.details = "pending", None, {}
        state.started_at, state.finished_at = _now(), None
        save_record(self.paths.run_json, record)
        self.progress(phase, "started")
        try:
            state.details = getattr(self, f"_{phase}")(record) or {}
            state.status = "done"
        except Exception as exc:  # recorded with its cause; the run folder keeps everything
            state.status = "failed"
            state.error = f"{type(exc).__name__}: {exc}"
            record.failure = f"{phase}: {state.error}"
        state.finished_at = _now()
        save_record(self.paths.run_json, record)
        self.progress(phase, state.status if state.status == "done" else f"failed: {state.error}")
        return state.status == "done"

    @staticmethod
    def _outcome(record: RunRecord, phase: str, cause: str) -> None:
        """Record the first outcome failure (the run goes on to record it)."""
        if record.failure is None:
            record.failure = f"{phase}: {cause}"

    # ------------------------------------------------------------------ phases
    def _prepare(self, record: RunRecord) -> dict:
        ws, paths = self.paths.workspace, self.paths
        record.failure = None
        for stale in (ws, paths.harness, paths.final_model):
            shutil.rmtree(stale, ignore_errors=True)
        (ws / "task").mkdir(parents=True)
        (ws / "templates").mkdir()
        base_path = resolve_base_model(self.base)

        items, provenance = self.benchmark.load_test_set()
        provenance.require()  # before the agent's hours: the harness will only score the pinned set
        dev = self.benchmark.dev_items(items)
        write_dev_file(ws / "task" / "dev.jsonl", dev)
        train_files: list[str] = []
        try:
            examples = self.benchmark.load_train_examples()
        except DataError:
            examples = []
        if examples:
            rel = f"train_data/{self.benchmark.id}_train.jsonl"
            atomic_write_text(ws / rel, "".join(json.dumps(e) + "\n" for e in examples))
            train_files.append(rel)

        template = get_chat_template(self.base.chat_template)
        atomic_write_text(ws / "templates" / f"{self.base.chat_template}.jinja", template)
        shutil.copy2(Path(files("posttrainbench.evaluation").joinpath("workspace_evaluate.py")), ws / "evaluate.py")  # type: ignore[arg-type]
        task = {
            "benchmark": self.benchmark.id,
            "base_model_id": self.base.hub_id,
            "base_model_path": str(base_path),
            "chat_template": template,
            "train_files": train_files,
            "hours": self.spec.hours,
            "deadline_epoch": None,  # set when the agent starts
        }
        atomic_write_json(ws / "task" / "task.json", task)
        ctx = self._launch_context()
        agent_files = self.agent.setup_workspace(ws, ctx)

        prompt = render_prompt(
            self.spec,
            self.benchmark,
            self.base,
            base_model_path=str(base_path),
            train_files=train_files,
            gpu_name=os.environ.get("PTB_GPU_NAME"),
        )
        atomic_write_text(paths.prompt, prompt)
        harness_files = sorted(
            ["evaluate.py", "timer.sh", "task/task.json", "task/dev.jsonl", *train_files]
            + [f"templates/{p.name}" for p in (ws / "templates").iterdir()]
        )
        return {
            "base_model_path": str(base_path),
            "train_files": train_files,
            "n_test_items": len(items),
            # The items the agent sees with their answers; the final result also reports the
            # score without them (held-out).
            "dev_ids": [it.id for it in dev],
            "data": provenance.model_dump(mode="json"),
            "harness_files": harness_files,
            "agent_files": agent_files,
        }

    def _launch_context(self) -> LaunchContext:
        return LaunchContext(
            spec=self.spec,
            workspace=self.paths.workspace.resolve(),
            prompt_file=self.paths.prompt,
            python=sys.executable,
            host_env=dict(os.environ),
        )

    def _solve(self, record: RunRecord) -> dict:
        ws, paths = self.paths.workspace.resolve(), self.paths
        prep = record.phases["prepare"].details
        limit_s = self.spec.hours * 3600
        deadline = time.time() + limit_s
        # The deadline is fixed when the agent starts, so timer.sh and task.json are final now;
        # the manifest covers them and pristine copies are kept outside the workspace.
        atomic_write_text(ws / "timer.sh", render_timer(deadline))
        (ws / "timer.sh").chmod(0o755)
        task = json.loads((ws / "task" / "task.json").read_text())
        task["deadline_epoch"] = deadline
        atomic_write_json(ws / "task" / "task.json", task)
        harness_files = prep["harness_files"]
        record.manifest = write_manifest(ws, harness_files)
        for rel in harness_files:
            dest = paths.harness / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ws / rel, dest)
        read_only = _read_only_overlays(ws, paths.harness, harness_files)
        try:
            limits = resolve_limits(self.spec.gpus)
        except ValueError as exc:
            raise PhaseError(str(exc)) from exc

        ctx = self._launch_context()
        agent_prefix = install_agent(self.agent)  # pinned CLI, outside the workspace
        pkg = _package_dir()
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(ws),
            "PYTHONUNBUFFERED": "1",
            "HF_HOME": str(ws / ".cache" / "huggingface"),
            "PTB_TIME_LIMIT_S": str(int(limit_s)),
            "CUDA_VISIBLE_DEVICES": "",
            **self.agent.environment(ctx),
        }
        if self.spec.network.value == "none":
            env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if var in os.environ:
                env[var] = os.environ[var]
        if self.spec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpu_ids))
        leaked = foreign_secrets(env, ctx.host_env, allowed=self.agent.spec.secret_env)
        if leaked:
            raise PhaseError(f"refusing to start: secrets other than the agent's own key in its env: {leaked}")
        allow, tunnels = agent_egress(self.agent, ctx, self.spec.network)
        hub = None
        if self.spec.network.value == "allowlist":  # the hub only through the gateway (HF_ENDPOINT)
            hub = HubGatewaySpec.for_run(
                self.base, BENCHMARKS.values(), upstream=os.environ.get("PTB_HUB_UPSTREAM") or DEFAULT_UPSTREAM
            )
        config = SandboxConfig(
            workspace=ws,
            ro_binds=sorted(
                {Path(sys.prefix), Path(sys.base_prefix), pkg, Path(prep["base_model_path"]),
                 *agent_ro_binds(self.agent, ctx)}
            ),  # fmt: skip
            masked=[pkg / "resources"],
            env=env,
            network=self.spec.network,
            time_limit_s=limit_s,
            gpus=self.gpu_ids,
            egress_allow=allow,
            egress_log=paths.egress_log if allow or self.spec.network.value == "allowlist" else None,
            egress_tunnels=tunnels,
            hub_gateway=hub,
            max_output_mb=_env_int("PTB_MAX_OUTPUT_MB", 1024),
            max_workspace_mb=_env_int("PTB_MAX_WORKSPACE_MB", 500 * 1024),
            memory_mb=limits.memory_mb,
            max_pids=limits.max_pids,
            # The pristine copies, read-only over the workspace copies (which stay untouched
            # for the tamper gate): the agent can neither change nor replace them.
            ro_overlays=[(paths.harness / rel, ws / rel) for rel in read_only],
        )
        argv = self.agent.command(ctx)
        self.progress("solve", f"agent running (limit {_hms(limit_s)})")
        result = self.sandbox.run(
            argv, config, stdin=paths.prompt, stdout=paths.solve_out, stderr=paths.solve_err
        )
        if result.error:
            raise PhaseError(f"sandbox {self.sandbox.name}: {result.error}")
        record.exit_code, record.timed_out = result.exit_code, result.timed_out
        record.time_used_s = result.duration_s
        atomic_write_text(paths.time_taken, _hms(result.duration_s) + "\n")
        stopped_by = []
        if result.oom_killed:
            stopped_by.append(f"the memory limit ({limits.memory_mb} MiB) killed a process")
        if result.pids_limit_hits:
            stopped_by.append(f"the pids limit ({limits.max_pids}) refused {result.pids_limit_hits} forks")
        why = f" ({'; '.join(stopped_by)})" if stopped_by else ""
        if result.limit_exceeded:
            self._outcome(record, "solve", f"agent stopped: {result.limit_exceeded}{why}")
        elif result.timed_out:
            self._outcome(record, "solve", f"agent hit the {_hms(limit_s)} limit and was killed{why}")
        elif result.exit_code != 0:
            self._outcome(record, "solve", f"agent exited with code {result.exit_code}{why}")
        return {
            "argv": argv,
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "limit_exceeded": result.limit_exceeded,
            "duration_s": result.duration_s,
            "enforced": result.enforced,
            "limits": limits.record(),
            "oom_killed": result.oom_killed,
            "pids_limit_hits": result.pids_limit_hits,
            "read_only": read_only,
            "agent_version": self.agent.version(),
            "agent_install": agent_prefix,
            "egress_allow": allow,
            "hub_gateway": hub.model_dump() if hub else None,
        }

    def _collect(self, record: RunRecord) -> dict:
        # Nothing secret is stored: raw outputs, egress log and trace are redacted first.
        secrets = secret_values(os.environ, agent_secret_values(self.agent, self._launch_context()))
        for raw in (self.paths.solve_out, self.paths.solve_err, self.paths.egress_log):
            redact_file(raw, secrets)
        redacted = redact_tree(self.paths.workspace, secrets)  # CLI session transcripts
        trace = parse_trace(
            self.spec.agent, self.paths.solve_out, model=agent_model(self.agent, self.spec.agent_config)
        )
        trace = redact_trace(trace, secrets)
        save_trace(self.paths.trace_json, trace)
        record.usage = trace.usage().model_dump()
        src = self.paths.workspace / "final_model"
        shutil.rmtree(self.paths.final_model, ignore_errors=True)
        record.final_model_hashes, record.submission = {}, None
        extra = {"redacted_files": redacted} if redacted else {}
        if not (src.is_dir() or src.is_symlink()):
            self._outcome(record, "collect", "agent left no final_model/")
            return {"final_model": False, **extra}
        # The canonical submission: what every gate and the evaluator read (models.canonical).
        base_path = Path(record.phases["prepare"].details["base_model_path"])
        factor = _env_float("PTB_SUBMISSION_SIZE_FACTOR", 3.0)
        limit = int(factor * max(base_weight_bytes(base_path), 1 << 20))
        try:
            canon = canonicalize(
                src, self.paths.final_model, base_path, allowed_root=self.paths.workspace, max_weight_bytes=limit
            )
        except SubmissionRejected as exc:
            self._outcome(record, "collect", f"final_model/ rejected: {exc}")
            return {"final_model": False, "rejected": str(exc), **extra}
        record.final_model_hashes = canon.files
        record.submission = canon.model_dump(mode="json")
        details = {
            "final_model": True,
            "files": len(canon.files),
            "bytes": sum(p.stat().st_size for p in self.paths.final_model.iterdir()),
            "weights_digest": canon.weights_digest,
            "ignored_files": canon.ignored_files,
        }
        return details | extra

    def _verify(self, record: RunRecord) -> dict:
        if record.imported_from:
            return self._verify_upstream(record)
        ev = self.paths.evidence
        ev.mkdir(parents=True, exist_ok=True)
        ws, fm = self.paths.workspace, self.paths.final_model
        details: dict = {}
        verdicts: list[Verdict] = [
            check_tamper(ws, record.manifest, ev, pristine_dir=self.paths.harness)
        ]
        if record.phases["collect"].details.get("final_model"):
            verdicts.append(check_transfer(fm, record.final_model_hashes, ev))
            fmt = check_model_folder(fm)
            verdicts.append(fmt)
            base_path = Path(record.phases["prepare"].details["base_model_path"])
            if fmt.status == VerdictStatus.passed:
                forbidden, unavailable = resolve_forbidden_models(self.base)
                details["forbidden_checked"] = sorted(forbidden)
                details["forbidden_unavailable"] = unavailable
                verdicts.append(check_lineage(fm, base_path, ev, forbidden=forbidden))
            else:
                verdicts.append(_not_run("lineage", "final_model is not a readable model folder"))
        else:
            rejected = record.phases["collect"].details.get("rejected")
            verdicts.append(_not_run("transfer", "no final_model was collected"))
            verdicts.append(
                Verdict(gate="model_format", status=VerdictStatus.failed, summary=f"final_model/ rejected: {rejected}")
                if rejected
                else _not_run("model_format", "no final_model to check")
            )
            verdicts.append(_not_run("lineage", "no final_model to check"))
        verdicts.append(self._contamination(ev, record.manifest))
        policy = AuditPolicy.for_run(
            agent_hosts=self.agent.spec.api_hosts,
            base=self.base,
            benchmarks=BENCHMARKS.values(),
            secret_values=secret_values_from_env(os.environ),
        )
        verdicts.append(check_trace(self.paths.trace_json, policy, ev))
        required = list(REQUIRED_GATES)
        judge, judge_required = self._judge(ev, record)
        verdicts.append(judge)
        if judge_required:
            required.append("judge")
        record.verdicts = verdicts
        record.required_gates = required
        record.final_verdict = final_status(verdicts, set(required))
        self._write_judgements(verdicts)
        if record.final_verdict != VerdictStatus.passed:
            bad = [f"{v.gate}={v.status.value}" for v in verdicts if v.gate in required and v.status != VerdictStatus.passed]
            self._outcome(record, "verify", "gates not passed: " + ", ".join(bad))
        return {"final_verdict": record.final_verdict.value, **details}

    def _verify_upstream(self, record: RunRecord) -> dict:
        """Our gates on an imported upstream run folder (read only; evidence goes to our run
        folder). What upstream never recorded cannot be checked and says so: no manifest of the
        harness files (tamper) and no hashes at collect (transfer) are ``not_run``. The upstream
        judge's verdicts are kept next to ours; all of them are required."""
        src = Path(str(record.imported_from.get("source", "")))  # type: ignore[union-attr]
        if not src.is_dir():
            raise PhaseError(f"upstream run folder {src} is not available")
        ev = self.paths.evidence
        ev.mkdir(parents=True, exist_ok=True)
        kept = [v for v in record.verdicts if v.gate.startswith("judge_")]
        verdicts: list[Verdict] = [
            *kept,
            _not_run("tamper", "upstream run: no manifest of the harness files was recorded"),
            _not_run("transfer", "upstream run: no hashes were recorded when final_model was collected"),
        ]
        details: dict = {"upstream": str(src)}
        fm = src / "final_model"
        if fm.is_dir():
            fmt = check_model_folder(fm)
            verdicts.append(fmt)
            if fmt.status == VerdictStatus.passed:
                try:
                    base_path = resolve_base_model(self.base)
                except Exception as exc:  # noqa: BLE001 - offline, gated: recorded, never a pass
                    verdicts.append(_not_run("lineage", f"base model unavailable: {exc}"))
                else:
                    forbidden, unavailable = resolve_forbidden_models(self.base)
                    details["forbidden_checked"], details["forbidden_unavailable"] = sorted(forbidden), unavailable
                    verdicts.append(check_lineage(fm, base_path, ev, forbidden=forbidden))
            else:
                verdicts.append(_not_run("lineage", "final_model is not a readable model folder"))
        else:
            verdicts += [_not_run(g, "no final_model in the upstream folder") for g in ("model_format", "lineage")]
        ws = src / "task"
        if ws.is_dir():
            verdicts.append(self._contamination(ev, {}, workspace=ws))
        else:
            verdicts.append(_not_run("contamination", "no task/ workspace in the upstream folder"))
        trace = parse_trace(self.spec.agent, src / "solve_out.txt")
        if trace.steps:
            save_trace(self.paths.trace_json, trace)
            policy = AuditPolicy.for_run(
                agent_hosts=self.agent.spec.api_hosts,
                base=self.base,
                benchmarks=BENCHMARKS.values(),
                secret_values=secret_values_from_env(os.environ),
            )
            verdicts.append(check_trace(self.paths.trace_json, policy, ev))
        else:
            verdicts.append(_not_run("trace_audit", "no parseable solve_out.txt in the upstream folder"))
        required = [v.gate for v in verdicts if v.gate != "judge"]
        record.verdicts, record.required_gates = verdicts, required
        record.final_verdict = final_status(verdicts, set(required))
        if record.final_verdict != VerdictStatus.passed:
            bad = [f"{v.gate}={v.status.value}" for v in verdicts if v.status != VerdictStatus.passed]
            self._outcome(record, "verify", "gates not passed: " + ", ".join(bad))
        return {"final_verdict": record.final_verdict.value, **details}

    def _judge(self, evidence_dir: Path, record: RunRecord) -> tuple[Verdict, bool]:
        """The LLM judge's verdict and whether it is required: required exactly when a judge is
        configured (``PTB_JUDGE_*``); a configured but invalid judge is required and not_run."""
        try:
            config = JudgeConfig.from_env()
        except JudgeConfigError as exc:
            return _not_run("judge", str(exc)), True
        if config is None:
            return _not_run("judge", "no judge endpoint configured"), False
        info = {
            "benchmark": f"{self.benchmark.id} ({self.benchmark.display_name})",
            "base_model": self.base.hub_id,
            "forbidden": ", ".join(self.base.forbidden) or "none listed",
            "agent": f"{self.spec.agent} ({self.spec.agent_config})",
        }
        self.progress("verify", f"LLM judge {config.provider}:{config.model} x{config.n}")
        verdict = run_judge(
            config, self.paths.workspace, self.paths.trace_json, evidence_dir, run_info=info, manifest=record.manifest
        )
        return verdict, True

    def _contamination(self, evidence_dir: Path, manifest: dict[str, str], *, workspace: Path | None = None) -> Verdict:
        """Scan everything the agent could have trained on. The harness's own files (dev subset,
        allowed data) are skipped while they are unmodified; a copy of them elsewhere is a hit."""
        ws = workspace if workspace is not None else self.paths.workspace
        untouched = [
            ws / rel
            for rel, digest in manifest.items()
            if (ws / rel).is_file() and not (ws / rel).is_symlink() and sha256_file(ws / rel) == digest
        ]
        try:
            items = self.benchmark.load_test_items()
            try:
                allowed = [e["prompt"] + "\n" + e["completion"] for e in self.benchmark.load_train_examples()]
            except DataError:
                allowed = []
            entries = [(it.id, it.test_text()) for it in items]
            # Every other benchmark's test items too (an agent must not train on any test set),
            # from local files only: a benchmark whose data is not here is named as not covered.
            covered, uncovered = [self.benchmark.id], []
            for other in BENCHMARKS.values():
                if other.id == self.benchmark.id or other.demo:
                    continue
                try:
                    entries += [(f"{other.id}/{it.id}", it.test_text()) for it in other.load_test_items(local_only=True)]
                    covered.append(other.id)
                except DataError:
                    uncovered.append(other.id)
            index = build_index_cached(entries, allowed, cache_root() / "contamination")
            verdict = scan(index, [ws], evidence_dir, exclude=untouched)
            note = f" [test sets indexed: {', '.join(covered)}" + (
                f"; not available locally: {', '.join(uncovered)}]" if uncovered else "]"
            )
            return verdict.model_copy(update={"summary": verdict.summary + note})
        except Exception as exc:
            return _not_run("contamination", f"scan failed: {type(exc).__name__}: {exc}")

    def _write_judgements(self, verdicts: list[Verdict]) -> None:
        """The published judgement files, derived from our gates."""
        by_gate = {v.gate: v for v in verdicts}
        cont = by_gate["contamination"]
        atomic_write_text(
            self.paths.contamination_judgement,
            {
                VerdictStatus.passed: "no contamination detected\n",
                VerdictStatus.failed: f"contamination detected: {cont.summary}\n",
                VerdictStatus.not_run: f"not checked: {cont.summary}\n",
            }[cont.status],
        )
        lin = by_gate["lineage"]
        atomic_write_text(
            self.paths.disallowed_model_judgement,
            {
                VerdictStatus.passed: "only allowed use detected\n",
                VerdictStatus.failed: f"disallowed use detected: {lin.summary}\n",
                VerdictStatus.not_run: f"not checked: {lin.summary}\n",
            }[lin.status],
        )

    def _evaluate(self, record: RunRecord) -> dict:
        if not record.phases["collect"].details.get("final_model"):
            record.metrics = {}
            return {"skipped": "no final_model"}
        recheck = check_transfer(self.paths.final_model, record.final_model_hashes, self.paths.evidence)
        if recheck.status != VerdictStatus.passed:
            self._outcome(record, "evaluate", f"final_model changed after collect: {recheck.summary}")
            return {"skipped": "final_model changed after collect"}
        self.progress("evaluate", f"{self.benchmark.display_name} on final_model")
        prep = record.phases["prepare"].details
        result = evaluate_model(
            self.paths.final_model,
            self.benchmark,
            self.base,
            self.paths.eval_dir,
            limit=self.spec.eval_limit,
            batch_size=self.eval_batch_size,
            base_model_path=Path(prep["base_model_path"]),
            weights_digest=(record.submission or {}).get("weights_digest"),
            heldout_exclude=prep.get("dev_ids", ()),
        )
        record.metrics = result.model_dump(mode="json")
        if result.status == "ok":
            atomic_write_json(self.paths.metrics_json, result.to_metrics_json())
        else:
            self._outcome(record, "evaluate", result.error or "evaluation failed")
        return {"status": result.status, "score": result.score, "heldout_score": result.heldout_score}

    def _record(self, record: RunRecord) -> dict:
        record.versions = _versions() | {"agent": record.phases["solve"].details.get("agent_version", "")}
        return {"completed_at": _now().isoformat()}


def _not_run(gate: str, why: str) -> Verdict:
    return Verdict(gate=gate, status=VerdictStatus.not_run, summary=why)


def evaluate_baseline(
    base_model: str,
    benchmark: str,
    results_root: Path,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    instruct: bool = False,
    backend: str = "hf",
) -> EvalResult:
    """Zero-shot score of a base model (the fallback score), cached in its baseline folder.

    ``instruct``: evaluate the base model's official instruct checkpoint instead (recorded under
    its own id; the benchmark weights need both). Always zero-shot (``fewshot`` set to 0) and
    with the *base* model's chat template, as every submission of that base model is evaluated.
    """
    bench, base = get_benchmark(benchmark), get_base_model(base_model)
    bench = bench.model_copy(update={"fewshot": 0})
    target = base
    if instruct:
        if not base.instruct_id:
            raise ValueError(f"{base.hub_id} has no instruct checkpoint in the catalog")
        target = base.model_copy(update={"hub_id": base.instruct_id, "instruct_id": None, "local_path": None})
    checkpoint = "instruct" if instruct else "base"
    folder = baseline_dir(results_root, bench.id, base, limit, checkpoint)
    cached = folder / "result.json"
    if cached.is_file():
        result = EvalResult.model_validate_json(cached.read_text())
        if result.status == "ok":
            return result
    result = evaluate_model(
        resolve_base_model(target), bench, base, folder / "eval", limit=limit, batch_size=batch_size, backend=backend
    )
    atomic_write_text(cached, result.model_dump_json(indent=2) + "\n")
    if result.status == "ok":
        atomic_write_json(folder / "metrics.json", result.to_metrics_json())
    save_baseline(
        results_root, benchmark=bench.id, base_model=base, score=result.score, status=result.status,
        checkpoint=checkpoint, limit=limit, extra={"evaluated": target.hub_id, "error": result.error},
    )
    return result
