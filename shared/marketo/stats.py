"""Counts of the calls one Marketo instance has been sent, per endpoint and per outcome.

The sync reports these per run and the benchmarks per window: how many API calls a job cost,
how many were throttled (606/615), how long callers waited in the governor.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
"""Outcome of a call Marketo answered with ``success:true`` (or a file)."""
THROTTLE_OUTCOMES = frozenset({"606", "615", "http_429"})


@dataclass
class CallStats:
    """Thread-safe counters; :meth:`snapshot` gives a JSON-ready copy."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _waited_seconds: float = 0.0
    _refused_locally: int = 0

    def record(self, endpoint: str, outcome: str) -> None:
        """Count one call to ``endpoint`` that ended in ``outcome`` (``ok``, a code, ...)."""
        with self._lock:
            self._calls[(endpoint, outcome)] += 1

    def record_wait(self, seconds: float) -> None:
        """Add time a caller spent waiting for the governor's permission."""
        if seconds > 0:
            with self._lock:
                self._waited_seconds += seconds

    def record_refused(self) -> None:
        """Count a call the governor refused without sending (daily budget used up)."""
        with self._lock:
            self._refused_locally += 1

    @property
    def total_calls(self) -> int:
        """Every call sent, whatever its outcome."""
        with self._lock:
            return sum(self._calls.values())

    def count(self, *, endpoint: str | None = None, outcome: str | None = None) -> int:
        """Calls matching ``endpoint`` and/or ``outcome`` (``None`` matches any)."""
        with self._lock:
            return sum(
                n
                for (ep, out), n in self._calls.items()
                if (endpoint is None or ep == endpoint) and (outcome is None or out == outcome)
            )

    @property
    def throttled(self) -> int:
        """Calls Marketo refused for rate or concurrency (606, 615, HTTP 429)."""
        with self._lock:
            return sum(n for (_, out), n in self._calls.items() if out in THROTTLE_OUTCOMES)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: totals, throttles, waits and a per-endpoint breakdown."""
        with self._lock:
            by_endpoint: dict[str, dict[str, int]] = {}
            for (endpoint, outcome), n in sorted(self._calls.items()):
                by_endpoint.setdefault(endpoint, {})[outcome] = n
            return {
                "calls": sum(self._calls.values()),
                "throttled": sum(
                    n for (_, out), n in self._calls.items() if out in THROTTLE_OUTCOMES
                ),
                "quota_exceeded": sum(n for (_, out), n in self._calls.items() if out == "607"),
                "refused_locally": self._refused_locally,
                "waited_seconds": round(self._waited_seconds, 3),
                "by_endpoint": by_endpoint,
            }
