"""Sync errors: a record that failed, kept for operators and retried later. Pure part.

One row per failing record and stream::

    PK = instance id
    RK = entity ! direction ! side ! record id      (side: ``d`` Dynamics id, ``m`` Marketo id)

The record id is the source side's id (Dynamics for ``d2m``, Marketo for ``m2d``), which is
always known when a record fails: a Marketo-sourced failure is keyed by its Marketo id. The key
names the direction and the source side, so rows need no further columns for either
direction, and rows written before :attr:`FailedRecord.source_id` existed read the same.
Direction-neutral code builds failures with :meth:`FailedRecord.from_source` and reads
:attr:`SyncError.source_id` / :attr:`SyncError.target_id`.

A repeat failure of the same record updates its row: ``attempts`` + 1, ``first_seen`` kept,
``next_retry_at`` pushed out by an exponential backoff. A record that succeeds later is
*resolved* (kept, for history, until purged). A record that fails again after being resolved
starts a new episode (``attempts`` = 1, new ``first_seen``).

``last_activity_at`` is the latest of the failure and resolution times; purging deletes rows
whose last activity is older than the retention period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.jobs import Direction
from shared.retry import RetryPolicy, backoff_delay
from shared.state.keys import InvalidKeyError, encode_component, join_key, split_key
from shared.state.mappings import MappingConflict, normalize_dynamics_id, normalize_marketo_id
from shared.state.properties import (
    int64,
    read_bool,
    read_datetime,
    read_int,
    read_str,
    truncate,
    utc,
)
from shared.state.streams import StreamId

MAX_MESSAGE_CHARS = 2_000
"""Error messages are stored cut to this length (well inside the 32K-character limit)."""
MAX_CODE_CHARS = 100
MAX_OPERATION_CHARS = 64
SCHEMA_VERSION = 1


MAPPING_CONFLICT_CODE = "MAPPING_CONFLICT"
"""Our code for a record that Marketo (or Dynamics) resolved to a record already linked to
another one (:class:`~shared.state.mappings.MappingConflict`)."""

PENDING_CODE = "DEPENDENCY_PENDING"
"""Not a failure: a record whose linked record (its company, owner, opportunity) has not reached
Marketo yet. It is retried like a failure, but never given up on, and operators see it apart
from real errors."""


@dataclass(frozen=True)
class ErrorRetryPolicy:
    """When a failed record is tried again, and how often at most."""

    max_attempts: int = 10
    """After this many failures a record is no longer offered for retry (it stays listed)."""
    first_delay: timedelta = timedelta(minutes=5)
    max_delay: timedelta = timedelta(hours=12)
    pending_max_delay: timedelta = timedelta(minutes=15)
    """Records waiting for a dependency are looked at again at least this often, and never
    given up on: the dependency may be fixed days later."""

    def next_retry_at(
        self, attempts: int, now: datetime, code: str | None = None
    ) -> datetime | None:
        """When to retry after the ``attempts``-th failure; ``None`` once attempts run out
        (never for :data:`PENDING_CODE`, whose delay is capped at ``pending_max_delay``)."""
        pending = code == PENDING_CODE
        if attempts >= self.max_attempts and not pending:
            return None
        policy = RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.first_delay.total_seconds(),
            max_delay=self.max_delay.total_seconds(),
            jitter=0.0,  # deterministic: the batch's retries are spread by their failure times
        )
        delay = timedelta(seconds=backoff_delay(min(attempts, self.max_attempts), policy))
        return now + (min(delay, self.pending_max_delay) if pending else delay)


@dataclass(frozen=True)
class FailedRecord:
    """What the sync reports about one failure."""

    stream: StreamId
    operation: str
    """What was attempted, e.g. ``create``, ``update``, ``delete``, ``associate``."""
    code: str
    """The service's error code (a Dataverse hex code, a Marketo code) or our own."""
    message: str
    dynamics_id: str | None = None
    marketo_id: str | None = None

    @property
    def record_id(self) -> tuple[str, str]:
        """``(side, id)`` of the record this row is about: the stream's source side.

        Raises:
            ValueError: the source side's id is missing.
        """
        return record_key_for(self.stream, self.dynamics_id, self.marketo_id)

    @property
    def source_id(self) -> str | None:
        """The id on the stream's source side (as given)."""
        return _source_and_target(self.stream, self.dynamics_id, self.marketo_id)[0]

    @property
    def target_id(self) -> str | None:
        """The id on the stream's target side, if known."""
        return _source_and_target(self.stream, self.dynamics_id, self.marketo_id)[1]

    @classmethod
    def from_source(
        cls,
        stream: StreamId,
        operation: str,
        code: str,
        message: str,
        source_id: str,
        target_id: str | None = None,
    ) -> FailedRecord:
        """A failure named by source and target id, whichever vendor each side is."""
        if stream.direction is Direction.DYNAMICS_TO_MARKETO:
            return cls(stream, operation, code, message, source_id, target_id)
        return cls(stream, operation, code, message, target_id, source_id)

    @classmethod
    def for_conflict(cls, stream: StreamId, conflict: MappingConflict) -> FailedRecord:
        """The per-record error of the refused side of a mapping conflict."""
        refused = conflict.refused
        return cls(
            stream,
            "link",
            MAPPING_CONFLICT_CODE,
            conflict.describe(),
            refused.dynamics_id,
            refused.marketo_id,
        )


