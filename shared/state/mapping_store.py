"""ID mapping rows in Table Storage: bucketed bulk reads and transactional bulk writes.

Costs (N buckets, at most 14 ids per filter because of the 15-comparison limit):

* bulk read by Dynamics id: one query per touched bucket and 14 ids; for 300 random ids and
  N = 16 that is 16-32 requests (about 30; measured in the integration tests);
* bulk read by Marketo id: the same on the reverse table, plus a forward read to confirm;
* bulk write: one transaction per touched bucket and 100 rows, on each of the two tables.

Write order and crashes
-----------------------
:meth:`MappingStore.put_many` writes the **reverse rows first, then the forward rows**. The
forward row is the mapping; the reverse row only indexes it. So every forward row that exists
has its reverse row, and a lookup by Marketo id never misses a committed mapping.

A crash between the two writes leaves reverse rows whose forward row is missing (or, after a
mapping moved to another Marketo record, points elsewhere). Reads by Marketo id therefore
confirm each reverse hit against the forward row and ignore orphans; the next ``put_many`` of
the same mapping overwrites them. Deletes go the other way round (forward first), leaving at
worst the same harmless orphan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.clock import Clock
from shared.errors import ConfigurationError
from shared.state import odata
from shared.state.keys import decode_component, prefix_range
from shared.state.mappings import (
    IdMapping,
    MappingLayout,
    MappingUpdate,
    forward_entity,
    mapping_from_entity,
    normalize_dynamics_id,
    normalize_marketo_id,
    reverse_entity,
    reverse_from_entity,
    update_entity,
)
from shared.state.tables import TableAccess, TableKind, storage_errors
from shared.state.transactions import (
    TableOperation,
    plan_transactions,
    submit_all,
    submit_skipping,
)

SCAN_MIN_IDS = 42
"""Ids of one partition from which a lookup tries a scan first (three filters' worth)."""
SCAN_PAGE = 1000
"""Rows per scan page (the service's maximum)."""
SCAN_MIN_HITS_PER_PAGE = 56
"""A scan continues while each page holds at least this many wanted rows (four filters' worth:
a 1,000-row page costs about as much CPU as four small queries)."""
LAYOUT_PARTITION = "layout"
LAYOUT_ROW = "id-mappings"
_MISSING = frozenset({404})


class MappingStore:
    """Dynamics id ↔ Marketo id, per (instance, entity)."""

    def __init__(
        self,
        tables: TableAccess,
        clock: Clock,
        layout: MappingLayout | None = None,
        max_comparisons: int = odata.MAX_COMPARISONS,
    ) -> None:
        self._tables = tables
        self._clock = clock
        self.layout = layout or MappingLayout()
        self._max_comparisons = max_comparisons
        self._layout_checked = False
        self._layout_lock = threading.Lock()
        self.scan_min_ids = SCAN_MIN_IDS
        self.scan_page = SCAN_PAGE
        self.scan_min_hits = SCAN_MIN_HITS_PER_PAGE

    # --- reads ----------------------------------------------------------------------------

    def get(self, instance_id: str, entity: str, dynamics_id: str) -> IdMapping | None:
        """The mapping of one Dynamics record (one point read)."""
        key = self.layout.forward_key(instance_id, entity, normalize_dynamics_id(dynamics_id))
        row = self._point_read(TableKind.MAPPINGS, key)
        return None if row is None else mapping_from_entity(row)

    def get_many(
        self, instance_id: str, entity: str, dynamics_ids: Iterable[str]
    ) -> dict[str, IdMapping]:
        """Mappings of many Dynamics records, keyed by normalised Dynamics id (missing: absent).

        Normalise your ids with :func:`~shared.state.mappings.normalize_dynamics_id` to look
        results up.
        """
        ids = list(dict.fromkeys(normalize_dynamics_id(i) for i in dynamics_ids))
        keys = [self.layout.forward_key(instance_id, entity, i) for i in ids]
        rows = self._query_rows(TableKind.MAPPINGS, keys, "reading ID mappings")
        found = (mapping_from_entity(row) for row in rows)
        return {m.dynamics_id: m for m in found}

    def link_states(
        self, instance_id: str, entity: str, dynamics_ids: Iterable[str]
    ) -> dict[str, tuple[str, bool]]:
        """``(marketo id, deleted in Dynamics)`` of the mapped ids among ``dynamics_ids``, keyed
        by normalised Dynamics id: what resolving a link needs, read without the rest of the
        row (``$select``)."""
        ids = list(dict.fromkeys(normalize_dynamics_id(i) for i in dynamics_ids))
        keys = [self.layout.forward_key(instance_id, entity, i) for i in ids]
        rows = self._query_rows(
            TableKind.MAPPINGS,
            keys,
            "reading ID mappings",
            select=["RowKey", "marketo_id", "deleted_in_dynamics"],
        )
        return {
            decode_component(row["RowKey"]): (
                str(row["marketo_id"]),
                bool(row.get("deleted_in_dynamics")),
            )
            for row in rows
        }

    def get_by_marketo(self, instance_id: str, entity: str, marketo_id: str) -> IdMapping | None:
        """The mapping of one Marketo record (two point reads: index, then mapping)."""
        marketo = normalize_marketo_id(marketo_id)
        row = self._point_read(
            TableKind.MAPPINGS_BY_MARKETO, self.layout.reverse_key(instance_id, entity, marketo)
        )
        if row is None:
            return None
        _, dynamics_id = reverse_from_entity(row)
        mapping = self.get(instance_id, entity, dynamics_id)
        return mapping if mapping is not None and mapping.marketo_id == marketo else None

    def get_many_by_marketo(
        self, instance_id: str, entity: str, marketo_ids: Iterable[str]
    ) -> dict[str, IdMapping]:
        """Mappings of many Marketo records, keyed by Marketo id; orphaned index rows are
        ignored (see the module docstring)."""
        ids = list(dict.fromkeys(normalize_marketo_id(i) for i in marketo_ids))
        keys = [self.layout.reverse_key(instance_id, entity, i) for i in ids]
        rows = self._query_rows(TableKind.MAPPINGS_BY_MARKETO, keys, "reading ID mapping index")
        dynamics_for = dict(reverse_from_entity(row) for row in rows)
        forward = self.get_many(instance_id, entity, dynamics_for.values())
        result: dict[str, IdMapping] = {}
        for marketo_id, dynamics_id in dynamics_for.items():
            mapping = forward.get(normalize_dynamics_id(dynamics_id))
            if mapping is not None and mapping.marketo_id == marketo_id:
                result[marketo_id] = mapping
        return result

    def list_entity(self, instance_id: str, entity: str) -> list[IdMapping]:
        """Every mapping of one (instance, entity): a range query over its buckets.

        For reconciliation and the sweep after a full resync; not for the per-batch path.
        """
        low, high = prefix_range(instance_id, entity)
        query = odata.all_of(
            odata.compare("PartitionKey", "ge", odata.string(low)),
            odata.compare("PartitionKey", "lt", odata.string(high)),
        )
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
        clauses = [
            odata.compare("PartitionKey", "ge", odata.string(low)),
            odata.compare("PartitionKey", "lt", odata.string(high)),
        ]
        if after:
            partition_key, row_key = after.split("\t", 1)
            clauses.append(
                odata.any_of(
                    odata.compare("PartitionKey", "gt", odata.string(partition_key)),
                    odata.all_of(
                        odata.compare("PartitionKey", "eq", odata.string(partition_key)),
                        odata.compare("RowKey", "gt", odata.string(row_key)),
                    ),
                )
            )
        client = self._client(TableKind.MAPPINGS)
        rows: list[Any] = []
        with storage_errors("listing ID mappings"):
            for row in client.query_entities(odata.all_of(*clauses), results_per_page=limit):
                rows.append(row)
                if len(rows) >= limit:
                    break
        position = (
            f"{rows[-1]['PartitionKey']}\t{rows[-1]['RowKey']}" if len(rows) >= limit else None
        )
        return [mapping_from_entity(row) for row in rows], position

    def has_any(self, instance_id: str, entity: str | None = None) -> bool:
        """Whether any mapping or index row exists for the instance (two small queries).

        With ``entity``: whether that entity of the instance has any mapping (one small query
        on the mapping table; index rows without a mapping do not count).
        """
        kinds: tuple[TableKind, ...]
        if entity is None:
            low, high = self.layout.instance_range(instance_id)
            kinds = (TableKind.MAPPINGS, TableKind.MAPPINGS_BY_MARKETO)
        else:
            low, high = prefix_range(instance_id, entity)
            kinds = (TableKind.MAPPINGS,)
        query = odata.all_of(
            odata.compare("PartitionKey", "ge", odata.string(low)),
            odata.compare("PartitionKey", "lt", odata.string(high)),
        )
        for kind in kinds:
            client = self._client(kind)
            with storage_errors("looking for ID mappings"):
                pages = client.query_entities(query, select=["RowKey"], results_per_page=1)
                if next(iter(pages), None) is not None:
                    return True
        return False

    # --- writes ---------------------------------------------------------------------------

    def put(self, mapping: IdMapping) -> IdMapping:
        """Store one mapping (see :meth:`put_many`)."""
        return self.put_many([mapping])[0]

    def put_many(self, mappings: Iterable[IdMapping]) -> list[IdMapping]:
        """Store whole mappings (create, or replace what is stored for the same Dynamics id).

        Reverse rows are written before forward rows (module docstring). ``created_at`` is kept
        if the mapping carries it (as one read from the store does), else set to now.

        Raises:
            ValueError: two mappings in the call link different Dynamics records to the same
                Marketo record.
        """
        now = self._clock.now()
        stamped = [
            replace(m, created_at=m.created_at or now, updated_at=now, etag=None) for m in mappings
        ]
        owners: dict[tuple[str, str, str], str] = {}
        for m in stamped:
            owner = owners.setdefault((m.instance_id, m.entity, m.marketo_id), m.dynamics_id)
            if owner != m.dynamics_id:
                raise ValueError(
                    f"Marketo {m.marketo_type} {m.marketo_id} is linked to both {owner} and "
                    f"{m.dynamics_id} in one call; a Marketo record maps to one Dynamics record"
                )
        reverse_ops = [
            TableOperation("upsert", reverse_entity(m, self.layout), {"mode": UpdateMode.REPLACE})
            for m in stamped
        ]
        forward_ops = [
            TableOperation("upsert", forward_entity(m, self.layout), {"mode": UpdateMode.REPLACE})
            for m in stamped
        ]
        submit_all(
            self._client(TableKind.MAPPINGS_BY_MARKETO), reverse_ops, "writing ID mapping index"
        )
        submit_all(self._client(TableKind.MAPPINGS), forward_ops, "writing ID mappings")
        return stamped

    def update_many(
        self, instance_id: str, entity: str, updates: Iterable[MappingUpdate]
    ) -> list[str]:
        """Merge field-level changes into existing mappings (forward rows only).

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
        """Delete mappings (forward rows first, then their own index rows); returns how many
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
        # Only index rows that still point at a deleted mapping: a Marketo record re-linked to
        # another Dynamics record keeps its (valid) index row.
        index_keys = [
            self.layout.reverse_key(instance_id, entity, m.marketo_id) for m in existing.values()
        ]
        index_rows = self._query_rows(
            TableKind.MAPPINGS_BY_MARKETO, index_keys, "reading ID mapping index"
        )
        reverse_ops = [
            TableOperation("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]})
            for r in index_rows
            if normalize_dynamics_id(reverse_from_entity(r)[1]) in existing
        ]
        submit_all(
            self._client(TableKind.MAPPINGS_BY_MARKETO), reverse_ops, "deleting ID mapping index"
        )
        return len(existing)

    # --- plumbing -------------------------------------------------------------------------

    def _client(self, kind: TableKind) -> TableClient:
        self._check_layout()
        return self._tables.client(kind)

    def _point_read(self, kind: TableKind, key: tuple[str, str]) -> Any | None:
        client = self._client(kind)
        try:
            with storage_errors("reading an ID mapping", expected=(ResourceNotFoundError,)):
                return client.get_entity(*key)
        except ResourceNotFoundError:
            return None

    def _query_rows(
        self,
        kind: TableKind,
        keys: Sequence[tuple[str, str]],
        action: str,
        select: list[str] | None = None,
    ) -> list[Any]:
        """Rows for ``keys``: per partition, a scan or as few filters as the comparison limit
        allows, whichever costs fewer requests (see :meth:`_scan_partition`)."""
        by_partition: dict[str, list[str]] = {}
        for partition_key, row_key in keys:
            by_partition.setdefault(partition_key, []).append(row_key)
        client = self._client(kind)
        rows: list[Any] = []
        with storage_errors(action):
            for partition_key, row_keys in by_partition.items():
                wanted = list(dict.fromkeys(row_keys))
                if len(wanted) >= self.scan_min_ids:
                    wanted = self._scan_partition(client, partition_key, wanted, select, rows)
                for query in odata.key_lookup_filters(partition_key, wanted, self._max_comparisons):
                    rows.extend(client.query_entities(query, select=select))
        return rows

    def _scan_partition(
        self,
        client: TableClient,
        partition_key: str,
        wanted: list[str],
        select: list[str] | None,
        found: list[Any],
    ) -> list[str]:
        """Read a partition page by page, keeping the wanted rows in ``found``; returns the
        wanted keys still to look up by filter (none once the partition was read to its end).

        A filter names 14 rows, so ``n`` ids of a partition cost ``⌈n / 14⌉`` requests, while a
        scan page brings up to 1,000 rows in one. The scan goes on while its pages are dense
        enough to beat the filters (``scan_min_hits`` wanted rows a page); on a big
        partition with few wanted rows it stops after one page and the filters take the rest.
        This is what reading the links of a page of contacts needs: their 1,700 accounts are
        most of the account mappings, and 16 scans replace about 130 queries.
        """
        remaining = set(wanted)
        query = odata.compare("PartitionKey", "eq", odata.string(partition_key))
        pages = client.query_entities(
            query, select=select, results_per_page=self.scan_page
        ).by_page()
        for page in pages:
            hits = 0
            for row in page:
                if row["RowKey"] in remaining:
                    remaining.discard(row["RowKey"])
                    found.append(row)
                    hits += 1
            if not remaining or not getattr(pages, "continuation_token", "unknown"):
                return []  # all found, or the partition was read to its end
            if hits < self.scan_min_hits:
                return [key for key in wanted if key in remaining]
        return []  # no page left: the rest do not exist

    def _check_layout(self) -> None:
        """Refuse to run with a bucket count other than the one the tables were written with."""
        if not self._layout_checked:
            with self._layout_lock:
                self._verify_layout_locked()

    def _verify_layout_locked(self) -> None:
        if self._layout_checked:  # another thread did it while we waited for the lock
            return
        client = self._tables.client(TableKind.CONFIG)
        row: dict[str, Any] = {
            "PartitionKey": LAYOUT_PARTITION,
            "RowKey": LAYOUT_ROW,
            "buckets": self.layout.buckets,
        }
        with storage_errors(
            "checking the ID mapping layout",
            expected=(ResourceExistsError, ResourceNotFoundError),
        ):
            try:
                stored = int(client.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)["buckets"])
            except ResourceNotFoundError:
                try:
                    client.create_entity(row)
                    stored = self.layout.buckets
                except ResourceExistsError:  # another process recorded it first
                    stored = int(client.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)["buckets"])
        if stored != self.layout.buckets:
            raise ConfigurationError(
                f"the ID mapping tables were written with {stored} buckets, but this store "
                f"is configured with {self.layout.buckets}; use {stored} (changing it needs "
                "the mappings rewritten)"
            )
        self._layout_checked = True
