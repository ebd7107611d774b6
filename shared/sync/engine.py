"""The job runner: advance one stream (instance, entity, direction) by one page.

One job, in order (design invariants 1-4):

1. take the stream's lease (one job per stream at a time; a dead worker's lease expires);
2. drop the job if its run is stale (a replayed message of a finished or superseded run);
3. in the initial phase, wait until the entities it depends on finished theirs (A.10 order);
4. read one page of changes from the cursor (start, paging link or delta link); an expired
   delta token resets the stream to a full resync;
5. add the records due for a retry (earlier sync errors, links still pending);
6. transform, plan and write to Marketo; record every per-record failure as a sync error;
7. store the ID mappings;
8. only then advance the watermark (ETag-checked), and enqueue the continuation if the read
   has more pages, or close the run.

A crash anywhere before 8 replays the same page: writes are keyed by the Dynamics id and the
mapping, so the replay finds what the first attempt wrote and creates nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, ParamSpec, Protocol, TypeVar

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ConcurrencyConflict, DeltaTokenExpiredError, FatalError
from shared.jobs import Direction, SyncJob
from shared.state.instances import InstanceStatus
from shared.state.leases import StreamLeaseHeldError
from shared.state.mappings import IdMapping, MappingUpdate, SyncFilter, normalize_dynamics_id
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import FailedRecord
from shared.state.watermarks import Phase, RunCounts, Watermark, start_run
from shared.sync.config import EntitySpec, SyncConfig
from shared.sync.links import build_link_index
from shared.sync.order import dependents_of
from shared.sync.plan import MappingView, Plan, plan_page
from shared.sync.ports import PageCounts, Source, Target, WriteMode, WriteOutcome, WriteStatus
from shared.sync.transform import Prepared, RowTransformer

log = logging.getLogger("dmsync.sync")

P = ParamSpec("P")
R = TypeVar("R")

SWEEP_CHUNK = 500
"""Mapped ids checked per sweep step (the client splits them into requests of 50)."""

MARKETO_NOT_FOUND_CODES = frozenset({"1004", "1013"})
"""Skip reasons meaning the Marketo record is gone (lead not found; object not found)."""


class JobQueue(Protocol):
    """Where follow-up jobs go (the ``sync-jobs`` queue)."""

    async def enqueue(self, job: SyncJob) -> None:
        """Send one job message."""
        ...


class JobOutcome(StrEnum):
    """What a job did, for logs and tests."""

    ADVANCED = "advanced"
    """A page was committed and the run continues."""
    CAUGHT_UP = "caught_up"
    """A page was committed and the run is over (delta link reached)."""
    RESYNC = "resync"
    """The delta token had expired; the stream restarts from the beginning."""
    WAITING = "waiting"
    """Initial phase, dependencies not done yet; their completion restarts this stream."""
    BUSY = "busy"
    """Another job holds the stream's lease."""
    STALE = "stale"
    """The job's run is over or superseded."""
    INACTIVE = "inactive"
    """The instance is paused or suspended, or the entity is no longer configured."""


@dataclass(frozen=True)
class EngineOptions:
    """Tuning; the defaults are the documented limits."""

    page_size: int = 5000
    """Dataverse's maximum page (reference §2)."""
    lease_duration: timedelta = timedelta(minutes=10)
    retry_batch: int = 500
    """Most earlier failures retried per job."""
    run_stale_after: timedelta = timedelta(minutes=15)
    """A run with no progress for this long is restarted by the scheduler."""


