"""Which budget a holder draws on, where its row lives, and the holder's own names and errors."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.budget.rules import BudgetLimits, Ledger
from shared.errors import RetriableError


class LedgerStore(Protocol):
    """Where the rows live (:class:`shared.state.budget_store.BudgetStore`)."""

    def read(self, key: str) -> tuple[Ledger, str | None]: ...

    def write(
        self,
        key: str,
        ledger: Ledger,
        etag: str | None,
        *,
        system: str = "",
        limits: BudgetLimits | None = None,
    ) -> str | None: ...


@dataclass(frozen=True)
class BudgetSpec:
    """Which budget, its limits, and its quota day."""

    key: str
    system: str
    limits: BudgetLimits
    quota_day: Callable[[float], str] = lambda _: ""
    """The quota day a moment (epoch seconds) falls in."""
    day_end: Callable[[float], float | None] = lambda _: None
    """When the quota day containing a moment ends (``None``: no daily quota)."""


class BudgetLeaseLapsedError(RetriableError):
    """A call was cancelled: its process could not renew its lease on the shared budget."""


def holder_name() -> str:
    """A name no other process uses: host, process id and a random part."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
