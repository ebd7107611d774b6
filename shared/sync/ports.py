"""What the engine needs from each side, as narrow protocols.

The engine speaks only these; ``shared.sync.adapters`` implements them over the real Dataverse
and Marketo clients. Keeping the seam narrow keeps the engine readable and lets unit tests drive
it with small in-memory sides, while the integration tests run it against the emulators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.sync.config import EntitySpec


@dataclass(frozen=True, slots=True)
class SourcePage:
    """One page of a Dataverse change-tracking read."""

    rows: list[dict[str, Any]]
    deleted_ids: list[str]
    next_link: str | None
    """Where the next page of this read is (resume here)."""
    delta_link: str | None
    """Only on the last page: where the next incremental read starts."""


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """Who and where the Dynamics side is; a change means the environment was copied."""

    organization_id: str
    organization_name: str | None = None
    organization_created_on: str | None = None
    user_id: str | None = None


class Source(Protocol):
    """The Dynamics side."""

    async def read_page(self, spec: EntitySpec, link: str | None, page_size: int) -> SourcePage:
        """Read one page: from the start (``link`` None, change tracking on) or from a link.

        Raises:
            DeltaTokenExpiredError: the link's token is older than change tracking keeps.
        """
        ...

    async def fetch_rows(self, spec: EntitySpec, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The current rows for ``ids`` (missing ones are simply absent)."""
        ...

    async def filter_states(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, bool]:
        """For ids that exist in ``spec``'s table: whether the sync filter lets them sync."""
        ...

    async def count(self, spec: EntitySpec) -> int:
        """How many rows the table holds (for initial-sync progress)."""
        ...

    async def reference_table(
        self, table_name: str, entity_set: str, key: str, value: str
    ) -> dict[str, Any]:
        """A small table as ``{key: value}`` (e.g. connection role id → name)."""
        ...

    async def identity(self) -> SourceIdentity:
        """The organization and user this client talks to."""
        ...


class WriteStatus(StrEnum):
    """A Marketo per-record outcome."""

    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result for one record, in input order."""

    status: WriteStatus
    marketo_id: str | None = None
    code: str | None = None
    message: str | None = None


class WriteMode(StrEnum):
    """How a batch finds its Marketo records."""

    UPSERT_BY_KEY = "upsert_by_key"
    """Create or update, matched on the entity's key field (the Dynamics id)."""
    UPDATE_BY_ID = "update_by_id"
    """Update only, matched on the Marketo id from the mapping."""
    UPDATE_BY_KEY = "update_by_key"
    """Update only, matched on the key field (never creates; for delete marks)."""


class Target(Protocol):
    """The Marketo side."""

    async def quota_stop_until(self) -> datetime | None:
        """When writes may resume, if the daily quota is used up now (by any process of the
        app: read from the shared budget); else ``None``. See :mod:`shared.budget.gate`."""
        ...

    async def current_values(
        self, spec: EntitySpec, marketo_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The records' current values of ``fields``, keyed by Marketo id (missing: absent)."""
        ...

    async def write(
        self,
        spec: EntitySpec,
        records: Sequence[Mapping[str, Any]],
        mode: WriteMode,
        marketo_ids: Sequence[str] | None = None,
    ) -> list[WriteOutcome]:
        """Write records (any number; batched inside) and return outcomes in input order.

        ``marketo_ids`` (one per record) are required for ``UPDATE_BY_ID``.

        Raises:
            RetriableError / FatalError: for failures of the whole call (throttling, quota, auth).
        """
        ...


@dataclass(slots=True)
class PageCounts:
    """What one job did, for the watermark counters, status and telemetry."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    filtered: int = 0
    held: int = 0
    ignored: int = 0
    """Out of scope, kept out by the sync filter, or a delete of a record never synced."""
    failed: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        """Records Marketo accepted."""
        return self.created + self.updated + self.deleted
