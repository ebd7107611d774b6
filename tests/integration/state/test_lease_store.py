"""Leases on Azurite: one holder at a time, takeover only after expiry, lost-lease detection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from shared.clock import ManualClock
from shared.errors import ConcurrencyConflict
from shared.jobs import Direction
from shared.state.leases import Lease, StreamLeaseHeldError
from shared.state.store import StateStore
from shared.state.streams import StreamId

pytestmark = pytest.mark.integration

STREAM = StreamId("i1", "contact", Direction.DYNAMICS_TO_MARKETO)
FIVE_MINUTES = timedelta(minutes=5)


def test_one_holder_at_a_time_and_takeover_only_after_expiry(
    make_store: Callable[..., StateStore], clock: ManualClock
) -> None:
    """B is refused (told until when) while A's lease runs, even a microsecond before expiry;
    from expiry on, B takes over and A finds its lease lost."""
    a, b = make_store(), make_store()
    lease_a = a.leases.acquire(STREAM, "worker-a", FIVE_MINUTES)
    with pytest.raises(StreamLeaseHeldError) as held:
        b.leases.acquire(STREAM, "worker-b", FIVE_MINUTES)
    assert (held.value.holder, held.value.expires_at) == ("worker-a", lease_a.expires_at)
    assert held.value.retry_after == 300

    clock.advance(FIVE_MINUTES.total_seconds() - 0.000001)  # worker A died; not expired yet
    with pytest.raises(StreamLeaseHeldError):
        b.leases.acquire(STREAM, "worker-b", FIVE_MINUTES)

    clock.advance(0.000001)
    lease_b = b.leases.acquire(STREAM, "worker-b", FIVE_MINUTES)
    assert lease_b.owner == "worker-b" and lease_b.token != lease_a.token
    with pytest.raises(ConcurrencyConflict, match="lost"):
        a.leases.renew(lease_a)
    assert a.leases.release(lease_a) is False  # never deletes its successor's lease
    assert b.leases.get(STREAM) == lease_b


def test_renewal_keeps_the_lease_alive(store: StateStore, clock: ManualClock) -> None:
    """A renewed lease is not taken over at its original expiry."""
    lease = store.leases.acquire(STREAM, "worker-a", FIVE_MINUTES)
    clock.advance(240)
    lease = store.leases.renew(lease)
    assert lease.expires_at == clock.now() + FIVE_MINUTES
    clock.advance(120)  # past the original expiry, inside the renewed one
    with pytest.raises(StreamLeaseHeldError):
        store.leases.acquire(STREAM, "worker-b", FIVE_MINUTES)


def test_release_frees_the_stream_at_once(store: StateStore) -> None:
    """After release the next worker acquires by plain create, without waiting."""
    lease = store.leases.acquire(STREAM, "worker-a", FIVE_MINUTES)
    assert store.leases.release(lease) is True
    assert store.leases.get(STREAM) is None
    assert store.leases.acquire(STREAM, "worker-b", FIVE_MINUTES).owner == "worker-b"


def test_of_two_takeovers_of_a_dead_lease_exactly_one_wins(
    make_store: Callable[..., StateStore], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B read the expired row before A took it over; B's conditional write then fails and B,
    reading again, finds A's fresh lease."""
    a, b = make_store(), make_store()
    a.leases.acquire(STREAM, "dead-worker", FIVE_MINUTES)
    clock.advance(FIVE_MINUTES.total_seconds())
    stale = b.leases.get(STREAM)
    assert stale is not None and stale.is_expired(clock.now())

    reads: list[Lease | None] = []
    real_get = b.leases.get

    def get_with_stale_first_read(stream: StreamId) -> Lease | None:
        result = stale if not reads else real_get(stream)
        reads.append(result)
        return result

    winner = a.leases.acquire(STREAM, "worker-a", FIVE_MINUTES)  # takes over first
    monkeypatch.setattr(b.leases, "get", get_with_stale_first_read)
    with pytest.raises(StreamLeaseHeldError) as held:
        b.leases.acquire(STREAM, "worker-b", FIVE_MINUTES)
    assert held.value.holder == "worker-a"
    assert len(reads) == 2  # stale read, failed takeover, fresh read
    assert a.leases.get(STREAM) == winner


def test_leases_are_listed_per_instance(store: StateStore) -> None:
    """The status command reads every lease of an instance in one query."""
    other = StreamId("i1", "lead", Direction.MARKETO_TO_DYNAMICS)
    store.leases.acquire(STREAM, "w1", FIVE_MINUTES)
    store.leases.acquire(other, "w2", FIVE_MINUTES)
    store.leases.acquire(StreamId("i2", "lead", Direction.MARKETO_TO_DYNAMICS), "w3", FIVE_MINUTES)
    assert {lease.owner for lease in store.leases.list("i1")} == {"w1", "w2"}
