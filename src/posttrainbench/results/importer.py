"""``ptb import``: read upstream PostTrainBench result folders into our run records.

Upstream layout: ``<method>/<benchmark>_<Org>_<Model>_<jobid>/`` where ``<method>`` is
``<agent>_<config>_<H>h[_<suffix>]`` and the folder holds ``metrics.json`` (``accuracy``),
``time_taken.txt`` (``H:M:S``), the judges' verdicts, ``final_model/`` and the solve logs. The
contamination judge's ``contamination``/``disallowed_model`` booleans are resolved as upstream
v1.1+ does: a human's ``judgement_gpt5_4_manual.json``, else the per-field majority of three
slots (``judgement_gpt5_4[_rerun].json`` and ``judgement_multi_runs/judgement_gpt5_4_run{2,3}.json``)
when all three exist, else ``judgement_gpt5_4_rerun.json``, else ``judgement_gpt5_4.json``, else
the older ``contamination_judgement.txt`` / ``disallowed_model_judgement.txt``. The v1.1+ judges
whose files exist (``_rerun`` first) add one verdict each: ``judgement_api.json``
(``disallowed_api_usage``), ``judgement_ptb_lookup.json`` (``disallowed_ptb_lookup``),
``judgement_derived_contamination.json`` (``derived_contamination``): ``true`` fails;
``judgement_general.json`` (``general_anomaly``): ``true`` is ``not_run``, a human review (upstream
halts aggregation on it). A judge whose file is absent predates that judge and adds nothing.

Rules (the upstream collector's, made explicit):

* per method and (benchmark, model), only the run with the highest job id is imported; the
  others are listed as superseded;
* no ``metrics.json`` (the evaluation failed: ``final_eval_9.txt`` says retries were exhausted;
  or the result was never stored) -> evaluation failed, the cell falls back;
* a missing or unreadable judgement -> the judge gates are ``not_run``, the cell falls back;
* repeats: methods that differ only in suffix (``run1``, ``run2``…) are repeats of one agent,
  numbered in suffix order; ``agent_map`` (``{name: [method, …]}``, the upstream
  ``HARDCODED_AGENT_MAP``) groups methods explicitly instead.

Zero-shot baselines kept upstream as a method folder, ``baseline_zeroshot/`` (or the older ``baseline/``),
``<benchmark>_<Org>_<Model>_<jobid>/metrics.json``, rows of base *and* instruct models (the upstream
``aggregated_baseline_zeroshot.csv``): the highest job id per (benchmark, model) becomes a ``baseline.json``
(the fallback score, and with the instruct ones the weights); a folder without a readable ``accuracy`` is a
problem, no baseline. Other ``baseline*`` folders (``baseline_fewshot``) are not zero-shot and are skipped.

Each imported run becomes ``<into>/<method>/<run folder>/run.json`` (with ``imported_from``),
plus copies of the small upstream files; a folder that cannot be imported is reported with its
path and cause, and the rest goes on. Importing again replaces the records (idempotent).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..benchmarks import BENCHMARKS
from ..catalog import BASE_MODELS
from ..domain import PHASES, BaseModelSpec, PhaseState, RunRecord, RunSpec, Verdict, VerdictStatus
from .layout import run_paths
from .store import save_baseline, save_record

METHOD_RE = re.compile(r"^(?P<prefix>.+?)_(?P<hours>\d+(?:\.\d+)?)h(?:_(?P<suffix>.*))?$")
RUN_RE = re.compile(r"^(?P<bench>[^_]+)_(?P<org>[^_]+)_(?P<model>[^_]+)_(?P<jobid>\d+)$")
JUDGE_GATES = ("judge_contamination", "judge_disallowed_model")
ZEROSHOT_DIRS = ("baseline_zeroshot", "baseline")  # upstream zero-shot baseline method folders
COPY_FILES = (
    "metrics.json",
    "time_taken.txt",
    "contamination_judgement.txt",
    "disallowed_model_judgement.txt",
    "judgement_gpt5_4.json",
    "judgement_gpt5_4_rerun.json",
    "judgement_gpt5_4_manual.json",
    *(
        f"judgement_{i}{sfx}.json"
        for i in ("api", "ptb_lookup", "general", "derived_contamination")
        for sfx in ("", "_rerun")
    ),
    "solve_parsed.txt",
    "solve_out.txt",
)
MAX_COPY_BYTES = 50 * 2**20


@dataclass
class ImportReport:
    """What an import did."""

    imported: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    baselines: int = 0


@dataclass(frozen=True)
class _Method:
    name: str
    agent: str
    config: str
    hours: float
    suffix: str
    repeat: int


def parse_method(name: str) -> tuple[str, str, float, str]:
    """``claude_claude-opus-4-5_10h_v5`` -> (agent, config, hours, suffix); ValueError otherwise."""
    m = METHOD_RE.match(name)
    if not m:
        raise ValueError(f"method folder {name!r} does not look like <agent>_<config>_<H>h[_suffix]")
    agent, _, config = m["prefix"].partition("_")
    return agent, config or "default", float(m["hours"]), m["suffix"] or ""


def _model_by_name(name: str) -> tuple[BaseModelSpec, str] | None:
    """A short model name (``Qwen3-4B-Base`` or ``Qwen3-4B``) -> (catalogued base model, checkpoint)."""
    for b in BASE_MODELS.values():
        if b.hub_id.split("/")[-1] == name or b.hub_id == name:
            return b, "base"
        if b.instruct_id and (b.instruct_id.split("/")[-1] == name or b.instruct_id == name):
            return b, "instruct"
    return None


def _methods(src: Path, agent_map: dict[str, list[str]] | None, report: ImportReport) -> list[tuple[_Method, Path]]:
    dirs = sorted(
        d
        for d in src.iterdir()
        if d.is_dir() and not d.name.startswith(("_", ".")) and not d.name.startswith("baseline")
    )
    out: list[tuple[_Method, Path]] = []
    if agent_map:
        where = {m: (agent, i) for agent, ms in agent_map.items() for i, m in enumerate(ms)}
        for d in dirs:
            if d.name not in where:
                report.problems.append(f"{d}: method not in the agent map; not imported")
                continue
            agent, rep = where[d.name]
            try:
                _, _, hours, suffix = parse_method(d.name)
            except ValueError as exc:
                report.problems.append(f"{d}: {exc}")
                continue
            out.append((_Method(d.name, agent.replace(" ", "-"), "upstream", hours, suffix, rep), d))
        return out
    parsed: dict[tuple[str, str, float], list[tuple[str, Path]]] = {}
    for d in dirs:
        try:
            agent, config, hours, suffix = parse_method(d.name)
        except ValueError as exc:
            report.problems.append(f"{d}: {exc}")
            continue
        parsed.setdefault((agent, config, hours), []).append((suffix, d))
    for (agent, config, hours), members in parsed.items():
        for rep, (suffix, d) in enumerate(sorted(members)):
            out.append((_Method(d.name, agent, config, hours, suffix, rep), d))
    return out


def _read_metrics(run: Path) -> dict:
    path = run / "metrics.json"
    if not path.is_file():
        exhausted = any(run.glob("*final_eval_9.txt"))
        why = (
            "evaluation exhausted its retries (final_eval_9.txt)"
            if exhausted
            else "no metrics.json (result not stored)"
        )
        return {"status": "failed", "error": why}
    try:
        data = json.loads(path.read_text())
        acc = data["accuracy"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"status": "failed", "error": f"metrics.json unreadable ({type(exc).__name__}: {exc})"}
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc):
        return {"status": "failed", "error": f"metrics.json accuracy is not a number ({acc!r})"}
    out = {"status": "ok", "score": float(acc)}
    if isinstance(data.get("stderr"), (int, float)):
        out["stderr"] = float(data["stderr"])
    return out


def _read_time(run: Path) -> float | None:
    try:
        text = (run / "time_taken.txt").read_text().strip()
    except OSError:
        return None
    m = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})", text)
    if not m or int(m[2]) >= 60 or int(m[3]) >= 60:
        return None
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])


#: Upstream v1.1+'s optional judges: output id, verdict field, our gate, status of a ``true`` flag.
OPTIONAL_JUDGES = (
    ("api", "disallowed_api_usage", "judge_api_usage", VerdictStatus.failed),
    ("ptb_lookup", "disallowed_ptb_lookup", "judge_ptb_lookup", VerdictStatus.failed),
    ("derived_contamination", "derived_contamination", "judge_derived_contamination", VerdictStatus.failed),
    ("general", "general_anomaly", "judge_general", VerdictStatus.not_run),
)


class _Unreadable(ValueError):
    """A judgement file that is not JSON with the expected boolean fields (the file is named)."""


def _load_flags(path: Path, fields: tuple[str, ...]) -> dict[str, bool]:
    try:
        data = json.loads(path.read_text())
        flags = {k: data[k] for k in fields}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise TypeError("fields must be booleans")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _Unreadable(f"{path.name} unreadable ({type(exc).__name__}: {exc})") from None
    return flags


def _contamination_flags(run: Path) -> tuple[str, dict[str, bool]] | None:
    """Upstream's contamination verdict: manual override > majority of 3 slots > rerun > original
    (raises on an unreadable file); None when there is none."""
    fields = ("contamination", "disallowed_model")
    manual = run / "judgement_gpt5_4_manual.json"
    if manual.is_file():
        return manual.name, _load_flags(manual, fields)
    slot1 = next(
        (run / n for n in ("judgement_gpt5_4_rerun.json", "judgement_gpt5_4.json") if (run / n).is_file()), None
    )
    if slot1 is None:
        return None
    multi = [run / "judgement_multi_runs" / f"judgement_gpt5_4_run{i}.json" for i in (2, 3)]
    if all(p.is_file() for p in multi):
        slots = [_load_flags(p, fields) for p in (slot1, *multi)]
        names = ", ".join(p.relative_to(run).as_posix() for p in (slot1, *multi))
        return f"majority of 3 ({names})", {k: sum(s[k] for s in slots) >= 2 for k in fields}
    return slot1.name, _load_flags(slot1, fields)


def _optional_judgements(run: Path) -> list[Verdict]:
    """One verdict per v1.1+ judge whose file exists (``_rerun`` first); an unreadable one is not_run."""
    out = []
    for output_id, fld, gate, flagged in OPTIONAL_JUDGES:
        path = next(
            (
                run / n
                for n in (f"judgement_{output_id}_rerun.json", f"judgement_{output_id}.json")
                if (run / n).is_file()
            ),
            None,
        )
        if path is None:
            continue
        try:
            value = _load_flags(path, (fld,))[fld]
        except _Unreadable as exc:
            out.append(Verdict(gate=gate, status=VerdictStatus.not_run, summary=str(exc)))
            continue
        status = flagged if value else VerdictStatus.passed
        review = " (asks for a human review)" if value and flagged == VerdictStatus.not_run else ""
        out.append(
            Verdict(
                gate=gate,
                status=status,
                summary=f"upstream judge ({path.name}): {fld}={value}{review}",
                evidence=(path.name,),
            )
        )
    return out


def _read_judgement(run: Path) -> list[Verdict]:
    """The contamination judge's two verdicts (the JSON judgement wins over the text files), then
    one per v1.1+ judge whose file exists."""
    return _contamination_judgement(run) + _optional_judgements(run)


def _contamination_judgement(run: Path) -> list[Verdict]:
    try:
        found = _contamination_flags(run)
    except _Unreadable as exc:
        return [Verdict(gate=g, status=VerdictStatus.not_run, summary=str(exc)) for g in JUDGE_GATES]
    if found is not None:
        name, flags = found
        return [
            Verdict(
                gate=f"judge_{k}",
                status=VerdictStatus.failed if v else VerdictStatus.passed,
                summary=f"upstream judge ({name}): {k}={v}",
                evidence=(name,) if name.endswith(".json") else (),
            )
            for k, v in flags.items()
        ]
    out = []
    for gate, name, clean, dirty in (
        ("judge_contamination", "contamination_judgement.txt", "no contamination detected", "contamination detected"),
        (
            "judge_disallowed_model",
            "disallowed_model_judgement.txt",
            "only allowed use detected",
            "disallowed use detected",
        ),
    ):
        try:
            text = (run / name).read_text().strip().lower()
        except OSError:
            out.append(Verdict(gate=gate, status=VerdictStatus.not_run, summary=f"no {name}"))
            continue
        status = (
            VerdictStatus.passed
            if text.startswith(clean)
            else VerdictStatus.failed
            if text.startswith(dirty)
            else VerdictStatus.not_run
        )
        out.append(
            Verdict(gate=gate, status=status, summary=f"upstream judge ({name}): {text[:200]}", evidence=(name,))
        )
    return out


def import_upstream(src: Path, into: Path, *, agent_map: dict[str, list[str]] | None = None) -> ImportReport:
    """Import every upstream run folder under ``src`` into the results folder ``into``."""
    src, into = Path(src), Path(into)
    report = ImportReport()
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: not a folder")
    for name in ZEROSHOT_DIRS:
        if (src / name).is_dir():
            _import_baselines(src / name, into, report)
    for method, mdir in _methods(src, agent_map, report):
        for (bench, org, model), (job, run) in sorted(_latest_runs(mdir, report).items()):
            try:
                _import_run(run, into, method, bench, f"{org}/{model}", job)
                report.imported.append(str(run))
            except (ValueError, OSError) as exc:
                report.problems.append(f"{run}: {exc}")
    return report


def _latest_runs(mdir: Path, report: ImportReport) -> dict[tuple[str, str, str], tuple[int, Path]]:
    """Per (benchmark, Org, Model) of a method folder, the run with the highest job id (others superseded)."""
    latest: dict[tuple[str, str, str], tuple[int, Path]] = {}
    for run in sorted(p for p in mdir.iterdir() if p.is_dir()):
        m = RUN_RE.match(run.name)
        if not m:
            report.problems.append(f"{run}: folder name does not parse as <benchmark>_<Org>_<Model>_<jobid>")
            continue
        key = (m["bench"], m["org"], m["model"])
        job = int(m["jobid"])
        if key in latest:
            older = min(latest[key], (job, run))
            report.superseded.append(str(older[1]))
            if job < latest[key][0]:
                continue
        latest[key] = (job, run)
    return latest


def _import_baselines(folder: Path, into: Path, report: ImportReport) -> None:
    """An upstream zero-shot baseline method folder -> baseline.json files (base and instruct models)."""
    for (bench, org, model), (_job, run) in sorted(_latest_runs(folder, report).items()):
        found = _model_by_name(f"{org}/{model}")
        if bench not in BENCHMARKS:
            report.problems.append(f"{run}: unknown benchmark id {bench!r}")
            continue
        if found is None:
            report.problems.append(f"{run}: {org}/{model} is not a catalogued base or instruct model")
            continue
        metrics = _read_metrics(run)
        if metrics["status"] != "ok":
            report.problems.append(f"{run}: zero-shot baseline not imported: {metrics['error']}")
            continue
        base, checkpoint = found
        save_baseline(
            into,
            benchmark=bench,
            base_model=base,
            score=metrics["score"],
            checkpoint=checkpoint,
            extra={"source": str(run)},
        )
        report.baselines += 1


def _import_run(run: Path, into: Path, method: _Method, bench: str, model: str, job: int) -> None:
    if bench not in BENCHMARKS:
        raise ValueError(f"unknown benchmark id {bench!r}")
    base = BASE_MODELS.get(model)
    if base is None:
        raise ValueError(f"unknown base model {model!r}")
    spec = RunSpec(
        agent=method.agent,
        agent_config=method.config,
        base_model=base.hub_id,
        benchmark=bench,
        hours=method.hours,
        repeat=method.repeat,
        suffix=method.suffix,
        protocol="ptb-v1",  # scored by the reference's evaluation, never ranked with ours
    )
    metrics = _read_metrics(run)
    verdicts = _read_judgement(run)
    final = (
        VerdictStatus.passed
        if all(v.status == VerdictStatus.passed for v in verdicts)
        else VerdictStatus.failed
        if any(v.status == VerdictStatus.failed for v in verdicts)
        else VerdictStatus.not_run
    )
    failure = None if metrics["status"] == "ok" else f"evaluate: {metrics['error']}"
    if failure is None and final != VerdictStatus.passed:
        failure = "verify: " + ", ".join(
            f"{v.gate}={v.status.value}" for v in verdicts if v.status != VerdictStatus.passed
        )
    stamp = datetime.fromtimestamp(run.stat().st_mtime, UTC)
    record = RunRecord(
        run_id=spec.run_id(),
        spec=spec,
        created_at=stamp,
        phases={p: PhaseState(status="done") for p in PHASES},  # done upstream: no result of ours
        verdicts=verdicts,
        required_gates=[v.gate for v in verdicts],
        final_verdict=final,
        metrics=metrics,
        time_used_s=_read_time(run),
        failure=failure,
        imported_from={
            "kind": "upstream",
            "source": str(run.resolve()),
            "upstream_job_id": job,
            "method": method.name,
            "final_model": (run / "final_model").is_dir(),
        },
    )
    paths = run_paths(into, spec, base)
    paths.root.mkdir(parents=True, exist_ok=True)
    for name in COPY_FILES:
        f = run / name
        if f.is_file() and not f.is_symlink() and f.stat().st_size <= MAX_COPY_BYTES:
            shutil.copy2(f, paths.root / name)
    save_record(paths.run_json, record)


def import_baseline_grid(grid_csv: Path, into: Path) -> tuple[int, list[str]]:
    """Zero-shot baselines from a published grid (rows: base *and* instruct models) -> baseline.json
    files. Returns (written, problems)."""
    import csv

    written, problems = 0, []
    with open(grid_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:1] != ["model"]:
        return 0, [f"{grid_csv}: not a model x benchmark grid (header must start with 'model')"]
    benches = rows[0][1:]
    for n, line in enumerate(rows[1:], 2):
        if not line:
            continue
        found = _model_by_name(line[0])
        if found is None:
            problems.append(f"{grid_csv}:{n}: {line[0]!r} is not a catalogued base or instruct model")
            continue
        base, checkpoint = found
        for bench, cell in zip(benches, line[1:]):
            if bench not in BENCHMARKS:
                problems.append(f"{grid_csv}:{n}: unknown benchmark column {bench!r}")
                continue
            try:
                value = float(cell)
                if not math.isfinite(value):
                    raise ValueError
            except ValueError:
                problems.append(f"{grid_csv}:{n}: {line[0]}/{bench} is not a number ({cell!r})")
                continue
            save_baseline(
                into,
                benchmark=bench,
                base_model=base,
                score=value,
                checkpoint=checkpoint,
                extra={"source": str(grid_csv)},
            )
            written += 1
    return written, problems
