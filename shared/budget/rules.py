"""The shared ledger of one API budget and the pure rules that hand it out.

One ledger exists per budget (a Marketo instance and client id; a Dataverse application user)
and lives in one Table Storage row, changed only by ETag-conditioned replaces, so every change
is computed from the state it replaces (:mod:`shared.state.budget_store`). Each process that
makes calls is a *holder* with one entry:

* ``open``: calls granted to it that have not finished (unused, or in flight). Each may be
  sent at any moment until ``expires``, and a holder ends (cancels) every call by ``expires``
  unless it renewed, so such a slot is held until ``expires + window + margin``;
* ``released``: calls that finished, each held until its response + window + margin (the
  governor's rule: Marketo counts a call at some instant between our send and our receipt,
  so a slot freed a window after the receipt is freed no earlier than a window after Marketo
  counted it, whatever the latency);
* ``concurrency``: permits for calls in flight, held until ``expires + margin``.

``margin`` covers clock skew between instances: times in the row are written by one instance's
clock and compared by another's, so a slot can look free at most ``skew`` early; with
``margin >= skew`` it never looks free before it is.

The window count therefore never falls below the calls Marketo counts in any window, and a
grant is only made while the count is under the limit: **no window can hold more than the
limit**, whichever holder asks, however the writes interleave (each write replaces the state
it was computed from, or fails), and whether or not holders die. A holder that dies leaks its
unused slots until ``expires + window + margin`` and its permits until ``expires + margin``:
with ``expires`` at most a lease length ahead, the others regain them within one window.

The daily count (``day_used``) grows by every grant and shrinks by unused calls returned, so it
is never below the calls made today. A holder that dies keeps its unused grant counted: a
small loss, never an overrun. At the day's change the count restarts from the calls still open.

Times are wall-clock seconds since the epoch (shared between processes), never monotonic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True)
class BudgetLimits:
    """The app's share of one API's limits (the whole app's, not one process's)."""

    calls_per_window: int
    window_seconds: float
    max_concurrency: int
    daily_budget: int | None = None
    """Calls per quota day, or ``None`` for an API without a daily quota."""
    margin_seconds: float = 1.0
    """Added to every release time: the clock skew between instances this budget tolerates."""
    lease_seconds: float = 10.0
    """How long a grant may be used without renewal (bounds what a dead holder leaks)."""

    def __post_init__(self) -> None:
        if self.calls_per_window < 1 or self.max_concurrency < 1:
            raise ValueError("budget limits must be positive")
        if self.daily_budget is not None and self.daily_budget < 1:
            raise ValueError("a daily budget must be positive")
        if self.window_seconds <= 0 or self.lease_seconds <= 0 or self.margin_seconds < 0:
            raise ValueError("budget durations must be positive")

    @property
    def bucket_seconds(self) -> float:
        """Release times are rounded *up* to this grain, so an entry stays small."""
        return self.window_seconds / 80


@dataclass(frozen=True)
class Holding:
    """What one holder holds (see the module docstring)."""

    expires: float
    open: int = 0
    concurrency: int = 0
    released: tuple[tuple[float, int], ...] = ()
    """``(free at, count)`` pairs, ascending."""
    wants: bool = False
    """It asked for more at its last transaction (and its lease runs): it is waiting."""
    starving_since: float | None = None
    """Since when it has been asking without holding a single permit (``None``: it has one,
    or asks for none)."""

    def window_use(self, now: float, limits: BudgetLimits) -> int:
        """Slots of the window this entry holds at ``now``."""
        held = sum(count for at, count in self.released if at > now)
        if now < self.expires + limits.window_seconds + limits.margin_seconds:
            held += self.open
        return held

    def concurrency_use(self, now: float, limits: BudgetLimits) -> int:
        """Permits this entry holds at ``now``."""
        return self.concurrency if now < self.expires + limits.margin_seconds else 0

    def is_live(self, now: float) -> bool:
        """Whether its lease runs (it may still send calls)."""
        return now < self.expires


@dataclass(frozen=True)
class Ledger:
    """The state of one budget, as stored in its row."""

    holders: Mapping[str, Holding] = field(default_factory=lambda: MappingProxyType({}))
    day: str = ""
    """The quota day ``day_used`` counts (empty: never counted)."""
    day_used: int = 0
    stop_until: float | None = None
    """Nothing is granted before this (the API said the daily quota is used up: 607)."""
    pause_until: float = 0.0
    """Nothing is granted before this (the API said the rate was exceeded: 606)."""

    def window_use(self, now: float, limits: BudgetLimits, *, besides: str | None = None) -> int:
        """Window slots held at ``now`` by every holder (but ``besides``)."""
        return sum(h.window_use(now, limits) for name, h in self.holders.items() if name != besides)

    def concurrency_use(
        self, now: float, limits: BudgetLimits, *, besides: str | None = None
    ) -> int:
        """Concurrency permits held at ``now`` by every holder (but ``besides``)."""
        return sum(
            h.concurrency_use(now, limits) for name, h in self.holders.items() if name != besides
        )


@dataclass(frozen=True)
class Report:
    """A holder's truthful account of itself, sent with each request."""

    open: int
    """Calls it keeps: sent and not finished, or granted and kept for sending."""
    finished: tuple[float, ...] = ()
    """Response times of finished calls whose slots may still be held (older ones are dropped)."""
    unused: int = 0
    """Granted calls not sent; they are returned (the holder may ask for them again)."""
    concurrency_needed: int = 0
    """Permits it keeps (at least its calls in flight)."""
    in_flight: int = 0
    """Of ``open``, the calls sent: their permits are kept whatever fairness says."""


