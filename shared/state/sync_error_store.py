"""Sync error rows in Table Storage.

All errors of one instance share a partition, so a batch's failures are read with a few
queries and written with one transaction per 100 rows; per-stream lists are RowKey range scans.
Failures are recorded read-modify-write under ETags (new rows by ``create``), so a repeat
failure reported by two workers at once cannot lose an attempt; a conflicting transaction is
re-read and retried, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.clock import Clock
from shared.errors import ConcurrencyConflict
from shared.jobs import Direction
from shared.settings import SyncSettings
from shared.state import odata
from shared.state.error_retry import RETRY_REQUESTED
from shared.state.keys import encode_component, prefix_range, split_key
from shared.state.properties import utc
from shared.state.streams import StreamId
from shared.state.sync_errors import (
    PENDING_CODE,
    ErrorRetryPolicy,
    FailedRecord,
    SyncError,
    apply_failure,
    error_keys,
    from_entity,
    record_key_for,
    to_entity,
)
from shared.state.tables import TableAccess, TableKind, storage_errors, translate_storage_error
from shared.state.transactions import (
    TableOperation,
    plan_transactions,
    submit_skipping,
    submit_transaction,
)

DEFAULT_RETENTION_DAYS: int = SyncSettings.model_fields["error_retention_days"].default
"""The default of ``SyncSettings.error_retention_days`` (``SYNC_ERROR_RETENTION_DAYS``)."""

_WRITE_ATTEMPTS = 3
_CONFLICT_STATUSES = frozenset({409, 412})
_MISSING = frozenset({404})
_MISSING_OR_CHANGED = frozenset({404, 412})


class SyncErrorStore:
    """Record, resolve, list and purge sync errors."""

    def __init__(
        self,
        tables: TableAccess,
        clock: Clock,
        policy: ErrorRetryPolicy | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        max_comparisons: int = odata.MAX_COMPARISONS,
    ) -> None:
        self._tables = tables
        self._clock = clock
        self.policy = policy or ErrorRetryPolicy()
        self.retention_days = retention_days
        self._max_comparisons = max_comparisons

    # --- writes ---------------------------------------------------------------------------

    def record(self, failure: FailedRecord) -> SyncError:
        """Record one failure (see :meth:`record_many`)."""
        return self.record_many([failure])[0]

    def record_many(self, failures: Sequence[FailedRecord]) -> list[SyncError]:
        """Record failures: new rows for new records, one more attempt for repeats.

        Returns:
            The stored rows, one per distinct record, in first-seen order.

        Raises:
            ConcurrencyConflict: other writers kept changing the same rows.
        """
        by_key: dict[tuple[str, str], list[FailedRecord]] = {}
        for failure in failures:
            side, record_id = failure.record_id
            by_key.setdefault(error_keys(failure.stream, side, record_id), []).append(failure)
        client = self._client()
        existing = self._read(client, list(by_key))
        results: dict[tuple[str, str], SyncError] = {}
        pending = list(by_key)
        for _ in range(_WRITE_ATTEMPTS):
            now = self._clock.now()
            rows = {key: self._apply(existing.get(key), by_key[key], now) for key in pending}
            conflicted: list[tuple[str, str]] = []
            for transaction in plan_transactions(_write_op(row) for row in rows.values()):
                keys = [op.row for op in transaction]
                try:
                    with storage_errors("recording sync errors", expected=(TableTransactionError,)):
                        outcome = submit_transaction(client, transaction)
                except TableTransactionError as exc:
                    if exc.status_code not in _CONFLICT_STATUSES:
                        raise translate_storage_error(exc, "recording sync errors") from exc
                    conflicted.extend(keys)
                    continue
                for key, metadata in zip(keys, outcome, strict=True):
                    results[key] = replace(rows[key], etag=metadata.get("etag"))
            if not conflicted:
                return [results[key] for key in by_key]
            pending = conflicted
            for key in conflicted:
                existing.pop(key, None)
            existing.update(self._read(client, conflicted))
        raise ConcurrencyConflict(
            "recording sync errors: the rows kept changing under other writers", system="storage"
        )

    def resolve(self, stream: StreamId, record_ids: Iterable[str]) -> int:
        """Mark the errors of records that have now succeeded as resolved.

        ``record_ids`` are source-side ids (Dynamics ids for ``d2m``, Marketo ids for ``m2d``);
        ids without an open error row are ignored. Returns how many rows were resolved.

        The stream's open rows are listed first (one range query, normally a handful of rows)
        and only those are updated. Sending a MERGE for every id instead would cost, for ids
        without a row, one failed transaction per missing id (a transaction stops at its first
        404), i.e. work quadratic in the batch: a page of 5,000 new records with no errors
        took minutes. Rows already resolved are left as they are (their ``resolved_at`` stays
        the time they were first resolved).
        """
        wanted: set[tuple[str, str]] = set()
        for record_id in record_ids:
            side, normalised = _source_id(stream, record_id)
            wanted.add(error_keys(stream, side, normalised))
        if not wanted:
            return 0
        client = self._client()
        open_keys = [key for key in self._open_keys(client, stream) if key in wanted]
        now = utc(self._clock.now())
        operations = [
            TableOperation(
                "update",
                {
                    "PartitionKey": partition_key,
                    "RowKey": row_key,
                    "resolved": True,
                    "resolved_at": now,
                    "last_activity_at": now,
                },
                {"mode": UpdateMode.MERGE},
            )
            for partition_key, row_key in open_keys
        ]
        resolved = 0
        for transaction in plan_transactions(operations):
            # A row deleted meanwhile (purged) is nothing to resolve.
            skipped = submit_skipping(client, transaction, _MISSING, "resolving sync errors")
            resolved += len(transaction) - len(skipped)
        return resolved

    def purge(self, older_than_days: int | None = None) -> int:
        """Delete resolved rows of every instance whose last activity is older than the
        retention period (default :attr:`retention_days`); returns how many were deleted.

        Unresolved rows are kept however old (a record whose retries ran out stays listed until
        it is fixed and syncs): purging them would forget a record that never reached Marketo.
        """
        days = self.retention_days if older_than_days is None else older_than_days
        if days < 0:
            raise ValueError("older_than_days cannot be negative")
        cutoff = self._clock.now() - timedelta(days=days)
        query = odata.all_of(
            odata.compare("last_activity_at", "lt", odata.timestamp(cutoff)),
            odata.compare("resolved", "eq", odata.boolean(True)),
        )
        client = self._client()
        with storage_errors("finding old sync errors"):
            rows = list(client.query_entities(query, select=["PartitionKey", "RowKey"]))
        operations = [
            TableOperation(
                "delete",
                {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]},
                {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified},
            )
            for row in rows
        ]
        deleted = 0
        for transaction in plan_transactions(operations):
            # A row failing again since we listed it (412) is no longer old: keep it.
            skipped = submit_skipping(
                client, transaction, _MISSING_OR_CHANGED, "purging sync errors"
            )
            deleted += len(transaction) - len(skipped)
        return deleted

    # --- reads ----------------------------------------------------------------------------

    def get(self, stream: StreamId, record_id: str) -> SyncError | None:
        """The error row of one record (by its source-side id), if any."""
        side, normalised = _source_id(stream, record_id)
        key = error_keys(stream, side, normalised)
        return self._read(self._client(), [key]).get(key)

    def due_for_retry(self, stream: StreamId, limit: int | None = None) -> list[SyncError]:
        """Unresolved errors of a stream whose retry time has come and whose attempts are not
        used up (the policy's ``max_attempts``) or whose retry an operator asked for
        (:mod:`shared.state.error_retry`), oldest retry time first."""
        low, high = prefix_range(stream.entity, stream.direction.value)
        query = odata.all_of(
            odata.key_range(encode_component(stream.instance_id), low, high),
            odata.compare("resolved", "eq", odata.boolean(False)),
            odata.any_of(
                odata.compare("attempts", "lt", odata.integer(self.policy.max_attempts)),
                odata.compare("code", "eq", odata.string(PENDING_CODE)),
                odata.compare(RETRY_REQUESTED, "eq", odata.boolean(True)),
            ),
            odata.compare("next_retry_at", "le", odata.timestamp(self._clock.now())),
        )
        with storage_errors(f"listing retries of {stream}"):
            errors = [from_entity(row) for row in self._client().query_entities(query)]
        errors.sort(key=lambda e: (e.next_retry_at or e.last_seen, e.record_id))
        return errors[:limit] if limit is not None else errors

    def open_record_ids(self, stream: StreamId) -> set[str]:
        """Source-side ids of the stream's unresolved errors (to resolve them on success)."""
        return {split_key(row_key)[3] for _, row_key in self._open_keys(self._client(), stream)}

    def list(
        self,
        instance_id: str,
        *,
        entity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_resolved: bool = False,
        limit: int | None = None,
        kind: Literal["all", "errors", "pending"] = "all",
    ) -> list[SyncError]:
        """An instance's errors, newest failure first.

        Args:
            instance_id: the instance.
            entity: only this entity's errors.
            since: only errors last seen at or after this time.
            until: only errors last seen before this time.
            include_resolved: include resolved errors too.
            limit: at most this many.
            kind: ``errors`` leaves out records waiting for a dependency, ``pending`` lists only
                those (filtered in the query, so ``limit`` counts only what is asked for).
        """
        partition = odata.compare("PartitionKey", "eq", odata.string(encode_component(instance_id)))
        clauses = [partition]
        if entity is not None:
            low, high = prefix_range(entity)
            clauses = [odata.key_range(encode_component(instance_id), low, high)]
        if since is not None:
            clauses.append(odata.compare("last_seen", "ge", odata.timestamp(since)))
        if until is not None:
            clauses.append(odata.compare("last_seen", "lt", odata.timestamp(until)))
        if not include_resolved:
            clauses.append(odata.compare("resolved", "eq", odata.boolean(False)))
        if kind != "all":
            op = "eq" if kind == "pending" else "ne"
            clauses.append(odata.compare("code", op, odata.string(PENDING_CODE)))
        with storage_errors(f"listing sync errors of {instance_id}"):
            errors = [from_entity(r) for r in self._client().query_entities(odata.all_of(*clauses))]
        errors.sort(key=lambda e: (e.last_seen, e.stream, e.record_id), reverse=True)
        return errors[:limit] if limit is not None else errors

    def count_open(self, instance_id: str) -> dict[StreamId, int]:
        """Unresolved errors per stream of an instance (records waiting for a dependency are
        not errors: see :meth:`count_open_by_kind`)."""
        return {stream: n for stream, (n, _) in self.count_open_by_kind(instance_id).items() if n}

    def count_open_by_kind(self, instance_id: str) -> dict[StreamId, tuple[int, int]]:
        """Per stream: ``(open errors, records waiting for a dependency)``; one query."""
        query = odata.all_of(
            odata.compare("PartitionKey", "eq", odata.string(encode_component(instance_id))),
            odata.compare("resolved", "eq", odata.boolean(False)),
        )
        counts: dict[StreamId, tuple[int, int]] = {}
        with storage_errors(f"counting sync errors of {instance_id}"):
            for row in self._client().query_entities(query, select=["RowKey", "code"]):
                entity, direction = split_key(row["RowKey"])[:2]
                stream = StreamId(instance_id, entity, Direction(direction))
                errors, pending = counts.get(stream, (0, 0))
                if row.get("code") == PENDING_CODE:
                    pending += 1
                else:
                    errors += 1
                counts[stream] = (errors, pending)
        return counts

    # --- plumbing -------------------------------------------------------------------------

    def _open_keys(self, client: TableClient, stream: StreamId) -> Sequence[tuple[str, str]]:
        """``(PartitionKey, RowKey)`` of the stream's unresolved error rows (one range query)."""
        low, high = prefix_range(stream.entity, stream.direction.value)
        query = odata.all_of(
            odata.key_range(encode_component(stream.instance_id), low, high),
            odata.compare("resolved", "eq", odata.boolean(False)),
        )
        with storage_errors(f"listing open errors of {stream}"):
            rows = client.query_entities(query, select=["PartitionKey", "RowKey"])
            return [(row["PartitionKey"], row["RowKey"]) for row in rows]

    def _client(self) -> TableClient:
        return self._tables.client(TableKind.SYNC_ERRORS)

    def _apply(
        self, existing: SyncError | None, failures: Sequence[FailedRecord], now: datetime
    ) -> SyncError:
        row = existing
        for failure in failures:
            row = apply_failure(row, failure, now, self.policy)
        assert row is not None
        return row

    def _read(
        self, client: TableClient, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], SyncError]:
        by_partition: dict[str, list[str]] = {}
        for partition_key, row_key in keys:
            by_partition.setdefault(partition_key, []).append(row_key)
        found: dict[tuple[str, str], SyncError] = {}
        with storage_errors("reading sync errors"):
            for partition_key, row_keys in by_partition.items():
                for query in odata.key_lookup_filters(
                    partition_key, row_keys, self._max_comparisons
                ):
                    for row in client.query_entities(query):
                        found[(row["PartitionKey"], row["RowKey"])] = from_entity(row)
        return found


def _source_id(stream: StreamId, record_id: str) -> tuple[str, str]:
    if stream.direction is Direction.DYNAMICS_TO_MARKETO:
        return record_key_for(stream, record_id, None)
    return record_key_for(stream, None, record_id)


def _write_op(row: SyncError) -> TableOperation:
    entity: dict[str, Any] = to_entity(row)
    if row.etag is None:
        return TableOperation("create", entity)
    return TableOperation(
        "update",
        entity,
        {
            "mode": UpdateMode.REPLACE,
            "etag": row.etag,
            "match_condition": MatchConditions.IfNotModified,
        },
    )
