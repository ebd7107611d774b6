"""Dynamics → Marketo as a pipeline: Dataverse change tracking in, Marketo writes out.

A page job reads one page from the stream's cursor (a full read first, then deltas), adds the
records due for another try (earlier sync errors, links still pending), and writes it all
(:mod:`shared.sync.d2m.records`). A sweep step checks a chunk of mapped records against
Dynamics after a full read and marks those that are gone.
"""

from __future__ import annotations

from datetime import datetime

from shared.clock import SYSTEM_CLOCK, Clock
from shared.jobs import Direction
from shared.state.backfills import Backfill
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark
from shared.sync.blocking import blocking
from shared.sync.config import SyncConfig
from shared.sync.d2m.backfill import FieldBackfill
from shared.sync.d2m.reader import DataverseChangeReader
from shared.sync.d2m.records import RecordWrites
from shared.sync.d2m.transformers import TransformerCache
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.id_sets import GuidSet
from shared.sync.pipeline import (
    BackfillPage,
    PageCounts,
    PageResult,
    SourceRecord,
    SweepResult,
    WriteGuard,
)
from shared.sync.runs import SyncOptions

SWEEP_CHUNK = 5000
"""Mapped ids checked per sweep job (five pages of the mapping table)."""
LIVE_IDS_TTL = 600.0
"""Seconds a sweep's set of live ids is reused by its later steps in this process."""


