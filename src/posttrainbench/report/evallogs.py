"""A run's Inspect evaluation logs: each log's header (status, metrics, counts), the command that
opens it in ``inspect view``, and its samples a page at a time (prompt, reply, target, every
score with its answer and the grader's explanation).

Logs are read with Inspect's own reader (``inspect_ai.log``). A log that cannot be read is shown
as such, never raised. Samples are streamed (``read_eval_log_samples``): a page never loads a
whole log; a ``.json`` log (one document, read whole) larger than :data:`MAX_JSON_LOG_BYTES` is
not opened.
"""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

MAX_LOGS = 50  # logs listed per run (the ladder writes one per attempt)
SAMPLES_PER_PAGE = 50
MAX_JSON_LOG_BYTES = 50 * 2**20
MAX_FIELD = 20_000  # characters of one prompt, reply or explanation shown


def _clip(text: str, limit: int = MAX_FIELD) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit:,} more characters not shown]"


class EvalLogItem(NamedTuple):
    """One Inspect log of a run: where it is, how to open it, what its header says."""

    name: str
    path: str
    command: str  # `inspect view --log-dir DIR`
    status: str  # the log's status, or "unreadable"
    summary: str  # metrics and sample counts, or why it could not be read
    samples_href: str | None = None  # ``ptb view`` only: its per-sample page


class ScoreView(NamedTuple):
    name: str
    value: str
    answer: str
    explanation: str
    metadata: str  # JSON, "" when none


class SampleView(NamedTuple):
    number: int  # 1-based position in the log
    id: str
    epoch: int
    prompt: str
    reply: str
    target: str
    scores: list[ScoreView]
    error: str


def log_files(run_folder: Path) -> list[Path]:
    """The Inspect logs in the run's ``eval/`` folder, oldest first (at most :data:`MAX_LOGS`)."""
    folder = Path(run_folder) / "eval"
    try:
        files = [p for p in folder.iterdir() if p.suffix in (".eval", ".json") and p.is_file() and not p.is_symlink()]
    except OSError:
        return []
    return sorted(files, key=lambda p: p.name)[:MAX_LOGS]


def _too_big(path: Path) -> bool:
    return path.suffix == ".json" and path.stat().st_size > MAX_JSON_LOG_BYTES


def _summary(path: Path) -> tuple[str, str]:
    from inspect_ai.log import read_eval_log

    if _too_big(path):
        return "unreadable", f"a JSON log of {path.stat().st_size / 2**20:.0f} MiB: too large to open here"
    try:
        log = read_eval_log(str(path), header_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable log is shown as such
        return "unreadable", _clip(f"{type(exc).__name__}: {exc}", 500)
    parts = []
    if log.results is not None:
        for score in log.results.scores:
            metrics = ", ".join(f"{name} {m.value:.4g}" for name, m in score.metrics.items())
            parts.append(f"{score.name}: {metrics}" if metrics else score.name)
        parts.append(f"{log.results.completed_samples} of {log.results.total_samples} samples")
    if log.error is not None:
        parts.append(f"error: {_clip(log.error.message, 500)}")
    model = log.eval.model if log.eval else ""
    return str(log.status), "; ".join(parts) + (f" (model {model})" if model else "")


def eval_logs(run_folder: Path) -> list[EvalLogItem]:
    """Every Inspect log of a run with its header summary (see :func:`log_files`)."""
    items = []
    for path in log_files(run_folder):
        status, summary = _summary(path)
        command = f"inspect view --log-dir {shlex.quote(str(path.parent.resolve()))}"
        items.append(EvalLogItem(path.name, str(path.resolve()), command, status, summary))
    return items


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def _prompt(sample: Any) -> str:
    if isinstance(sample.input, str):
        return sample.input
    return "\n\n".join(f"[{m.role}] {m.text}" for m in sample.input)


def read_samples(path: Path, start: int = 0, count: int = SAMPLES_PER_PAGE) -> tuple[list[SampleView], bool]:
    """Samples ``start`` … ``start + count - 1`` of a log (streamed), and whether more follow.
    Raises ``ValueError`` for a log too large to open; Inspect's errors for an unreadable one."""
    from inspect_ai.log import read_eval_log_samples

    if _too_big(path):
        raise ValueError(f"{path.name}: a JSON log of {path.stat().st_size / 2**20:.0f} MiB is too large to open here")
    stream = read_eval_log_samples(str(path), all_samples_required=False, resolve_attachments=True)
    chunk = list(itertools.islice(stream, start, start + count + 1))
    out = []
    for n, s in enumerate(chunk[:count], start + 1):
        scores = [
            ScoreView(
                name=name,
                value=_text(sc.value),
                answer=_clip(_text(sc.answer)),
                explanation=_clip(_text(sc.explanation)),
                metadata=_clip(json.dumps(sc.metadata, indent=2, default=str, ensure_ascii=False))
                if sc.metadata
                else "",
            )
            for name, sc in (s.scores or {}).items()
        ]
        out.append(
            SampleView(
                number=n,
                id=str(s.id),
                epoch=s.epoch,
                prompt=_clip(_prompt(s)),
                reply=_clip(s.output.completion if s.output else ""),
                target=_clip(_text(s.target)),
                scores=scores,
                error=_clip(s.error.message) if s.error else "",
            )
        )
    return out, len(chunk) > count
