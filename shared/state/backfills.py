"""Back-fill requests (Marketo's "Quick Sync"): send one field of every mapped record.

One row per stream in the config table (``PK = backfill!<instance>``, ``RK = entity!direction``,
point reads only, so the copy-rule rows beside it are not disturbed). A request has its own
``sequence`` and ``step`` like a run: a job names both, and one for a step already committed is
a duplicate and is dropped, so each page of records is committed once. ``position`` is where
the scan of the ID mapping has got to (``""``: the start; ``None``: done).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.clock import Clock
from shared.errors import ConcurrencyConflict
from shared.jobs import Direction
from shared.state.keys import encode_component, join_key, split_key
from shared.state.properties import int64, read_bool, read_datetime, read_int, read_str, utc
from shared.state.streams import StreamId
from shared.state.tables import TableAccess, TableKind, replace_if_unchanged, storage_errors
from shared.state.watermarks import StaleRunError


@dataclass(frozen=True)
class BackfillCounts:
    """What a back-fill did so far."""

    sent: int = 0
    empty: int = 0
    """Records left out because the field is empty (without ``include_empty``)."""
    older: int = 0
    """Records left out because they were not modified since ``modified_since``."""
    failed: int = 0
    """Records Marketo refused (each logged as a sync error)."""
    scanned: int = 0
    """Mapped records looked at."""

    def __add__(self, other: BackfillCounts) -> BackfillCounts:
        return BackfillCounts(
            self.sent + other.sent,
            self.empty + other.empty,
            self.older + other.older,
            self.failed + other.failed,
            self.scanned + other.scanned,
        )


@dataclass(frozen=True)
class Backfill:
    """One stream's back-fill request and its progress."""

    stream: StreamId
    column: str
    """The Dynamics column whose mapped Marketo field is sent."""
    include_empty: bool = False
    modified_since: datetime | None = None
    sequence: int = 0
    step: int = 0
    position: str | None = ""
    counts: BackfillCounts = BackfillCounts()
    total: int | None = None
    """Mapped records when it started (for progress)."""
    requested_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    etag: str | None = None

    @property
    def open(self) -> bool:
        """Still scanning."""
        return self.position is not None


def restart(previous: Backfill | None, request: Backfill, now: datetime) -> Backfill:
    """A new request in place of ``previous`` (its sequence moves on; old jobs turn stale)."""
    sequence = (previous.sequence if previous else 0) + 1
    return replace(
        request,
        sequence=sequence,
        step=0,
        position="",
        counts=BackfillCounts(),
        requested_at=now,
        updated_at=now,
        finished_at=None,
        etag=previous.etag if previous else None,
    )


def advance(
    backfill: Backfill,
    *,
    sequence: int,
    step: int,
    position: str | None,
    counts: BackfillCounts,
    now: datetime,
) -> Backfill:
    """Commit one page of the scan.

    Raises:
        StaleRunError: ``(sequence, step)`` is not the request's current one.
    """
    if (sequence, step) != (backfill.sequence, backfill.step) or not backfill.open:
        raise StaleRunError(
            f"back-fill job for request {sequence} step {step} is stale "
            f"(request {backfill.sequence} at step {backfill.step})",
            system="storage",
        )
    return replace(
        backfill,
        step=backfill.step + 1,
        position=position,
        counts=backfill.counts + counts,
        updated_at=now,
        finished_at=now if position is None else None,
    )


def _keys(stream: StreamId) -> tuple[str, str]:
    return (
        join_key("backfill", encode_component(stream.instance_id)),
        join_key(stream.entity, stream.direction.value),
    )


def to_entity(backfill: Backfill) -> dict[str, Any]:
    """The table row."""
    partition_key, row_key = _keys(backfill.stream)
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "column": backfill.column,
        "include_empty": backfill.include_empty,
        "sequence": int64(backfill.sequence),
        "step": int64(backfill.step),
        "done": backfill.position is None,
        "position": backfill.position or "",
        "sent": int64(backfill.counts.sent),
        "empty": int64(backfill.counts.empty),
        "older": int64(backfill.counts.older),
        "failed": int64(backfill.counts.failed),
        "scanned": int64(backfill.counts.scanned),
    }
    if backfill.total is not None:
        entity["total"] = int64(backfill.total)
    for name in ("modified_since", "requested_at", "updated_at", "finished_at"):
        value = getattr(backfill, name)
        if value is not None:
            entity[name] = utc(value)
    return entity


def from_entity(entity: Any) -> Backfill:
    """The request stored in ``entity``."""
    instance = split_key(entity["PartitionKey"])[1]
    entity_name, direction = split_key(entity["RowKey"])
    metadata = getattr(entity, "metadata", None) or {}
    total = entity.get("total")
    return Backfill(
        stream=StreamId(instance, entity_name, Direction(direction)),
        column=read_str(entity, "column") or "",
        include_empty=read_bool(entity, "include_empty"),
        modified_since=read_datetime(entity, "modified_since"),
        sequence=read_int(entity, "sequence"),
        step=read_int(entity, "step"),
        position=None if read_bool(entity, "done") else (read_str(entity, "position") or ""),
        counts=BackfillCounts(
            sent=read_int(entity, "sent"),
            empty=read_int(entity, "empty"),
            older=read_int(entity, "older"),
            failed=read_int(entity, "failed"),
            scanned=read_int(entity, "scanned"),
        ),
        total=None if total is None else int(total),
        requested_at=read_datetime(entity, "requested_at"),
        updated_at=read_datetime(entity, "updated_at"),
        finished_at=read_datetime(entity, "finished_at"),
        etag=metadata.get("etag"),
    )


class BackfillStore:
    """Back-fill rows, saved under ETags."""

    def __init__(self, tables: TableAccess, clock: Clock) -> None:
        self._tables = tables
        self._clock = clock

    def get(self, stream: StreamId) -> Backfill | None:
        """The stream's request, if one was ever made."""
        client = self._tables.client(TableKind.CONFIG)
        try:
            with storage_errors(
                f"reading the back-fill of {stream}", expected=(ResourceNotFoundError,)
            ):
                return from_entity(client.get_entity(*_keys(stream)))
        except ResourceNotFoundError:
            return None

    def save(self, backfill: Backfill) -> Backfill:
        """Write ``backfill`` if nobody changed the row since it was read.

        Raises:
            ConcurrencyConflict: another writer got there first.
        """
        client = self._tables.client(TableKind.CONFIG)
        action = f"saving the back-fill of {backfill.stream}"
        entity = to_entity(backfill)
        try:
            if backfill.etag is None:
                with storage_errors(action, expected=(ResourceExistsError,)):
                    etag = client.create_entity(entity).get("etag")
            else:
                etag = replace_if_unchanged(client, entity, backfill.etag, action)
        except (ResourceExistsError, ConcurrencyConflict):
            raise ConcurrencyConflict(
                f"{action}: changed meanwhile; re-read", system="storage"
            ) from None
        return replace(backfill, etag=None if etag is None else str(etag))

    def request(self, request: Backfill) -> Backfill:
        """Record a new request for ``request.stream`` (replacing a finished or running one)."""
        previous = self.get(request.stream)
        return self.save(restart(previous, request, self._clock.now()))

    def commit(
        self, backfill: Backfill, *, position: str | None, counts: BackfillCounts
    ) -> Backfill:
        """Commit one page (see :func:`advance`)."""
        return self.save(
            advance(
                backfill,
                sequence=backfill.sequence,
                step=backfill.step,
                position=position,
                counts=counts,
                now=self._clock.now(),
            )
        )
