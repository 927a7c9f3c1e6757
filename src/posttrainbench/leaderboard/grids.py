"""Model x benchmark grids and their CSV form (the published leaderboard's file format).

A grid CSV has a header ``model,<bench>,<bench>,...`` and one row per model. A cell is either a
float or a :class:`Sentinel`: anything that is not a finite number (``ERR``, ``not stored``, an
empty field, ``nan``...) is kept as a sentinel with its original text, so that a raw grid can be
read, inspected, and written back byte for byte. Floats are written with ``repr`` (shortest text
that reads back to the same float), which is also what the published files use.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

__all__ = [
    "Grid",
    "GridError",
    "GridValue",
    "Sentinel",
    "format_cell",
    "is_number",
    "parse_cell",
    "parse_grid",
    "read_grid",
    "write_grid",
]


@dataclass(frozen=True)
class Sentinel:
    """A non-numeric cell (``ERR``, ``not stored``, empty...), with its original text."""

    text: str

    def __str__(self) -> str:
        return self.text


GridValue = float | Sentinel


def is_number(value: object) -> TypeGuard[float]:
    """True for a finite float/int cell (``bool`` excluded), false for a sentinel or ``None``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


class GridError(ValueError):
    """A malformed grid file; the message names the file, and the row/column where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | str | None = None,
        column: str | None = None,
    ) -> None:
        self.path, self.row, self.column = path, row, column
        where = ", ".join(
            part
            for part in (
                f"file {path}" if path is not None else "",
                f"row {row}" if row is not None else "",
                f"column {column!r}" if column is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


@dataclass
class Grid:
    """A model x benchmark table of cells; row/column order is kept for writing."""

    models: list[str]
    benchmarks: list[str]
    cells: dict[tuple[str, str], GridValue] = field(default_factory=dict)
    index_name: str = "model"

    def __post_init__(self) -> None:
        for name, seq in (("model", self.models), ("benchmark", self.benchmarks)):
            dupes = sorted({x for x in seq if seq.count(x) > 1})
            if dupes:
                raise GridError(f"duplicate {name}(s): {dupes}")
        unknown = [k for k in self.cells if k[0] not in self.models or k[1] not in self.benchmarks]
        if unknown:
            raise GridError(f"cells outside the grid's models/benchmarks: {unknown}")

    def get(self, model: str, benchmark: str) -> GridValue | None:
        """The cell, or ``None`` if it is absent (absent is not the same as a sentinel)."""
        return self.cells.get((model, benchmark))

    def number(self, model: str, benchmark: str) -> float | None:
        """The cell as a float, or ``None`` if it is absent or a sentinel."""
        value = self.cells.get((model, benchmark))
        return float(value) if is_number(value) else None

    def keys(self) -> Iterator[tuple[str, str]]:
        """Every (model, benchmark) position in row-major order, present or not."""
        for model in self.models:
            for bench in self.benchmarks:
                yield model, bench

    @classmethod
    def from_mapping(cls, rows: Mapping[str, Mapping[str, GridValue]], benchmarks: list[str] | None = None) -> Grid:
        """Build from ``{model: {benchmark: value}}`` (columns: first-seen order unless given)."""
        if benchmarks is None:
            benchmarks = []
            for row in rows.values():
                benchmarks.extend(b for b in row if b not in benchmarks)
        cells = {(m, b): v for m, row in rows.items() for b, v in row.items()}
        return cls(list(rows), list(benchmarks), cells)

    def to_mapping(self) -> dict[str, dict[str, GridValue]]:
        """``{model: {benchmark: value}}`` with absent cells left out."""
        return {m: {b: self.cells[(m, b)] for b in self.benchmarks if (m, b) in self.cells} for m in self.models}


def parse_cell(text: str) -> GridValue:
    """A finite float, or a :class:`Sentinel` keeping ``text`` verbatim."""
    try:
        value = float(text)
    except ValueError:
        return Sentinel(text)
    return value if math.isfinite(value) else Sentinel(text)


def format_cell(value: GridValue | None) -> str:
    """Text of a cell: ``repr`` for floats (round-trips exactly), original text for sentinels."""
    if value is None:
        return ""
    if isinstance(value, Sentinel):
        return value.text
    if is_number(value):
        return repr(float(value))
    raise TypeError(f"not a grid value: {value!r}")


def read_grid(path: str | Path, *, index_column: str = "model") -> Grid:
    """Read a grid CSV. Raises :class:`GridError` naming file, row and column on bad shape."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GridError(f"cannot read: {exc}", path=str(path)) from exc
    return parse_grid(text, str(path), index_column=index_column)


def parse_grid(text: str, path: str, *, index_column: str = "model") -> Grid:
    """A grid from CSV text (as :func:`read_grid`); ``path`` names the source in errors."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not any(rows[0]):
        raise GridError("empty file (no header)", path=str(path))
    header = rows[0]
    if header[0] != index_column:
        raise GridError(
            f"first column must be {index_column!r}, got {header[0]!r}",
            path=str(path),
            row=1,
            column=header[0],
        )
    benchmarks = header[1:]
    for col in benchmarks:
        if not col.strip():
            raise GridError("empty benchmark name in header", path=str(path), row=1)
        if benchmarks.count(col) > 1:
            raise GridError("duplicate benchmark column", path=str(path), row=1, column=col)
    models: list[str] = []
    cells: dict[tuple[str, str], GridValue] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # blank line
        model = row[0]
        if not model.strip():
            raise GridError("empty model name", path=str(path), row=lineno, column=index_column)
        if model in models:
            raise GridError(f"duplicate model {model!r}", path=str(path), row=lineno, column=index_column)
        if len(row) != len(header):
            raise GridError(
                f"row for {model!r} has {len(row)} fields, header has {len(header)}",
                path=str(path),
                row=lineno,
                column=header[len(row)] if len(row) < len(header) else None,
            )
        models.append(model)
        for bench, cell in zip(benchmarks, row[1:]):
            cells[(model, bench)] = parse_cell(cell)
    return Grid(models, list(benchmarks), cells, index_name=index_column)


def write_grid(path: str | Path, grid: Grid, *, lineterminator: str = "\r\n") -> None:
    """Write a grid CSV (``\\r\\n`` line ends like the csv module and the published files).

    Absent cells are written as empty fields (they read back as ``Sentinel('')``).
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow([grid.index_name, *grid.benchmarks])
    for model in grid.models:
        writer.writerow([model, *(format_cell(grid.get(model, b)) for b in grid.benchmarks)])
    Path(path).write_text(buf.getvalue(), encoding="utf-8", newline="")
