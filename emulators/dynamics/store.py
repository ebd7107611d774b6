"""In-memory rows, a database-wide row version, a change log and all-or-nothing transactions.

Every change takes the next value of one counter shared by all tables, as SQL Server's
rowversion does; that value is the row's ``versionnumber`` and its ETag (reference §2). The
per-table change log (version, id, deleted?) is what change tracking reads (``changetracking.py``).
A transaction keeps an undo list, so a change set that fails is rolled back whole (reference §3).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from emulators.dynamics.errors import duplicate_key
from emulators.dynamics.schema import Table

FIRST_VERSION = 900_000  # doc samples show six- to eleven-digit version numbers


@dataclass(slots=True)
class Record:
    """One row: JSON-ready values (lookups under ``_<name>_value``) and each lookup's target."""

    values: dict[str, Any]
    targets: dict[str, str] = field(default_factory=dict)
    version: int = 0

    def copy(self) -> Record:
        """A shallow copy safe to modify."""
        return Record(dict(self.values), dict(self.targets), self.version)


def normalize_key_value(value: Any) -> Any:
    """Key comparison is case-insensitive for text, as Dataverse's SQL collation is."""
    return value.casefold() if isinstance(value, str) else value


class TableData:
    """The rows of one table, ordered by primary key, with its change log and key indexes."""

    def __init__(self, table: Table, references: References | None = None) -> None:
        self.table = table
        self.references: References = references if references is not None else {}
        """Shared across tables: row id → (table, referring row id, lookup property) triples."""
        self.rows: dict[str, Record] = {}
        self.order: list[str] = []
        self.log_versions: list[int] = []
        self.log_ids: list[str] = []
        self.log_deleted: list[bool] = []
        self.key_index: dict[tuple[str, ...], dict[tuple[Any, ...], str]] = {
            key: {} for key in table.alternate_keys
        }

    def key_values(self, key: tuple[str, ...], record: Record) -> tuple[Any, ...] | None:
        """The record's values for an alternate key, or None when any part is empty."""
        values = tuple(normalize_key_value(record.values.get(name)) for name in key)
        return None if any(v is None for v in values) else values

    def find_by_key(self, key: tuple[str, ...], values: tuple[Any, ...]) -> str | None:
        """The id of the row whose alternate key has these values."""
        index = self.key_index.get(key)
        if index is None:
            return None
        return index.get(tuple(normalize_key_value(v) for v in values))

    def _check_keys(self, record_id: str, record: Record) -> None:
        for key, index in self.key_index.items():
            values = self.key_values(key, record)
            if values is not None and index.get(values, record_id) != record_id:
                raise duplicate_key()

    def _index(self, record_id: str, record: Record) -> None:
        for key, index in self.key_index.items():
            values = self.key_values(key, record)
            if values is not None:
                index[values] = record_id

    def _unindex(self, record: Record) -> None:
        for key, index in self.key_index.items():
            values = self.key_values(key, record)
            if values is not None:
                index.pop(values, None)

    def _log(self, version: int, record_id: str, deleted: bool) -> None:
        self.log_versions.append(version)
        self.log_ids.append(record_id)
        self.log_deleted.append(deleted)

    def _truncate_log(self, length: int) -> None:
        del self.log_versions[length:]
        del self.log_ids[length:]
        del self.log_deleted[length:]

    def _reference(self, record_id: str, record: Record, add: bool) -> None:
        logical = self.table.logical_name
        for name in record.targets:
            target_id = record.values.get(name)
            if not isinstance(target_id, str):
                continue
            entry = (logical, record_id, name)
            if add:
                self.references.setdefault(target_id, set()).add(entry)
            else:
                referrers = self.references.get(target_id)
                if referrers is not None:
                    referrers.discard(entry)
                    if not referrers:
                        del self.references[target_id]

    def _put(self, record_id: str, record: Record | None) -> None:
        """Set or remove a row without logging (used by undo)."""
        old = self.rows.get(record_id)
        if old is not None:
            self._unindex(old)
            self._reference(record_id, old, add=False)
        if record is None:
            if old is not None:
                del self.rows[record_id]
                position = bisect.bisect_left(self.order, record_id)
                del self.order[position]
            return
        if old is None:
            bisect.insort(self.order, record_id)
        self.rows[record_id] = record
        self._index(record_id, record)
        self._reference(record_id, record, add=True)


