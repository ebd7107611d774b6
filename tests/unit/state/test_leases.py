"""Lease rules: expiry, renewal, durations, row conversion, the held error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import LeaseHeldError
from shared.jobs import Direction
from shared.state.leases import (
    MAX_LEASE_DURATION,
    StreamLeaseHeldError,
    from_entity,
    new_lease,
    renewed,
    to_entity,
)
from shared.state.streams import StreamId

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = StreamId("i1", "lead", Direction.MARKETO_TO_DYNAMICS)


def test_a_lease_expires_exactly_at_its_end() -> None:
    """Held before expires_at, takeable from it on."""
    lease = new_lease(STREAM, "worker-a", timedelta(minutes=5), T0, "tok")
    assert not lease.is_expired(T0 + timedelta(minutes=5) - timedelta(microseconds=1))
    assert lease.is_expired(T0 + timedelta(minutes=5))
    assert lease.remaining(T0 + timedelta(minutes=2)) == timedelta(minutes=3)
    assert lease.remaining(T0 + timedelta(hours=1)) == timedelta(0)


def test_renewal_extends_from_now() -> None:
    """A renewed lease runs ``duration`` from the renewal."""
    lease = new_lease(STREAM, "w", timedelta(minutes=5), T0, "tok")
    later = renewed(lease, timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert later.expires_at == T0 + timedelta(minutes=9)
    assert later.renewed_at == T0 + timedelta(minutes=4)
    assert later.token == lease.token


@pytest.mark.parametrize("duration", [timedelta(0), timedelta(seconds=-1), MAX_LEASE_DURATION * 2])
def test_durations_are_bounded(duration: timedelta) -> None:
    """Zero, negative and over-long leases are refused (a dead worker's hold is bounded)."""
    with pytest.raises(ValueError, match="duration"):
        new_lease(STREAM, "w", duration, T0, "tok")


def test_entity_round_trip() -> None:
    """The row form keeps owner, token and times."""
    lease = renewed(
        new_lease(STREAM, "host-1/pid-7", timedelta(minutes=1), T0, "t"), timedelta(minutes=1), T0
    )
    assert from_entity(to_entity(lease)) == lease


def test_held_error_says_who_and_until_when() -> None:
    """The error is a LeaseHeldError carrying holder, expiry and the wait in seconds."""
    error = StreamLeaseHeldError(STREAM, "worker-b", T0 + timedelta(seconds=42), T0)
    assert isinstance(error, LeaseHeldError)
    assert error.retry_after == 42
    assert error.expires_at == T0 + timedelta(seconds=42)
    assert "worker-b" in str(error) and "2026-05-01T12:00:42" in str(error)