class DynamicsToMarketo:
    """The Dynamics → Marketo direction (a :class:`~shared.sync.pipeline.Pipeline`)."""

    direction = Direction.DYNAMICS_TO_MARKETO

    def __init__(
        self,
        *,
        config: SyncConfig,
        store: StateStore,
        reader: DataverseChangeReader,
        writer: MarketoRecordWriter,
        clock: Clock = SYSTEM_CLOCK,
        options: SyncOptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.options = options or SyncOptions()
        self.transformers = TransformerCache(config, reader, clock)
        self.records = RecordWrites(config, store, reader, writer, self.transformers, clock)
        self.backfill = FieldBackfill(config, store, reader, writer)
        self._live: dict[tuple[StreamId, int], tuple[float, GuidSet]] = {}

    async def writes_blocked_until(self) -> datetime | None:
        return await self.writer.quota_stop_until()

    async def run_backfill(
        self, stream: StreamId, backfill: Backfill, guard: WriteGuard
    ) -> BackfillPage:
        return await self.backfill.step(stream, backfill, guard)

    async def run_page(
        self, stream: StreamId, watermark: Watermark, guard: WriteGuard, counts: PageCounts
    ) -> PageResult:
        spec = self.config.entity[stream.entity]
        batch = await self.reader.read(spec, watermark.cursor, self.options.page_size)
        total: int | None = None
        if watermark.phase is Phase.INITIAL and watermark.cursor is None:
            # A table that fits in its first page has been counted by reading it; a larger one
            # costs a count for the progress shown in `dmsync status`.
            total = len(batch.records) if batch.done else await self.reader.count(spec)
        fresh = await self._fresh_copy(stream, watermark)
        unmapped = {r.source_id for r in batch.records} if fresh else set()
        retry, vanished = await self._due_for_retry(stream)
        page_ids = {r.source_id for r in batch.records}
        lost, carried = await self._unconfirmed_creates(stream, watermark, page_ids)

        async def note(ids: tuple[str, ...]) -> None:
            await blocking(
                self.store.watermarks.set_creating,
                stream,
                sequence=watermark.sequence,
                step=watermark.step,
                ids=tuple(dict.fromkeys((*ids, *carried))),
            )

        if carried:
            await note(())
        await self.records.sync(
            stream,
            [*batch.records, *retry],
            [*batch.deleted_ids, *vanished, *lost],
            counts,
            guard,
            unmapped=unmapped,
            before_creates=note,
        )
        counts.read = len(batch.records) + len(batch.deleted_ids)
        return PageResult(batch.cursor, batch.done, total_expected=total, fresh_copy=fresh)

    async def run_sweep(
        self, stream: StreamId, watermark: Watermark, guard: WriteGuard, counts: PageCounts
    ) -> SweepResult:
        """A full read cannot show a record deleted while it ran (which moment a paged read's
        delta link stands for is undocumented; a replayed first page starts a new read), so
        after it the mapped records are compared with the ids the table holds now: one read of
        the key alone, 5,000 ids a request, kept for the sweep's later steps. Each step checks
        :data:`SWEEP_CHUNK` mappings and marks those gone; the position is kept in the
        watermark, so a crash resumes the sweep rather than restarting it."""
        assert watermark.sweep is not None
        mapped, position = await blocking(
            self.store.mappings.list_sweep_page,
            stream.instance_id,
            stream.entity,
            watermark.sweep,
            SWEEP_CHUNK,
        )
        live = [dynamics_id for dynamics_id, deleted in mapped if not deleted]
        gone: list[str] = []
        if live:
            present = await self._live_ids(stream, watermark.sequence)
            gone = [i for i in live if i not in present]
        if gone:
            await self.records.sync(stream, [], gone, counts, guard)
        return SweepResult(position, gone=len(gone))

    async def _live_ids(self, stream: StreamId, sequence: int) -> GuidSet:
        """The table's ids, read once per sweep (per process); the snapshot is taken after the
        read's delta link, so a delete after it comes with the next delta instead."""
        key = (stream, sequence)
        now = self.clock.monotonic()
        cached = self._live.get(key)
        if cached is not None and now - cached[0] < LIVE_IDS_TTL:
            return cached[1]
        ids = await self.reader.live_ids(self.config.entity[stream.entity])
        self._live = {k: v for k, v in self._live.items() if now - v[0] < LIVE_IDS_TTL}
        self._live[key] = (now, ids)
        return ids

    async def _unconfirmed_creates(
        self, stream: StreamId, watermark: Watermark, page_ids: set[str]
    ) -> tuple[list[str], tuple[str, ...]]:
        """The records a page was creating when its job died (the watermark says which): those
        now gone from Dynamics may still have reached Marketo with no mapping stored, so they
        are marked deleted by their key; those still there and not in this page are carried in
        the note until a page creates them (a replayed first page reads a new snapshot)."""
        if not watermark.creating:
            return [], ()
        spec = self.config.entity[stream.entity]
        stored = await blocking(
            self.store.mappings.get_many, stream.instance_id, stream.entity, watermark.creating
        )
        unmapped = [i for i in watermark.creating if i not in stored]
        present = await self.reader.exists(spec, unmapped) if unmapped else {}
        lost = [i for i in unmapped if i not in present]
        carried = tuple(i for i in unmapped if i in present and i not in page_ids)
        return lost, carried

    async def _due_for_retry(self, stream: StreamId) -> tuple[list[SourceRecord], list[str]]:
        """The records due for another try, and the due ids gone from Dynamics.

        A due record that no longer exists in Dynamics was deleted: it is handled as a delete
        (its mark may be what failed before, or its mapping was never stored).
        """
        due = await blocking(self.store.errors.due_for_retry, stream, self.options.retry_batch)
        ids = [e.dynamics_id.lower() for e in due if e.dynamics_id]
        if not ids:
            return [], []
        records = await self.reader.fetch(self.config.entity[stream.entity], ids)
        found = {r.source_id for r in records}
        return records, [i for i in ids if i not in found]

    async def _fresh_copy(self, stream: StreamId, watermark: Watermark) -> bool:
        """Whether this page belongs to the entity's first copy into an empty ID mapping.

        Then no record of the page can have a mapping, and reading them (a query per 14 ids)
        is skipped. Decided on the run's first page, when the entity has no mapping at all, and
        carried in the watermark for the run's later pages. A replayed first page sees what its
        first attempt wrote and reads as usual; a replayed later page still skips the read and
        is still safe: its records go as creates, which upsert by the Dynamics key
        (``externalPersonId`` etc.), so Marketo finds what the first attempt wrote instead of
        creating it twice (the replay costs the writes the digest check would have saved).

        Only entities written with such a key (``key_field``) qualify. Opportunity roles have
        none: Marketo finds a role by opportunity, person and role, which can change between
        a page's attempts, so a replay that did not read the mapping could create a second
        role; their pages always read it.
        """
        if watermark.phase is not Phase.INITIAL or watermark.resync:
            return False
        if self.config.entity[stream.entity].key_field is None:
            return False
        if watermark.cursor is not None:
            return watermark.fresh_copy
        return not await blocking(self.store.mappings.has_any, stream.instance_id, stream.entity)