def _source_and_target(
    stream: StreamId, dynamics_id: str | None, marketo_id: str | None
) -> tuple[str | None, str | None]:
    if stream.direction is Direction.DYNAMICS_TO_MARKETO:
        return dynamics_id, marketo_id
    return marketo_id, dynamics_id


def normalize_source_id(stream: StreamId, record_id: str) -> str:
    """A source-side id as error rows key it (a Dynamics GUID lower-cased without braces for
    ``d2m``, a trimmed Marketo id for ``m2d``): compare :meth:`SyncErrorStore.open_record_ids`
    against ids normalised by this."""
    if stream.direction is Direction.DYNAMICS_TO_MARKETO:
        return normalize_dynamics_id(record_id)
    return normalize_marketo_id(record_id)


def record_key_for(
    stream: StreamId, dynamics_id: str | None, marketo_id: str | None
) -> tuple[str, str]:
    """``(side, id)``: the Dynamics id for ``d2m`` streams, the Marketo id for ``m2d``."""
    if stream.direction is Direction.DYNAMICS_TO_MARKETO:
        if not dynamics_id:
            raise ValueError(f"a {stream} sync error needs the Dynamics record id")
        return "d", normalize_dynamics_id(dynamics_id)
    if not marketo_id:
        raise ValueError(f"a {stream} sync error needs the Marketo record id")
    return "m", normalize_marketo_id(marketo_id)


@dataclass(frozen=True)
class SyncError:
    """A stored sync error."""

    stream: StreamId
    operation: str
    code: str
    message: str
    dynamics_id: str | None
    marketo_id: str | None
    first_seen: datetime
    last_seen: datetime
    attempts: int
    next_retry_at: datetime | None
    resolved: bool = False
    resolved_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def record_id(self) -> tuple[str, str]:
        """``(side, id)`` of the record (see :func:`record_key_for`)."""
        return record_key_for(self.stream, self.dynamics_id, self.marketo_id)

    @property
    def direction(self) -> Direction:
        """Which way the failed record was going."""
        return self.stream.direction

    @property
    def source_id(self) -> str:
        """The (normalised) id of the record on the source side: what the row is keyed by."""
        return self.record_id[1]

    @property
    def target_id(self) -> str | None:
        """The id on the target side, if it was known."""
        return _source_and_target(self.stream, self.dynamics_id, self.marketo_id)[1]

    @property
    def last_activity_at(self) -> datetime:
        """The later of the last failure and the resolution."""
        if self.resolved_at is not None and self.resolved_at > self.last_seen:
            return self.resolved_at
        return self.last_seen

    def is_due(self, now: datetime, max_attempts: int) -> bool:
        """Whether the record should be retried at ``now``."""
        return (
            not self.resolved
            and (self.attempts < max_attempts or self.code == PENDING_CODE)
            and self.next_retry_at is not None
            and self.next_retry_at <= now
        )