@dataclass(frozen=True)
class Request:
    """What a holder asks for on top of what it keeps."""

    calls: int = 0
    concurrency: int = 0


@dataclass(frozen=True)
class Grant:
    """What the holder may now use: fresh calls and permits, on top of what it kept."""

    calls: int
    concurrency: int
    expires: float
    stop_until: float | None
    """Set when nothing may be granted until then (607 recorded, or the daily budget spent)."""
    pause_until: float
    retry_at: float | None
    """When asking again could get more (``None``: everything asked for was granted)."""


@dataclass(frozen=True)
class HolderState:
    """What one process holds and wants, as its holder sees it."""

    in_flight: int
    unused: int
    permits: int
    waiting: int
    """Callers waiting for a call."""
    finished: tuple[float, ...] = ()


def ask(state: HolderState, limits: BudgetLimits) -> tuple[Report, Request]:
    """A holder's report and request. While busy (callers waiting or calls in flight) it keeps
    its unused calls and permits and asks for a full window's worth (the rules cap it at a fair
    share); idle, it returns every unused call and permit it is not using."""
    busy = state.waiting > 0 or state.in_flight > 0
    # Unused calls are kept only with permits to send them (without, nothing is in flight, so
    # nothing can take them while they are returned).
    keep = busy and state.permits > 0
    needed = max(state.in_flight, state.permits if keep and state.unused else 0)
    wanted_permits = min(limits.max_concurrency, state.waiting + state.in_flight)
    report = Report(
        open=state.in_flight + (state.unused if keep else 0),
        finished=state.finished,
        unused=0 if keep else state.unused,
        concurrency_needed=needed,
        in_flight=state.in_flight,
    )
    request = Request(
        calls=limits.calls_per_window if state.waiting else 0,
        concurrency=max(0, wanted_permits - needed) if state.waiting else 0,
    )
    return report, request


def released_times(
    finished: Iterable[float], limits: BudgetLimits, now: float
) -> tuple[tuple[float, int], ...]:
    """The ``released`` entries for calls that finished at ``finished``: each held until a
    window and the margin after its response, rounded up to the bucket grain; past ones gone."""
    grain = limits.bucket_seconds
    buckets: dict[float, int] = {}
    for done in finished:
        at = math.ceil((done + limits.window_seconds + limits.margin_seconds) / grain) * grain
        if at > now:
            buckets[at] = buckets.get(at, 0) + 1
    return tuple(sorted(buckets.items()))


