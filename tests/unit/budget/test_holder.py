"""BudgetHolder: several holders (processes) on one in-memory row, real time, short windows.

Assertions are on counts: calls made, calls in any window, calls at once, storage operations.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.budget.holder import BudgetHolder
from shared.budget.rules import BudgetLimits
from shared.budget.spec import BudgetSpec
from shared.errors import QuotaExhaustedError
from shared.marketo.governor import max_calls_in_any_window
from tests.unit.budget.memory_store import MemoryLedgerStore

LIMITS = BudgetLimits(
    calls_per_window=12, window_seconds=1.0, max_concurrency=3, margin_seconds=0.05,
    lease_seconds=3.0,
)  # fmt: skip


def spec(limits: BudgetLimits = LIMITS, daily: int | None = None) -> BudgetSpec:
    if daily is not None:
        limits = BudgetLimits(
            calls_per_window=limits.calls_per_window, window_seconds=limits.window_seconds,
            max_concurrency=limits.max_concurrency, daily_budget=daily,
            margin_seconds=limits.margin_seconds, lease_seconds=limits.lease_seconds,
        )  # fmt: skip
    return BudgetSpec(
        "k", "marketo", limits, quota_day=lambda _: "today", day_end=lambda t: t + 3600
    )


class Recorder:
    """Records every call's end and the most in flight across all holders."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.running = 0
        self.peak = 0

    async def call(self, holder: BudgetHolder, seconds: float = 0.005) -> None:
        async with holder.slot():
            self.running += 1
            self.peak = max(self.peak, self.running)
            await asyncio.sleep(seconds)
            self.running -= 1
            self.ends.append(time.monotonic())


async def test_holders_on_one_row_keep_the_window_and_the_concurrency() -> None:
    store = MemoryLedgerStore()
    holders = [BudgetHolder(spec(), store, name=f"h{i}") for i in range(3)]
    recorder = Recorder()
    await asyncio.gather(*(recorder.call(h) for h in holders for _ in range(30)))
    assert len(recorder.ends) == 90
    assert max_calls_in_any_window(recorder.ends, 1.0) <= 12
    assert recorder.peak <= 3
    for holder in holders:
        await holder.aclose()


async def test_a_holder_leases_blocks_not_single_calls() -> None:
    store = MemoryLedgerStore()
    holder = BudgetHolder(spec(), store, name="h")
    recorder = Recorder()
    await asyncio.gather(*(recorder.call(holder) for _ in range(48)))
    assert len(recorder.ends) == 48
    # A grant and a report of finished calls per window of 12, not an operation per call.
    assert store.operations <= 48 / 2, store.operations
    await holder.aclose()


async def test_an_idle_holder_returns_what_it_does_not_use() -> None:
    store = MemoryLedgerStore()
    holder = BudgetHolder(spec(), store, name="h", idle_grace=0.01)
    await Recorder().call(holder)
    for _ in range(200):  # the idle settle runs on its own, shortly after the last call
        await asyncio.sleep(0.01)
        entry = store.rows["k"][0].holders.get("h")
        if entry is not None and entry.open == 0 and entry.concurrency == 0:
            break
    entry = store.rows["k"][0].holders["h"]
    assert (entry.open, entry.concurrency) == (0, 0)
    assert sum(n for _, n in entry.released) == 1
    assert store.rows["k"][0].day_used == 1  # the unused calls were given back to the day


async def test_a_607_recorded_by_one_process_stops_the_others() -> None:
    store = MemoryLedgerStore()
    first, second = (BudgetHolder(spec(), store, name=n) for n in ("a", "b"))
    await Recorder().call(first)
    resets = datetime.now(UTC) + timedelta(hours=3)
    first.record_stop(resets)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if store.rows["k"][0].stop_until is not None:
            break
    assert await second.stop_until() == datetime.fromtimestamp(resets.timestamp(), UTC)
    with pytest.raises(QuotaExhaustedError):
        await Recorder().call(second)
    await first.aclose()
    await second.aclose()


async def test_the_daily_budget_holds_across_processes() -> None:
    store = MemoryLedgerStore()
    holders = [BudgetHolder(spec(daily=20), store, name=f"h{i}") for i in range(3)]
    recorder = Recorder()

    async def keep_calling(holder: BudgetHolder) -> None:
        for _ in range(20):
            try:
                await recorder.call(holder)
            except QuotaExhaustedError:
                return

    await asyncio.gather(*(keep_calling(h) for h in holders))
    assert len(recorder.ends) == 20
    assert await holders[0].stop_until() is not None


async def test_storage_down_means_waiting_never_calling_unbudgeted() -> None:
    store = MemoryLedgerStore()
    holder = BudgetHolder(spec(), store, name="h")
    store.failing = True
    recorder = Recorder()
    task = asyncio.ensure_future(recorder.call(holder))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if holder.storage_failures >= 2:
            break
    assert holder.storage_failures >= 2 and recorder.ends == [] and not task.done()
    store.failing = False
    await asyncio.wait_for(task, 10)
    assert len(recorder.ends) == 1
    await holder.aclose()
