"""The seam between the job runner and a direction: what a pipeline is made of, vendor-neutral.

A direction (Dynamics → Marketo, Marketo → Dynamics) is a :class:`ChangeReader` on its source
side and a :class:`RecordWriter` on its target side, joined by a :class:`Pipeline` that turns
one page of changes into writes. Everything here speaks of *source ids* and *target ids*, never
of a vendor: which system is which is the direction's business (its package, ``d2m``/``m2d``).

The runner (:mod:`shared.sync.runner`) drives a pipeline one unit of work per job: a page of
changes (:meth:`Pipeline.run_page`) or a step of the delete sweep that follows a full read
(:meth:`Pipeline.run_sweep`). It owns leases, watermarks and continuations; the pipeline owns
reading, planning, writing, and storing what it learnt (mappings, sync errors) before it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.jobs import Direction
from shared.state.backfills import Backfill, BackfillCounts
from shared.state.streams import StreamId
from shared.state.watermarks import Watermark
from shared.sync.config import EntitySpec


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One changed (or fetched) record of the source side."""

    source_id: str
    """The record's id on the source side, normalised as the mapping keys it."""
    values: dict[str, Any]
    """Its fields as the source gave them (including its own key)."""
    version: str | None = None
    """The source's version stamp of this state of the record, if it has one."""


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """One read of changes: records, deletes, and where the next read starts."""

    records: list[SourceRecord]
    deleted_ids: list[str]
    cursor: str
    """Where the next read starts (the next page of this read, or the next incremental read)."""
    done: bool
    """This read is complete: ``cursor`` is the starting point of the next incremental read."""


class ChangeReader(Protocol):
    """The source side of a direction."""

    async def read(self, spec: EntitySpec, cursor: str | None, page_size: int) -> ChangeBatch:
        """One page of changes from ``cursor`` (``None``: a full read from the beginning).

        Raises:
            ResyncRequiredError: the cursor is no longer accepted; read everything again.
        """
        ...

    async def fetch(self, spec: EntitySpec, ids: Sequence[str]) -> list[SourceRecord]:
        """The current state of these records (those that no longer exist are absent)."""
        ...

    async def exists(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, bool]:
        """For the ids that still exist: whether the sync filter lets them sync."""
        ...

    async def count(self, spec: EntitySpec) -> int:
        """How many records a full read will see (for progress)."""
        ...


class WriteStatus(StrEnum):
    """The target's per-record outcome."""

    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result for one record of a write, in input order."""

    status: WriteStatus
    target_id: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        """The target took the write."""
        return self.status in (WriteStatus.CREATED, WriteStatus.UPDATED)


class WriteMode(StrEnum):
    """How a write finds its target records."""

    UPSERT_BY_KEY = "upsert_by_key"
    """Create or update, matched on the entity's key field (the source id)."""
    UPDATE_BY_ID = "update_by_id"
    """Update only, matched on the target id from the mapping."""
    UPDATE_BY_KEY = "update_by_key"
    """Update only, matched on the key field (never creates)."""


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One record to write: its fields and, for ``UPDATE_BY_ID``, the target id."""

    payload: Mapping[str, Any]
    target_id: str | None = None


class RecordWriter(Protocol):
    """The target side of a direction."""

    async def quota_stop_until(self) -> datetime | None:
        """When writes may resume, if the target's daily quota is used up now (seen by any
        process of the app: the shared budget, :mod:`shared.budget.gate`); else ``None``."""
        ...

    def is_missing(self, outcome: WriteOutcome) -> bool:
        """Whether ``outcome`` says the target record no longer exists."""
        ...

    async def write(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        """Write ``ops`` (any number; batched inside); outcomes in input order.

        ``done`` receives each outcome (by input position) as soon as its batch is answered, so
        that a call failing part-way still tells the caller what the earlier batches did.

        Raises:
            RetriableError / QuotaExhaustedError / FatalError: the call as a whole failed.
        """
        ...

    async def current(
        self, spec: EntitySpec, target_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The records' current values of ``fields``, keyed by target id (missing: absent)."""
        ...


class WriteGuard(Protocol):
    """Asked before every write: raises once the job has lost its stream (its lease)."""

    def check(self) -> None:
        """Raise :class:`~shared.errors.LeaseLostError` if the job must stop writing."""
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
        """Records the target accepted."""
        return self.created + self.updated + self.deleted

    @property
    def skipped(self) -> int:
        """Records that needed no write."""
        return self.unchanged + self.filtered + self.held + self.ignored

    def failure(self, code: str) -> None:
        """Count one failed record with its error code."""
        self.failed += 1
        self.error_codes[code] = self.error_codes.get(code, 0) + 1


@dataclass(frozen=True, slots=True)
class PageResult:
    """What a committed page tells the runner."""

    cursor: str
    done: bool
    """The read is complete (the cursor is a starting point for incremental reads)."""
    total_expected: int | None = None
    """On the first page of a full read: how many records the read will see."""
    fresh_copy: bool = False
    """The page belongs to a first copy into an empty mapping (see the pipeline)."""


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep step tells the runner."""

    position: str | None
    """Where the sweep goes on (``None``: it is over)."""
    gone: int = 0
    """Records found deleted at the source in this step."""


@dataclass(frozen=True, slots=True)
class BackfillPage:
    """What one back-fill step did, and where the next starts (``None``: done)."""

    position: str | None
    counts: BackfillCounts


class Pipeline(Protocol):
    """One direction, as the runner drives it."""

    direction: Direction

    async def writes_blocked_until(self) -> datetime | None:
        """When the target accepts writes again, if its quota is used up; else ``None``."""
        ...

    async def run_page(
        self, stream: StreamId, watermark: Watermark, guard: WriteGuard, counts: PageCounts
    ) -> PageResult:
        """Read one page from the watermark's cursor, write it, store mappings and errors.

        Raises:
            ResyncRequiredError: the cursor expired (the runner starts a full resync).
        """
        ...

    async def run_sweep(
        self, stream: StreamId, watermark: Watermark, guard: WriteGuard, counts: PageCounts
    ) -> SweepResult:
        """One bounded step of the check for records deleted during a full read."""
        ...

    async def run_backfill(
        self, stream: StreamId, backfill: Backfill, guard: WriteGuard
    ) -> BackfillPage:
        """One bounded step of a back-fill of one field (:mod:`shared.sync.backfill_jobs`)."""
        ...
