"""In-memory records with the indexes every lookup needs, so 100k leads stay cheap.

All access happens on the server's event loop thread, so nothing here locks. Records are plain
dicts holding only populated fields (a missing key reads as null); string index keys are
lower-cased (see :func:`emulators.marketo.fields.lookup_key`).
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Iterator
from typing import Any

from emulators.marketo.clock import iso_seconds
from emulators.marketo.fields import FieldDef, lookup_key
from emulators.marketo.schema import LeadSchema, ObjectType

Record = dict[str, Any]


class FieldIndex:
    """Value key → ids of the records holding that value in one field."""

    def __init__(self, field: FieldDef) -> None:
        self.field = field
        self._ids: dict[Any, set[Any]] = {}

    def add(self, value: Any, record_id: Any) -> None:
        """Index ``record_id`` under ``value`` (``None`` is not indexed)."""
        if value is not None:
            self._ids.setdefault(lookup_key(self.field, value), set()).add(record_id)

    def remove(self, value: Any, record_id: Any) -> None:
        """Forget ``record_id`` under ``value``."""
        if value is None:
            return
        key = lookup_key(self.field, value)
        ids = self._ids.get(key)
        if ids is not None:
            ids.discard(record_id)
            if not ids:
                del self._ids[key]

    def find(self, value: Any) -> set[Any]:
        """Ids whose value equals ``value`` (strings ignoring case)."""
        return self._ids.get(lookup_key(self.field, value), set())

    def clear(self) -> None:
        """Drop every entry."""
        self._ids.clear()


class LeadStore:
    """Leads by id, indexed on every searchable field."""

    def __init__(self, schema: LeadSchema, first_id: int = 1001) -> None:
        self.schema = schema
        self._first_id = first_id
        self.records: dict[int, Record] = {}
        self._indexes = {f.name: FieldIndex(f) for f in schema.searchable if f.name != "id"}
        self._next_id = first_id

    def __len__(self) -> int:
        return len(self.records)

    def new_id(self) -> int:
        """Reserve the next lead id."""
        lead_id = self._next_id
        self._next_id += 1
        return lead_id

    def insert(self, record: Record) -> None:
        """Store a complete record (it carries its ``id``)."""
        lead_id = record["id"]
        self.records[lead_id] = record
        self._next_id = max(self._next_id, lead_id + 1)
        for name, index in self._indexes.items():
            index.add(record.get(name), lead_id)

    def set_value(self, lead_id: int, name: str, value: Any) -> None:
        """Change one field of a stored lead, keeping the indexes right."""
        record = self.records[lead_id]
        index = self._indexes.get(name)
        if index is not None:
            index.remove(record.get(name), lead_id)
            index.add(value, lead_id)
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value

    def delete(self, lead_id: int) -> Record | None:
        """Remove a lead; returns it, or ``None`` if it did not exist."""
        record = self.records.pop(lead_id, None)
        if record is not None:
            for name, index in self._indexes.items():
                index.remove(record.get(name), lead_id)
        return record

    def find(self, field: FieldDef, value: Any) -> list[int]:
        """Ids of the leads whose ``field`` equals ``value``, lowest first."""
        if field.name == "id":
            return [value] if value in self.records else []
        index = self._indexes.get(field.name)
        if index is None:
            wanted = lookup_key(field, value)
            return sorted(
                lead_id
                for lead_id, record in self.records.items()
                if record.get(field.name) is not None
                and lookup_key(field, record[field.name]) == wanted
            )
        return sorted(index.find(value))

    def clear(self) -> None:
        """Remove every lead and restart ids."""
        self.records.clear()
        for index in self._indexes.values():
            index.clear()
        self._next_id = self._first_id


class ObjectStore:
    """Records of one non-lead object type, keyed by their id field."""

    def __init__(self, object_type: ObjectType, guids: random.Random) -> None:
        self.type = object_type
        self.records: dict[Any, Record] = {}
        self._guids = guids
        self._next_id = object_type.first_id
        self._dedupe: dict[tuple[Any, ...], Any] = {}
        self._dedupe_fields = [object_type.get(name) for name in object_type.dedupe_fields]
        self._indexes: dict[str, FieldIndex] = {}
        for group in object_type.searchable_fields:
            if len(group) == 1 and group[0] != object_type.id_field:
                field = object_type.get(group[0])
                if field is not None:
                    self._indexes[field.name] = FieldIndex(field)

    def __len__(self) -> int:
        return len(self.records)

    def new_key(self) -> Any:
        """A fresh id (integer types) or marketoGUID (a seeded, reproducible UUID4)."""
        if self.type.id_is_int:
            key = self._next_id
            self._next_id += 1
            return key
        return str(uuid.UUID(int=self._guids.getrandbits(128), version=4))

    def dedupe_key(self, record: Record) -> tuple[Any, ...] | None:
        """The compound dedupe key of ``record``, or ``None`` if a part is missing."""
        parts = []
        for field in self._dedupe_fields:
            assert field is not None
            value = record.get(field.name)
            if value is None:
                return None
            parts.append(lookup_key(field, value))
        return tuple(parts)

    def by_dedupe(self, key: tuple[Any, ...]) -> Any | None:
        """The id of the record with this dedupe key."""
        return self._dedupe.get(key)

    def insert(self, record: Record) -> None:
        """Store a complete record (it carries its id field)."""
        key = record[self.type.id_field]
        self.records[key] = record
        if self.type.id_is_int:
            self._next_id = max(self._next_id, int(key) + 1)
        dedupe = self.dedupe_key(record)
        if dedupe is not None:
            self._dedupe[dedupe] = key
        for name, index in self._indexes.items():
            index.add(record.get(name), key)

    def set_value(self, key: Any, name: str, value: Any) -> None:
        """Change one non-key field of a stored record."""
        record = self.records[key]
        index = self._indexes.get(name)
        if index is not None:
            index.remove(record.get(name), key)
            index.add(value, key)
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value

    def delete(self, key: Any) -> Record | None:
        """Remove a record; returns it, or ``None`` if it did not exist."""
        record = self.records.pop(key, None)
        if record is not None:
            dedupe = self.dedupe_key(record)
            if dedupe is not None and self._dedupe.get(dedupe) == key:
                del self._dedupe[dedupe]
            for name, index in self._indexes.items():
                index.remove(record.get(name), key)
        return record

    def find(self, field: FieldDef, value: Any) -> list[Any]:
        """Keys of the records whose ``field`` equals ``value``."""
        if field.name == self.type.id_field:
            return [value] if value in self.records else []
        index = self._indexes.get(field.name)
        if index is not None:
            return sorted(index.find(value), key=str)
        wanted = lookup_key(field, value)
        return [
            key
            for key, record in self.records.items()
            if record.get(field.name) is not None
            and lookup_key(field, record[field.name]) == wanted
        ]

    def clear(self) -> None:
        """Remove every record."""
        self.records.clear()
        self._dedupe.clear()
        for index in self._indexes.values():
            index.clear()
        self._next_id = self.type.first_id


class ActivityLog:
    """Every activity in the order it happened; dates never decrease, so date seeks bisect."""

    def __init__(self) -> None:
        self.items: list[Record] = []
        self._times: list[float] = []
        self._next_id = 1

    def __len__(self) -> int:
        return len(self.items)

    def append(self, when: float, activity: Record) -> Record:
        """Add ``activity`` (without id/date) at ``when`` (raised to the last date if earlier)."""
        if self._times and when < self._times[-1]:
            when = self._times[-1]
        activity_id = self._next_id
        self._next_id += 1
        activity["id"] = activity_id
        activity["marketoGUID"] = str(activity_id)
        activity["activityDate"] = iso_seconds(when)
        self.items.append(activity)
        self._times.append(when)
        return activity

    def position_at(self, since: float) -> int:
        """The first position whose date is at or after ``since``."""
        return bisect.bisect_left(self._times, since)

    def slice(self, start: int, count: int) -> Iterator[tuple[int, Record]]:
        """Up to ``count`` (position, activity) pairs from ``start``."""
        end = min(len(self.items), start + count)
        for position in range(start, end):
            yield position, self.items[position]

    def clear(self) -> None:
        """Forget every activity."""
        self.items.clear()
        self._times.clear()
        self._next_id = 1
