"""An in-memory budget row with the store's semantics (ETag-conditioned replace), failures on
demand and an operation count."""

from __future__ import annotations

import threading

from shared.budget.rules import BudgetLimits, Ledger
from shared.errors import ConcurrencyConflict, TransientServiceError


class MemoryLedgerStore:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[Ledger, str]] = {}
        self.version = 0
        self.operations = 0
        self.failing = False
        self._lock = threading.Lock()

    def read(self, key: str) -> tuple[Ledger, str | None]:
        with self._lock:
            self.operations += 1
            if self.failing:
                raise TransientServiceError("storage down", system="storage")
            row = self.rows.get(key)
            return (Ledger(), None) if row is None else row

    def write(
        self,
        key: str,
        ledger: Ledger,
        etag: str | None,
        *,
        system: str = "",
        limits: BudgetLimits | None = None,
    ) -> str | None:
        with self._lock:
            self.operations += 1
            if self.failing:
                raise TransientServiceError("storage down", system="storage")
            current = self.rows.get(key)
            if (current[1] if current else None) != etag:
                raise ConcurrencyConflict("changed", system="storage")
            self.version += 1
            self.rows[key] = (ledger, str(self.version))
            return str(self.version)
