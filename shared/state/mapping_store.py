"""ID mapping rows in Table Storage: bucketed bulk reads and transactional bulk writes.

Costs (N buckets, at most 14 ids per filter because of the 15-comparison limit):

* bulk read by Dynamics id: one query per touched bucket and 14 ids, or one scan page per
  bucket for dense batches; for 5,000 ids and N = 16 about 32 requests;
* bulk read by Marketo id (:meth:`MappingStore.find_by_marketo`): the same on the index, keyed
  by Marketo type, then the mapping rows it names, whatever entity they are;
* bulk write: one transaction per touched bucket and 100 rows; new mappings of an indexed
  Marketo type (persons) add as many index rows, other types none.

Write order and crashes
-----------------------
:meth:`MappingStore.put_many` writes the **index rows first, then the mapping rows**. The
mapping row is the mapping; the index row only points at it. So every mapping row that exists
has its index row, and a lookup by Marketo id never misses a committed mapping.

A crash between the two writes leaves index rows whose mapping row is missing (or, after a
mapping moved to another Marketo record, points elsewhere). Reads by Marketo id therefore
confirm each index hit against the mapping row and ignore orphans; the next ``put_many`` of
the same mapping overwrites them. Deletes go the other way round (mapping first), leaving at
worst the same harmless orphan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from shared.clock import Clock
from shared.state import odata
from shared.state.keys import decode_component, prefix_range
from shared.state.layout_guard import LayoutGuard
from shared.state.mapping_reads import (
    SCAN_MIN_HITS_PER_PAGE,
    SCAN_MIN_HITS_WHOLE_ROWS,
    SCAN_MIN_IDS,
    SCAN_PAGE,
    ReadPolicy,
    first_row,
    point_read,
    query_rows,
    range_clauses,
    read_page,
)
from shared.state.mapping_rows import forward_entity, mapping_from_entity, update_entity
from shared.state.mappings import (
    DEFAULT_INDEXED_TYPES,
    IdMapping,
    MappingConflictError,
    MappingLayout,
    MappingUpdate,
    normalize_dynamics_id,
    normalize_marketo_id,
    split_conflicts,
)
from shared.state.marketo_index import MarketoIndex, confirmed, find_by_property
from shared.state.tables import TableAccess, TableKind, storage_errors
from shared.state.transactions import TableOperation, plan_transactions, submit_all, submit_skipping

_MISSING = frozenset({404})
_BY_MARKETO_FILTER_IDS = 12
"""Marketo ids per property filter (15 comparisons less the range and the type)."""


class MappingStore:
    """Dynamics id ↔ Marketo id, per (instance, entity); indexed by Marketo id per type."""

    def __init__(
        self,
        tables: TableAccess,
        clock: Clock,
        layout: MappingLayout | None = None,
        max_comparisons: int = odata.MAX_COMPARISONS,
        *,
        indexed_types: Collection[str] = DEFAULT_INDEXED_TYPES,
    ) -> None:
        self._tables = tables
        self._clock = clock
        self.layout = layout or MappingLayout()
        self._max_comparisons = max_comparisons
        self.scan_min_ids = SCAN_MIN_IDS
        self.scan_page = SCAN_PAGE
        self.scan_min_hits = SCAN_MIN_HITS_PER_PAGE
        self.scan_min_hits_whole_rows = SCAN_MIN_HITS_WHOLE_ROWS
        self.index = MarketoIndex(self._client, self.layout, indexed_types, self._read_policy)
        self._guard = LayoutGuard(
            lambda: tables.client(TableKind.CONFIG), self.layout, self._learn_layout
        )
        self._entity_types: dict[tuple[str, str], str] = {}

    # --- reads by Dynamics id -------------------------------------------------------------

    def get(self, instance_id: str, entity: str, dynamics_id: str) -> IdMapping | None:
        """The mapping of one Dynamics record (one point read)."""
        key = self.layout.forward_key(instance_id, entity, normalize_dynamics_id(dynamics_id))
        row = point_read(self._client(TableKind.MAPPINGS), key, "reading an ID mapping")
        return None if row is None else mapping_from_entity(row)

    def get_many(
        self,
        instance_id: str,
        entity: str,
        dynamics_ids: Iterable[str],
        *,
        columns: Collection[str] | None = None,
    ) -> dict[str, IdMapping]:
        """Mappings of many Dynamics records, keyed by normalised Dynamics id (missing: absent).

        Normalise your ids with :func:`~shared.state.mappings.normalize_dynamics_id` to look
        results up. With ``columns`` (e.g. :data:`~shared.state.mapping_rows.MEMORY_COLUMNS`)
        only those properties are read (``$select``); the others read as unset, so such a
        mapping is for deciding with, never for :meth:`put_many` (which replaces the row).
        """
        select = None if columns is None else ["PartitionKey", "RowKey", *columns]
        rows = self._forward_rows(instance_id, entity, dynamics_ids, select)
        found = (mapping_from_entity(row) for row in rows)
        return {m.dynamics_id: m for m in found}

    def link_states(
        self, instance_id: str, entity: str, dynamics_ids: Iterable[str]
    ) -> dict[str, tuple[str, bool]]:
        """``(marketo id, deleted in Dynamics)`` of the mapped ids among ``dynamics_ids``, keyed
        by normalised Dynamics id: what resolving a link needs, read without the rest of the
        row (``$select``)."""
        select = ["RowKey", "marketo_id", "deleted_in_dynamics"]
        rows = self._forward_rows(instance_id, entity, dynamics_ids, select, light=True)
        return {
            decode_component(row["RowKey"]): (
                str(row["marketo_id"]),
                bool(row.get("deleted_in_dynamics")),
            )
            for row in rows
        }

    # --- reads by Marketo id --------------------------------------------------------------

    def find_by_marketo(
        self, instance_id: str, marketo_type: str, marketo_ids: Iterable[str]
    ) -> dict[str, IdMapping]:
        """Mappings of Marketo records of one type, keyed by Marketo id, whatever entity each
        is (a Marketo lead may be a Dynamics lead or contact).

        One index lookup (one point read for one id; per index partition, one query per 14
        ids or a scan, for many), then the mapping rows it names (the same, per entity); orphaned
        index rows are ignored (module docstring). A type the store does not index is looked
        up by a property filter over every mapping row of the instance (slow; not for a
        batch path).
        """
        ids = list(dict.fromkeys(normalize_marketo_id(i) for i in marketo_ids))
        if not ids:
            return {}
        if not self.index.is_indexed(marketo_type):
            low, high = self.layout.instance_range(instance_id)
            client = self._client(TableKind.MAPPINGS)
            return find_by_property(client, low, high, ids, marketo_type)
        pointers = self.index.lookup(instance_id, marketo_type, ids)
        by_entity: dict[str, list[str]] = {}
        for entity, dynamics_id in pointers.values():
            by_entity.setdefault(entity, []).append(dynamics_id)
        found: list[IdMapping] = []
        for entity, dynamics_ids in by_entity.items():
            if len(dynamics_ids) == 1:
                one = self.get(instance_id, entity, dynamics_ids[0])
                found.extend([] if one is None else [one])
            else:
                found.extend(self.get_many(instance_id, entity, dynamics_ids).values())
        return confirmed(pointers, found, marketo_type)

    def get_by_marketo(self, instance_id: str, entity: str, marketo_id: str) -> IdMapping | None:
        """The mapping of one Marketo record among one entity's (see
        :meth:`get_many_by_marketo`)."""
        marketo = normalize_marketo_id(marketo_id)
        return self.get_many_by_marketo(instance_id, entity, [marketo]).get(marketo)

    def get_many_by_marketo(
        self, instance_id: str, entity: str, marketo_ids: Iterable[str]
    ) -> dict[str, IdMapping]:
        """Mappings of many Marketo records among one entity's, keyed by Marketo id.

        For an entity of an indexed Marketo type this is :meth:`find_by_marketo` (plus one
        small query, once per store, to learn the entity's Marketo type); otherwise a property
        filter over the entity's mapping rows (12 ids a query). Prefer :meth:`find_by_marketo`.
        """
        ids = list(dict.fromkeys(normalize_marketo_id(i) for i in marketo_ids))
        marketo_type = self._entity_type(instance_id, entity) if ids else None
        if marketo_type is None:
            return {}
        if self.index.is_indexed(marketo_type):
            found = self.find_by_marketo(instance_id, marketo_type, ids)
            return {k: m for k, m in found.items() if m.entity == entity}
        low, high = prefix_range(instance_id, entity)
        return find_by_property(self._client(TableKind.MAPPINGS), low, high, ids, None)

    # --- reads of whole entities ----------------------------------------------------------

    def list_entity(self, instance_id: str, entity: str) -> list[IdMapping]:
        """Every mapping of one (instance, entity): a range query over its buckets.

        For reconciliation and the sweep after a full resync; not for the per-batch path.
        """
        low, high = prefix_range(instance_id, entity)
        query = odata.all_of(*range_clauses(low, high, ""))
        client = self._client(TableKind.MAPPINGS)
        with storage_errors("listing ID mappings"):
            return [mapping_from_entity(row) for row in client.query_entities(query)]

    def list_entity_page(
        self, instance_id: str, entity: str, after: str, limit: int
    ) -> tuple[list[IdMapping], str | None]:
        """Up to ``limit`` mappings of one (instance, entity) in key order, after the position
        ``after`` (``""``: from the start); returns them and the position to continue from
        (``None`` when there are no more). For resumable scans such as the delete sweep."""
        low, high = prefix_range(instance_id, entity)
        rows, position = read_page(
            self._client(TableKind.MAPPINGS),
            range_clauses(low, high, after),
            limit,
            "listing ID mappings",
        )
        return [mapping_from_entity(row) for row in rows], position

    def list_sweep_page(
        self, instance_id: str, entity: str, after: str, limit: int
    ) -> tuple[list[tuple[str, bool]], str | None]:
        """As :meth:`list_entity_page`, but only ``(dynamics id, deleted in Dynamics)`` of each
        mapping (``$select``): what the delete sweep needs, without decoding whole rows."""
        low, high = prefix_range(instance_id, entity)
        rows, position = read_page(
            self._client(TableKind.MAPPINGS),
            range_clauses(low, high, after),
            limit,
            "listing ID mappings for the delete sweep",
            ["PartitionKey", "RowKey", "deleted_in_dynamics"],
        )
        found = [(decode_component(r["RowKey"]), bool(r.get("deleted_in_dynamics"))) for r in rows]
        return found, position

    def has_any(self, instance_id: str, entity: str | None = None) -> bool:
        """Whether any mapping or index row exists for the instance (a few small queries).

        With ``entity``: whether that entity of the instance has any mapping (one small query
        on the mapping table; index rows without a mapping do not count).
        """
        low, high = (
            self.layout.instance_range(instance_id)
            if entity is None
            else prefix_range(instance_id, entity)
        )
        client = self._client(TableKind.MAPPINGS)
        if first_row(client, low, high, "looking for ID mappings", ["RowKey"]) is not None:
            return True
        return entity is None and self.index.has_rows(instance_id)

    # --- writes ---------------------------------------------------------------------------

    def put(self, mapping: IdMapping) -> IdMapping:
        """Store one mapping (see :meth:`put_many`)."""
        return self.put_many([mapping])[0]

    def put_many(self, mappings: Iterable[IdMapping]) -> list[IdMapping]:
        """Store whole mappings (create, or replace what is stored for the same Dynamics id:
        a new Marketo record for a Dynamics record makes everything known of the old pair
        stale). Directions update existing mappings with :meth:`update_many` instead.

        Index rows are written before mapping rows (module docstring). ``created_at`` is kept
        if the mapping carries it (as one read from the store does), else set to now.

        Raises:
            MappingConflictError: (a ``ValueError``) two mappings in the call link different
                Dynamics records to the same Marketo record; nothing was written. Use
                :func:`~shared.state.mappings.split_conflicts` first to store the others.
        """
        accepted, conflicts = split_conflicts(mappings)
        if conflicts:
            raise MappingConflictError(conflicts)
        now = self._clock.now()
        stamped = [
            replace(m, created_at=m.created_at or now, updated_at=now, etag=None) for m in accepted
        ]
        self._client(TableKind.MAPPINGS)  # the layout check, before the index is written
        self.index.write(stamped)
        forward_ops = [
            TableOperation("upsert", forward_entity(m, self.layout), {"mode": UpdateMode.REPLACE})
            for m in stamped
        ]
        submit_all(self._client(TableKind.MAPPINGS), forward_ops, "writing ID mappings")
        return stamped

    def update_many(
        self, instance_id: str, entity: str, updates: Iterable[MappingUpdate]
    ) -> list[str]:
        """Merge field-level changes into existing mappings (mapping rows only: the Marketo id,
        and so the index, never changes here).

        Returns:
            The Dynamics ids that have no mapping (their updates are skipped, the rest applied).
        """
        now = self._clock.now()
        operations = [
            TableOperation(
                "update",
                update_entity(instance_id, entity, u, self.layout, now),
                {"mode": UpdateMode.MERGE},
            )
            for u in updates
        ]
        client = self._client(TableKind.MAPPINGS)
        missing: list[str] = []
        for transaction in plan_transactions(operations):
            skipped = submit_skipping(client, transaction, _MISSING, "updating ID mappings")
            missing.extend(decode_component(op.row[1]) for op in skipped)
        return missing

    def delete_many(self, instance_id: str, entity: str, dynamics_ids: Iterable[str]) -> int:
        """Delete mappings (mapping rows first, then their own index rows); returns how many
        mappings existed."""
        existing = self.get_many(instance_id, entity, dynamics_ids)
        if not existing:
            return 0
        forward_ops = [
            TableOperation(
                "delete",
                dict(
                    zip(
                        ("PartitionKey", "RowKey"),
                        self.layout.forward_key(instance_id, entity, d),
                        strict=True,
                    )
                ),
            )
            for d in existing
        ]
        submit_all(self._client(TableKind.MAPPINGS), forward_ops, "deleting ID mappings")
        self.index.delete_for(existing.values())
        return len(existing)

    # --- migration ------------------------------------------------------------------------

    def backfill_marketo_index(
        self, instance_id: str, after: str = "", limit: int = 1000
    ) -> tuple[int, str | None]:
        """Index up to ``limit`` mappings of the instance after position ``after`` (tables of
        the first layout; see :mod:`shared.state.marketo_index`). Returns how many index rows
        were created and where to go on (``None``: done). Lookups do this by themselves when
        needed; this is for running it ahead, e.g. from a deployment step."""
        self._check_layout()
        return self.index.backfill_page(instance_id, after, limit)

    def marketo_index_ready(self, instance_id: str) -> bool:
        """Whether the instance's lookups by Marketo id need no backfill first."""
        self._check_layout()
        return self.index.is_ready(instance_id)

    # --- plumbing -------------------------------------------------------------------------

    def _learn_layout(self, first_layout: bool) -> None:
        self.index.first_layout = first_layout

    def _read_policy(self) -> ReadPolicy:
        return ReadPolicy(
            self._max_comparisons,
            self.scan_min_ids,
            self.scan_page,
            self.scan_min_hits,
            self.scan_min_hits_whole_rows,
        )

    def _client(self, kind: TableKind) -> TableClient:
        self._check_layout()
        return self._tables.client(kind)

    def _forward_rows(
        self,
        instance_id: str,
        entity: str,
        dynamics_ids: Iterable[str],
        select: list[str] | None = None,
        *,
        light: bool = False,
    ) -> list[Any]:
        ids = list(dict.fromkeys(normalize_dynamics_id(i) for i in dynamics_ids))
        keys = [self.layout.forward_key(instance_id, entity, i) for i in ids]
        client = self._client(TableKind.MAPPINGS)
        policy = self._read_policy()
        return query_rows(client, keys, "reading ID mappings", policy, select, light=light)

    def _entity_type(self, instance_id: str, entity: str) -> str | None:
        """The Marketo type of an entity's mappings (one small query; remembered once found);
        ``None`` if the entity has no mapping."""
        known = self._entity_types.get((instance_id, entity))
        if known is None:
            low, high = prefix_range(instance_id, entity)
            row = first_row(
                self._client(TableKind.MAPPINGS),
                low,
                high,
                "reading an entity's Marketo type",
                ["marketo_type"],
            )
            if row is None:
                return None
            known = self._entity_types[(instance_id, entity)] = str(row["marketo_type"])
        return known

    def _check_layout(self) -> None:
        self._guard.check()