def prune(ledger: Ledger, now: float, limits: BudgetLimits) -> Ledger:
    """Drop what no longer holds anything at ``now`` (past releases, holders all gone)."""
    kept: dict[str, Holding] = {}
    for name, holding in ledger.holders.items():
        released = tuple((at, n) for at, n in holding.released if at > now)
        pruned = replace(holding, released=released)
        if (
            pruned.window_use(now, limits)
            or pruned.concurrency_use(now, limits)
            or (pruned.is_live(now))
        ):
            kept[name] = pruned
    stop = ledger.stop_until if ledger.stop_until is not None and now < ledger.stop_until else None
    return replace(ledger, holders=MappingProxyType(kept), stop_until=stop)


def roll_day(ledger: Ledger, today: str) -> Ledger:
    """Start counting ``today`` if the ledger counts an earlier day: the count restarts from
    the calls still open (they may be sent today)."""
    if ledger.day == today:
        return ledger
    still_open = sum(h.open for h in ledger.holders.values())
    return replace(ledger, day=today, day_used=still_open)


def quota_stop(ledger: Ledger, now: float, limits: BudgetLimits) -> bool:
    """Whether no call may be granted for the rest of the day (607, or budget spent)."""
    if ledger.stop_until is not None and now < ledger.stop_until:
        return True
    return limits.daily_budget is not None and ledger.day_used >= limits.daily_budget


def fair_cap(total: int, free: int, active: int, held: int) -> int:
    """The most one holder may take now: up to an equal share of ``total`` among the
    ``active`` holders, beyond it only an equal split of what is ``free``."""
    share = math.ceil(total / active)
    return max(share - held, math.ceil(free / active))


