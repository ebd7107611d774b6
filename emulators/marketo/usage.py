"""What the instance saw: the numbers behind ``/rest/v1/stats/*`` and ``/_emulator/usage``.

Tests and benchmarks assert on these ("no 606, never more than N calls in a window") instead of
timing anything.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class Usage:
    """Counters of API calls, errors and peaks."""

    def __init__(self) -> None:
        self.requests = 0
        """Every API request that reached routing (identity and control calls excluded)."""
        self.counted = 0
        """Calls counted against the quota (admitted and not failed as a whole)."""
        self.by_endpoint: Counter[str] = Counter()
        self.counted_by_endpoint: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        """Response-level error codes, including HTTP-level ones (413, 414, 502)."""
        self.record_reasons: Counter[str] = Counter()
        """Record-level reason codes of skipped items."""
        self.faults: Counter[str] = Counter()
        """Faults injected, by kind."""
        self.max_concurrency = 0
        self.max_calls_in_window = 0
        self.identity_calls = 0
        self._calls_by_day: dict[str, Counter[str]] = {}
        self._errors_by_day: dict[str, Counter[str]] = {}

    def request(self, endpoint: str) -> None:
        """A request for ``endpoint`` (``"POST /rest/v1/leads.json"``) arrived."""
        self.requests += 1
        self.by_endpoint[endpoint] += 1

    def admitted(self, concurrent: int, calls_in_window: int) -> None:
        """Peaks seen at an admission."""
        self.max_concurrency = max(self.max_concurrency, concurrent)
        self.max_calls_in_window = max(self.max_calls_in_window, calls_in_window)

    def count(self, endpoint: str, day: str, api_user: str) -> None:
        """A call counted against the quota."""
        self.counted += 1
        self.counted_by_endpoint[endpoint] += 1
        self._calls_by_day.setdefault(day, Counter())[api_user] += 1

    def error(self, code: str, day: str) -> None:
        """A response-level (or HTTP-level) error answered."""
        self.errors[code] += 1
        self._errors_by_day.setdefault(day, Counter())[code] += 1

    def reasons(self, result: list[Any]) -> None:
        """Tally the reason codes of skipped items in a ``result`` list."""
        for item in result:
            if isinstance(item, dict) and item.get("status") == "skipped":
                for entry in item.get("reasons", ()):
                    self.record_reasons[str(entry.get("code"))] += 1

    def usage_day(self, day: str) -> dict[str, Any]:
        """One element of ``stats/usage.json``'s result."""
        users = self._calls_by_day.get(day, Counter())
        return {
            "date": day,
            "total": sum(users.values()),
            "users": [{"userId": user, "count": count} for user, count in sorted(users.items())],
        }

    def errors_day(self, day: str) -> dict[str, Any]:
        """One element of ``stats/errors.json``'s result."""
        codes = self._errors_by_day.get(day, Counter())
        return {
            "date": day,
            "total": sum(codes.values()),
            "errors": [
                {"errorCode": code, "count": count} for code, count in sorted(codes.items())
            ],
        }

    def snapshot(self, in_flight: int, calls_in_window: int, used_today: int) -> dict[str, Any]:
        """Everything, for ``GET /_emulator/usage``."""
        return {
            "requests": self.requests,
            "counted": self.counted,
            "identityCalls": self.identity_calls,
            "byEndpoint": dict(self.by_endpoint),
            "countedByEndpoint": dict(self.counted_by_endpoint),
            "errors": dict(self.errors),
            "recordReasons": dict(self.record_reasons),
            "faults": dict(self.faults),
            "maxConcurrency": self.max_concurrency,
            "maxCallsInWindow": self.max_calls_in_window,
            "inFlight": in_flight,
            "callsInWindow": calls_in_window,
            "usedToday": used_today,
        }