class SyncEngine:
    """Runs jobs for the Dynamics → Marketo direction."""

    def __init__(
        self,
        *,
        config: SyncConfig,
        store: StateStore,
        source: Source,
        target: Target,
        queue: JobQueue,
        clock: Clock = SYSTEM_CLOCK,
        options: EngineOptions | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.source = source
        self.target = target
        self.queue = queue
        self.clock = clock
        self.options = options or EngineOptions()
        self._transformers: dict[str, RowTransformer] = {}
        self._depends = {name: spec.depends_on for name, spec in config.entity.items()}

    # --- the job ---------------------------------------------------------------------------

    async def run_job(self, job: SyncJob) -> JobOutcome:
        """Advance ``job``'s stream by one page (see the module docstring)."""
        if job.direction is not Direction.DYNAMICS_TO_MARKETO:
            raise FatalError(
                f"job {job.job_id} asks for direction {job.direction.value}; "
                "this build syncs Dynamics → Marketo only"
            )
        stream = StreamId(job.instance_id, job.entity, job.direction)
        context = {"instance": job.instance_id, "entity": job.entity, "job": job.job_id}
        if job.entity not in self.config.entity:
            log.warning("entity %s is not in the mapping; job dropped", job.entity, extra=context)
            return JobOutcome.INACTIVE
        instance = await self._db(self.store.instances.get, job.instance_id)
        if instance is None or instance.status is not InstanceStatus.ACTIVE:
            log.info("instance %s is not active; job dropped", job.instance_id, extra=context)
            return JobOutcome.INACTIVE
        try:
            lease = await self._db(
                self.store.leases.acquire, stream, job.job_id, self.options.lease_duration
            )
        except StreamLeaseHeldError as busy:
            log.info("stream %s is busy (%s); job dropped", stream, busy, extra=context)
            return JobOutcome.BUSY
        try:
            return await self._run_locked(job, stream, context)
        finally:
            await self._db(self.store.leases.release, lease)

    async def _run_locked(
        self, job: SyncJob, stream: StreamId, context: dict[str, str]
    ) -> JobOutcome:
        watermark = await self._db(self.store.watermarks.get, stream)
        if job.sequence != watermark.sequence:
            log.info(
                "job for run %d is stale (stream at run %d)",
                job.sequence,
                watermark.sequence,
                extra=context,
            )
            return JobOutcome.STALE
        spec = self.config.entity[job.entity]
        if watermark.phase is Phase.INITIAL and not await self._dependencies_done(stream):
            log.info("waiting for %s to finish their initial sync", spec.depends_on, extra=context)
            await self._db(
                self.store.watermarks.finish_run,
                stream,
                sequence=watermark.sequence,
                status="waiting for " + ", ".join(spec.depends_on),
            )
            return JobOutcome.WAITING

        total: int | None = None
        if watermark.phase is Phase.INITIAL and watermark.cursor is None:
            total = await self.source.count(spec)
        try:
            page = await self.source.read_page(spec, watermark.cursor, self.options.page_size)
        except DeltaTokenExpiredError as expired:
            return await self._restart_after_expiry(job, stream, expired, context)

        retry_rows = await self._rows_due_for_retry(stream)
        counts = await self._process(stream, [*page.rows, *retry_rows], page.deleted_ids)
        counts.read = len(page.rows) + len(page.deleted_ids)

        if page.next_link is None and watermark.resync:
            counts.deleted += await self._sweep_after_resync(stream)

        cursor = page.next_link or page.delta_link
        if cursor is None:
            raise FatalError(
                f"Dataverse returned neither a next link nor a delta link for {spec.entity_set}: "
                "is change tracking enabled for this table?",
                system="dynamics",
            )
        finished_initial = page.next_link is None and watermark.phase is Phase.INITIAL
        committed = await self._db(
            self.store.watermarks.advance,
            stream,
            sequence=watermark.sequence,
            cursor=cursor,
            counts=RunCounts(
                read=counts.read,
                written=counts.written,
                skipped=counts.unchanged + counts.filtered + counts.held,
                failed=counts.failed,
            ),
            phase=Phase.INCREMENTAL if page.next_link is None else None,
            total_expected=total,
            status=_status_note(page.next_link is not None, watermark.phase),
            finish=page.next_link is None,
        )
        log.info(
            "page committed: read %d, created %d, updated %d, unchanged %d, deleted %d, "
            "filtered %d, held %d, failed %d",
            counts.read,
            counts.created,
            counts.updated,
            counts.unchanged,
            counts.deleted,
            counts.filtered,
            counts.held,
            counts.failed,
            extra=context,
        )
        if page.next_link is not None:
            await self.queue.enqueue(job.continuation(sequence=committed.sequence))
            return JobOutcome.ADVANCED
        if finished_initial:
            await self._kick_dependents(stream)
        return JobOutcome.CAUGHT_UP

    # --- processing one page ---------------------------------------------------------------

    async def _process(
        self, stream: StreamId, rows: list[dict[str, Any]], deleted_ids: Sequence[str]
    ) -> PageCounts:
        spec = self.config.entity[stream.entity]
        counts = PageCounts()
        index = await build_link_index(
            self.config,
            stream.entity,
            rows,
            lambda entity, ids: self._mapping_lookup(stream.instance_id, entity, ids),
            lambda entity, ids: self.source.filter_states(self.config.entity[entity], ids),
        )
        transformer = await self._transformer(stream.entity)
        resolve = index.resolver()
        prepared = [transformer.prepare(row, resolve) for row in rows]
        ids = [p.dynamics_id for p in prepared] + list(deleted_ids)
        stored = await self._db(
            self.store.mappings.get_many, stream.instance_id, stream.entity, ids
        )
        mappings = {key.lower(): value for key, value in stored.items()}
        views = {
            key: MappingView(
                marketo_id=m.marketo_id,
                digest=m.marketo_hash,
                deleted=m.deleted_in_dynamics,
                filtered_out=m.sync_filter is SyncFilter.NO,
            )
            for key, m in mappings.items()
        }
        lowered = [_lower_id(p) for p in prepared]
        plan = plan_page(lowered, [i.lower() for i in deleted_ids], views)
        versions = {str(row[spec.primary_key]).lower(): _version(row) for row in rows}
        await self._write(stream, plan, versions, counts)
        return counts

    async def _write(
        self,
        stream: StreamId,
        plan: Plan,
        versions: Mapping[str, str | None],
        counts: PageCounts,
    ) -> None:
        spec = self.config.entity[stream.entity]
        transformer = await self._transformer(stream.entity)
        by_id = spec.updates_by_marketo_id
        marketo_type = spec.object_name or spec.target.value

        creates = plan.create
        updates = plan.update
        marks = [
            (dynamics_id, marketo_id, transformer.deleted_payload(dynamics_id))
            for dynamics_id, marketo_id in plan.mark_deleted
        ]
        markable = [(d, m, p) for d, m, p in marks if p is not None]
        update_mode = WriteMode.UPDATE_BY_ID if by_id else WriteMode.UPSERT_BY_KEY
        delete_mode = WriteMode.UPDATE_BY_ID if by_id else WriteMode.UPDATE_BY_KEY

        create_out, update_out, delete_out = await asyncio.gather(
            self._send(spec, [p.payload for p in creates], WriteMode.UPSERT_BY_KEY),
            self._send(spec, [p.payload for p, _ in updates], update_mode, [m for _, m in updates]),
            self._send(spec, [p for _, _, p in markable], delete_mode, [m for _, m, _ in markable]),
        )

        new_mappings: list[IdMapping] = []
        changes: list[MappingUpdate] = []
        failures: list[FailedRecord] = []
        succeeded: list[str] = []
        pending: list[str] = []
        recreate: list[Prepared] = []

        def fail(op: str, dynamics_id: str, marketo_id: str | None, out: WriteOutcome) -> None:
            counts.failed += 1
            code = out.code or "unknown"
            counts.error_codes[code] = counts.error_codes.get(code, 0) + 1
            failures.append(
                FailedRecord(
                    stream=stream,
                    operation=op,
                    code=code,
                    message=out.message or "rejected by Marketo",
                    dynamics_id=dynamics_id,
                    marketo_id=marketo_id,
                )
            )

        def mapped(item: Prepared, out: WriteOutcome) -> None:
            assert out.marketo_id is not None
            new_mappings.append(
                IdMapping(
                    instance_id=stream.instance_id,
                    entity=stream.entity,
                    dynamics_id=item.dynamics_id,
                    marketo_type=marketo_type,
                    marketo_id=out.marketo_id,
                    dynamics_version=versions.get(item.dynamics_id),
                    marketo_hash=item.digest,
                    sync_filter=SyncFilter.YES,
                    marketo_written_at=self.clock.now(),
                )
            )
            succeeded.append(item.dynamics_id)
            if item.pending_links:
                pending.append(item.dynamics_id)

        for item, out in zip(creates, create_out, strict=True):
            if out.status in (WriteStatus.CREATED, WriteStatus.UPDATED) and out.marketo_id:
                counts.created += out.status is WriteStatus.CREATED
                counts.updated += out.status is WriteStatus.UPDATED
                mapped(item, out)
            else:
                fail("create", item.dynamics_id, None, out)

        for (item, marketo_id), out in zip(updates, update_out, strict=True):
            if out.status in (WriteStatus.CREATED, WriteStatus.UPDATED):
                counts.updated += 1
                changes.append(
                    MappingUpdate(
                        dynamics_id=item.dynamics_id,
                        dynamics_version=versions.get(item.dynamics_id),
                        marketo_hash=item.digest,
                        deleted_in_dynamics=False,
                        sync_filter=SyncFilter.YES,
                    )
                )
                succeeded.append(item.dynamics_id)
                if item.pending_links:
                    pending.append(item.dynamics_id)
            elif by_id and out.code in MARKETO_NOT_FOUND_CODES:
                # Deleted in Marketo, changed in Dynamics: a new record (reference A.5).
                recreate.append(item)
            else:
                fail("update", item.dynamics_id, marketo_id, out)

        if recreate:
            again = await self._send(spec, [p.payload for p in recreate], WriteMode.UPSERT_BY_KEY)
            for item, out in zip(recreate, again, strict=True):
                if out.status in (WriteStatus.CREATED, WriteStatus.UPDATED) and out.marketo_id:
                    counts.created += 1
                    mapped(item, out)
                else:
                    fail("create", item.dynamics_id, None, out)

        for (dynamics_id, marketo_id, _), out in zip(markable, delete_out, strict=True):
            gone = out.code in MARKETO_NOT_FOUND_CODES
            if out.status in (WriteStatus.CREATED, WriteStatus.UPDATED) or gone:
                counts.deleted += 1
                changes.append(MappingUpdate(dynamics_id=dynamics_id, deleted_in_dynamics=True))
                succeeded.append(dynamics_id)
            else:
                fail("mark-deleted", dynamics_id, marketo_id, out)
        for dynamics_id, _, payload in marks:
            if payload is None:  # nothing in Marketo can carry the mark: remember the delete
                counts.deleted += 1
                changes.append(MappingUpdate(dynamics_id=dynamics_id, deleted_in_dynamics=True))

        for dynamics_id in plan.filtered:
            counts.filtered += 1
            changes.append(MappingUpdate(dynamics_id=dynamics_id, sync_filter=SyncFilter.NO))
        counts.unchanged += len(plan.unchanged)
        counts.held += len(plan.held)

        await self._db(self.store.mappings.put_many, new_mappings)
        if changes:
            await self._db(
                self.store.mappings.update_many, stream.instance_id, stream.entity, changes
            )
        held_failures = [
            FailedRecord(
                stream=stream,
                operation="hold",
                code="DEPENDENCY_PENDING",
                message="waiting for " + ", ".join(item.pending_links) + " to reach Marketo",
                dynamics_id=item.dynamics_id,
            )
            for item in plan.held
        ]
        if failures:
            await self._db(self.store.errors.record_many, failures)
        await self._remember_pending(stream, pending, held_failures)
        still_pending = set(pending)
        resolved = [
            *(i for i in succeeded if i not in still_pending),
            *plan.unchanged,
            *plan.filtered,
        ]
        if resolved:
            # Only records with an open error row: resolving an id without one costs the store
            # a rejected transaction round trip each (a 404 per id), minutes for a first copy.
            open_ids = await self._db(self.store.errors.open_record_ids, stream)
            to_resolve = [i for i in resolved if normalize_dynamics_id(i) in open_ids]
            if to_resolve:
                await self._db(self.store.errors.resolve, stream, to_resolve)

    async def _send(
        self,
        spec: EntitySpec,
        records: list[dict[str, Any]],
        mode: WriteMode,
        marketo_ids: list[str] | None = None,
    ) -> list[WriteOutcome]:
        if not records:
            return []
        return await self.target.write(spec, records, mode, marketo_ids)

    # --- retries and pending links -----------------------------------------------------------

    async def _rows_due_for_retry(self, stream: StreamId) -> list[dict[str, Any]]:
        due = await self._db(self.store.errors.due_for_retry, stream, self.options.retry_batch)
        ids = [e.dynamics_id for e in due if e.dynamics_id]
        if not ids:
            return []
        rows = await self.source.fetch_rows(self.config.entity[stream.entity], ids)
        found = {str(r[self.config.entity[stream.entity].primary_key]).lower() for r in rows}
        vanished = [i for i in ids if i.lower() not in found]
        if vanished:  # deleted in Dynamics since: the delete itself arrives through the delta
            await self._db(self.store.errors.resolve, stream, vanished)
        return rows

    async def _remember_pending(
        self, stream: StreamId, link_pending: Sequence[str], held: Sequence[FailedRecord]
    ) -> None:
        """Records to look at again on a later run, without counting as failures.

        They go into the sync-error table under the code ``DEPENDENCY_PENDING`` (its retry
        schedule brings them back); operators see them apart from real errors.
        """
        pending = [
            FailedRecord(
                stream=stream,
                operation="link",
                code="DEPENDENCY_PENDING",
                message="a linked record had not reached Marketo yet; the link is re-sent",
                dynamics_id=dynamics_id,
            )
            for dynamics_id in link_pending
        ]
        if pending or held:
            await self._db(self.store.errors.record_many, [*pending, *held])

    # --- run bookkeeping ---------------------------------------------------------------------

    async def _restart_after_expiry(
        self,
        job: SyncJob,
        stream: StreamId,
        expired: DeltaTokenExpiredError,
        context: dict[str, str],
    ) -> JobOutcome:
        note = (
            "the Dynamics change-tracking token expired (code "
            f"{expired.code or '0x80044352'}); a full resync started"
        )
        log.warning("%s: %s", stream, note, extra=context)
        restarted = await self._db(self.store.watermarks.reset, stream, status=note)
        await self.queue.enqueue(job.continuation(sequence=restarted.sequence))
        return JobOutcome.RESYNC

    async def _sweep_after_resync(self, stream: StreamId) -> int:
        """Find records deleted while the delta token was stale (a full read cannot show them).

        Every mapped record not yet marked deleted is looked up in Dynamics (ids only, 50 to a
        request); the ones that are gone get the "deleted in Dynamics" mark. Runs once, at the
        end of a full resync, never on the first copy.
        """
        spec = self.config.entity[stream.entity]
        mappings = await self._db(
            self.store.mappings.list_entity, stream.instance_id, stream.entity
        )
        live = [m.dynamics_id for m in mappings if not m.deleted_in_dynamics]
        gone: list[str] = []
        for start in range(0, len(live), SWEEP_CHUNK):
            chunk = live[start : start + SWEEP_CHUNK]
            present = await self.source.filter_states(spec, chunk)
            gone.extend(i for i in chunk if i.lower() not in present)
        if not gone:
            return 0
        log.warning(
            "%s: %d records were deleted in Dynamics while the delta token was stale; "
            "marking them deleted in Marketo",
            stream,
            len(gone),
        )
        counts = await self._process(stream, [], gone)
        return counts.deleted

    async def _dependencies_done(self, stream: StreamId) -> bool:
        for dependency in self._depends.get(stream.entity, ()):
            mark = await self._db(
                self.store.watermarks.get,
                StreamId(stream.instance_id, dependency, stream.direction),
            )
            if mark.phase is not Phase.INCREMENTAL:
                return False
        return True

    async def _kick_dependents(self, stream: StreamId) -> None:
        for dependent in dependents_of(stream.entity, self._depends):
            target = StreamId(stream.instance_id, dependent, stream.direction)
            if not await self._dependencies_done(target):
                continue
            started = await self._start_unless_running(target)
            if started is None:
                continue
            await self.queue.enqueue(
                SyncJob(
                    instance_id=stream.instance_id,
                    entity=dependent,
                    direction=stream.direction,
                    sequence=started.sequence,
                )
            )

    async def _start_unless_running(self, stream: StreamId) -> Watermark | None:
        """Open a run of ``stream`` unless one is open; ``None`` if it was (or just got) one.

        Another dependency finishing, or the timer, may start the same stream at the same time.
        A second start would make the first run's job stale mid-page, while the second job is
        turned away by the lease the first still holds: the run would sit open, with no job,
        until the scheduler finds it stale. The save is conditioned on the ETag just read.
        """
        mark = await self._db(self.store.watermarks.get, stream)
        if mark.run_open:
            return None
        try:
            return await self._db(self.store.watermarks.save, start_run(mark, self.clock.now()))
        except ConcurrencyConflict:
            return None

    # --- helpers ---------------------------------------------------------------------------

    async def _mapping_lookup(
        self, instance_id: str, entity: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, bool]]:
        found = await self._db(self.store.mappings.get_many, instance_id, entity, ids)
        return {k: (m.marketo_id, not m.deleted_in_dynamics) for k, m in found.items()}

    async def _transformer(self, entity: str) -> RowTransformer:
        transformer = self._transformers.get(entity)
        if transformer is None:
            spec = self.config.entity[entity]
            tables = {
                lookup.entity_set: await self.source.reference_table(
                    lookup.table, lookup.entity_set, lookup.key, lookup.field
                )
                for lookup in spec.lookups.values()
            }
            transformer = RowTransformer(self.config, entity, tables)
            self._transformers[entity] = transformer
        return transformer

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a (blocking) state-store call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def _lower_id(item: Prepared) -> Prepared:
    item.dynamics_id = item.dynamics_id.lower()
    return item


def _version(row: Mapping[str, Any]) -> str | None:
    value = row.get("versionnumber") or row.get("@odata.etag")
    return str(value) if value is not None else None


def _marketo_int(marketo_id: str) -> int | str:
    return int(marketo_id) if marketo_id.isdigit() else marketo_id


def _status_note(more: bool, phase: Phase) -> str:
    if phase is Phase.INITIAL:
        return "initial sync in progress" if more else "initial sync complete"
    return "catching up" if more else "up to date"
