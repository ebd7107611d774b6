"""A concurrency cap for Dataverse calls, kept apart from retry (style anchors §5.5).

Dataverse refuses a user's 53rd concurrent request at once (0x80072326, reference §4); the cap
keeps this worker well below that. It bounds requests *in flight*: a retry waiting out a
``Retry-After`` does not hold a slot, so other work proceeds while the wait runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ConcurrencyLimiter:
    """At most ``limit`` holders at a time; records the highest number ever in flight."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the ``async with`` block."""
        async with self._semaphore:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
