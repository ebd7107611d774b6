"""What a budget row says about its use, for ``dmsync status`` and telemetry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.budget.rules import Ledger, quota_stop
from shared.budget.spec import BudgetSpec


@dataclass(frozen=True)
class BudgetUsage:
    """One budget's shared use at a moment."""

    system: str
    calls_in_window: int
    """Window slots held by every process (calls counted in the last window, or granted)."""
    calls_per_window: int
    window_seconds: float
    in_flight: int
    """Concurrency permits held by every process."""
    max_concurrency: int
    day_used: int
    """Calls granted today (never below the calls made)."""
    daily_budget: int | None
    stopped_until: datetime | None
    """Every process is stopped until then (607 recorded, or the daily budget spent)."""
    processes: int
    """Processes on the row (holding or waiting)."""


def usage_of(ledger: Ledger, spec: BudgetSpec, now: float) -> BudgetUsage:
    """The usage in ``ledger`` at ``now``."""
    limits = spec.limits
    today = spec.quota_day(now)
    day_used = ledger.day_used if ledger.day == today else 0
    stopped: float | None = None
    if ledger.stop_until is not None and now < ledger.stop_until:
        stopped = ledger.stop_until
    elif ledger.day == today and quota_stop(ledger, now, limits):
        stopped = spec.day_end(now)
    return BudgetUsage(
        system=spec.system,
        calls_in_window=ledger.window_use(now, limits),
        calls_per_window=limits.calls_per_window,
        window_seconds=limits.window_seconds,
        in_flight=ledger.concurrency_use(now, limits),
        max_concurrency=limits.max_concurrency,
        day_used=day_used,
        daily_budget=limits.daily_budget,
        stopped_until=None if stopped is None else datetime.fromtimestamp(stopped, UTC),
        processes=len(ledger.holders),
    )
