"""The Dynamics side as a change reader: Dataverse change tracking through the Web API client.

Dataverse facts this module relies on (Microsoft Learn, "Use change tracking to synchronize
data with external systems"):

* a full read with ``Prefer: odata.track-changes`` pages with ``@odata.nextLink``; only its last
  page carries the ``@odata.deltaLink`` to read later changes from;
* a delta link carries a ``$deltatoken`` query parameter, a next link a ``$skiptoken``: that is
  how a stored cursor is told apart when it is read again (the links themselves are opaque);
* "when nothing changed" the delta answer may be an empty JSON response with no new link: the
  delta link read from stays the place to resume;
* new and updated rows look alike; deleted rows come back as ``$deletedEntity`` with their id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.clock import SYSTEM_CLOCK, Clock
from shared.dynamics.client import DynamicsClient
from shared.dynamics.models import ChangedRecord, TableRef
from shared.errors import FatalError
from shared.state.mappings import normalize_dynamics_id
from shared.sync.config import SYNC_FILTER_COLUMN, EntitySpec
from shared.sync.id_sets import GuidSet
from shared.sync.identity import SourceIdentity
from shared.sync.pipeline import ChangeBatch, SourceRecord
from shared.sync.transform import sync_filter_allows

REFERENCE_TABLE_TTL = 300.0
"""Seconds a small lookup table (connection roles) is kept before it is read again: a role
added or renamed in Dynamics reaches the sync within minutes, not at the next restart."""


def table_ref(spec: EntitySpec) -> TableRef:
    """The Dataverse address of an entity."""
    return TableRef(spec.table, spec.entity_set, spec.primary_key)


def is_delta_link(cursor: str) -> bool:
    """Whether a stored cursor is a delta link (as opposed to the next page of a read)."""
    return "$deltatoken=" in cursor or "%24deltatoken=" in cursor.lower()


def row_of(record: ChangedRecord, spec: EntitySpec) -> dict[str, Any]:
    """A record's columns as the transform reads them (its key and version included)."""
    row = dict(record.attributes)
    row[spec.primary_key] = record.id
    if record.version is not None:
        row.setdefault("versionnumber", record.version)
    return row


def source_record(record: ChangedRecord, spec: EntitySpec) -> SourceRecord:
    """A Dataverse row as a :class:`SourceRecord` (versioned by ``versionnumber`` or ETag)."""
    row = row_of(record, spec)
    version = row.get("versionnumber") or record.etag
    return SourceRecord(
        source_id=normalize_dynamics_id(record.id),
        values=row,
        version=str(version) if version is not None else None,
    )


class DataverseChangeReader:
    """Reads an entity's changes, rows and existence from Dataverse."""

    def __init__(self, client: DynamicsClient, clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.clock = clock
        self._tables: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}

    async def read(self, spec: EntitySpec, cursor: str | None, page_size: int) -> ChangeBatch:
        delta = cursor if cursor is not None and is_delta_link(cursor) else None
        page = await self.client.read_page(
            table_ref(spec),
            spec.dynamics_columns(),
            next_link=None if delta else cursor,
            delta_link=delta,
            track_changes=True,
            page_size=page_size,
        )
        following = page.next_link or page.delta_link
        if following is None:
            raise FatalError(
                f"Dataverse returned neither a next link nor a delta link for {spec.entity_set}: "
                "is change tracking enabled for this table?",
                system="dynamics",
            )
        return ChangeBatch(
            records=[source_record(r, spec) for r in page.records],
            deleted_ids=[normalize_dynamics_id(i) for i in page.deleted_ids],
            cursor=following,
            done=page.next_link is None,
        )

    async def fetch(self, spec: EntitySpec, ids: Sequence[str]) -> list[SourceRecord]:
        if not ids:
            return []
        records = await self.client.read_records(
            table_ref(spec), ids, spec.dynamics_columns(), include_lookup_names=False
        )
        return [source_record(r, spec) for r in records]

    async def exists(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, bool]:
        if not ids:
            return {}
        columns = [spec.primary_key, *([SYNC_FILTER_COLUMN] if spec.sync_filter else [])]
        records = await self.client.read_records(
            table_ref(spec), ids, columns, include_lookup_names=False
        )
        return {
            normalize_dynamics_id(r.id): (not spec.sync_filter) or sync_filter_allows(r.attributes)
            for r in records
        }

    async def count(self, spec: EntitySpec) -> int:
        return (await self.client.count(table_ref(spec))).value

    async def live_ids(self, spec: EntitySpec) -> GuidSet:
        """Every id the table holds now: a plain paged read of the key alone (5,000 a page)."""
        ids: list[str] = []
        async for page in self.client.iter_pages(
            table_ref(spec), [spec.primary_key], track_changes=False
        ):
            ids.extend(record.id for record in page.records)
        return GuidSet(ids)

    async def all_rows(self, spec: EntitySpec) -> list[dict[str, Any]]:
        """Every current row of the table (plain paged reads, no change tracking)."""
        rows: list[dict[str, Any]] = []
        async for page in self.client.iter_pages(
            table_ref(spec), spec.dynamics_columns(), track_changes=False
        ):
            rows.extend(row_of(record, spec) for record in page.records)
        return rows

    async def reference_table(
        self, table_name: str, entity_set: str, key: str, value: str
    ) -> dict[str, Any]:
        """A small table as ``{key: value}`` (e.g. connection role id → name), re-read after
        :data:`REFERENCE_TABLE_TTL` seconds."""
        cache_key = (entity_set, key, value)
        now = self.clock.monotonic()
        cached = self._tables.get(cache_key)
        if cached is not None and now - cached[0] < REFERENCE_TABLE_TTL:
            return cached[1]
        table = TableRef(table_name, entity_set, key)
        found: dict[str, Any] = {}
        async for page in self.client.iter_pages(table, [key, value], track_changes=False):
            for record in page.records:
                found[record.id.lower()] = record.attributes.get(value)
        self._tables[cache_key] = (now, found)
        return found

    async def identity(self) -> SourceIdentity:
        """Who and where the Dynamics side is (its organization and application user)."""
        who = await self.client.whoami()
        org = await self.client.organization()
        return SourceIdentity(
            organization_id=who.organization_id.lower(),
            organization_name=org.name,
            organization_created_on=org.created_on.isoformat() if org.created_on else None,
            user_id=who.user_id.lower(),
        )