def apply_failure(
    existing: SyncError | None, failure: FailedRecord, now: datetime, policy: ErrorRetryPolicy
) -> SyncError:
    """The row after ``failure``: a new error, or the existing one with one more attempt."""
    repeat = existing is not None and not existing.resolved
    attempts = existing.attempts + 1 if existing is not None and repeat else 1
    first_seen = existing.first_seen if existing is not None and repeat else now
    return SyncError(
        stream=failure.stream,
        operation=truncate(failure.operation, MAX_OPERATION_CHARS),
        code=truncate(failure.code, MAX_CODE_CHARS),
        message=truncate(failure.message, MAX_MESSAGE_CHARS),
        dynamics_id=_normalized(failure.dynamics_id, normalize_dynamics_id)
        or (existing.dynamics_id if existing else None),
        marketo_id=_normalized(failure.marketo_id, normalize_marketo_id)
        or (existing.marketo_id if existing else None),
        first_seen=first_seen,
        last_seen=now,
        attempts=attempts,
        next_retry_at=policy.next_retry_at(attempts, now, failure.code),
        resolved=False,
        resolved_at=None,
        etag=existing.etag if existing is not None else None,
    )


def _normalized(value: str | None, normalize: Callable[[str], str]) -> str | None:
    return normalize(value) if value and value.strip() else None


def apply_resolution(existing: SyncError, now: datetime) -> SyncError:
    """The row once the record has succeeded."""
    return replace(existing, resolved=True, resolved_at=now, next_retry_at=None)


# --- keys and row conversion ------------------------------------------------------------------


def error_keys(stream: StreamId, side: str, record_id: str) -> tuple[str, str]:
    """``(PartitionKey, RowKey)`` of a record's error row."""
    return (
        encode_component(stream.instance_id),
        join_key(stream.entity, stream.direction.value, side, record_id),
    )


def to_entity(error: SyncError) -> dict[str, Any]:
    """The table row for ``error``."""
    side, record_id = error.record_id
    partition_key, row_key = error_keys(error.stream, side, record_id)
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": SCHEMA_VERSION,
        "operation": error.operation,
        "code": error.code,
        "message": truncate(error.message, MAX_MESSAGE_CHARS),
        "first_seen": utc(error.first_seen),
        "last_seen": utc(error.last_seen),
        "last_activity_at": utc(error.last_activity_at),
        "attempts": int64(error.attempts),
        "resolved": error.resolved,
    }
    if error.dynamics_id is not None:
        entity["dynamics_id"] = error.dynamics_id
    if error.marketo_id is not None:
        entity["marketo_id"] = error.marketo_id
    if error.next_retry_at is not None:
        entity["next_retry_at"] = utc(error.next_retry_at)
    if error.resolved_at is not None:
        entity["resolved_at"] = utc(error.resolved_at)
    return entity


def from_entity(entity: Any) -> SyncError:
    """The sync error stored in ``entity``."""
    metadata = getattr(entity, "metadata", None) or {}
    instance = split_key(entity["PartitionKey"])
    parts = split_key(entity["RowKey"])
    if len(instance) != 1 or len(parts) != 4:
        raise InvalidKeyError(f"row {entity['RowKey']!r} is not a sync error key")
    first_seen = read_datetime(entity, "first_seen")
    last_seen = read_datetime(entity, "last_seen")
    if first_seen is None or last_seen is None:
        raise ValueError("sync error row lacks first_seen/last_seen")
    return SyncError(
        stream=StreamId(instance[0], parts[0], Direction(parts[1])),
        operation=read_str(entity, "operation") or "",
        code=read_str(entity, "code") or "",
        message=read_str(entity, "message") or "",
        dynamics_id=read_str(entity, "dynamics_id"),
        marketo_id=read_str(entity, "marketo_id"),
        first_seen=first_seen,
        last_seen=last_seen,
        attempts=read_int(entity, "attempts"),
        next_retry_at=read_datetime(entity, "next_retry_at"),
        resolved=read_bool(entity, "resolved"),
        resolved_at=read_datetime(entity, "resolved_at"),
        etag=metadata.get("etag"),
    )
