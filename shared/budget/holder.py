"""One process's side of a shared budget: lease blocks of calls and permits, give back the rest.

A caller holds a :meth:`BudgetHolder.slot` around each API call. The slot is served from the
calls and concurrency permits this process leased from the budget's row; when none are left a
single coordinator task per holder runs a *transaction* (read the row, :func:`~.rules.settle`,
replace it conditioned on its ETag) that reports what this process holds and asks for more.
So storage is touched once per block of calls, not per call.

What the holder promises the rules (and so the other processes):

* it sends a call only from a grant, while its lease runs (``expires`` minus a guard);
* it ends every call by its lease's end unless it renewed: each call runs under an
  ``asyncio.timeout`` rescheduled by every renewal; a call still running then is cancelled and
  fails with a retriable error. (A cancelled call has been counted by the API, if at all,
  before the cancel, which is before ``expires``.)
* it reports every finished call's response time until its slot frees;
* it never uses a grant whose write it did not see succeed (a write that failed may still
  have happened: then the row holds more than the process uses, never less).

Storage unavailable: no new grants, so callers wait (with bounded backoff between attempts);
what was already granted is used until the lease ends, never after.

Single event loop: the holder belongs to the loop that first uses it (the host runs every
async invocation on one loop).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from shared.budget.rules import (
    HolderState,
    Ledger,
    ask,
    record_daily_usage,
    record_pause,
    record_stop,
    settle,
)
from shared.budget.spec import BudgetLeaseLapsedError, BudgetSpec, LedgerStore, holder_name
from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ConcurrencyConflict, DmsyncError, QuotaExhaustedError

log = logging.getLogger("dmsync.budget")

START_GUARD_SECONDS = 1.0
"""No call starts later than this before the lease ends."""
CANCEL_GUARD_SECONDS = 0.5
"""A call still running this long before the lease ends (not renewed) is cancelled."""
_CONFLICT_ROUNDS = 5
_BACKOFF_FIRST, _BACKOFF_MAX = 0.2, 5.0


class BudgetHolder:
    """Leases calls and permits of one budget for this process."""

    def __init__(
        self,
        spec: BudgetSpec,
        store: LedgerStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        name: str | None = None,
        idle_grace: float = 0.2,
        fresh_seconds: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.limits = spec.limits
        self.store = store
        self.clock = clock
        self.name = name or holder_name()
        self._idle_grace = idle_grace
        self._fresh_seconds = fresh_seconds
        self._max_poll = 2 * spec.limits.window_seconds
        self._jitter = spec.limits.window_seconds / 50
        self._rng = rng or random.Random()
        # what this process holds (as the row was last told, plus what happened since)
        self._unused = 0
        self._permits = 0
        self._in_flight = 0
        self._waiting = 0
        self._finished: list[float] = []
        self._expires = 0.0
        self._dirty = False
        self._finishes = 0
        self._returning = False
        self._last_activity = 0.0
        # what the row said
        self._pause_until = 0.0
        self._stop_until: float | None = None
        self._retry_at = 0.0
        """No transaction for more calls before this (the row said nothing frees sooner)."""
        self._failed_until = 0.0
        self._backoff = _BACKOFF_FIRST
        self._cached: tuple[Ledger, str | None] | None = None
        self._cached_at = -1e18
        self._read_first = False
        self._written_etag: str | None = None
        # published to the row by the next transaction
        self._pending_pause = 0.0
        self._pending_stop: float | None = None
        self._pending_daily: int | None = None
        # plumbing
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timeouts: set[asyncio.Timeout] = set()
        # measurements
        self.calls = 0
        self.transactions = 0
        self.conflicts = 0
        self.storage_failures = 0

    # -- the caller's side

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one call of the budget for the ``async with`` body.

        Raises:
            QuotaExhaustedError: the daily quota is used up (a 607 recorded, or the daily
                budget spent); the call is not sent.
            BudgetLeaseLapsedError: the lease could not be renewed and the call was cancelled.
        """
        await self._acquire()
        loop = asyncio.get_running_loop()
        timeout = asyncio.timeout_at(self._loop_deadline(loop))
        self._timeouts.add(timeout)
        try:
            async with timeout:
                yield
        except TimeoutError:
            if timeout.expired():
                raise BudgetLeaseLapsedError(
                    f"{self.spec.system} call cancelled: the shared budget's lease could not "
                    "be renewed (table storage unavailable)",
                    system=self.spec.system,
                ) from None
            raise
        finally:
            self._timeouts.discard(timeout)
            self._in_flight -= 1
            self._finished.append(self._now())
            self._finishes += 1
            self._dirty = True
            self._last_activity = self._now()
            self._wake.set()
            async with self._changed:
                self._changed.notify_all()

    async def _acquire(self) -> None:
        self._waiting += 1
        try:
            while True:
                now = self._now()
                self._raise_if_stopped(now)
                if self._can_start(now):
                    self._unused -= 1
                    self._in_flight += 1
                    self.calls += 1
                    self._last_activity = now
                    return
                self._ensure_running()
                self._wake.set()
                async with self._changed:
                    await self._changed.wait()
        finally:
            self._waiting -= 1

    def _can_start(self, now: float) -> bool:
        return (
            not self._returning
            and now >= self._pause_until
            and self._unused > 0
            and self._in_flight < self._permits
            and now < self._expires - START_GUARD_SECONDS
        )

    def _raise_if_stopped(self, now: float) -> None:
        stop = self._stop_until
        if stop is None:
            return
        if now >= stop:
            self._stop_until = None
            return
        raise QuotaExhaustedError(
            f"the {self.spec.system} daily API budget shared by every process is used up",
            resets_at=datetime.fromtimestamp(stop, UTC),
            system=self.spec.system,
        )

    # -- what others tell the budget

    def record_pause(self, seconds: float) -> None:
        """Grant nothing to any process for ``seconds`` (the API said the rate was exceeded)."""
        until = self._now() + seconds
        self._pause_until = max(self._pause_until, until)
        self._pending_pause = max(self._pending_pause, until)
        self._poke()

    def record_stop(self, until: datetime) -> None:
        """Stop every process until ``until`` (the API said the daily quota is used up)."""
        at = until.timestamp()
        self._stop_until = max(self._stop_until or at, at)
        self._pending_stop = max(self._pending_stop or at, at)
        self._poke()

    def record_daily_usage(self, used: int) -> None:
        """Raise the shared daily count to ``used`` (the API reported more than we counted)."""
        self._pending_daily = max(self._pending_daily or 0, used)
        self._poke()

    @property
    def in_flight(self) -> int:
        """This process's calls in flight."""
        return self._in_flight

    def known_ledger(self) -> Ledger:
        """The row as last read or written by this process (no storage access)."""
        return self._cached[0] if self._cached is not None else Ledger()

    def known_stop_until(self) -> datetime | None:
        """A stop this process already knows of (no storage access)."""
        stop = self._stop_until
        if stop is None or stop <= self._now():
            return None
        return datetime.fromtimestamp(stop, UTC)

    async def ledger(self) -> Ledger:
        """The row as recently seen (read again if older than ``fresh_seconds``)."""
        if self.clock.monotonic() - self._cached_at > self._fresh_seconds or self._cached is None:
            self._cached = await asyncio.to_thread(self.store.read, self.spec.key)
            self._cached_at = self.clock.monotonic()
        return self._cached[0]

    async def stop_until(self) -> datetime | None:
        """When calls may resume if every process is stopped now (607 recorded anywhere, or
        the daily budget spent); ``None`` while calls are granted."""
        now = self._now()
        ledger = await self.ledger()
        moments = [t for t in (ledger.stop_until, self._stop_until) if t is not None and t > now]
        budget = self.limits.daily_budget
        spent = budget is not None and ledger.day_used >= budget
        if spent and ledger.day == self.spec.quota_day(now):
            end = self.spec.day_end(now)
            if end is not None:
                moments.append(end)
        return datetime.fromtimestamp(max(moments), UTC) if moments else None

    # -- the coordinator

    def _poke(self) -> None:
        with suppress(RuntimeError):  # no running loop: the next caller starts the task
            self._ensure_running()
        self._wake.set()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"budget:{self.spec.system}"
            )

    def _next_transaction(self, now: float) -> float | None:
        """When the next transaction is due (``None``: none is needed)."""
        if self._pending_pause or self._pending_stop or self._pending_daily:
            return max(now, self._failed_until)
        due: float | None = None
        # More is asked for only when nothing granted can serve the callers: with unused calls
        # and permits all busy, the holder's own calls finishing make room.
        starved = (
            self._unused == 0 or self._permits == 0 or now >= self._expires - START_GUARD_SECONDS
        )
        if self._waiting and starved and self._stop_until is None and not self._returning:
            due = max(now, self._pause_until, self._retry_at)
        holding = self._in_flight or self._unused or self._permits
        if holding and self._expires > now:
            renew = self._expires - self.limits.lease_seconds / 2
            due = renew if due is None else min(due, renew)
        idle = not self._waiting and not self._in_flight
        if idle and (self._unused or self._permits or self._dirty):
            settle_at = self._last_activity + self._idle_grace
            due = settle_at if due is None else min(due, settle_at)
        return None if due is None else max(due, self._failed_until)

    async def _run(self) -> None:
        while True:
            now = self._now()
            self._lapse_if_expired(now)
            due = self._next_transaction(now)
            if due is None and not self._waiting:
                return
            if due is not None and due <= now:
                await self._transact()
                async with self._changed:
                    self._changed.notify_all()
                continue
            wake_at = [t for t in (due, self._expires - START_GUARD_SECONDS) if t is not None]
            later = [t for t in wake_at if t > now]
            await self._sleep_or_wake(min(later) - now if later else None)

    async def _sleep_or_wake(self, seconds: float | None) -> None:
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = None if seconds is None else asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            pending = {waiter} if sleeper is None else {waiter, sleeper}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                if task is not None and not task.done():
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task

    def _lapse_if_expired(self, now: float) -> None:
        """Past the lease: grants are void (calls still running are being cancelled)."""
        if now >= self._expires - START_GUARD_SECONDS and self._unused:
            self._unused = 0
        if now >= self._expires and self._permits:
            self._permits = 0

    async def _transact(self) -> None:
        """Report, return, ask; on a storage failure wait a little longer before the next."""
        self.transactions += 1
        try:
            for _ in range(_CONFLICT_ROUNDS):
                if await self._attempt():
                    self._failed_until = 0.0
                    self._backoff = _BACKOFF_FIRST
                    return
                self.conflicts += 1
        except DmsyncError as failure:
            self.storage_failures += 1
            log.warning("%s budget: %s; trying again shortly", self.spec.system, failure)
        except Exception:  # a bug must not leave every caller waiting forever
            self.storage_failures += 1
            log.exception("%s budget: the transaction failed; trying again shortly",
                          self.spec.system)  # fmt: skip
        self._failed_until = self._now() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    async def _attempt(self) -> bool:
        """One read-settle-write; ``False`` if another process wrote the row first."""
        if self._cached is None or self._read_first:
            self._cached = await asyncio.to_thread(self.store.read, self.spec.key)
            self._cached_at = self.clock.monotonic()
            # Nobody wrote since our last write: optimistic writes would work again.
            self._read_first = self._cached[1] != self._written_etag
        ledger, etag = self._cached
        now = self._now()
        finished = tuple(self._finished)
        finishes = self._finishes
        report, request = ask(
            HolderState(
                in_flight=self._in_flight,
                unused=self._unused,
                permits=self._permits,
                waiting=self._waiting,
                finished=finished,
            ),
            self.limits,
        )
        kept_unused = report.unused == 0
        # While unused calls are being returned none may start (they would be sent uncounted).
        self._returning = not kept_unused
        try:
            pending = (self._pending_pause, self._pending_stop, self._pending_daily)
            base = self._publish(ledger, now)
            new, grant = settle(
                base, self.name, report, request, now=now, today=self.spec.quota_day(now),
                limits=self.limits, stop_at_day_end=self.spec.day_end(now),
            )  # fmt: skip
            try:
                new_etag = await asyncio.to_thread(
                    functools.partial(
                        self.store.write, self.spec.key, new, etag,
                        system=self.spec.system, limits=self.limits,
                    )
                )  # fmt: skip
            except ConcurrencyConflict:
                self._read_first = True
                self._cached = None
                return False
        finally:
            self._returning = False
        self._written_etag = new_etag
        self._cached, self._cached_at = (new, new_etag), self.clock.monotonic()
        self._apply(new, grant.calls, grant.expires, kept_unused, finishes, pending)
        self._stop_until = grant.stop_until
        self._pause_until = max(self._pause_until, grant.pause_until)
        # Ask again when the row says a block frees (at most a window on: another process may
        # return what it does not use before then).
        # A little jitter, so that processes waiting for the same moment do not all write at it.
        retry = grant.retry_at
        if retry is None:
            self._retry_at = 0.0
        else:
            self._retry_at = min(retry, now + self._max_poll) + self._rng.uniform(0, self._jitter)
        return True

    def _publish(self, ledger: Ledger, now: float) -> Ledger:
        if self._pending_pause > now:
            ledger = record_pause(ledger, self._pending_pause)
        if self._pending_stop is not None:
            ledger = record_stop(ledger, self._pending_stop)
        if self._pending_daily is not None:
            ledger = record_daily_usage(ledger, self.spec.quota_day(now), self._pending_daily)
        return ledger

    def _apply(
        self,
        new: Ledger,
        granted: int,
        expires: float,
        kept_unused: bool,
        finishes: int,
        pending: tuple[float, float | None, int | None],
    ) -> None:
        entry = new.holders.get(self.name)
        self._unused = (self._unused if kept_unused else 0) + granted
        self._permits = entry.concurrency if entry is not None else 0
        self._expires = expires
        horizon = self._now() - self.limits.window_seconds - self.limits.margin_seconds
        self._finished = [t for t in self._finished if t > horizon]
        self._dirty = self._finishes != finishes
        if pending == (self._pending_pause, self._pending_stop, self._pending_daily):
            self._pending_pause, self._pending_stop, self._pending_daily = 0.0, None, None
        loop = asyncio.get_running_loop()
        for timeout in self._timeouts:
            timeout.reschedule(self._loop_deadline(loop))

    # -- helpers

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _loop_deadline(self, loop: asyncio.AbstractEventLoop) -> float:
        return loop.time() + (self._expires - CANCEL_GUARD_SECONDS - self._now())

    async def aclose(self) -> None:
        """Return what is unused (best effort) and stop the coordinator."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._unused or self._permits or self._dirty:
            with suppress(DmsyncError):
                await self._transact()
