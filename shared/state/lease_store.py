"""Lease rows in Table Storage: first writer wins, takeover only after expiry.

* **acquire**: ``create`` the row. If it exists and has not expired, the stream is busy
  (:class:`~shared.state.leases.StreamLeaseHeldError`, saying until when). If it has expired,
  REPLACE it conditioned on the ETag just read: of several workers trying to take over the same
  dead lease, exactly one succeeds; the others re-read and find it held.
* **renew**: REPLACE conditioned on the holder's ETag; a mismatch means the lease expired and
  was taken over, and the holder must stop (:class:`~shared.errors.ConcurrencyConflict`).
* **release**: delete conditioned on the holder's ETag, so a worker that overran its lease can
  never delete its successor's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.clock import Clock
from shared.errors import ConcurrencyConflict, LeaseHeldError
from shared.state import odata
from shared.state.keys import encode_component
from shared.state.leases import (
    Lease,
    StreamLeaseHeldError,
    check_duration,
    from_entity,
    new_lease,
    renewed,
    to_entity,
)
from shared.state.streams import StreamId
from shared.state.tables import TableAccess, TableKind, replace_if_unchanged, storage_errors

_ACQUIRE_ATTEMPTS = 3
"""Create / read / take-over rounds before giving up (each round loses only to a real rival)."""


class LeaseStore:
    """Acquire, renew and release stream leases."""

    def __init__(
        self,
        tables: TableAccess,
        clock: Clock,
        token_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._tables = tables
        self._clock = clock
        self._token_factory = token_factory

    def get(self, stream: StreamId) -> Lease | None:
        """The lease row for ``stream`` (it may have expired), or ``None``."""
        client = self._tables.client(TableKind.LEASES)
        try:
            with storage_errors(f"reading lease {stream}", expected=(ResourceNotFoundError,)):
                return from_entity(client.get_entity(stream.partition_key, stream.row_key))
        except ResourceNotFoundError:
            return None

    def list(self, instance_id: str) -> list[Lease]:
        """Every lease row of one instance (expired ones included)."""
        client = self._tables.client(TableKind.LEASES)
        query = odata.compare("PartitionKey", "eq", odata.string(encode_component(instance_id)))
        with storage_errors(f"listing leases of {instance_id}"):
            return [from_entity(row) for row in client.query_entities(query)]

    def acquire(self, stream: StreamId, owner: str, duration: timedelta) -> Lease:
        """Take the stream's lease for ``duration``.

        Raises:
            StreamLeaseHeldError: another owner holds an unexpired lease (says until when).
            LeaseHeldError: rivals kept winning every round.
        """
        check_duration(duration)
        client = self._tables.client(TableKind.LEASES)
        action = f"acquiring lease {stream}"
        for _ in range(_ACQUIRE_ATTEMPTS):
            now = self._clock.now()
            lease = new_lease(stream, owner, duration, now, self._token_factory())
            try:
                with storage_errors(action, expected=(ResourceExistsError,)):
                    metadata = client.create_entity(to_entity(lease))
                return replace(lease, etag=metadata.get("etag"))
            except ResourceExistsError:
                pass
            current = self.get(stream)
            if current is None:  # released between our create and read: try again
                continue
            if not current.is_expired(now):
                raise StreamLeaseHeldError(stream, current.owner, current.expires_at, now)
            try:
                etag = replace_if_unchanged(client, to_entity(lease), current.etag, action)
                return replace(lease, etag=etag)
            except ConcurrencyConflict:
                continue  # another worker took over (or released) first; look again
        raise LeaseHeldError(
            f"stream {stream}: lease contended, another worker won {_ACQUIRE_ATTEMPTS} times",
            system="storage",
        )

    def renew(self, lease: Lease, duration: timedelta | None = None) -> Lease:
        """Extend a held lease (by its original length unless ``duration`` is given).

        Raises:
            ConcurrencyConflict: the lease was lost (expired and taken over, or released).
        """
        _require_stored(lease)
        length = duration or (lease.expires_at - (lease.renewed_at or lease.acquired_at))
        extended = renewed(lease, length, self._clock.now())
        client = self._tables.client(TableKind.LEASES)
        try:
            etag = replace_if_unchanged(
                client, to_entity(extended), lease.etag, f"renewing lease {lease.stream}"
            )
        except ConcurrencyConflict:
            raise ConcurrencyConflict(
                f"lease on {lease.stream} was lost: it expired and another worker took it over",
                system="storage",
            ) from None
        return replace(extended, etag=etag)

    def release(self, lease: Lease) -> bool:
        """Give the lease up. Returns ``False`` if it had already passed to another worker."""
        _require_stored(lease)
        client = self._tables.client(TableKind.LEASES)
        try:
            with storage_errors(f"releasing lease {lease.stream}"):
                client.delete_entity(
                    lease.stream.partition_key,
                    lease.stream.row_key,
                    etag=lease.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except ConcurrencyConflict:
            return False
        return True


def _require_stored(lease: Lease) -> None:
    if lease.etag is None:
        raise ValueError(f"lease on {lease.stream} was never stored (no ETag)")
