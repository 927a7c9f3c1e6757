"""Observed audit gate: the kernel's account of the solve (``observed.jsonl``, written by
``sandbox.observer``) under the trace audit's rules, and compared with the CLI's trace.

The log's records become plain lines read with every rule of :mod:`.trace_audit` (forbidden
checkpoints, test-data downloads, foreign LLM hosts, solution lookups, secret reads):

- each process the sandbox exec'd: its argv (the agent CLI the harness started is skipped: its
  argv is the harness's, e.g. a prompt that names the forbidden checkpoints);
- each request through the egress proxy: method, target and path (denied ones included: an
  attempt is a finding);
- each file written: its path; a write to a harness file (the manifest) is ``tampering``.

Verdict: ``fail`` with any finding; ``not_run`` when there is no log, the observer could not
run (no root, old kernel), or the log is incomplete (kernel events lost); else ``pass``.

The comparison with the trace is *evidence*, not a failure: the commands the log shows that
the trace never mentions (no token of their argv in any tool input, log line or raw fragment)
are listed for the judge. Tool processes the CLI reports only as a summary, interpreters started
by a script, and the CLI's own helpers are normal there; a background process that downloads a
forbidden checkpoint fails through the rules above, reported or not.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..domain import Verdict, VerdictStatus
from ..trace import Trace, TraceStep, load_trace
from ._common import guarded, not_run, short_list, verdict, write_evidence
from .contamination.scan import OBSERVED_ARGV, TRACE_INPUTS
from .trace_audit import AuditPolicy, Finding, audit_trace

GATE = "observed_audit"
_MAX_UNREPORTED = 200
#: Programs whose runs say nothing by themselves (shells, coreutils a tool call is made of).
_TRIVIAL = {"sh", "bash", "dash", "env", "setpriv", "true", "false", "sleep", "cat", "ls", "echo", "test", "["}


def load_observed(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, records) of an ``observed.jsonl``; a line that is not a JSON object is an error."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]
    if not rows or not isinstance(rows[0], dict) or rows[0].get("kind") != "observer":
        raise ValueError("first line is not the observer's header")
    if not all(isinstance(r, dict) for r in rows):
        raise ValueError("a record is not a JSON object")
    return rows[0], rows[1:]


def observer_ran(path: Path) -> bool:
    """Whether the log at ``path`` exists and says the observer ran (False: absent or unavailable)."""
    try:
        header, _ = load_observed(path)
    except (OSError, ValueError):
        return Path(path).is_file()  # a log that exists but cannot be read: required, and not_run
    return header.get("available") is not False


def _is_harness(argv: list[str], harness_argv: list[str]) -> bool:
    return bool(harness_argv) and argv[-len(harness_argv) :] == harness_argv


def as_trace(header: Mapping[str, Any], records: list[dict[str, Any]]) -> tuple[Trace, dict[int, dict[str, Any]]]:
    """The records as a trace of ``log`` steps (what the audit reads), and step -> record."""
    harness = [str(a) for a in header.get("harness_argv") or []]
    steps: list[TraceStep] = []
    source: dict[int, dict[str, Any]] = {}
    for rec in records:
        kind = rec.get("kind")
        if kind == "exec" and rec.get("argv") and not _is_harness(rec["argv"], harness):
            text = shlex.join(str(a) for a in rec["argv"])
        elif kind == "net":
            text = f"{rec.get('method', '')} {rec.get('target', '')} {rec.get('detail', '')}".strip()
        elif kind == "write":
            text = f"write {rec.get('path', '')}"
        else:
            continue
        source[len(steps)] = rec
        steps.append(TraceStep(index=len(steps), role="log", text=text))
    return Trace(agent="observer", source="observed.jsonl", steps=steps), source


def _tokens(argv: list[str]) -> list[str]:
    """Words of an argv that a trace mentioning the command would hold."""
    out = []
    for a in argv:
        if a.startswith("-") or len(a) < 4:
            continue
        out.append(a)
        if "/" in a:
            out.append(os.path.basename(a.rstrip("/")))
    return [t for t in out if len(t) >= 4]


def unreported(records: list[dict[str, Any]], trace: Trace | None, harness_argv: list[str]) -> list[dict[str, Any]]:
    """Exec records whose command the trace never mentions (no argv word in any trace text)."""
    if trace is None:
        return []
    corpus = "\n".join(text for _, text in trace.iter_text())
    out = []
    for rec in records:
        argv = [str(a) for a in rec.get("argv") or []]
        if rec.get("kind") != "exec" or not argv or _is_harness(argv, harness_argv):
            continue
        if os.path.basename(argv[0]) in _TRIVIAL and len(argv) == 1:
            continue
        words = [w for w in _tokens(argv[1:] or argv) if os.path.basename(w) not in _TRIVIAL]
        if words and not any(w in corpus for w in words):
            out.append({"pid": rec.get("pid"), "ppid": rec.get("ppid"), "argv": argv[:20], "cwd": rec.get("cwd")})
    return out


@guarded(GATE)
def check_observed(
    log_path: Path | None,
    policy: AuditPolicy,
    evidence_dir: Path | None = None,
    *,
    trace_path: Path | None = None,
    workspace: Path | None = None,
    harness_files: Mapping[str, str] | None = None,
) -> Verdict:
    """Audit the independent log at ``log_path``; findings -> fail, incomplete -> not_run."""
    if log_path is None or not Path(log_path).is_file():
        return not_run(GATE, "no independent log of the solve (observed.jsonl)")
    header, records = load_observed(Path(log_path))
    if header.get("available") is False:
        return not_run(GATE, f"the observer could not run: {header.get('reason', '?')}")
    trace, source = as_trace(header, records)
    findings: list[Finding] = audit_trace(trace, policy)
    if workspace is not None and harness_files:
        protected = {os.path.join(str(workspace), rel): rel for rel in harness_files}
        for i, rec in source.items():
            if rec.get("kind") == "write" and rec.get("path") in protected:
                findings.append(Finding(i, "tampering", f"harness file {protected[rec['path']]} written", rec["path"]))
    cli_trace = load_trace(trace_path) if trace_path is not None and Path(trace_path).is_file() else None
    harness = [str(a) for a in header.get("harness_argv") or []]
    missing = unreported(records, cli_trace, harness)
    lost = {k: header.get(k, 0) for k in ("lost_proc_events", "lost_file_events", "execs_unread")}
    report = {
        "gate": GATE,
        "log": str(log_path),
        "complete": header.get("complete"),
        "errors": header.get("errors", []),
        **lost,
        "execs": sum(1 for r in records if r.get("kind") == "exec"),
        "writes": sum(1 for r in records if r.get("kind") == "write"),
        "deleted_after_write": sum(1 for r in records if r.get("kind") == "write" and r.get("deleted")),
        "requests": sum(1 for r in records if r.get("kind") == "net"),
        "findings": [asdict(f) | {"record": source.get(f.step)} for f in findings],
        "unreported_commands": missing[:_MAX_UNREPORTED],
        "unreported_total": len(missing),
        "trace_compared": cli_trace is not None,
    }
    ev = write_evidence(evidence_dir, GATE, report)
    if findings:
        shown = [f"{f.category} ({f.rule})" for f in findings]
        return verdict(GATE, VerdictStatus.failed, f"{len(findings)} findings in what ran: {short_list(shown, 4)}", ev)
    note = f"; {len(missing)} commands the trace never mentions (evidence)" if missing else ""
    if not header.get("complete"):
        why = ", ".join(f"{k}={v}" for k, v in lost.items() if v) or "; ".join(header.get("errors", []))[:200]
        return not_run(GATE, f"independent log incomplete ({why}): no finding in what was seen{note}", ev)
    return verdict(
        GATE,
        VerdictStatus.passed,
        f"no finding in {report['execs']} processes, {report['writes']} file writes, "
        f"{report['requests']} requests{note}",
        ev,
    )


def agent_inputs(trace_path: Path | None, observed_log: Path | None) -> list[tuple[str, bytes]]:
    """What the agent *typed*, as texts for the contamination scan: every tool-call input of the
    trace (a heredoc, a ``python -c``, a file written by an edit tool) and every argv the sandbox
    exec'd (the harness's own command line left out). Test items an agent writes from memory
    into a command and trains on in memory leave no file; they are here. Tool *outputs* and log
    lines are not read (an honest ``cat task/dev.jsonl`` prints dev items)."""
    out: list[tuple[str, bytes]] = []
    if trace_path is not None and Path(trace_path).is_file():
        try:
            trace = load_trace(trace_path)
        except Exception:  # noqa: BLE001 - an unreadable trace is the trace audit's not_run
            trace = None
        if trace is not None:
            calls = []
            for s in trace.steps:
                for c in s.tool_calls:
                    if isinstance(c.input, str):
                        calls.append(c.input)
                    elif isinstance(c.input, dict):
                        calls += [v if isinstance(v, str) else json.dumps(v) for v in c.input.values() if v is not None]
                    elif c.input is not None:
                        calls.append(json.dumps(c.input))
            if calls:
                out.append((TRACE_INPUTS, "\n".join(calls).encode()))
    if observed_log is not None and Path(observed_log).is_file():
        try:
            header, records = load_observed(observed_log)
        except (OSError, ValueError):
            return out
        harness = [str(a) for a in header.get("harness_argv") or []]
        argvs = [
            shlex.join(str(a) for a in rec["argv"])
            for rec in records
            if rec.get("kind") == "exec" and rec.get("argv") and not _is_harness(rec["argv"], harness)
        ]
        if argvs:
            out.append((OBSERVED_ARGV, "\n".join(argvs).encode()))
    return out
