"""The rate governor: keeps one process's Marketo calls inside its share of the limits.

Marketo enforces, per instance and shared by every integration (reference B.2):

* **rate:** 100 calls per 20 s, else 606 (Adobe asks integrations to use 50 or fewer);
* **concurrency:** 10 calls in flight, else 615 (Adobe suggests at most 5);
* **daily quota:** 50,000 calls a day in most subscriptions, reset at 00:00 US Central, else 607.

The governor *waits* so Marketo never has to refuse us; 606/615 can then only come from another
integration using the shared budget, and the request loop backs off (see :mod:`.transport`).

How the window is kept, and why it holds even measured at Marketo's end: each call holds a slot
from the moment it is admitted until one full window *after its response arrived*. Marketo sees
a call at some instant between our send and our receipt, so a slot released a window after the
receipt is released no earlier than a window after Marketo counted it, and a call admitted while
fewer than ``calls_per_window`` slots are held can never make Marketo count more than that in any
20 s span, whatever the network latency. The cost is a window that is one round trip longer.

The decisions are pure functions of (now, recent finish times, calls in flight, limits); the
:class:`Governor` only keeps that state and sleeps on the injected clock. One governor exists per
(base URL, client id) in a process (:func:`governor_for`), shared by every client built for it.
The state is guarded by a thread lock; waiting uses the caller's event loop.

This governor's counters are per process: it serves tests and tools that run alone. The app's
runtime uses :class:`~shared.marketo.shared_governor.SharedGovernor` instead, whose window,
concurrency and daily count are shared by every process through a Table Storage row. Both
satisfy :class:`CallGate`, which is all the transport and the client need.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ConfigurationError, QuotaExhaustedError
from shared.marketo.quota_day import next_quota_reset, quota_day
from shared.marketo.stats import CallStats
from shared.settings import MarketoSettings

WINDOW_SECONDS = 20.0
"""Length of Marketo's rate window (reference B.2)."""
INSTANCE_CALLS_PER_WINDOW = 100
INSTANCE_MAX_CONCURRENCY = 10
_MIN_WAIT = 0.001
"""Smallest wait handed out, so float rounding at a window edge cannot make a busy loop."""


@dataclass(frozen=True)
class Limits:
    """This process's share of one Marketo instance's limits."""

    calls_per_window: int = 50
    window_seconds: float = WINDOW_SECONDS
    max_concurrency: int = 5
    daily_budget: int = 25_000

    def __post_init__(self) -> None:
        if self.calls_per_window < 1 or self.max_concurrency < 1 or self.daily_budget < 1:
            raise ValueError("governor limits must be positive")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")

    @classmethod
    def from_settings(cls, settings: MarketoSettings) -> Limits:
        """The limits configured by ``MARKETO_CALLS_PER_20S`` and friends."""
        return cls(
            calls_per_window=settings.calls_per_20s,
            max_concurrency=settings.max_concurrency,
            daily_budget=settings.daily_call_budget,
        )


class CallGate(Protocol):
    """What the transport and the client need of a governor (process-local or shared)."""

    limits: Limits
    stats: CallStats

    @property
    def daily_used(self) -> int: ...

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    def pause(self, seconds: float) -> None: ...

    def stop_until(self, resets_at: datetime) -> None: ...

    def observe_daily_usage(self, used: int) -> None: ...

    def blocked_until(self) -> datetime | None: ...

    async def quota_stop_until(self) -> datetime | None: ...


# --- pure decisions ---------------------------------------------------------------------------


def admission_delay(
    *,
    now: float,
    finished: Sequence[float],
    in_flight: int,
    limits: Limits,
    paused_until: float = -math.inf,
) -> float | None:
    """How long a new call must wait before it may start.

    Args:
        now: the monotonic time of the decision.
        finished: monotonic times at which earlier calls' responses arrived (any order; old
            ones are ignored).
        in_flight: calls admitted and not yet finished; each holds a window slot.
        limits: the share to keep within.
        paused_until: no call starts before this (set after a 606).

    Returns:
        ``0.0`` to start now; a positive number of seconds to wait before asking again; or
        ``None`` when only a call in flight finishing can make room.
    """
    if now < paused_until:
        return max(paused_until - now, _MIN_WAIT)
    if in_flight >= limits.max_concurrency:
        return None
    horizon = now - limits.window_seconds
    active = sorted(t for t in finished if t > horizon)
    used = in_flight + len(active)
    if used < limits.calls_per_window:
        return 0.0
    must_leave = used - limits.calls_per_window + 1
    if must_leave > len(active):
        return None
    return max(active[must_leave - 1] + limits.window_seconds - now, _MIN_WAIT)


def rate_limit_pause(window_seconds: float, rng: random.Random, jitter_seconds: float) -> float:
    """The pause after a 606: a whole window (so every counted call ages out) plus jitter,
    so that several workers do not all come back at the same instant."""
    return window_seconds + rng.uniform(0.0, jitter_seconds)


def concurrency_backoff(attempt: int, rng: random.Random, *, base: float = 1.0) -> float:
    """The short wait after a 615 (another integration holds the concurrent slots): 1, 2, 4 s
    ... capped at 8 s, each shortened by up to a half at random."""
    ceiling = min(8.0, base * 2.0 ** max(0, attempt - 1))
    return ceiling * (1.0 - 0.5 * rng.random())


