"""Counts of Dataverse calls, so the sync and the benchmarks can report API usage."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CallCounters:
    """Running totals for one client.

    ``requests`` counts every HTTP request sent (first tries, retries and the retry after a
    token refresh alike): that is what Dataverse's 6,000-per-5-minutes limit counts.
    """

    requests: int = 0
    """HTTP requests sent."""
    retries: int = 0
    """Requests repeated after a throttle, a transient failure or a timeout."""
    throttles: int = 0
    """429 responses received."""
    auth_refreshes: int = 0
    """Tokens renewed because the service answered 401."""
    batch_operations: int = 0
    """Operations sent inside ``$batch`` requests."""

    def snapshot(self) -> dict[str, int]:
        """The totals as a plain dictionary (for logs and reports)."""
        return asdict(self)
