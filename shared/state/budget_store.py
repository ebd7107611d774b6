"""Reading and conditionally replacing budget rows (see :mod:`shared.state.budgets`).

Every change is a REPLACE conditioned on the ETag of the row it was computed from (or a
create, for a budget never used): of two processes changing a budget at once, one wins and the
other re-reads, so no grant is ever computed from a state that is not the latest.

``operations`` counts every storage request made, so the cost of the coordination can be
measured (storage operations per 1,000 API calls).
"""

from __future__ import annotations

import threading

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.budget.rules import BudgetLimits, Ledger
from shared.errors import ConcurrencyConflict
from shared.state.budgets import ROW_KEY, BudgetRow, from_entity, row_from_entity, to_entity
from shared.state.tables import TableAccess, TableKind, replace_if_unchanged, storage_errors


class BudgetStore:
    """The budget rows of one table prefix."""

    def __init__(self, tables: TableAccess) -> None:
        self._tables = tables
        self._lock = threading.Lock()
        self.operations = 0
        """Storage requests made (reads and writes, failed ones included)."""

    def _count(self) -> None:
        with self._lock:
            self.operations += 1

    def read(self, key: str) -> tuple[Ledger, str | None]:
        """The budget's ledger and the row's ETag (``None``: no row yet, an empty ledger)."""
        client = self._tables.client(TableKind.BUDGETS)
        self._count()
        try:
            with storage_errors(f"reading budget {key}", expected=(ResourceNotFoundError,)):
                entity = client.get_entity(key, ROW_KEY)
        except ResourceNotFoundError:
            return Ledger(), None
        etag = entity.metadata.get("etag")
        return from_entity(entity), None if etag is None else str(etag)

    def list(self) -> list[BudgetRow]:
        """Every budget row (one per API identity: a handful)."""
        client = self._tables.client(TableKind.BUDGETS)
        self._count()
        with storage_errors("listing budgets"):
            return [row_from_entity(entity) for entity in client.list_entities()]

    def write(
        self,
        key: str,
        ledger: Ledger,
        etag: str | None,
        *,
        system: str = "",
        limits: BudgetLimits | None = None,
    ) -> str | None:
        """Store ``ledger`` if the row still has ``etag`` (``None``: if there is no row yet).
        ``system`` and ``limits`` are stored beside it for ``dmsync status``.

        Returns:
            The row's new ETag.

        Raises:
            ConcurrencyConflict: another process changed (or created) the row first.
        """
        client = self._tables.client(TableKind.BUDGETS)
        entity = to_entity(key, ledger, system=system, limits=limits)
        action = f"changing budget {key}"
        self._count()
        if etag is None:
            try:
                with storage_errors(action, expected=(ResourceExistsError,)):
                    metadata = client.create_entity(entity)
            except ResourceExistsError:
                raise ConcurrencyConflict(
                    f"{action}: another process created the row first", system="storage"
                ) from None
            created = metadata.get("etag")
            return None if created is None else str(created)
        return replace_if_unchanged(client, entity, etag, action)
