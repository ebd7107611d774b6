"""The lease keeper gives its lease back only after any renewal in flight has finished."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.errors import ConcurrencyConflict, LeaseLostError
from shared.state.leases import Lease
from shared.state.streams import StreamId
from shared.sync.lease_keeper import LeaseKeeper

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = Lease(StreamId("i", "contact", "d2m"), "job", "t1", T0, T0 + timedelta(seconds=3),
              etag="e1")  # fmt: skip


class SlowLeases:
    """A lease store whose renewal blocks until the test lets it finish."""

    def __init__(self, *, lose: bool = False) -> None:
        self.renewing = threading.Event()
        self.may_finish = threading.Event()
        self.events: list[str] = []
        self.released: list[Lease] = []
        self.lose = lose

    def renew(self, lease: Lease, duration: Any = None) -> Lease:
        self.renewing.set()
        self.may_finish.wait(5)
        if self.lose:
            raise ConcurrencyConflict("taken over", system="storage")
        self.events.append("renewed")
        return replace(lease, etag="e2")

    def release(self, lease: Lease) -> bool:
        self.events.append("released")
        self.released.append(lease)
        return True


async def test_release_waits_for_a_renewal_in_flight_and_uses_its_etag() -> None:
    """Defect 4: a cancelled renewal thread would land after the release and revive the lease."""
    leases = SlowLeases()
    keeper = LeaseKeeper(leases, LEASE, timedelta(seconds=0.06), {})  # type: ignore[arg-type]
    keeper.start()
    await asyncio.to_thread(leases.renewing.wait, 5)  # a renewal is under way
    closing = asyncio.create_task(keeper.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # close waits for the renewal ...
    leases.may_finish.set()
    await closing
    assert leases.events == ["renewed", "released"]  # ... and releases the renewed lease
    assert leases.released[0].etag == "e2"


async def test_a_lost_lease_stops_writes_and_is_not_released() -> None:
    leases = SlowLeases(lose=True)
    leases.may_finish.set()
    keeper = LeaseKeeper(leases, LEASE, timedelta(seconds=0.03), {})  # type: ignore[arg-type]
    keeper.start()
    await asyncio.to_thread(leases.renewing.wait, 5)
    for _ in range(100):
        if keeper.lost:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(LeaseLostError):
        keeper.check()
    await keeper.close()
    assert leases.released == []


async def test_a_job_held_up_past_its_lease_writes_nothing_more() -> None:
    """A frozen job is back after its lease ran out (another job may have the stream now):
    the next check refuses, before the renewal loop has even noticed."""
    clock = ManualClock(T0)
    keeper = LeaseKeeper(SlowLeases(), LEASE, timedelta(seconds=3), {}, clock)  # type: ignore[arg-type]
    keeper.check()  # fresh: fine
    clock.advance(2.6)  # within a sixth of the lease's length of its expiry
    with pytest.raises(LeaseLostError):
        keeper.check()
