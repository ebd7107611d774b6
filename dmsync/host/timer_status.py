"""Timer schedule status (``useMonitor``): the last and next occurrence of each timer function.

The real host keeps ``{Last, Next, LastUpdated}`` per function in the blob
``azure-webjobs-hosts/timers/<hostId>/<FunctionName>/status`` of ``AzureWebJobsStorage`` and, on
start, runs a function at once with ``IsPastDue=true`` when the recorded ``Next`` has passed
[reference §4]. This project has no blob client dependency, so the local host keeps the same
record in a **table** of ``AzureWebJobsStorage``: table ``dmsynchosttimers``, PartitionKey = host
id, RowKey = function name, properties ``Last``/``Next``/``LastUpdated`` (UTC datetimes;
``Last`` absent before the first run). Like the blob, it lives and dies with the storage
account, so a fresh Azurite starts with no timer history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

STATUS_TABLE = "dmsynchosttimers"
"""The table holding timer schedule status (one row per host id and timer function)."""

_NEVER = "0001-01-01T00:00:00"
"""How .NET serializes ``default(DateTime)``: ``Last`` before the first occurrence ran."""


@dataclass(frozen=True)
class ScheduleStatus:
    """A timer function's schedule status."""

    last: datetime | None
    """The occurrence that last ran (``None`` before the first)."""
    next: datetime
    """The occurrence expected next."""
    last_updated: datetime
    """When this record was written."""

    def as_timer_info(self) -> dict[str, str]:
        """The ``ScheduleStatus`` object of the timer info the worker receives."""
        return {
            "Last": self.last.isoformat() if self.last is not None else _NEVER,
            "Next": self.next.isoformat(),
            "LastUpdated": self.last_updated.isoformat(),
        }


class ScheduleStatusStore(Protocol):
    """Where schedule status persists between host runs."""

    async def read(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or ``None`` if the function has none yet."""
        ...

    async def write(self, function_name: str, status: ScheduleStatus) -> None:
        """Record ``status``."""
        ...


class MemoryScheduleStatusStore:
    """A store that lives as long as the object (tests; or a host without storage)."""

    def __init__(self, initial: dict[str, ScheduleStatus] | None = None) -> None:
        self.rows: dict[str, ScheduleStatus] = dict(initial or {})

    async def read(self, function_name: str) -> ScheduleStatus | None:
        """See :meth:`ScheduleStatusStore.read`."""
        return self.rows.get(function_name)

    async def write(self, function_name: str, status: ScheduleStatus) -> None:
        """See :meth:`ScheduleStatusStore.write`."""
        self.rows[function_name] = status


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class TableScheduleStatusStore:
    """Schedule status in table :data:`STATUS_TABLE` of ``AzureWebJobsStorage``."""

    def __init__(self, open_table: Callable[[], TableClient], host_id: str) -> None:
        """Create a store.

        Args:
            open_table: returns the table client; called on first use, so a host whose timers
                need no status never needs storage.
            host_id: the partition (see :func:`~dmsync.host.app_settings.default_host_id`).
        """
        self._open_table = open_table
        self._table_client: TableClient | None = None
        self._host_id = host_id

    async def _table(self) -> TableClient:
        if self._table_client is None:
            table = self._open_table()
            with contextlib.suppress(ResourceExistsError):
                await asyncio.to_thread(table.create_table)
            self._table_client = table
        return self._table_client

    async def read(self, function_name: str) -> ScheduleStatus | None:
        """See :meth:`ScheduleStatusStore.read`."""
        table = await self._table()
        try:
            row = await asyncio.to_thread(table.get_entity, self._host_id, function_name)
        except ResourceNotFoundError:
            return None
        next_occurrence = _utc(row.get("Next"))
        if next_occurrence is None:
            return None
        return ScheduleStatus(
            last=_utc(row.get("Last")),
            next=next_occurrence,
            last_updated=_utc(row.get("LastUpdated")) or next_occurrence,
        )

    async def write(self, function_name: str, status: ScheduleStatus) -> None:
        """See :meth:`ScheduleStatusStore.write`."""
        table = await self._table()
        entity: dict[str, Any] = {
            "PartitionKey": self._host_id,
            "RowKey": function_name,
            "Next": status.next,
            "LastUpdated": status.last_updated,
        }
        if status.last is not None:
            entity["Last"] = status.last
        await asyncio.to_thread(table.upsert_entity, entity, mode=UpdateMode.REPLACE)
