"""The SQLite index of a results folder (``results.db``), rebuilt from the run folders.

Run folders are the source of truth; the index is a cache that makes a 10,000-run leaderboard
interactive. :func:`refresh` walks the folder, re-reads only the ``run.json`` / ``baseline.json``
files whose size or mtime changed, drops rows of folders that are gone, and records every file
it could not use (with the path and the cause) in ``problems``. ``ptb index --full`` throws the
cache away and reads everything again.

Schema changes are migrations (``MIGRATIONS``), applied in order inside a transaction and
tracked in ``PRAGMA user_version``; an index written by a newer ptb is refused, not guessed at.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ..benchmarks import get_benchmark
from ..catalog import UnknownNameError, get_base_model
from .store import RecordError, load_record
from .summary import RunSummary, summarize

DB_NAME = "results.db"
BASELINE_GROUP = "baseline_zeroshot"

# Each entry moves the schema from version i to i + 1. Never edit a released entry: add one.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs, baselines, problems
    """
    CREATE TABLE runs (
        path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
        summary TEXT NOT NULL,
        run_id TEXT, source TEXT, agent TEXT, agent_config TEXT, hours REAL, suffix TEXT,
        benchmark TEXT, base_model TEXT, repeat INTEGER, created_at TEXT, completed INTEGER,
        final_verdict TEXT, failure TEXT, raw_score REAL, time_used_s REAL
    );
    CREATE INDEX runs_cell ON runs (agent, agent_config, benchmark, base_model, repeat);
    CREATE TABLE baselines (
        path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
        benchmark TEXT NOT NULL, base_model TEXT NOT NULL, checkpoint TEXT NOT NULL,
        eval_limit INTEGER, score REAL
    );
    CREATE TABLE problems (
        path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, cause TEXT NOT NULL
    );
    """,
    # 2: token and cost columns (the summary JSON already had them; now they are queryable)
    """
    ALTER TABLE runs ADD COLUMN input_tokens INTEGER;
    ALTER TABLE runs ADD COLUMN output_tokens INTEGER;
    ALTER TABLE runs ADD COLUMN cost_usd REAL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class ResultsIndexError(RuntimeError):
    """The index cannot be used (written by a newer ptb, or not a database)."""


@dataclass
class Baseline:
    """A zero-shot score of a base model (``checkpoint='base'``) or its instruct model."""

    benchmark: str
    base_model: str
    checkpoint: str
    eval_limit: int | None
    score: float | None


@dataclass
class RefreshStats:
    """What one refresh did."""

    scanned: int = 0
    parsed: int = 0
    removed: int = 0
    problems: int = 0


@dataclass
class IndexContents:
    """Everything the leaderboard needs, read back from the index."""

    runs: list[RunSummary] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ResultsIndexError(
            f"index schema v{version} is newer than this ptb's v{SCHEMA_VERSION}; rebuild it with `ptb index --full`"
        )
    for i in range(version, SCHEMA_VERSION):
        with conn:  # one transaction per migration
            conn.executescript(f"BEGIN; {MIGRATIONS[i]} PRAGMA user_version = {i + 1}; COMMIT;")