def settle(
    ledger: Ledger,
    holder: str,
    report: Report,
    request: Request,
    *,
    now: float,
    today: str,
    limits: BudgetLimits,
    stop_at_day_end: float | None = None,
) -> tuple[Ledger, Grant]:
    """One holder's transaction: record what it holds, return what it does not use, and grant
    what it asks for as far as the limits and fairness allow.

    Args:
        ledger: the row as read (the write is conditioned on it).
        holder: the holder's name.
        report: its own account; ``finished`` may include calls already recorded.
        request: the extra calls and permits it wants.
        now: the holder's wall clock (seconds since the epoch).
        today: the quota day ``now`` falls in.
        limits: the budget.
        stop_at_day_end: when the quota day ends (the ``stop_until`` a spent budget implies).

    Returns:
        The new ledger to write, and the grant it contains.
    """
    if report.open < 0 or report.unused < 0 or request.calls < 0 or request.concurrency < 0:
        raise ValueError("a report and a request count calls: never negative")
    ledger = roll_day(prune(ledger, now, limits), today)
    expires = now + limits.lease_seconds
    previous = ledger.holders.get(holder)
    returned = min(report.unused, previous.open if previous else 0)
    # Permits are kept only while the lease still holds them: once it has lapsed, others may
    # have been given them (and the holder ended its calls at expiry).
    kept_permits = min(
        report.concurrency_needed,
        previous.concurrency_use(now, limits) if previous else 0,
    )
    others = {name: h for name, h in ledger.holders.items() if name != holder}
    active = 1 + sum(1 for h in others.values() if h.is_live(now))
    # Beyond its fair share a holder keeps only the permits its calls in flight use, so that
    # permits rotate to the others instead of waiting with its unused calls.
    kept_permits = min(
        kept_permits, max(report.in_flight, math.ceil(limits.max_concurrency / active))
    )
    mine = Holding(
        expires=expires,
        open=report.open,
        concurrency=kept_permits,
        released=released_times(report.finished, limits, now),
    )
    day_used = max(0, ledger.day_used - returned)
    stopped = quota_stop(replace(ledger, day_used=day_used), now, limits)
    paused = now < ledger.pause_until
    calls = permits = 0
    if not stopped and not paused:
        free = limits.calls_per_window - mine.window_use(now, limits)
        free -= sum(h.window_use(now, limits) for h in others.values())
        if limits.daily_budget is not None:
            free = min(free, limits.daily_budget - day_used)
        cap = fair_cap(limits.calls_per_window, free, active, mine.window_use(now, limits))
        calls = max(0, min(request.calls, free, cap))
        free_permits = limits.max_concurrency - kept_permits
        free_permits -= sum(h.concurrency_use(now, limits) for h in others.values())
        permit_cap = fair_cap(limits.max_concurrency, free_permits, active, kept_permits)
        was_starving = previous.starving_since if previous is not None else None
        my_since = now if kept_permits or was_starving is None else was_starving
        # Holders that have waited longer without a single permit come first: a holder that
        # has just used its permits leaves them one each before it takes any back. (The one
        # waiting longest sees nobody before it, so someone always gets the permits.)
        free_permits -= sum(
            1 for h in others.values()
            if h.wants and h.is_live(now) and not h.concurrency_use(now, limits)
            and h.starving_since is not None and h.starving_since < my_since
        )  # fmt: skip
        permits = max(0, min(request.concurrency, free_permits, permit_cap))
        if kept_permits + permits == 0:
            calls = 0  # calls it could not send would only hold the window
        if calls == 0 and report.open == report.in_flight:
            permits = 0  # and permits without calls to send would only keep others waiting
    mine = replace(mine, open=mine.open + calls, concurrency=kept_permits + permits)
    holders = dict(others)
    # A holder that asks stays on the row while its lease runs, holding or not: it counts as
    # active, so the others' fair share shrinks to make room for it.
    wants = request.calls > 0 or request.concurrency > 0
    starving_since = None
    if wants and request.concurrency > 0 and not mine.concurrency:
        earlier = previous.starving_since if previous is not None else None
        starving_since = now if earlier is None else earlier
    mine = replace(mine, wants=wants, starving_since=starving_since)
    if wants or mine.window_use(now, limits) or mine.concurrency_use(now, limits):
        holders[holder] = mine
    new = replace(ledger, holders=MappingProxyType(holders), day_used=day_used + calls)
    stop_until = None
    if quota_stop(new, now, limits) and calls == 0:
        stop_until = new.stop_until if new.stop_until is not None else stop_at_day_end
    fair = math.ceil(limits.calls_per_window / active)
    grant = Grant(
        calls=calls,
        concurrency=permits,
        expires=expires,
        stop_until=stop_until,
        pause_until=new.pause_until,
        retry_at=(
            (
                next_free_at(new, now, limits, calls=max(1, min(request.calls, fair // 2)))
                or now + limits.window_seconds / 10
            )
            if calls < request.calls or permits < request.concurrency
            else None
        ),
    )
    return new, grant


def next_free_at(
    ledger: Ledger, now: float, limits: BudgetLimits, *, calls: int = 1
) -> float | None:
    """The earliest moment after ``now`` at which, by time alone, at least ``calls`` window
    slots are free (or a permit frees while none is free): asking before it is wasted."""
    if now < ledger.pause_until:
        return ledger.pause_until
    events: list[tuple[float, int]] = []
    permits: list[float] = []
    for h in ledger.holders.values():
        events.extend((at, n) for at, n in h.released if at > now)
        if h.open:
            events.append((h.expires + limits.window_seconds + limits.margin_seconds, h.open))
        if h.concurrency_use(now, limits):
            permits.append(h.expires + limits.margin_seconds)
    free = limits.calls_per_window - ledger.window_use(now, limits)
    moment: float | None = None
    for at, n in sorted(events):
        free += n
        if free >= calls:
            moment = at
            break
    if moment is None and events:
        moment = max(at for at, _ in events)
    if ledger.concurrency_use(now, limits) >= limits.max_concurrency and permits:
        soonest = min(permits)
        moment = soonest if moment is None else min(moment, soonest)
    return moment


def record_pause(ledger: Ledger, until: float) -> Ledger:
    """Grant nothing before ``until`` (the API answered that the rate was exceeded)."""
    return replace(ledger, pause_until=max(ledger.pause_until, until))


def record_stop(ledger: Ledger, until: float) -> Ledger:
    """Grant nothing before ``until`` (the API answered that the daily quota is used up)."""
    current = ledger.stop_until
    return replace(ledger, stop_until=until if current is None else max(current, until))


def record_daily_usage(ledger: Ledger, today: str, used: int) -> Ledger:
    """Raise today's count to ``used`` if the API reports more than the ledger counted."""
    ledger = roll_day(ledger, today)
    return replace(ledger, day_used=max(ledger.day_used, used))
