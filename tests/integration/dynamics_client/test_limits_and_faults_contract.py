"""Throttling, transient faults, timeouts and the concurrency cap against the emulator."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.clock import ManualClock
from shared.dynamics import DynamicsClient
from shared.errors import ThrottledError, TransientServiceError
from shared.retry import RetryPolicy

from .conftest import ACCOUNTS, settings_for

pytestmark = pytest.mark.integration

WHOAMI = "/api/data/v9.2/WhoAmI"


def make_client(emulator: EmulatorHandle, clock: ManualClock, **options: object) -> DynamicsClient:
    return DynamicsClient(
        settings_for(emulator),
        verify=emulator.ca_path,
        clock=clock,
        rng=random.Random(5),
        **options,  # type: ignore[arg-type]
    )


async def test_429_retry_after_is_honoured(
    emulator: EmulatorHandle, client: DynamicsClient, clock: ManualClock
) -> None:
    """The emulator's Retry-After is waited (on our clock) and the call then succeeds."""
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["429"], retry_after_seconds=2)
    await client.whoami()
    assert clock.sleeps == [2.0]
    assert (client.counters.throttles, client.counters.retries) == (1, 1)


async def test_the_request_limit_is_surfaced_when_its_wait_is_long(
    emulator: EmulatorHandle, client: DynamicsClient, clock: ManualClock
) -> None:
    """Past 3 requests per 300 s window, the ~300 s Retry-After is raised, not slept in-process."""
    emulator.control.set_limits(requests_per_window=3, window_seconds=300)
    for _ in range(3):
        await client.whoami()
    with pytest.raises(ThrottledError) as caught:
        await client.whoami()
    assert caught.value.code == "0x80072322"
    assert caught.value.retry_after is not None and caught.value.retry_after > 120
    assert clock.sleeps == []


async def test_the_cap_keeps_us_under_the_concurrency_limit(
    emulator: EmulatorHandle, clock: ManualClock
) -> None:
    """Service limit 2 concurrent; our cap 2: eight overlapping calls, no 429."""
    emulator.control.set_limits(concurrent_requests=2)
    emulator.control.add_fault(path_prefix=WHOAMI, latency_ms=40)
    async with make_client(emulator, clock, max_concurrency=2) as dynamics:
        await asyncio.gather(*(dynamics.whoami() for _ in range(8)))
    assert dynamics.limiter.peak_in_flight == 2
    assert dynamics.counters.throttles == 0
    assert emulator.control.limits()["throttled"] == {"requests": 0, "concurrency": 0}


async def test_a_concurrency_throttle_is_waited_and_bounded(
    emulator: EmulatorHandle, clock: ManualClock
) -> None:
    """While the service's only slot is held, 0x80072326 answers are waited out, then raised."""
    emulator.control.set_limits(concurrent_requests=1, concurrency_retry_after_seconds=1)
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["timeout"], hang_seconds=10)
    async with make_client(emulator, clock, retry_policy=RetryPolicy(max_attempts=3)) as dynamics:
        holder = asyncio.create_task(dynamics.whoami())
        for _ in range(500):  # until the first request is being held by the emulator
            if emulator.control.limits()["in_flight"] >= 1:
                break
            await asyncio.sleep(0.01)
        try:
            with pytest.raises(ThrottledError) as caught:
                await dynamics.whoami()
        finally:
            emulator.control.release_held()
        await holder  # its dropped connection is retried and succeeds
    assert caught.value.code == "0x80072326"
    assert caught.value.retry_after == 1.0
    assert clock.sleeps.count(1.0) == 2
    assert dynamics.counters.throttles == 3


async def test_5xx_on_a_read_is_retried(
    emulator: EmulatorHandle, client: DynamicsClient, clock: ManualClock
) -> None:
    """503 then success: one backoff, one repeat."""
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["503"])
    await client.whoami()
    assert client.counters.retries == 1
    assert len(clock.sleeps) == 1


async def test_500_is_not_retried(emulator: EmulatorHandle, client: DynamicsClient) -> None:
    """A 500 is surfaced at once as a transient error."""
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["500"])
    with pytest.raises(TransientServiceError) as caught:
        await client.whoami()
    assert caught.value.status == 500
    assert client.counters.requests == 1


async def test_retries_are_bounded(emulator: EmulatorHandle, clock: ManualClock) -> None:
    """Every try failing: exactly max_attempts requests, then the error."""
    emulator.control.add_fault(path_prefix=WHOAMI, rates={"503": 1.0})
    async with make_client(emulator, clock, retry_policy=RetryPolicy(max_attempts=3)) as dynamics:
        with pytest.raises(TransientServiceError):
            await dynamics.whoami()
    assert dynamics.counters.requests == 3
    assert emulator.control.requests()["by_status"].get("503") == 3


async def test_a_create_hit_by_503_is_not_repeated(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """POST + 503: surfaced after one request (a repeat could create the row twice)."""
    emulator.control.add_fault(path_prefix="/api/data/v9.2/accounts", sequence=["503"])
    with pytest.raises(TransientServiceError):
        await client.create(ACCOUNTS, {"name": "Once"})
    assert client.counters.requests == 1


async def test_a_dropped_connection_on_a_read_is_retried(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """The connection closes mid-body; the read is repeated and succeeds."""
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["drop"])
    who = await client.whoami()
    assert who.user_id
    assert client.counters.retries == 1


async def test_a_read_timeout_is_retried(emulator: EmulatorHandle, clock: ManualClock) -> None:
    """A request held past our read timeout is abandoned and repeated.

    The emulator holds the first request for 30 s, so a 0.3 s read timeout always fires on it;
    the repeat is a normal answer, which a loaded machine may also delay past 0.3 s. So the
    counts are the emulator's (exactly one timeout injected) and the client's relation (every
    request after the first was a retry), not an exact retry count that depends on speed.
    """
    emulator.control.add_fault(path_prefix=WHOAMI, sequence=["timeout"], hang_seconds=30)
    timeout = httpx.Timeout(connect=5.0, read=0.3, write=5.0, pool=5.0)
    try:
        async with make_client(emulator, clock, timeout=timeout) as dynamics:
            who = await dynamics.whoami()
    finally:
        emulator.control.release_held()
    assert who.user_id
    assert emulator.control.faults()["injected"] == {"timeout": 1}
    assert dynamics.counters.retries >= 1
    assert dynamics.counters.requests == dynamics.counters.retries + 1