def max_calls_in_any_window(times: Sequence[float], window: float) -> int:
    """The most entries of ``times`` inside any half-open span ``[t, t + window)``."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- async plumbing ---------------------------------------------------------------------------


class Governor:
    """Admits calls to one Marketo instance within :class:`Limits`; counts them in ``stats``."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock = SYSTEM_CLOCK,
        stats: CallStats | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.stats = stats or CallStats()
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = -math.inf
        self._day: date | None = None
        self._day_used = 0
        self._stopped_until: datetime | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # -- reading the state

    @property
    def in_flight(self) -> int:
        """Calls admitted and not yet finished."""
        return self._in_flight

    @property
    def daily_used(self) -> int:
        """Calls admitted in the current quota day (as far as this process knows)."""
        with self._lock:
            self._roll_day_locked(self.clock.now())
            return self._day_used

    def slots_in_use(self) -> int:
        """Window slots held now: calls in flight plus calls finished within the window."""
        with self._lock:
            now = self.clock.monotonic()
            self._prune_locked(now)
            return self._in_flight + len(self._finished)

    # -- changing it from outside

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (used after a 606 answered to anyone)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    def stop_until(self, resets_at: datetime) -> None:
        """Refuse every call until ``resets_at`` (used after Marketo answered 607)."""
        with self._lock:
            if self._stopped_until is None or resets_at > self._stopped_until:
                self._stopped_until = resets_at

    def blocked_until(self) -> datetime | None:
        """When calls may resume if they are refused now (607 seen, or the daily budget used up);
        ``None`` while calls are admitted. Read-only: for schedulers deciding whether to start."""
        with self._lock:
            now = self.clock.now()
            if self._stopped_until is not None and now < self._stopped_until:
                return self._stopped_until
            self._roll_day_locked(now)
            if self._day_used >= self.limits.daily_budget:
                return next_quota_reset(now)
            return None

    async def quota_stop_until(self) -> datetime | None:
        """:meth:`blocked_until`, as the quota gate the engine and the scheduler await."""
        return self.blocked_until()

    def observe_daily_usage(self, used: int) -> None:
        """Raise today's count to ``used`` if Marketo reports more than we counted (e.g. from
        ``stats/usage.json`` after a restart, when the in-process count started at zero)."""
        with self._lock:
            self._roll_day_locked(self.clock.now())
            self._day_used = max(self._day_used, used)

    # -- admitting calls

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one admitted call for the duration of the ``async with`` body.

        Raises:
            QuotaExhaustedError: the daily budget is used up or Marketo answered 607; the call
                is not sent. ``resets_at`` says when to try again.
        """
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        started = self.clock.monotonic()
        while True:
            with self._lock:
                self._check_daily_locked()
                now = self.clock.monotonic()
                self._prune_locked(now)
                delay = admission_delay(
                    now=now,
                    finished=self._finished,
                    in_flight=self._in_flight,
                    limits=self.limits,
                    paused_until=self._paused_until,
                )
                if delay == 0.0:
                    self._in_flight += 1
                    self._day_used += 1
                    break
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            await self._wait(waiter, delay)
        self.stats.record_wait(self.clock.monotonic() - started)

    async def _wait(self, waiter: asyncio.Future[None], delay: float | None) -> None:
        """Until ``delay`` passes or a call finishes (which may free room), whichever is first."""
        sleeper = None if delay is None else asyncio.ensure_future(self.clock.sleep(delay))
        try:
            pending = {waiter} if sleeper is None else {waiter, sleeper}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                if task is not None and not task.done():
                    task.cancel()
            if sleeper is not None:
                with suppress(asyncio.CancelledError):
                    await sleeper
            with self._lock:
                self._waiters = [(lp, f) for lp, f in self._waiters if f is not waiter]

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._finished.append(self.clock.monotonic())
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with suppress(RuntimeError):  # that loop is closed: nobody is waiting there
                loop.call_soon_threadsafe(_resolve, future)

    # -- helpers (lock held)

    def _prune_locked(self, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while self._finished and self._finished[0] <= horizon:
            self._finished.popleft()

    def _roll_day_locked(self, now: datetime) -> None:
        today = quota_day(now)
        if today != self._day:
            self._day = today
            self._day_used = 0

    def _check_daily_locked(self) -> None:
        now = self.clock.now()
        if self._stopped_until is not None:
            if now < self._stopped_until:
                self.stats.record_refused()
                raise QuotaExhaustedError(
                    "Marketo's daily API quota is used up (607); calls resume after the reset",
                    resets_at=self._stopped_until,
                    system="marketo",
                    code="607",
                )
            self._stopped_until = None
        self._roll_day_locked(now)
        if self._day_used >= self.limits.daily_budget:
            self.stats.record_refused()
            raise QuotaExhaustedError(
                f"this integration's daily Marketo budget of {self.limits.daily_budget} calls "
                "(MARKETO_DAILY_CALL_BUDGET) is used up",
                resets_at=next_quota_reset(now),
                system="marketo",
            )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --- one governor per instance and client id --------------------------------------------------

_REGISTRY: dict[tuple[str, str], Governor] = {}
_REGISTRY_LOCK = threading.Lock()


def governor_for(settings: MarketoSettings, *, clock: Clock = SYSTEM_CLOCK) -> Governor:
    """The process-wide governor for ``settings``' base URL and client id (created once).

    Raises:
        ConfigurationError: a governor for the same instance and client id already exists with
            different limits (two configurations disagree about the share).
    """
    key = (settings.base_url.lower(), settings.client_id)
    limits = Limits.from_settings(settings)
    with _REGISTRY_LOCK:
        existing = _REGISTRY.get(key)
        if existing is None:
            existing = _REGISTRY[key] = Governor(limits, clock=clock)
        elif existing.limits != limits:
            raise ConfigurationError(
                "MARKETO_CALLS_PER_20S, MARKETO_MAX_CONCURRENCY and MARKETO_DAILY_CALL_BUDGET "
                "differ between two clients of the same Marketo instance and client id"
            )
        return existing
