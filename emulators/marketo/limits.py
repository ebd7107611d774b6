"""The instance-wide call limits (reference B.2; error-codes.md 606/607/615).

* 606: more than ``rate_calls`` calls in a sliding ``rate_window_seconds`` (100 in 20 s), counted
  over every client of the instance;
* 615: ``concurrency`` calls (10) already in progress;
* 607: the daily quota (50,000) used up; the day ends at midnight in the configured zone
  (US Central: "resets daily at 12:00AM CST").

error-codes.md: a call answered with a response-level error "is not counted against your daily
quota, or your rate limit", so a slot taken at admission is given back when the call fails as a
whole (:meth:`CallLimits.finish` with ``counted=False``).
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from emulators.marketo.clock import EmulatorClock
from emulators.marketo.config import LimitSettings
from emulators.marketo.envelope import ApiError, rate_limit_message


@dataclass
class Admission:
    """A call let through: when, on which quota day, and how full the window was with it."""

    at: float
    day: str
    calls_in_window: int
    concurrent: int


class CallLimits:
    """Sliding rate window, concurrency and daily quota of one instance."""

    def __init__(self, settings: LimitSettings, clock: EmulatorClock, timezone: str) -> None:
        self.settings = settings
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._window: deque[float] = deque()
        self._daily: dict[str, int] = {}
        self.in_flight = 0

    def day_of(self, epoch: float) -> str:
        """The quota day (``YYYY-MM-DD`` in the instance's zone) of an instant."""
        return datetime.fromtimestamp(epoch, self._zone).date().isoformat()

    def today(self) -> str:
        """The current quota day."""
        return self.day_of(self._clock.time())

    def used_today(self) -> int:
        """Calls counted against today's quota."""
        return self._daily.get(self.today(), 0)

    def calls_in_window(self) -> int:
        """Calls counted in the current sliding window."""
        self._expire(self._clock.time())
        return len(self._window)

    def _expire(self, now: float) -> None:
        horizon = now - self.settings.rate_window_seconds
        window = self._window
        while window and window[0] <= horizon:
            window.popleft()

    def admit(self) -> Admission:
        """Let a call in or refuse it.

        Raises:
            ApiError: 607, 606 or 615 (checked in that order) when limits are enabled.
        """
        settings = self.settings
        now = self._clock.time()
        day = self.day_of(now)
        self._expire(now)
        if settings.enabled:
            if self._daily.get(day, 0) >= settings.daily_quota:
                raise ApiError("607")
            if len(self._window) >= settings.rate_calls:
                raise ApiError(
                    "606", rate_limit_message(settings.rate_calls, settings.rate_window_seconds)
                )
            if self.in_flight >= settings.concurrency:
                raise ApiError("615")
        self._window.append(now)
        self._daily[day] = self._daily.get(day, 0) + 1
        self.in_flight += 1
        return Admission(
            at=now, day=day, calls_in_window=len(self._window), concurrent=self.in_flight
        )

    def finish(self, admission: Admission, *, counted: bool) -> None:
        """End an admitted call; an uncounted one gives its window slot and quota unit back."""
        self.in_flight -= 1
        if counted:
            return
        with contextlib.suppress(ValueError):  # already slid out of the window
            self._window.remove(admission.at)
        self._daily[admission.day] = max(0, self._daily.get(admission.day, 0) - 1)

    def reset(self, settings: LimitSettings) -> None:
        """New settings and empty counters (calls in progress keep running)."""
        self.settings = settings
        self._window.clear()
        self._daily.clear()
