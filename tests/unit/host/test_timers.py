"""Timer-trigger semantics with an injected ManualClock: occurrences at their exact UTC times."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from dmsync.host.activity import Activity
from dmsync.host.invoker import Invoker
from dmsync.host.outputs import OutputWriter
from dmsync.host.timer_status import MemoryScheduleStatusStore, ScheduleStatus
from dmsync.host.timers import TimerListener
from shared.clock import ManualClock
from tests.unit.host.builders import only_function
from tests.unit.host.fakes import FakeQueues, VirtualClock

START = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)


def make_timer(
    app: func.FunctionApp,
    clock: ManualClock,
    store: MemoryScheduleStatusStore | None = None,
) -> TimerListener:
    writer = OutputWriter(FakeQueues(VirtualClock()), "base64")
    invoker = Invoker(thread_pool=ThreadPoolExecutor(1), outputs=writer, clock=clock)
    return TimerListener(
        only_function(app),
        invoker=invoker,
        status_store=store if store is not None else MemoryScheduleStatusStore(),
        activity=Activity(),
        clock=clock,
    )


async def run_until(timer: TimerListener, stopping: asyncio.Event) -> None:
    await asyncio.wait_for(timer.run(stopping), timeout=10)


async def test_six_field_schedule_fires_at_each_occurrence() -> None:
    """'*/10 * * * * *' from 00:00:03 fires at :10, :20, :30 with Last/Next in the timer info."""
    clock = ManualClock(START)
    stopping = asyncio.Event()
    fired: list[tuple[datetime, bool, dict[str, str]]] = []
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="*/10 * * * * *")
    async def tick(timer: func.TimerRequest) -> None:
        fired.append((clock.now(), timer.past_due, dict(timer.schedule_status)))
        if len(fired) == 3:
            stopping.set()

    await run_until(make_timer(app, clock), stopping)
    times = [when for when, _, _ in fired]
    assert times == [START.replace(second=s) for s in (10, 20, 30)]
    assert [past_due for _, past_due, _ in fired] == [False] * 3
    assert fired[0][2]["Last"] == "0001-01-01T00:00:00"
    assert fired[0][2]["Next"] == "2026-01-01T00:00:10+00:00"
    assert fired[2][2]["Last"] == "2026-01-01T00:00:20+00:00"
    assert fired[2][2]["Next"] == "2026-01-01T00:00:30+00:00"


async def test_five_field_schedule_counts_minutes() -> None:
    """A five-field expression has no seconds: '*/5 * * * *' fires every five minutes."""
    clock = ManualClock(START)
    stopping = asyncio.Event()
    fired: list[datetime] = []
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="*/5 * * * *")
    def tick(timer: func.TimerRequest) -> None:
        fired.append(clock.now())
        if len(fired) == 2:
            stopping.set()

    await run_until(make_timer(app, clock), stopping)
    assert fired == [datetime(2026, 1, 1, 0, m, tzinfo=UTC) for m in (5, 10)]


async def test_recorded_next_in_the_past_runs_at_once_as_past_due() -> None:
    """useMonitor: a missed occurrence runs immediately with IsPastDue=True, then on schedule."""
    clock = ManualClock(START)
    missed = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    store = MemoryScheduleStatusStore(
        {
            "hourly": ScheduleStatus(
                last=missed - timedelta(hours=1), next=missed, last_updated=missed
            )
        }
    )
    stopping = asyncio.Event()
    fired: list[tuple[datetime, bool]] = []
    app = func.FunctionApp()

    @app.function_name("hourly")
    @app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
    async def run_hourly(timer: func.TimerRequest) -> None:
        fired.append((clock.now(), timer.past_due))
        if len(fired) == 2:
            stopping.set()

    await run_until(make_timer(app, clock, store), stopping)
    assert fired == [(START, True), (datetime(2026, 1, 1, 1, tzinfo=UTC), False)]
    status = store.rows["hourly"]
    assert status.last == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert status.next == datetime(2026, 1, 1, 2, tzinfo=UTC)


async def test_recorded_next_in_the_future_is_not_past_due() -> None:
    """A status whose Next is still ahead waits for it."""
    clock = ManualClock(START)
    ahead = datetime(2026, 1, 1, 1, tzinfo=UTC)
    store = MemoryScheduleStatusStore(
        {"hourly": ScheduleStatus(last=None, next=ahead, last_updated=START)}
    )
    stopping = asyncio.Event()
    fired: list[tuple[datetime, bool]] = []
    app = func.FunctionApp()

    @app.function_name("hourly")
    @app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
    async def run_hourly(timer: func.TimerRequest) -> None:
        fired.append((clock.now(), timer.past_due))
        stopping.set()

    await run_until(make_timer(app, clock, store), stopping)
    assert fired == [(ahead, False)]


async def test_run_on_startup_fires_immediately_then_on_schedule() -> None:
    """runOnStartup: one run at start (not past due), then the schedule as usual."""
    clock = ManualClock(START)
    stopping = asyncio.Event()
    fired: list[tuple[datetime, bool]] = []
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=True)
    async def tick(timer: func.TimerRequest) -> None:
        fired.append((clock.now(), timer.past_due))
        if len(fired) == 2:
            stopping.set()

    await run_until(make_timer(app, clock), stopping)
    assert fired == [(START, False), (datetime(2026, 1, 1, 0, 1, tzinfo=UTC), False)]


async def status_recorded_after_one_run(schedule: str) -> bool:
    store = MemoryScheduleStatusStore()
    stopping = asyncio.Event()
    app = func.FunctionApp()

    @app.function_name("tick")
    @app.timer_trigger(arg_name="timer", schedule=schedule)
    async def tick(timer: func.TimerRequest) -> None:
        stopping.set()

    await run_until(make_timer(app, ManualClock(START), store), stopping)
    return "tick" in store.rows


async def test_use_monitor_default_depends_on_frequency() -> None:
    """Monitoring is on for a once-a-minute schedule and off for one every 10 seconds."""
    assert await status_recorded_after_one_run("0 */1 * * * *")
    assert not await status_recorded_after_one_run("*/10 * * * * *")


async def test_one_invocation_at_a_time_and_missed_occurrences_are_skipped() -> None:
    """Singleton: a run longer than the period never overlaps; the next run follows its end."""
    clock = ManualClock(START)
    stopping = asyncio.Event()
    fired: list[datetime] = []
    running = peak = 0
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="*/10 * * * * *")
    async def slow(timer: func.TimerRequest) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        fired.append(clock.now())
        clock.advance(25)  # the work takes 25 s: two occurrences pass meanwhile
        await asyncio.sleep(0)
        running -= 1
        if len(fired) == 3:
            stopping.set()

    await run_until(make_timer(app, clock), stopping)
    assert peak == 1
    assert fired == [START.replace(second=s) for s in (10, 40)] + [
        datetime(2026, 1, 1, 0, 1, 10, tzinfo=UTC)
    ]


async def test_a_failing_timer_is_logged_and_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    """No retries: the failure is logged with the function name and the schedule goes on."""
    clock = ManualClock(START)
    stopping = asyncio.Event()
    fired: list[datetime] = []
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="*/10 * * * * *")
    async def flaky(timer: func.TimerRequest) -> None:
        fired.append(clock.now())
        if len(fired) == 2:
            stopping.set()
        raise RuntimeError("timer broke")

    with caplog.at_level(logging.ERROR, logger="dmsync.host"):
        await run_until(make_timer(app, clock), stopping)
    assert fired == [START.replace(second=s) for s in (10, 20)]
    failures = [r for r in caplog.records if "Functions.flaky" in r.getMessage()]
    assert len(failures) == 2 and all("timer broke" in r.getMessage() for r in failures)