References = dict[str, set[tuple[str, str, str]]]


@dataclass
class _Undo:
    data: TableData
    record_id: str
    previous: Record | None
    log_length: int


class Database:
    """All tables of one environment plus the shared version counter."""

    def __init__(self, tables: dict[str, Table], first_version: int = FIRST_VERSION) -> None:
        self.tables = tables
        self.references: References = {}
        self.data: dict[str, TableData] = {
            name: TableData(t, self.references) for name, t in tables.items()
        }
        self.by_set: dict[str, TableData] = {t.entity_set: self.data[n] for n, t in tables.items()}
        self._version = first_version
        self.version_floor = 0
        """Delta tokens with a version below this are expired (forced expiry, environment copy)."""
        self._undo: list[_Undo] | None = None

    @property
    def current_version(self) -> int:
        """The latest version handed out (a delta token's high-water mark)."""
        return self._version

    def next_version(self) -> int:
        """Take the next row version."""
        self._version += 1
        return self._version

    def bump_version_to(self, version: int) -> None:
        """Make the counter continue above ``version``."""
        self._version = max(self._version, version)

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside succeed together or are undone together (nesting joins the outer)."""
        if self._undo is not None:
            yield
            return
        self._undo = []
        try:
            yield
        except BaseException:
            for undo in reversed(self._undo):
                undo.data._put(undo.record_id, undo.previous)
                undo.data._truncate_log(undo.log_length)
            raise
        finally:
            self._undo = None

    def _remember(self, data: TableData, record_id: str) -> None:
        if self._undo is not None:
            self._undo.append(
                _Undo(data, record_id, data.rows.get(record_id), len(data.log_versions))
            )

    # -- changes --------------------------------------------------------------------------------

    def write(self, data: TableData, record_id: str, record: Record) -> Record:
        """Insert or replace a row with a new version; 412 on an alternate-key clash."""
        data._check_keys(record_id, record)
        self._remember(data, record_id)
        record.version = self.next_version()
        record.values["versionnumber"] = record.version
        data._put(record_id, record)
        data._log(record.version, record_id, deleted=False)
        return record

    def remove(self, data: TableData, record_id: str) -> None:
        """Delete a row and log the delete."""
        self._remember(data, record_id)
        data._put(record_id, None)
        data._log(self.next_version(), record_id, deleted=True)

    def load(self, data: TableData, records: dict[str, Record]) -> None:
        """Bulk-insert rows (seeding, direct writes): one version each, keys checked, no undo."""
        for record_id, record in records.items():
            data._check_keys(record_id, record)
            record.version = self.next_version()
            record.values["versionnumber"] = record.version
            if record_id not in data.rows:
                data.order.append(record_id)
            else:
                data._unindex(data.rows[record_id])
                data._reference(record_id, data.rows[record_id], add=False)
            data.rows[record_id] = record
            data._index(record_id, record)
            data._reference(record_id, record, add=True)
            data._log(record.version, record_id, deleted=False)
        data.order.sort()
        # ``order`` may hold duplicates if a loaded id already existed; dedupe cheaply.
        if len(data.order) != len(data.rows):
            data.order = sorted(data.rows)

    def clear(self) -> None:
        """Drop every row and every change log (a reset or an environment copy)."""
        self.references = {}
        self.data = {name: TableData(t, self.references) for name, t in self.tables.items()}
        self.by_set = {t.entity_set: self.data[n] for n, t in self.tables.items()}
