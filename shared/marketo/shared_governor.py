"""The Marketo governor every process of the app shares: one budget row per instance.

:class:`SharedGovernor` has the :class:`~shared.marketo.governor.Governor`'s interface (the
transport and the client use either), but its window, concurrency and daily count are the
whole app's, kept in the budget row of this Marketo instance and client id
(:mod:`shared.budget`). ``MARKETO_CALLS_PER_20S``, ``MARKETO_MAX_CONCURRENCY`` and
``MARKETO_DAILY_CALL_BUDGET`` are therefore the app's share, however many instances Azure runs.

A 606 pauses every process (the pause is written to the row); a 607 stops every process and
the scheduler until Marketo's midnight (US Central, :mod:`.quota_day`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from shared.budget.holder import BudgetHolder
from shared.budget.rules import BudgetLimits
from shared.budget.spec import BudgetSpec, LedgerStore
from shared.budget.usage import BudgetUsage, usage_of
from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import QuotaExhaustedError
from shared.marketo.governor import WINDOW_SECONDS, Limits
from shared.marketo.quota_day import next_quota_reset, quota_day
from shared.marketo.stats import CallStats
from shared.settings import MarketoSettings
from shared.state.budgets import budget_key

SKEW_MARGIN_SECONDS = 1.0
"""Clock skew between the app's instances that the window tolerates (see shared.budget.rules);
Azure's hosts keep time by NTP, well inside this."""
LEASE_SECONDS = 10.0
"""Half a window: a killed process's unused calls are back within one window."""


def marketo_day(moment: float) -> str:
    """The Marketo quota day (US Central date) of a moment, as text."""
    return quota_day(datetime.fromtimestamp(moment, UTC)).isoformat()


def marketo_day_end(moment: float) -> float:
    """When the Marketo quota day containing a moment ends."""
    return next_quota_reset(datetime.fromtimestamp(moment, UTC)).timestamp()


def marketo_budget(settings: MarketoSettings) -> BudgetSpec:
    """The shared budget of ``settings``' instance and client id."""
    return BudgetSpec(
        key=budget_key("marketo", settings.base_url.lower(), settings.client_id),
        system="marketo",
        limits=BudgetLimits(
            calls_per_window=settings.calls_per_20s,
            window_seconds=WINDOW_SECONDS,
            max_concurrency=settings.max_concurrency,
            daily_budget=settings.daily_call_budget,
            margin_seconds=SKEW_MARGIN_SECONDS,
            lease_seconds=LEASE_SECONDS,
        ),
        quota_day=marketo_day,
        day_end=marketo_day_end,
    )


class SharedGovernor:
    """Admits calls to one Marketo instance within the app's shared budget."""

    def __init__(
        self,
        settings: MarketoSettings,
        store: LedgerStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        stats: CallStats | None = None,
    ) -> None:
        self.limits = Limits.from_settings(settings)
        self.clock = clock
        self.stats = stats or CallStats()
        self.holder = BudgetHolder(marketo_budget(settings), store, clock=clock)

    @property
    def in_flight(self) -> int:
        """This process's calls in flight."""
        return self.holder.in_flight

    @property
    def daily_used(self) -> int:
        """Today's calls by every process, as the row last said."""
        return self.holder.known_ledger().day_used

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one call of the shared budget for the ``async with`` body.

        Raises:
            QuotaExhaustedError: a 607 was recorded by some process, or the app's daily
                budget is spent; ``resets_at`` says when calls resume.
        """
        started = self.clock.monotonic()
        try:
            async with self.holder.slot():
                self.stats.record_wait(self.clock.monotonic() - started)
                yield
        except QuotaExhaustedError:
            self.stats.record_refused()
            raise

    def pause(self, seconds: float) -> None:
        """Every process admits nothing for ``seconds`` (after a 606)."""
        self.holder.record_pause(seconds)

    def stop_until(self, resets_at: datetime) -> None:
        """Every process refuses calls until ``resets_at`` (after a 607)."""
        self.holder.record_stop(resets_at)

    def observe_daily_usage(self, used: int) -> None:
        """Raise the shared daily count to what Marketo reports (``stats/usage.json``)."""
        self.holder.record_daily_usage(used)

    def blocked_until(self) -> datetime | None:
        """What this process already knows of a stop (no storage read)."""
        return self.holder.known_stop_until()

    async def quota_stop_until(self) -> datetime | None:
        """When calls resume if every process is stopped now (607 anywhere, or the daily
        budget spent); ``None`` while calls are granted. Reads the shared row."""
        return await self.holder.stop_until()

    async def usage(self) -> BudgetUsage:
        """The shared usage now (calls in the window, in flight, today's count, stop)."""
        ledger = await self.holder.ledger()
        return usage_of(ledger, self.holder.spec, self.clock.now().timestamp())

    async def aclose(self) -> None:
        """Give back what this process holds."""
        await self.holder.aclose()
