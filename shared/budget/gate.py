"""The quota gate: what the engine and the scheduler ask before they start work.

One question, answered from the shared budget row (so a 607 seen by any process stops them
all): when may calls resume, if they are stopped now?
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class QuotaGate(Protocol):
    """Anything that knows whether the API's daily quota stops work now."""

    async def quota_stop_until(self) -> datetime | None:
        """When calls resume if every process is stopped now; ``None`` while they may run."""
        ...


async def never_stopped() -> datetime | None:
    """The gate of an API without a daily quota (and of tests that need none)."""
    return None
