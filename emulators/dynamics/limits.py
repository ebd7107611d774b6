"""Service protection limits per user (PAD api-limits.md, reference §4).

Two of the three documented measures are enforced, per client (the application user):

* requests: 6,000 in a 300-second sliding window → 429 ``0x80072322`` with ``Retry-After`` set to
  the seconds until the oldest counted request leaves the window;
* concurrency: 52 requests in flight → 429 ``0x80072326`` immediately.

A ``$batch`` counts as one request ("A batch ... will avoid the number of requests limit"). The
window reads the emulator clock, so tests move past it with the clock control instead of waiting.
Execution-time limits are not modelled (the emulator's own time is not the server's).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque

from emulators.dynamics.clock import EmulatorClock
from emulators.dynamics.config import LimitsConfig
from emulators.dynamics.errors import throttled_concurrency, throttled_requests


class ServiceProtection:
    """Sliding-window request counts and in-flight counts per client."""

    def __init__(self, config: LimitsConfig, clock: EmulatorClock) -> None:
        self.settings = config
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)
        self.throttled = {"requests": 0, "concurrency": 0}

    def configure(self, settings: LimitsConfig) -> None:
        """Replace the limits (control API); counted history is kept."""
        self.settings = settings

    def clear(self) -> None:
        """Forget counted requests (not in-flight ones)."""
        with self._lock:
            self._windows.clear()
            self.throttled = {"requests": 0, "concurrency": 0}

    def in_flight(self) -> int:
        """Requests being served now, all clients."""
        with self._lock:
            return sum(self._in_flight.values())

    def acquire(self, client: str) -> None:
        """Admit one request or raise the 429 ODataError; pair every success with release()."""
        settings = self.settings
        with self._lock:
            if not settings.enabled:
                self._in_flight[client] += 1
                return
            if self._in_flight[client] >= settings.concurrent_requests:
                self.throttled["concurrency"] += 1
                raise throttled_concurrency(
                    settings.concurrent_requests, settings.concurrency_retry_after_seconds
                )
            now = self.clock.monotonic()
            window = self._windows[client]
            while window and window[0] <= now - settings.window_seconds:
                window.popleft()
            if len(window) >= settings.requests_per_window:
                self.throttled["requests"] += 1
                wait = window[0] + settings.window_seconds - now
                raise throttled_requests(
                    settings.requests_per_window,
                    settings.window_seconds,
                    max(1, math.ceil(wait)),
                )
            window.append(now)
            self._in_flight[client] += 1

    def release(self, client: str) -> None:
        """A request admitted by acquire() has finished."""
        with self._lock:
            self._in_flight[client] -= 1

    def remaining(self, client: str) -> int:
        """Requests left in the window (``x-ms-ratelimit-burst-remaining-xrm-requests``)."""
        with self._lock:
            return max(0, self.settings.requests_per_window - len(self._windows[client]))
