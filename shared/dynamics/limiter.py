"""Bounds on Dataverse calls, kept apart from retry (style anchors §5.5).

Dataverse's service protection limits are per application user (reference §4): 6,000
requests in a sliding 5 minutes and 52 concurrent requests; beyond them it answers 429 with
Retry-After (0x80072322 / 0x80072326). Two limiters keep our calls inside a share of that:

* :class:`ConcurrencyLimiter`: one process's cap on calls in flight (tests and tools that run
  alone);
* :class:`SharedLimiter`: the app's share, shared by every process through the budget row of
  the application user (:mod:`shared.budget`): ``DYNAMICS_MAX_CONCURRENCY`` calls in flight
  and ``DYNAMICS_REQUESTS_PER_5MIN`` requests per 5 minutes, whatever the number of instances.

Both bound requests *in flight*: a retry waiting out a ``Retry-After`` holds no slot, so other
work proceeds while the wait runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from shared.budget.holder import BudgetHolder
from shared.budget.rules import BudgetLimits
from shared.budget.spec import BudgetSpec, LedgerStore
from shared.budget.usage import BudgetUsage, usage_of
from shared.clock import SYSTEM_CLOCK, Clock
from shared.settings import DynamicsSettings
from shared.state.budgets import budget_key

WINDOW_SECONDS = 300.0
"""Dataverse's sliding window for the request count (reference §4)."""
USER_REQUESTS_PER_WINDOW = 6_000
USER_MAX_CONCURRENCY = 52
SKEW_MARGIN_SECONDS = 1.0
LEASE_SECONDS = 10.0


class RequestLimiter(Protocol):
    """What the transport needs: one slot per request in flight."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


class ConcurrencyLimiter:
    """At most ``limit`` holders at a time; records the highest number ever in flight."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the ``async with`` block."""
        async with self._semaphore:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


def dataverse_budget(settings: DynamicsSettings) -> BudgetSpec:
    """The shared budget of ``settings``' environment and application user."""
    return BudgetSpec(
        key=budget_key("dataverse", settings.url.lower(), settings.client_id),
        system="dynamics",
        limits=BudgetLimits(
            calls_per_window=settings.requests_per_5min,
            window_seconds=WINDOW_SECONDS,
            max_concurrency=settings.max_concurrency,
            margin_seconds=SKEW_MARGIN_SECONDS,
            lease_seconds=LEASE_SECONDS,
        ),
    )


class SharedLimiter:
    """The app's share of one application user's Dataverse limits, across every process."""

    def __init__(
        self, settings: DynamicsSettings, store: LedgerStore, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.limit = settings.max_concurrency
        self.clock = clock
        self.holder = BudgetHolder(dataverse_budget(settings), store, clock=clock)
        self.peak_in_flight = 0

    @property
    def in_flight(self) -> int:
        """This process's requests in flight."""
        return self.holder.in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request of the shared budget for the ``async with`` block."""
        async with self.holder.slot():
            self.peak_in_flight = max(self.peak_in_flight, self.holder.in_flight)
            yield

    async def usage(self) -> BudgetUsage:
        """The shared usage now."""
        ledger = await self.holder.ledger()
        return usage_of(ledger, self.holder.spec, self.clock.now().timestamp())

    async def aclose(self) -> None:
        """Give back what this process holds."""
        await self.holder.aclose()
