"""Sync errors as a spreadsheet (CSV) or JSON, and back: what ``dmsync errors export`` writes.

One row per error with the columns of :data:`COLUMNS` (Marketo's Sync Errors export has the
same core: operation, direction, code, message, attempts, first and last seen). Times are
ISO-8601 UTC. Reading an export back gives the same rows (:func:`read_csv`, :func:`read_json`),
so a file can be filtered in a spreadsheet and fed back to scripts.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@`` (and tab or carriage return)
as a formula, and an error message can carry text from a record anyone could have typed; such a
cell is written with a leading ``'`` (which spreadsheets show as text), and so is a value that
starts with ``'`` itself, so :func:`read_csv` can strip exactly one and give the value back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from shared.state.sync_errors import SyncError

COLUMNS = (
    "instance",
    "entity",
    "direction",
    "operation",
    "dynamics_id",
    "marketo_id",
    "code",
    "message",
    "attempts",
    "first_seen",
    "last_seen",
    "next_retry_at",
    "resolved",
    "resolved_at",
)
"""The export's columns, in order."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def export_row(error: SyncError) -> dict[str, Any]:
    """One error as a flat row (JSON types: ``attempts`` int, ``resolved`` bool, times ISO)."""
    return {
        "instance": error.stream.instance_id,
        "entity": error.stream.entity,
        "direction": error.stream.direction.value,
        "operation": error.operation,
        "dynamics_id": error.dynamics_id,
        "marketo_id": error.marketo_id,
        "code": error.code,
        "message": error.message,
        "attempts": error.attempts,
        "first_seen": error.first_seen.isoformat(),
        "last_seen": error.last_seen.isoformat(),
        "next_retry_at": error.next_retry_at.isoformat() if error.next_retry_at else None,
        "resolved": error.resolved,
        "resolved_at": error.resolved_at.isoformat() if error.resolved_at else None,
    }


def write_json(errors: Iterable[SyncError]) -> str:
    """A JSON array of rows."""
    return json.dumps([export_row(e) for e in errors], indent=2, ensure_ascii=False)


def read_json(text: str) -> list[dict[str, Any]]:
    """The rows of a JSON export."""
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("a sync error export is a JSON array")
    return [{column: row.get(column) for column in COLUMNS} for row in rows]


def write_csv(errors: Iterable[SyncError]) -> str:
    """A CSV file with a header row (RFC 4180 quoting, ``\\r\\n`` line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for error in errors:
        row = export_row(error)
        writer.writerow([_cell(row[column]) for column in COLUMNS])
    return out.getvalue()


def read_csv(text: str) -> list[dict[str, Any]]:
    """The rows of a CSV export, with the JSON export's types."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"a sync error export starts with the header {','.join(COLUMNS)}")
    return [
        _typed(dict(zip(COLUMNS, (_uncell(c) for c in cells), strict=True))) for cells in reader
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def _typed(row: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {
        column: (value if value != "" else None) for column, value in row.items()
    }
    typed["attempts"] = int(row["attempts"])
    typed["resolved"] = row["resolved"] == "true"
    for text_column in ("operation", "code", "message"):
        typed[text_column] = row[text_column]
    return typed


def rows_of(errors: Sequence[SyncError]) -> list[dict[str, Any]]:
    """The rows an export of ``errors`` holds (what reading it back must give)."""
    return [export_row(e) for e in errors]
