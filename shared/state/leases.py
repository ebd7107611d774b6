"""Leases: at most one job per stream runs at a time (the pure part).

A lease row names its owner, a token unique to this acquisition, and when it expires. A worker
that dies simply stops renewing; once ``expires_at`` has passed, another worker may take the
lease over. Times come from the injected clock of whoever reads the row, so hosts are assumed to
agree on the time to well within a lease's duration (Azure hosts are NTP-synchronised).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.errors import LeaseHeldError
from shared.state.properties import read_datetime, read_str, truncate, utc
from shared.state.streams import StreamId

MAX_OWNER_CHARS = 256
MAX_LEASE_DURATION = timedelta(hours=1)
"""Longest lease we grant; a job renews if it runs longer (bounds a dead worker's hold)."""


class StreamLeaseHeldError(LeaseHeldError):
    """The stream's lease is held by ``holder`` until ``expires_at``.

    ``retry_after`` (seconds) is the time left on the lease.
    """

    def __init__(self, stream: StreamId, holder: str, expires_at: datetime, now: datetime) -> None:
        wait = max(0.0, (expires_at - now).total_seconds())
        super().__init__(
            f"stream {stream} is leased by {holder} until {expires_at.isoformat()}",
            retry_after=wait,
            system="storage",
        )
        self.stream = stream
        self.holder = holder
        self.expires_at = expires_at


@dataclass(frozen=True)
class Lease:
    """A held lease. ``etag`` is the row version the holder must present to renew or release."""

    stream: StreamId
    owner: str
    token: str
    """Unique per acquisition, so an owner re-acquiring after expiry holds a different lease."""
    acquired_at: datetime
    expires_at: datetime
    renewed_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    def is_expired(self, now: datetime) -> bool:
        """Whether another worker may take the lease over at ``now``."""
        return now >= self.expires_at

    def remaining(self, now: datetime) -> timedelta:
        """Time left before the lease expires (zero once expired)."""
        return max(timedelta(0), self.expires_at - now)


def check_duration(duration: timedelta) -> timedelta:
    """``duration`` if it is a sensible lease length.

    Raises:
        ValueError: for a zero, negative or over-long duration.
    """
    if duration <= timedelta(0) or duration > MAX_LEASE_DURATION:
        raise ValueError(f"lease duration must be positive and at most {MAX_LEASE_DURATION}")
    return duration


def new_lease(
    stream: StreamId, owner: str, duration: timedelta, now: datetime, token: str
) -> Lease:
    """A lease for ``owner`` starting ``now``."""
    if not owner:
        raise ValueError("a lease needs an owner")
    return Lease(
        stream=stream,
        owner=truncate(owner, MAX_OWNER_CHARS),
        token=token,
        acquired_at=now,
        expires_at=now + check_duration(duration),
    )


def renewed(lease: Lease, duration: timedelta, now: datetime) -> Lease:
    """``lease`` extended to ``now + duration``."""
    return replace(lease, expires_at=now + check_duration(duration), renewed_at=now)


def to_entity(lease: Lease) -> dict[str, Any]:
    """The table row for ``lease``."""
    entity: dict[str, Any] = {
        "PartitionKey": lease.stream.partition_key,
        "RowKey": lease.stream.row_key,
        "owner": lease.owner,
        "token": lease.token,
        "acquired_at": utc(lease.acquired_at),
        "expires_at": utc(lease.expires_at),
    }
    if lease.renewed_at is not None:
        entity["renewed_at"] = utc(lease.renewed_at)
    return entity


def from_entity(entity: Any) -> Lease:
    """The lease stored in ``entity``."""
    metadata = getattr(entity, "metadata", None) or {}
    acquired_at = read_datetime(entity, "acquired_at")
    expires_at = read_datetime(entity, "expires_at")
    if acquired_at is None or expires_at is None:
        raise ValueError("lease row lacks acquired_at/expires_at")
    return Lease(
        stream=StreamId.from_keys(entity["PartitionKey"], entity["RowKey"]),
        owner=read_str(entity, "owner") or "",
        token=read_str(entity, "token") or "",
        acquired_at=acquired_at,
        expires_at=expires_at,
        renewed_at=read_datetime(entity, "renewed_at"),
        etag=metadata.get("etag"),
    )
