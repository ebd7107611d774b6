"""Every error path against the emulator: 606, 615, 607, 413, 414, 604/608/611/502, dropped
connections; and the governor keeping to the rate it is given without a single 606."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from emulators.marketo.runner import RunningMarketo
from shared.errors import (
    ApiRequestError,
    QuotaExhaustedError,
    ThrottledError,
    TransientServiceError,
)
from shared.marketo import Limits, MarketoClient
from shared.marketo.quota_day import next_quota_reset
from tests.integration.marketo_client.conftest import ClientFactory, LinkedClock

pytestmark = pytest.mark.integration


async def test_governor_at_the_instance_rate_never_meets_606(
    make_client: ClientFactory, mkto: RunningMarketo, clock: LinkedClock
) -> None:
    """The emulator allows 10 calls per 20 s; a client governed at 10 per 20 s fires 35
    concurrent calls: all succeed, none is refused, no window holds more than 10."""
    mkto.control.set_limits(rate_calls=10, rate_window_seconds=20)
    client = make_client(limits=Limits(calls_per_window=10, max_concurrency=5))
    results = await asyncio.gather(*(client.leads.describe() for _ in range(35)))
    assert len(results) == 35
    usage = mkto.control.usage()
    assert usage.errors.get("606", 0) == 0 and client.stats.throttled == 0
    assert usage.max_calls_in_window <= 10
    assert usage.max_concurrency <= 5
    assert clock.monotonic() - 1000.0 >= 60.0  # 35 calls at 10 per window need 3 more windows


async def test_606_from_another_integration_is_waited_out(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """The instance allows 5 calls per window but our share says 100 (someone else used the
    rest): the 6th call meets a real 606, every caller pauses a window, and the resend works."""
    mkto.control.set_limits(rate_calls=5, rate_window_seconds=20)
    for _ in range(8):
        await client.leads.describe()
    assert client.stats.count(endpoint="leads.describe", outcome="606") == 1
    assert client.stats.count(endpoint="leads.describe", outcome="ok") == 8
    usage = mkto.control.usage()
    assert usage.errors["606"] == 1
    assert usage.max_calls_in_window <= 5


async def test_persistent_606_ends_in_throttled_error(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """When every call is refused, the client gives up after 3 resends with ThrottledError."""
    mkto.control.set_faults(rates={"606": 1.0}, paths=["/rest"])
    with pytest.raises(ThrottledError) as raised:
        await client.leads.describe()
    assert raised.value.code == "606" and raised.value.retry_after == 20.0
    assert mkto.control.usage().faults["606"] == 4


async def test_615_from_another_integration_backs_off_then_succeeds(
    client: MarketoClient, mkto: RunningMarketo, clock: LinkedClock
) -> None:
    """Two calls of another integration hold the instance's only 2 concurrent slots: our call
    meets a real 615, backs off briefly (not a whole window) and succeeds once they finish."""
    mkto.control.set_limits(concurrency=2)
    mkto.control.hold("admitted", paths=["/rest/v1/leads.json"])

    def other_integration() -> int:
        token = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials).json()
        url = f"{mkto.base_url}/rest/v1/leads.json?filterType=email&filterValues=a@example.com"
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        return httpx.get(url, headers=headers, timeout=30).status_code

    others = [asyncio.create_task(asyncio.to_thread(other_integration)) for _ in range(2)]
    await asyncio.to_thread(_wait_until, lambda: mkto.control.waiting() == 2)
    clock.on_sleep.append(lambda _: mkto.control.release())

    await client.leads.describe()

    assert await asyncio.gather(*others) == [200, 200]
    assert client.stats.count(endpoint="leads.describe", outcome="615") == 1
    assert mkto.control.usage().errors["615"] == 1
    waits = [s for s in clock.sleeps if s > 0]
    assert waits and max(waits) <= 1.0


async def test_607_stops_work_until_the_quota_day_ends(
    client: MarketoClient, mkto: RunningMarketo, clock: LinkedClock
) -> None:
    """With a daily quota of 3, the 4th call meets 607: QuotaExhaustedError with the next
    Central-time midnight, and later calls are refused without reaching Marketo."""
    mkto.control.set_limits(daily_quota=3)
    for _ in range(3):
        await client.leads.describe()
    with pytest.raises(QuotaExhaustedError) as raised:
        await client.leads.describe()
    assert raised.value.code == "607"
    assert raised.value.resets_at == next_quota_reset(clock.now())
    requests_so_far = mkto.control.usage().requests
    with pytest.raises(QuotaExhaustedError):
        await client.leads.sync([{"email": "later@example.com"}])
    assert mkto.control.usage().requests == requests_so_far
    assert client.stats.snapshot()["refused_locally"] == 1
    # the next quota day admits calls again (the emulator's day turns at the same moment)
    assert raised.value.resets_at is not None
    gap = (raised.value.resets_at - clock.now() + timedelta(seconds=1)).total_seconds()
    await clock.sleep(gap)
    await client.leads.describe()


async def test_http_413_is_an_api_request_error(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """A body over the instance's limit is answered HTTP 413 and raised as ApiRequestError."""
    mkto.control.set_limits(max_body_bytes=2_000)
    with pytest.raises(ApiRequestError) as raised:
        await client.leads.sync(
            [{"email": f"x{i}@example.com", "city": "C" * 50} for i in range(30)]
        )
    assert raised.value.status == 413
    assert mkto.control.leads() == []


async def test_http_414_is_an_api_request_error(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """A URI over the instance's limit is answered HTTP 414 and raised as ApiRequestError."""
    mkto.control.set_limits(max_uri_bytes=300)
    with pytest.raises(ApiRequestError) as raised:
        await client.leads.get_by_filter("email", [f"person{i}@example.com" for i in range(20)])
    assert raised.value.status == 414


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("606", "606"),
        ("615", "615"),
        ("611", "611"),
        ("608", "608"),
        ("502", "http_502"),
        ("timeout", "604"),
        ("drop", "network_after_send"),
    ],
)
async def test_one_fault_on_a_read_is_retried(
    client: MarketoClient, mkto: RunningMarketo, fault: str, outcome: str
) -> None:
    """A single injected 606/615/611/608/502/604 or dropped connection on a read is resent and
    the answer returned; the failure is counted under its outcome."""
    mkto.control.set_faults(next_faults=[fault], paths=["/rest"], hang_seconds=0.05)
    fields = await client.leads.describe()
    assert fields
    assert client.stats.count(endpoint="leads.describe", outcome=outcome) == 1
    assert client.stats.count(endpoint="leads.describe", outcome="ok") == 1


async def test_write_dropped_after_processing_is_not_resent(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """The emulator writes the lead, then drops the connection: the client raises
    TransientServiceError instead of resending, so the lead exists exactly once; the queue's
    later retry updates it."""
    mkto.control.set_faults(next_faults=["drop_after"], paths=["/rest/v1/leads.json"])
    with pytest.raises(TransientServiceError):
        await client.leads.sync([{"email": "once@example.com"}])
    assert [lead["email"] for lead in mkto.control.leads()] == ["once@example.com"]
    (retry,) = await client.leads.sync([{"email": "once@example.com"}])
    assert retry.status == "updated"
    assert len(mkto.control.leads()) == 1


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (a state of the emulator, not a timing) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