def index_location(root: Path, cache_dir: Path, *, in_tree: bool = True) -> Path:
    """Where the index of ``root`` lives: ``ROOT/results.db`` when the results folder can be
    written (and ``in_tree``), else (a published, read-only results tree, or a reader that must
    not write into it: ``ptb view``) a file in ``cache_dir`` named by the folder's real path, so
    that ranking a tree never needs to write into it. Raises :class:`ResultsIndexError` when
    ``root`` is not a folder (a typo must not create one)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsIndexError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    db = root / DB_NAME
    writable = os.access(db, os.W_OK) if db.exists() else os.access(root, os.W_OK | os.X_OK)
    if writable and in_tree:
        return db
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / "results-index" / f"{key}.db"


@contextmanager
def open_index(root: Path, *, db_path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """Open (creating and migrating as needed) the index of ``root``."""
    path = Path(db_path) if db_path else Path(root) / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        _migrate(conn)
        yield conn
    except sqlite3.DatabaseError as exc:
        raise ResultsIndexError(f"{path}: not a usable index ({exc}); delete it or run `ptb index --full`") from exc
    finally:
        conn.close()


def _walk(root: Path) -> Iterator[tuple[str, str, os.stat_result | None]]:
    """(relative run-folder path, its run.json path, its stat or None) for every folder two
    levels down. Plain ``os`` calls: this runs over every folder on every refresh."""
    try:
        groups = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for g in groups:
        if not g.is_dir() or g.name.startswith((".", "_")) or g.name == BASELINE_GROUP:
            continue
        for r in sorted(os.scandir(g.path), key=lambda e: e.name):
            if not r.is_dir() or r.name.startswith((".", "_")):
                continue
            rj = os.path.join(r.path, "run.json")
            try:
                st = os.stat(rj)
            except (FileNotFoundError, NotADirectoryError):
                st = None
            yield f"{g.name}/{r.name}", rj, st


def read_summary(run_json: Path, rel: str) -> RunSummary:
    """Read and check one run: RecordError for anything the leaderboard must not use."""
    record = load_record(run_json)
    m = record.metrics  # a score that is not a finite number does not load (RunMetrics)
    if m is not None and m.status == "ok" and m.score is None:
        raise RecordError(f"{run_json}: metrics.score is not a finite number (None)")
    try:
        get_benchmark(record.spec.benchmark)
        get_base_model(record.spec.base_model)
    except UnknownNameError as exc:
        raise RecordError(f"{run_json}: {exc}") from None
    return summarize(record, rel)


def read_baseline(path: Path) -> Baseline:
    """Read one ``baseline.json``; RecordError with the path on any problem."""
    try:
        b = json.loads(path.read_text(encoding="utf-8"))
        score = b.get("score")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score)
        ):
            raise ValueError(f"score is not a finite number ({score!r})")
        return Baseline(
            benchmark=str(b["benchmark"]),
            base_model=str(b["base_model"]),
            checkpoint=str(b.get("checkpoint", "base")),
            eval_limit=b.get("limit"),
            score=None if score is None else float(score),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecordError(f"{path}: unreadable baseline ({exc})") from None


def refresh(root: Path, *, full: bool = False, db_path: Path | None = None) -> RefreshStats:
    """Bring the index of ``root`` up to date with its run folders (see module doc)."""
    root = Path(root)
    stats = RefreshStats()
    with open_index(root, db_path=db_path) as conn, conn:
        if full:
            conn.execute("DELETE FROM runs")
            conn.execute("DELETE FROM baselines")
            conn.execute("DELETE FROM problems")
        known = {p: (m, s) for p, m, s in conn.execute("SELECT path, mtime_ns, size FROM runs")}
        known_b = {p: (m, s) for p, m, s in conn.execute("SELECT path, mtime_ns, size FROM baselines")}
        known_p = {p: (m, s) for p, m, s in conn.execute("SELECT path, mtime_ns, size FROM problems")}
        seen: set[str] = set()
        seen_b: set[str] = set()

        def problem(rel: str, st: os.stat_result | None, cause: str) -> None:
            conn.execute("DELETE FROM runs WHERE path = ?", (rel,))
            conn.execute("DELETE FROM baselines WHERE path = ?", (rel,))
            conn.execute(
                "INSERT OR REPLACE INTO problems VALUES (?, ?, ?, ?)",
                (rel, st.st_mtime_ns if st else None, st.st_size if st else None, cause),
            )
            stats.problems += 1

        for rel, rj, st in _walk(root):
            stats.scanned += 1
            seen.add(rel)
            if st is None:
                problem(rel, None, f"{root / rel}: no run.json (not a run folder, or a run that never started)")
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            if known.get(rel) == stamp or known_p.get(rel) == stamp:
                continue
            stats.parsed += 1
            try:
                s = read_summary(Path(rj), rel)
            except RecordError as exc:
                problem(rel, st, str(exc))
                continue
            conn.execute("DELETE FROM problems WHERE path = ?", (rel,))
            conn.execute(
                "INSERT OR REPLACE INTO runs (path, mtime_ns, size, summary, run_id, source, agent, agent_config,"
                " hours, suffix, benchmark, base_model, repeat, created_at, completed, final_verdict, failure,"
                " raw_score, time_used_s, input_tokens, output_tokens, cost_usd)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rel,
                    *stamp,
                    s.model_dump_json(),
                    s.run_id,
                    s.source,
                    s.agent,
                    s.agent_config,
                    s.hours,
                    s.suffix,
                    s.benchmark,
                    s.base_model,
                    s.repeat,
                    s.created_at.isoformat(),
                    int(s.completed),
                    s.final_verdict,
                    s.failure,
                    s.raw_score,
                    s.time_used_s,
                    s.input_tokens,
                    s.output_tokens,
                    s.cost_usd,
                ),
            )
        for bj in sorted((root / BASELINE_GROUP).glob("*/baseline.json")):
            rel = bj.parent.relative_to(root).as_posix()
            seen_b.add(rel)
            st = bj.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if known_b.get(rel) == stamp or known_p.get(rel) == stamp:
                continue
            stats.parsed += 1
            try:
                b = read_baseline(bj)
            except RecordError as exc:
                problem(rel, st, str(exc))
                continue
            conn.execute("DELETE FROM problems WHERE path = ?", (rel,))
            conn.execute(
                "INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?,?,?,?)",
                (rel, *stamp, b.benchmark, b.base_model, b.checkpoint, b.eval_limit, b.score),
            )
        for table, keep in (("runs", seen), ("baselines", seen_b), ("problems", seen | seen_b)):
            gone = [p for (p,) in conn.execute(f"SELECT path FROM {table}") if p not in keep]
            conn.executemany(f"DELETE FROM {table} WHERE path = ?", [(p,) for p in gone])
            stats.removed += len(gone) if table != "problems" else 0
    return stats


def read_index(root: Path, *, db_path: Path | None = None) -> IndexContents:
    """Everything in the index (call :func:`refresh` first to bring it up to date)."""
    out = IndexContents()
    with open_index(root, db_path=db_path) as conn:
        for (blob,) in conn.execute("SELECT summary FROM runs ORDER BY path"):
            try:
                out.runs.append(RunSummary.model_validate_json(blob))
            except ValidationError:  # written by an older ptb: the next --full refresh fixes it
                out.problems.append(("(index)", "stale summary row; run `ptb index --full`"))
        out.baselines = [
            Baseline(b, m, c, lim, s)
            for b, m, c, lim, s in conn.execute(
                "SELECT benchmark, base_model, checkpoint, eval_limit, score FROM baselines ORDER BY path"
            )
        ]
        out.problems += [(p, c) for p, c in conn.execute("SELECT path, cause FROM problems ORDER BY path")]
    return out
