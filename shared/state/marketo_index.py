"""The Marketo-id index of ID mappings, and its migration from the first layout.

Index rows (table ``MarketoIndex``) name, per (instance, Marketo type, Marketo id), the entity
and Dynamics id of the mapping (see :mod:`shared.state.mappings`). They are written **before**
the mapping rows and confirmed against them on every read, so a crash between the two writes,
or a mapping moved to another Marketo record, leaves at worst an orphan that reads as nothing.

Migration from the first layout
-------------------------------
Tables written by the first layout have no ``MarketoIndex`` rows (their index,
``MappingsByMarketo``, was keyed by entity). The layout row in ``Config`` says which layout
the tables were created with. On tables of the first layout, the first lookup by Marketo id
of an instance *backfills* the index from the instance's mapping rows (the authority), page by
page, saving its position in ``Config`` so that a killed worker's successor goes on where it
stopped; once done, a marker row says so and lookups cost one index read. Backfilled rows are
*created* (never replaced): a row written meanwhile by a live mapping stays.

Costs: a backfill reads every mapping row of the instance once (1,000 a request, only the
four key columns) and writes one index row per indexed mapping (100 a transaction); at 50,000
persons about 50 + 500 requests, once per instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state import odata
from shared.state.keys import decode_component, encode_component
from shared.state.mapping_reads import (
    ReadPolicy,
    first_row,
    point_read,
    query_rows,
    range_clauses,
    read_page,
    rows_with_values,
)
from shared.state.mapping_rows import (
    index_entity,
    index_from_entity,
    mapping_from_entity,
    reverse_from_entity,
    stream_parts,
)
from shared.state.mappings import IdMapping, MappingLayout, normalize_dynamics_id
from shared.state.tables import TableKind, storage_errors
from shared.state.transactions import (
    TableOperation,
    plan_transactions,
    submit_all,
    submit_skipping,
)

INDEX_PROGRESS_PARTITION = "marketo-index"
"""``Config`` partition of the per-instance backfill rows (RowKey: the encoded instance id)."""
BACKFILL_PAGE = 1000
_EXISTS = frozenset({409})

ClientFor = Callable[[TableKind], TableClient]


class MarketoIndex:
    """Index rows of the indexed Marketo types: write, look up, delete, backfill."""

    def __init__(
        self,
        client_for: ClientFor,
        layout: MappingLayout,
        indexed_types: Collection[str],
        policy: Callable[[], ReadPolicy],
    ) -> None:
        self._client_for = client_for
        self._layout = layout
        self.indexed_types = frozenset(indexed_types)
        self._policy = policy
        self.first_layout = False
        """Set by the store's layout check: the tables predate this index (backfill needed)."""
        self._ready: set[str] = set()
        self._backfill_lock = threading.Lock()

    def is_indexed(self, marketo_type: str) -> bool:
        """Whether mappings of ``marketo_type`` have index rows."""
        return marketo_type in self.indexed_types

    # --- writes ---------------------------------------------------------------------------

    def write(self, mappings: Iterable[IdMapping]) -> None:
        """Index rows for the mappings of indexed types (REPLACE: the latest link stands)."""
        operations = [
            TableOperation("upsert", index_entity(m, self._layout), {"mode": UpdateMode.REPLACE})
            for m in mappings
            if self.is_indexed(m.marketo_type)
        ]
        if operations:
            submit_all(self._client_for(TableKind.MARKETO_INDEX), operations, "writing the index")

    def delete_for(self, deleted: Iterable[IdMapping]) -> None:
        """Delete the index rows (and first-layout rows) that still point at deleted mappings;
        a Marketo record linked to another Dynamics record since keeps its row."""
        gone = list(deleted)
        indexed = [m for m in gone if self.is_indexed(m.marketo_type)]
        if indexed:
            keys = [
                self._layout.index_key(m.instance_id, m.marketo_type, m.marketo_id) for m in indexed
            ]
            owners = {(m.entity, m.dynamics_id) for m in indexed}
            client = self._client_for(TableKind.MARKETO_INDEX)
            rows = query_rows(client, keys, "reading the index", self._policy(), light=True)
            stale = [r for r in rows if index_from_entity(r)[1:] in owners]
            submit_all(client, [_delete(r) for r in stale], "deleting index rows")
        if self.first_layout and gone:
            self._delete_first_layout_rows(gone)

    def _delete_first_layout_rows(self, gone: Sequence[IdMapping]) -> None:
        keys = [self._layout.reverse_key(m.instance_id, m.entity, m.marketo_id) for m in gone]
        owners = {m.dynamics_id for m in gone}
        client = self._client_for(TableKind.MAPPINGS_BY_MARKETO)
        rows = query_rows(
            client, keys, "reading the first-layout index", self._policy(), light=True
        )
        stale = [r for r in rows if normalize_dynamics_id(reverse_from_entity(r)[1]) in owners]
        submit_all(client, [_delete(r) for r in stale], "deleting first-layout index rows")

    # --- reads ----------------------------------------------------------------------------

    def lookup(
        self, instance_id: str, marketo_type: str, marketo_ids: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """``marketo id → (entity, dynamics id)`` as the index rows say (unconfirmed)."""
        client = self._client_for(TableKind.MARKETO_INDEX)  # (the store's layout check first)
        self.ensure_ready(instance_id)
        keys = [self._layout.index_key(instance_id, marketo_type, i) for i in marketo_ids]
        if len(keys) == 1:
            row = point_read(client, keys[0], "reading the index")
            rows = [] if row is None else [row]
        else:
            rows = query_rows(client, keys, "reading the index", self._policy(), light=True)
        found = (index_from_entity(row) for row in rows)
        return {marketo_id: (entity, dynamics_id) for marketo_id, entity, dynamics_id in found}

    def has_rows(self, instance_id: str) -> bool:
        """Whether any index row (of either layout) exists for the instance."""
        clients = [self._client_for(TableKind.MARKETO_INDEX)]
        if self.first_layout:
            clients.append(self._client_for(TableKind.MAPPINGS_BY_MARKETO))
        low, high = self._layout.instance_range(instance_id)
        return any(
            first_row(client, low, high, "looking for index rows", ["RowKey"]) is not None
            for client in clients
        )

    # --- migration from the first layout --------------------------------------------------

    def ensure_ready(self, instance_id: str) -> None:
        """Backfill the instance's index if the tables predate it and it is not done yet."""
        if not self.first_layout or instance_id in self._ready:
            return
        with self._backfill_lock:
            if instance_id in self._ready:
                return
            progress = self._progress(instance_id)
            position = str(progress.get("position") or "") if progress else ""
            while not (progress and progress.get("complete")):
                _, next_position = self.backfill_page(instance_id, position)
                progress = {"position": next_position or "", "complete": next_position is None}
                self._save_progress(instance_id, progress)
                position = next_position or ""
            self._ready.add(instance_id)

    def backfill_page(
        self, instance_id: str, after: str = "", limit: int = BACKFILL_PAGE
    ) -> tuple[int, str | None]:
        """Index rows for up to ``limit`` mapping rows of the instance after ``after``;
        returns how many index rows were created and the position to go on from (``None``:
        the instance's mappings are all indexed)."""
        low, high = self._layout.instance_range(instance_id)
        clauses = range_clauses(low, high, after)
        clauses.append(
            odata.any_of(
                *(
                    odata.compare("marketo_type", "eq", odata.string(t))
                    for t in sorted(self.indexed_types)
                )
            )
        )
        rows, position = read_page(
            self._client_for(TableKind.MAPPINGS),
            clauses,
            limit,
            "reading ID mappings to index",
            select=["PartitionKey", "RowKey", "marketo_type", "marketo_id"],
        )
        operations = [TableOperation("create", _index_row(row, self._layout)) for row in rows]
        client = self._client_for(TableKind.MARKETO_INDEX)
        created = 0
        for transaction in plan_transactions(operations):
            # A row already there was written by a live mapping (or an earlier backfill): keep.
            skipped = submit_skipping(client, transaction, _EXISTS, "backfilling the index")
            created += len(transaction) - len(skipped)
        return created, position

    def is_ready(self, instance_id: str) -> bool:
        """Whether lookups of the instance need no backfill first."""
        if not self.first_layout or instance_id in self._ready:
            return True
        progress = self._progress(instance_id)
        return bool(progress and progress.get("complete"))

    def _progress(self, instance_id: str) -> dict[str, Any] | None:
        client = self._client_for(TableKind.CONFIG)
        key = (INDEX_PROGRESS_PARTITION, encode_component(instance_id))
        try:
            with storage_errors("reading the index backfill", expected=(ResourceNotFoundError,)):
                return dict(client.get_entity(*key))
        except ResourceNotFoundError:
            return None

    def _save_progress(self, instance_id: str, progress: dict[str, Any]) -> None:
        row = {
            "PartitionKey": INDEX_PROGRESS_PARTITION,
            "RowKey": encode_component(instance_id),
            **progress,
        }
        with storage_errors("saving the index backfill"):
            self._client_for(TableKind.CONFIG).upsert_entity(row, mode=UpdateMode.REPLACE)


def _index_row(row: Any, layout: MappingLayout) -> dict[str, Any]:
    instance_id, entity = stream_parts(row["PartitionKey"])
    mapping = IdMapping(
        instance_id, entity, decode_component(row["RowKey"]), row["marketo_type"], row["marketo_id"]
    )
    return index_entity(mapping, layout)


def _delete(row: Any) -> TableOperation:
    return TableOperation("delete", {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]})


def confirmed(
    pointers: Mapping[str, tuple[str, str]], mappings: Iterable[IdMapping], marketo_type: str
) -> dict[str, IdMapping]:
    """``marketo id → mapping`` for the mappings that the index rows ``pointers`` name and
    that name the same Marketo record back (an orphan or a stale index row names nothing)."""
    return {
        m.marketo_id: m
        for m in mappings
        if m.marketo_type == marketo_type
        and pointers.get(m.marketo_id) == (m.entity, m.dynamics_id)
    }


def find_by_property(
    client: TableClient, low: str, high: str, ids: Sequence[str], marketo_type: str | None
) -> dict[str, IdMapping]:
    """Mappings in the PartitionKey range ``[low, high)`` whose Marketo id is among ``ids``,
    without the index (property filters: slow on big ranges; for types not indexed)."""
    extra = []
    if marketo_type is not None:
        extra.append(odata.compare("marketo_type", "eq", odata.string(marketo_type)))
    rows = rows_with_values(
        client, low, high, "marketo_id", ids, "finding ID mappings by Marketo id", extra
    )
    result: dict[str, IdMapping] = {}
    for mapping in map(mapping_from_entity, rows):
        result.setdefault(mapping.marketo_id, mapping)
    return result
