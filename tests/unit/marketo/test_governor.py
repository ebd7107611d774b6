"""The rate governor: pure admission decisions, and the async governor proven on virtual time
never to exceed the window, the concurrency limit or the daily budget it is given."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import ManualClock
from shared.errors import ConfigurationError, QuotaExhaustedError
from shared.marketo.governor import (
    Governor,
    Limits,
    admission_delay,
    concurrency_backoff,
    governor_for,
    max_calls_in_any_window,
    rate_limit_pause,
)
from tests.unit.marketo.fakes import SimClock
from tests.unit.marketo.fakes import settings as marketo_settings

LIMITS = Limits(calls_per_window=3, window_seconds=20.0, max_concurrency=2, daily_budget=100)


# --- pure decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "finished", "in_flight", "expected"),
    [
        (100.0, [], 0, 0.0),  # idle: go
        (100.0, [90.0, 95.0], 0, 0.0),  # 2 of 3 slots used: go
        (100.0, [85.0, 90.0, 95.0], 0, 5.0),  # full: the oldest leaves at 85 + 20
        (100.0, [80.0, 90.0, 95.0], 0, 0.0),  # 80 left the window exactly at 100
        (100.0, [90.0, 95.0], 1, 10.0),  # one in flight holds a slot too
        (100.0, [95.0], 2, None),  # concurrency full: wait for a call to finish
        (100.0, [], 2, None),  # concurrency full with nothing finished
    ],
)
def test_admission_delay(
    now: float, finished: list[float], in_flight: int, expected: float | None
) -> None:
    """Slots are held by calls in flight and by calls finished within the last window."""
    assert (
        admission_delay(now=now, finished=finished, in_flight=in_flight, limits=LIMITS) == expected
    )


def test_admission_waits_for_in_flight_calls_when_they_alone_fill_the_window() -> None:
    """With a window share of 1 and a call in flight, only its end can free the slot."""
    limits = Limits(calls_per_window=1, max_concurrency=5)
    assert admission_delay(now=0.0, finished=[], in_flight=1, limits=limits) is None


def test_pause_overrides_everything() -> None:
    """After a 606 nothing starts before ``paused_until``."""
    delay = admission_delay(now=10.0, finished=[], in_flight=0, limits=LIMITS, paused_until=31.5)
    assert delay == pytest.approx(21.5)


def test_max_calls_in_any_window() -> None:
    """The densest half-open window is found."""
    assert max_calls_in_any_window([], 20) == 0
    assert max_calls_in_any_window([0, 19.9, 20, 39.9, 40], 20) == 2
    assert max_calls_in_any_window([0, 1, 2, 3, 30], 20) == 4


def test_backoffs_are_bounded_and_jittered() -> None:
    """606 waits a full window plus up to the jitter; 615 waits 1, 2, 4, 8 s (halved at most)."""
    rng = random.Random(3)
    pauses = [rate_limit_pause(20.0, rng, 2.0) for _ in range(100)]
    assert all(20.0 <= p <= 22.0 for p in pauses) and len(set(pauses)) > 50
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [concurrency_backoff(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)


# --- the async governor on virtual time --------------------------------------------------------


async def _traffic(
    governor: Governor,
    clock: SimClock,
    starts: list[float],
    durations: list[float],
    landing: list[float],
) -> tuple[list[float], list[float], int]:
    """Calls that start at ``starts`` and hold ``durations``; returns send times, the times a
    server would count them (somewhere between send and receipt), and peak concurrency."""
    sends: list[float] = []
    arrivals: list[float] = []
    peak = 0
    current = 0

    async def one(start: float, duration: float, where: float) -> None:
        nonlocal peak, current
        await clock.sleep(start - clock.monotonic())
        async with governor.slot():
            sent = clock.monotonic()
            current += 1
            peak = max(peak, current)
            await clock.sleep(duration)
            current -= 1
            sends.append(sent)
            arrivals.append(sent + where * duration)

    await clock.run([one(s, d, w) for s, d, w in zip(starts, durations, landing, strict=True)])
    return sends, arrivals, peak


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    data=st.data(),
    share=st.integers(min_value=1, max_value=12),
    concurrency=st.integers(min_value=1, max_value=6),
)
def test_governor_never_exceeds_its_window_or_concurrency(
    data: st.DataObject, share: int, concurrency: int
) -> None:
    """For any arrival pattern: in every 20 s window at most ``share`` calls are sent, at most
    ``share`` would be counted by the server (which sees a call between send and receipt), and
    never more than ``concurrency`` are in flight. Every call is eventually admitted."""
    count = data.draw(st.integers(min_value=1, max_value=60))
    gaps = data.draw(st.lists(st.floats(0.0, 4.0), min_size=count, max_size=count))
    durations = data.draw(st.lists(st.floats(0.01, 6.0), min_size=count, max_size=count))
    landing = data.draw(st.lists(st.floats(0.0, 1.0), min_size=count, max_size=count))
    starts = [sum(gaps[: i + 1]) for i in range(count)]
    clock = SimClock()
    limits = Limits(calls_per_window=share, max_concurrency=concurrency, daily_budget=10_000)
    governor = Governor(limits, clock=clock)

    sends, arrivals, peak = asyncio.run(_traffic(governor, clock, starts, durations, landing))

    assert len(sends) == count
    assert max_calls_in_any_window(sends, 20.0) <= share
    assert max_calls_in_any_window(arrivals, 20.0) <= share
    assert peak <= concurrency


async def test_a_burst_is_spread_over_windows() -> None:
    """120 calls released at once under a 50/20 s share go out 50, 50, 20 in three windows."""
    clock = SimClock()
    governor = Governor(Limits(calls_per_window=50, max_concurrency=5), clock=clock)
    sends, _, peak = await _traffic(governor, clock, [0.0] * 120, [0.2] * 120, [0.5] * 120)
    assert len(sends) == 120
    assert max_calls_in_any_window(sends, 20.0) == 50
    assert peak == 5
    first_window = sum(1 for s in sends if s < 20.0)
    assert first_window == 50
    assert governor.stats.snapshot()["waited_seconds"] > 0


async def test_daily_budget_stops_calls_until_the_central_midnight() -> None:
    """The budget refuses the call after the last one allowed, naming the reset time; the next
    Marketo day (00:00 America/Chicago, 06:00 UTC in winter) admits calls again."""
    clock = ManualClock(datetime(2026, 1, 15, 23, 0, tzinfo=UTC))  # 17:00 CST
    governor = Governor(Limits(daily_budget=3), clock=clock)
    for _ in range(3):
        async with governor.slot():
            pass
    with pytest.raises(QuotaExhaustedError) as refused:
        async with governor.slot():
            pass
    assert refused.value.resets_at == datetime(2026, 1, 16, 6, 0, tzinfo=UTC)
    assert "MARKETO_DAILY_CALL_BUDGET" in str(refused.value)
    assert governor.stats.snapshot()["refused_locally"] == 1
    clock.advance(timedelta(hours=7).total_seconds())  # 06:00 UTC = 00:00 CST next day
    async with governor.slot():
        pass
    assert governor.daily_used == 1


async def test_marketo_607_stops_every_caller_until_reset() -> None:
    """After ``stop_until`` no call is admitted, without asking Marketo, until the reset."""
    clock = ManualClock(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    governor = Governor(Limits(), clock=clock)
    resets_at = datetime(2026, 7, 2, 5, 0, tzinfo=UTC)
    governor.stop_until(resets_at)
    with pytest.raises(QuotaExhaustedError) as refused:
        async with governor.slot():
            pass
    assert refused.value.resets_at == resets_at
    clock.advance((resets_at - clock.now()).total_seconds())
    async with governor.slot():
        pass


async def test_observed_usage_counts_against_the_budget() -> None:
    """Usage reported by Marketo after a restart raises the in-process count."""
    governor = Governor(Limits(daily_budget=10), clock=ManualClock())
    governor.observe_daily_usage(10)
    with pytest.raises(QuotaExhaustedError):
        async with governor.slot():
            pass


async def test_pause_delays_admission() -> None:
    """A pause (after a 606) holds back the next call for its whole length."""
    clock = ManualClock()
    governor = Governor(Limits(), clock=clock)
    governor.pause(21.0)
    started = clock.monotonic()
    async with governor.slot():
        assert clock.monotonic() - started >= 21.0


async def test_cancelled_waiter_leaves_no_trace() -> None:
    """A caller cancelled while waiting for a slot neither holds nor leaks one."""
    clock = SimClock()
    governor = Governor(Limits(calls_per_window=10, max_concurrency=1), clock=clock)

    async def holder() -> None:
        async with governor.slot():
            await clock.sleep(5)

    async def impatient() -> None:
        waiting = asyncio.ensure_future(_enter(governor))
        await clock.sleep(1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    await clock.run([holder(), impatient()])
    assert governor.in_flight == 0
    assert governor._waiters == []
    await clock.run([_enter(governor)])
    assert governor.in_flight == 0


async def _enter(governor: Governor) -> None:
    async with governor.slot():
        pass


def test_one_governor_per_instance_and_client_id() -> None:
    """The registry hands the same governor to every client of an instance and client id, and
    refuses a second configuration with different limits."""
    first = marketo_settings(MARKETO_BASE_URL="https://111-aaa-111.mktorest.com")
    same = marketo_settings(MARKETO_BASE_URL="https://111-AAA-111.mktorest.com")
    other_client = marketo_settings(
        MARKETO_BASE_URL="https://111-aaa-111.mktorest.com", MARKETO_CLIENT_ID="someone-else"
    )
    assert governor_for(first) is governor_for(same)
    assert governor_for(first) is not governor_for(other_client)
    with pytest.raises(ConfigurationError, match="MARKETO_CALLS_PER_20S"):
        governor_for(
            marketo_settings(
                MARKETO_BASE_URL="https://111-aaa-111.mktorest.com", MARKETO_CALLS_PER_20S="20"
            )
        )


def test_limits_are_validated() -> None:
    """Nonsense limits are refused at construction."""
    with pytest.raises(ValueError, match="positive"):
        Limits(calls_per_window=0)
    with pytest.raises(ValueError, match="window"):
        Limits(window_seconds=-math.inf)
