"""Building and reading the CSV files of a bulk lead import (reference B.7).

The first row names the REST API fields; every other row is one lead. Values are written with
the ``csv`` module (RFC 4180 quoting), so commas, quotes and line breaks inside a value survive;
nothing is concatenated by hand. A file stays under the 10 MB bulk limit: rows are split across
files, each with its own header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.marketo.encoding import MAX_BULK_BODY_BYTES
from shared.marketo.models import ImportRowProblem

MULTIPART_ALLOWANCE = 4_096
"""Bytes kept free under the 10 MB limit for the multipart envelope around the file."""
MAX_FILE_BYTES = MAX_BULK_BODY_BYTES - MULTIPART_ALLOWANCE


@dataclass(frozen=True)
class ImportFile:
    """One CSV file and which input rows (by position) it holds."""

    content: bytes
    rows: range


def csv_value(value: Any) -> str:
    """How one value is written: empty for ``None``, ``true``/``false``, ISO 8601 dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _line(values: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _check_columns(columns: Sequence[str]) -> None:
    if not columns or any(not c or not c.strip() for c in columns):
        raise ValueError("an import needs at least one column, and no column name may be blank")
    if len(set(columns)) != len(columns):
        raise ValueError("import column names must be unique")


def build_import_files(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[ImportFile]:
    """CSV files holding ``rows`` in order, each ≤ ``max_bytes`` with the header repeated.

    Raises:
        ValueError: a row has a key that is not a column (it would be silently dropped), or a
            single row cannot fit in a file.
    """
    _check_columns(columns)
    known = set(columns)
    header = _line(list(columns))
    files: list[ImportFile] = []
    chunk: list[bytes] = []
    first = 0
    size = len(header)
    for index, row in enumerate(rows):
        unknown = set(row) - known
        if unknown:
            raise ValueError(
                f"row {index} has fields that are not import columns: {sorted(unknown)}"
            )
        line = _line([csv_value(row.get(c)) for c in columns])
        if len(header) + len(line) > max_bytes:
            raise ValueError(f"row {index} alone is larger than the {max_bytes}-byte file limit")
        if size + len(line) > max_bytes:
            files.append(ImportFile(header + b"".join(chunk), range(first, index)))
            chunk, first, size = [], index, len(header)
        chunk.append(line)
        size += len(line)
    if chunk:
        files.append(ImportFile(header + b"".join(chunk), range(first, len(rows))))
    return files


def parse_problem_file(text: str) -> list[ImportRowProblem]:
    """Rows of a failures or warnings file: the submitted columns plus a last, appended column
    with Marketo's description (DEV bulk-lead-import.md "Failures")."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return []
    problems: list[ImportRowProblem] = []
    for values in reader:
        if not values:
            continue
        row = dict(zip(header[:-1], values[:-1], strict=False))
        problems.append(ImportRowProblem(row=row, message=values[-1]))
    return problems
