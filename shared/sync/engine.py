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
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import (
    ConcurrencyConflict,
    DeltaTokenExpiredError,
    DmsyncError,
    FatalError,
    QuotaExhaustedError,
    RetriableError,
)
from shared.jobs import Direction, SyncJob
from shared.state.instances import InstanceStatus
from shared.state.leases import Lease, StreamLeaseHeldError
from shared.state.mappings import IdMapping, MappingUpdate, SyncFilter, normalize_dynamics_id
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import PENDING_CODE, FailedRecord
from shared.state.watermarks import Phase, RunCounts, Watermark, start_run
from shared.sync.blocking import blocking
from shared.sync.config import EntitySpec, SyncConfig
from shared.sync.links import build_link_index
from shared.sync.order import dependents_of
from shared.sync.plan import MappingView, Plan, plan_page
from shared.sync.ports import PageCounts, Source, Target, WriteMode, WriteOutcome, WriteStatus
from shared.sync.transform import Prepared, RowTransformer
from shared.sync.values import changed_since, fingerprints, holds_written
from shared.telemetry.metrics import SyncTelemetry
from shared.telemetry.names import JobOutcome as TelemetryJobOutcome
from shared.telemetry.names import RecordOutcome

log = logging.getLogger("dmsync.sync")


SWEEP_CHUNK = 1000
"""Mapped ids checked per sweep job (the client asks Dynamics 100 ids to a request)."""

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
    QUOTA = "quota"
    """Marketo's daily quota (or this integration's budget) is used up; the run resumes after
    the reset, replaying the page it had not committed."""


@dataclass(frozen=True)
class EngineOptions:
    """Tuning; the defaults are the documented limits."""

    page_size: int = 5000
    """Dataverse's maximum page (reference §2)."""
    lease_duration: timedelta = timedelta(minutes=3)
    """Renewed every third of itself while a job runs, so it only lapses when the worker dies;
    shorter than the queue message's own lease (10 min), so a killed worker's stream is free
    again before its message reappears."""
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
        telemetry: SyncTelemetry | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.source = source
        self.target = target
        self.queue = queue
        self.clock = clock
        self.options = options or EngineOptions()
        self.telemetry = telemetry or SyncTelemetry()
        self._transformers: dict[str, RowTransformer] = {}
        self._depends = {name: spec.depends_on for name, spec in config.entity.items()}

    # --- the job ---------------------------------------------------------------------------

    async def run_job(self, job: SyncJob) -> JobOutcome:
        """Advance ``job``'s stream by one page (see the module docstring).

        Emits the job's duration and outcome, and its records read, written, skipped and
        failed (per error code), as metrics; failures propagate after being counted.
        """
        started = time.monotonic()
        counts = PageCounts()
        try:
            outcome = await self._run(job, counts)
        except Exception as failure:
            kind = (
                TelemetryJobOutcome.RETRY
                if isinstance(failure, RetriableError)
                else (TelemetryJobOutcome.FAILED)
            )
            self._emit(job, counts, kind, time.monotonic() - started)
            raise
        kind = (
            TelemetryJobOutcome.CONTINUED
            if outcome in (JobOutcome.ADVANCED, JobOutcome.RESYNC)
            else TelemetryJobOutcome.COMPLETED
        )
        self._emit(job, counts, kind, time.monotonic() - started)
        return outcome

    def _emit(
        self, job: SyncJob, counts: PageCounts, outcome: TelemetryJobOutcome, seconds: float
    ) -> None:
        stream = (job.instance_id, job.entity, job.direction)
        metric = self.telemetry
        metric.records(*stream, RecordOutcome.READ, counts.read)
        metric.records(*stream, RecordOutcome.WRITTEN, counts.written)
        skipped = counts.unchanged + counts.filtered + counts.held + counts.ignored
        metric.records(*stream, RecordOutcome.SKIPPED, skipped)
        for code, n in counts.error_codes.items():
            metric.records(*stream, RecordOutcome.FAILED, n, code=code)
        metric.job(*stream, outcome, seconds)

    async def _run(self, job: SyncJob, counts: PageCounts) -> JobOutcome:
        if job.direction is not Direction.DYNAMICS_TO_MARKETO:
            raise FatalError(
                f"job {job.job_id} asks for direction {job.direction.value}; "
                "this build syncs Dynamics → Marketo only"
            )
        stream = StreamId(job.instance_id, job.entity, job.direction)
        # The same structured fields as shared.telemetry's job_logger, on every record of the job.
        context = {
            "instance": job.instance_id,
            "entity": job.entity,
            "direction": job.direction.value,
            "job_id": job.job_id,
        }
        if job.entity not in self.config.entity:
            log.warning("entity %s is not in the mapping; job dropped", job.entity, extra=context)
            return JobOutcome.INACTIVE
        instance = await blocking(self.store.instances.get, job.instance_id)
        if instance is None or instance.status is not InstanceStatus.ACTIVE:
            log.info("instance %s is not active; job dropped", job.instance_id, extra=context)
            return JobOutcome.INACTIVE
        try:
            lease = await blocking(
                self.store.leases.acquire, stream, job.job_id, self.options.lease_duration
            )
        except StreamLeaseHeldError as busy:
            log.info("stream %s is busy (%s); job dropped", stream, busy, extra=context)
            return JobOutcome.BUSY
        holder = _LeaseHolder(lease)
        followups: list[SyncJob] = []
        renewal = asyncio.create_task(self._keep_renewed(holder, context))
        try:
            outcome = await self._run_locked(job, stream, context, counts, followups)
        finally:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
            if not holder.lost:
                with contextlib.suppress(DmsyncError):  # an unreleased lease just expires
                    await blocking(self.store.leases.release, holder.lease)
        # Only now, with the lease released, can the follow-up jobs find the stream free.
        for followup in followups:
            await self.queue.enqueue(followup)
        return outcome

    async def _keep_renewed(self, holder: _LeaseHolder, context: dict[str, str]) -> None:
        """Renew the stream lease every third of its length while the job runs."""
        interval = self.options.lease_duration.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)  # real time: the lease guards against real deaths
            try:
                holder.lease = await blocking(self.store.leases.renew, holder.lease)
            except ConcurrencyConflict:
                holder.lost = True
                log.warning("the stream lease was lost; the watermark commit will tell",
                            extra=context)  # fmt: skip
                return
            except DmsyncError as failure:  # storage hiccup: try again before the lease lapses
                log.warning("renewing the stream lease failed (%s); retrying", failure,
                            extra=context)  # fmt: skip

    async def _run_locked(
        self,
        job: SyncJob,
        stream: StreamId,
        context: dict[str, str],
        counts: PageCounts,
        followups: list[SyncJob],
    ) -> JobOutcome:
        watermark = await blocking(self.store.watermarks.get, stream)
        if (job.sequence, job.step) != (watermark.sequence, watermark.step):
            log.info(
                "job for run %d step %d is stale (stream at run %d step %d)",
                job.sequence,
                job.step,
                watermark.sequence,
                watermark.step,
                extra=context,
            )
            return JobOutcome.STALE
        spec = self.config.entity[job.entity]
        if watermark.phase is Phase.INITIAL and not await self._dependencies_done(stream):
            log.info("waiting for %s to finish their initial sync", spec.depends_on, extra=context)
            await blocking(
                self.store.watermarks.finish_run,
                stream,
                sequence=watermark.sequence,
                status="waiting for " + ", ".join(spec.depends_on),
            )
            return JobOutcome.WAITING

        blocked = await self.target.quota_stop_until()
        if blocked is not None:
            return await self._stop_for_quota(stream, watermark, blocked, context)
        try:
            if watermark.sweep is not None:
                return await self._sweep_step(job, stream, watermark, counts, followups)
            return await self._advance(job, stream, watermark, context, counts, followups)
        except QuotaExhaustedError as quota:
            resets = quota.resets_at or self.clock.now()
            return await self._stop_for_quota(stream, watermark, resets, context)
        except DmsyncError as failure:
            # Leave the reason where operators look (status), then let the queue retry it.
            with contextlib.suppress(DmsyncError):
                await blocking(
                    self.store.watermarks.record_failure,
                    stream,
                    sequence=watermark.sequence,
                    error=str(failure),
                )
            raise

    async def _stop_for_quota(
        self,
        stream: StreamId,
        watermark: Watermark,
        resets_at: datetime,
        context: dict[str, str],
    ) -> JobOutcome:
        when = resets_at.strftime("%Y-%m-%d %H:%M UTC")
        note = (
            f"Marketo's daily API quota is used up; nothing is written until {when}, "
            "then the run resumes where it stopped"
        )
        log.warning("%s: %s", stream, note, extra=context)
        with contextlib.suppress(DmsyncError):
            await blocking(
                self.store.watermarks.finish_run, stream, sequence=watermark.sequence, status=note
            )
        return JobOutcome.QUOTA

    async def _advance(
        self,
        job: SyncJob,
        stream: StreamId,
        watermark: Watermark,
        context: dict[str, str],
        counts: PageCounts,
        followups: list[SyncJob],
    ) -> JobOutcome:
        spec = self.config.entity[job.entity]
        try:
            page = await self.source.read_page(spec, watermark.cursor, self.options.page_size)
        except DeltaTokenExpiredError as expired:
            return await self._restart_after_expiry(job, stream, expired, context, followups)
        total: int | None = None
        if watermark.phase is Phase.INITIAL and watermark.cursor is None:
            # A table that fits in its first page has been counted by reading it; a larger one
            # costs a count for the progress shown in `dmsync status`.
            total = len(page.rows) if page.next_link is None else await self.source.count(spec)

        fresh = await self._fresh_copy(stream, watermark)
        unmapped = {str(row[spec.primary_key]).lower() for row in page.rows} if fresh else set()
        retry_rows, vanished = await self._rows_due_for_retry(stream)
        deleted = [*page.deleted_ids, *vanished]
        await self._process(stream, [*page.rows, *retry_rows], deleted, counts, unmapped=unmapped)
        counts.read = len(page.rows) + len(page.deleted_ids)

        cursor = page.next_link or page.delta_link
        if cursor is None:
            raise FatalError(
                f"Dataverse returned neither a next link nor a delta link for {spec.entity_set}: "
                "is change tracking enabled for this table?",
                system="dynamics",
            )
        finished_initial = page.next_link is None and watermark.phase is Phase.INITIAL
        committed = await blocking(
            self.store.watermarks.advance,
            stream,
            sequence=watermark.sequence,
            cursor=cursor,
            counts=RunCounts(
                read=counts.read,
                written=counts.written,
                skipped=counts.unchanged + counts.filtered + counts.held + counts.ignored,
                failed=counts.failed,
            ),
            phase=Phase.INCREMENTAL if page.next_link is None else None,
            total_expected=total,
            status=_status_note(page.next_link is not None, watermark),
            finish=page.next_link is None and not watermark.resync,
            fresh_copy=fresh,
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
        if committed.phase is Phase.INITIAL or finished_initial:
            done, expected = committed.progress
            self.telemetry.initial_progress(
                stream.instance_id, stream.entity, done, max(expected or 0, done)
            )
        if page.next_link is not None:
            followups.append(job.continuation(committed.sequence, committed.step))
            return JobOutcome.ADVANCED
        if watermark.resync:  # the full read is done: look for deletes it could not show
            sweeping = await blocking(
                self.store.watermarks.set_sweep,
                stream,
                sequence=committed.sequence,
                sweep="",
                status="full resync read; checking for records deleted meanwhile",
            )
            followups.append(job.continuation(sweeping.sequence, sweeping.step))
            return JobOutcome.ADVANCED
        if finished_initial:
            followups.extend(await self._start_dependents(stream))
        return JobOutcome.CAUGHT_UP

    # --- processing one page ---------------------------------------------------------------

    async def _process(
        self,
        stream: StreamId,
        rows: list[dict[str, Any]],
        deleted_ids: Sequence[str],
        counts: PageCounts,
        *,
        unmapped: Set[str] = frozenset(),
    ) -> PageCounts:
        """Transform, plan and write ``rows`` and ``deleted_ids``. ``unmapped`` names ids known
        to have no ID mapping: their mapping read is skipped (see :meth:`_fresh_copy`)."""
        spec = self.config.entity[stream.entity]
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
        ids = [p.dynamics_id for p in prepared if p.dynamics_id.lower() not in unmapped]
        ids += deleted_ids
        stored = await blocking(
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
        await self._write(stream, plan, versions, counts, mappings)
        return counts

    async def _write(
        self,
        stream: StreamId,
        plan: Plan,
        versions: Mapping[str, str | None],
        counts: PageCounts,
        mappings: Mapping[str, IdMapping],
    ) -> None:
        spec = self.config.entity[stream.entity]
        transformer = await self._transformer(stream.entity)
        by_id = spec.updates_by_marketo_id
        marketo_type = spec.object_name or spec.target.value

        creates = plan.create
        partials = await self._changed_fields(spec, plan.update, mappings)
        updates = [(item, marketo_id) for item, marketo_id, payload, _ in partials if payload]
        quiet = [(item, hashes) for item, _, payload, hashes in partials if not payload]
        marks = [
            (dynamics_id, marketo_id, transformer.deleted_payload(dynamics_id))
            for dynamics_id, marketo_id in plan.mark_deleted
        ]
        markable = [(d, m, p) for d, m, p in marks if p is not None]
        update_mode = WriteMode.UPDATE_BY_ID if by_id else WriteMode.UPSERT_BY_KEY
        delete_mode = WriteMode.UPDATE_BY_ID if by_id else WriteMode.UPDATE_BY_KEY

        # One group after another: if a call fails for good, no sibling write is left running
        # while the job's message comes back for a retry (close-timed upserts of one key can
        # create duplicates in Marketo, reference B.4).
        create_out = await self._send(spec, [p.payload for p in creates], WriteMode.UPSERT_BY_KEY)
        update_out = await self._send(
            spec,
            [payload for _, _, payload, _ in partials if payload],
            update_mode,
            [m for _, m in updates],
        )
        new_hashes = {item.dynamics_id: hashes for item, _, _, hashes in partials}
        delete_out = await self._send(
            spec, [p for _, _, p in markable], delete_mode, [m for _, m, _ in markable]
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
                    marketo_fields=fingerprints(item.payload),
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
                        marketo_fields=new_hashes[item.dynamics_id],
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

        for item, hashes in quiet:  # every changed field was Marketo's to keep: no call
            counts.unchanged += 1
            changes.append(
                MappingUpdate(
                    dynamics_id=item.dynamics_id,
                    dynamics_version=versions.get(item.dynamics_id),
                    marketo_hash=item.digest,
                    sync_filter=SyncFilter.YES,
                    marketo_fields=hashes,
                )
            )
            succeeded.append(item.dynamics_id)
            if item.pending_links:
                pending.append(item.dynamics_id)

        for dynamics_id in plan.filtered:
            counts.filtered += 1
            changes.append(MappingUpdate(dynamics_id=dynamics_id, sync_filter=SyncFilter.NO))
        counts.unchanged += len(plan.unchanged)
        counts.held += len(plan.held)
        counts.ignored += len(plan.ignored)

        await blocking(self.store.mappings.put_many, new_mappings)
        if changes:
            await blocking(
                self.store.mappings.update_many, stream.instance_id, stream.entity, changes
            )
        held_failures = [
            FailedRecord(
                stream=stream,
                operation="hold",
                code=PENDING_CODE,
                message="waiting for " + ", ".join(item.pending_links) + " to reach Marketo",
                dynamics_id=item.dynamics_id,
            )
            for item in plan.held
        ]
        if failures:
            await blocking(self.store.errors.record_many, failures)
        # An unchanged record whose link is still missing keeps waiting (its payload is the
        # same as last time precisely because the link is still left out).
        pending.extend(p.dynamics_id for p in plan.unchanged if p.pending_links)
        await self._remember_pending(stream, pending, held_failures)
        still_pending = set(pending)
        resolved = [
            i
            for i in (
                *succeeded,
                *(p.dynamics_id for p in plan.unchanged),
                *plan.filtered,
                *plan.ignored,
            )
            if i not in still_pending
        ]
        if resolved:
            # Only records with an open error row: resolving an id without one costs the store
            # a rejected transaction round trip each (a 404 per id), minutes for a first copy.
            open_ids = await blocking(self.store.errors.open_record_ids, stream)
            to_resolve = [i for i in resolved if normalize_dynamics_id(i) in open_ids]
            if to_resolve:
                await blocking(self.store.errors.resolve, stream, to_resolve)

    async def _changed_fields(
        self,
        spec: EntitySpec,
        updates: Sequence[tuple[Prepared, str]],
        mappings: Mapping[str, IdMapping],
    ) -> list[tuple[Prepared, str, dict[str, Any], dict[str, str]]]:
        """Per update: the fields to send and the per-field hashes to store after it.

        Only fields whose Dynamics value changed since the last write are sent (plus the key),
        so a field edited in Marketo alone survives. Where Marketo wins conflicts (leads), a
        changed field that Marketo also changed since our last write is left as Marketo has it;
        that costs one read per 300 leads. A record without per-field memory (or marked deleted
        or filtered out before) is sent whole.
        """
        planned: list[tuple[Prepared, str, dict[str, Any], dict[str, str]]] = []
        contested: dict[str, set[str]] = {}
        for item, marketo_id in updates:
            known = mappings.get(item.dynamics_id)
            now_hashes = fingerprints(item.payload)
            written = known.marketo_fields if known is not None else None
            if (
                written is None
                or known is None
                or known.deleted_in_dynamics
                or (known.sync_filter is SyncFilter.NO)
            ):
                planned.append((item, marketo_id, dict(item.payload), now_hashes))
                continue
            changed = {
                name: value
                for name, value in item.payload.items()
                if changed_since(written.get(name), value)
            }
            hashes = {**written, **{name: now_hashes[name] for name in changed}}
            planned.append((item, marketo_id, changed, hashes))
            if spec.conflicts == "marketo_wins" and changed:
                contested[marketo_id] = set(changed)
        if contested:
            fields = sorted(set().union(*contested.values()))
            current = await self.target.current_values(spec, list(contested), fields)
            for item, marketo_id, changed, hashes in planned:
                now = current.get(marketo_id)
                known = mappings[item.dynamics_id]
                if now is None or marketo_id not in contested or known.marketo_fields is None:
                    continue
                for name in list(changed):
                    before = known.marketo_fields.get(name)
                    if not holds_written(before, now.get(name)):
                        del changed[name]  # Marketo changed it too: Marketo wins
                        if before is not None:
                            hashes[name] = before
        result = []
        for item, marketo_id, changed, hashes in planned:
            if changed and spec.key_field:
                changed = {spec.key_field: item.dynamics_id, **changed}
            result.append((item, marketo_id, changed, hashes))
        return result

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

    async def _rows_due_for_retry(self, stream: StreamId) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows of the records due for another try, and the due ids gone from Dynamics.

        A due record that no longer exists in Dynamics was deleted: it is handled as a delete
        (its mark may be what failed before); one never synced is simply resolved by it.
        """
        due = await blocking(self.store.errors.due_for_retry, stream, self.options.retry_batch)
        ids = [e.dynamics_id for e in due if e.dynamics_id]
        if not ids:
            return [], []
        rows = await self.source.fetch_rows(self.config.entity[stream.entity], ids)
        found = {str(r[self.config.entity[stream.entity].primary_key]).lower() for r in rows}
        vanished = [i.lower() for i in ids if i.lower() not in found]
        return rows, vanished

    async def _remember_pending(
        self, stream: StreamId, link_pending: Sequence[str], held: Sequence[FailedRecord]
    ) -> None:
        """Records to look at again on a later run, without counting as failures.

        They go into the sync-error table under :data:`PENDING_CODE` (its retry schedule brings
        them back); operators see them apart from real errors.
        """
        pending = [
            FailedRecord(
                stream=stream,
                operation="link",
                code=PENDING_CODE,
                message="a linked record had not reached Marketo yet; the link is re-sent",
                dynamics_id=dynamics_id,
            )
            for dynamics_id in link_pending
        ]
        if pending or held:
            await blocking(self.store.errors.record_many, [*pending, *held])

    # --- run bookkeeping ---------------------------------------------------------------------

    async def _restart_after_expiry(
        self,
        job: SyncJob,
        stream: StreamId,
        expired: DeltaTokenExpiredError,
        context: dict[str, str],
        followups: list[SyncJob],
    ) -> JobOutcome:
        note = (
            "the Dynamics change-tracking token expired (code "
            f"{expired.code or '0x80044352'}); a full resync started"
        )
        log.warning("%s: %s", stream, note, extra=context)
        restarted = await blocking(self.store.watermarks.reset, stream, status=note)
        followups.append(job.continuation(restarted.sequence, restarted.step))
        return JobOutcome.RESYNC

    async def _sweep_step(
        self,
        job: SyncJob,
        stream: StreamId,
        watermark: Watermark,
        counts: PageCounts,
        followups: list[SyncJob],
    ) -> JobOutcome:
        """One bounded step of the check that follows a full resync.

        A full read cannot show records deleted while the delta token was stale. So the mapped
        records are looked up in Dynamics, :data:`SWEEP_CHUNK` per job (ids only, 100 to a
        request); the ones that are gone get the "deleted in Dynamics" mark. The position is
        kept in the watermark, so a crash resumes the sweep rather than restarting it.
        """
        assert watermark.sweep is not None
        spec = self.config.entity[stream.entity]
        mappings, position = await blocking(
            self.store.mappings.list_entity_page,
            stream.instance_id,
            stream.entity,
            watermark.sweep,
            SWEEP_CHUNK,
        )
        live = [m.dynamics_id for m in mappings if not m.deleted_in_dynamics]
        present = await self.source.filter_states(spec, live) if live else {}
        gone = [i for i in live if i.lower() not in present]
        if gone:
            log.warning(
                "%s: %d records were deleted in Dynamics while the delta token was stale; "
                "marking them deleted in Marketo",
                stream,
                len(gone),
            )
            await self._process(stream, [], gone, counts)
        done = position is None
        swept = await blocking(
            self.store.watermarks.set_sweep,
            stream,
            sequence=watermark.sequence,
            sweep=position,
            finish=done,
            status=(
                "full resync complete (the delta token had expired); up to date"
                if done
                else "full resync read; checking for records deleted meanwhile"
            ),
        )
        if done:
            return JobOutcome.CAUGHT_UP
        followups.append(job.continuation(swept.sequence, swept.step))
        return JobOutcome.ADVANCED

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

    async def _dependencies_done(self, stream: StreamId) -> bool:
        for dependency in self._depends.get(stream.entity, ()):
            mark = await blocking(
                self.store.watermarks.get,
                StreamId(stream.instance_id, dependency, stream.direction),
            )
            if mark.phase is not Phase.INCREMENTAL:
                return False
        return True

    async def _start_dependents(self, stream: StreamId) -> list[SyncJob]:
        """Runs for the entities that waited for this one's initial copy (only those still in
        their initial phase, idle, and with every dependency done)."""
        jobs = []
        for dependent in dependents_of(stream.entity, self._depends):
            target = StreamId(stream.instance_id, dependent, stream.direction)
            mark = await blocking(self.store.watermarks.get, target)
            if mark.phase is not Phase.INITIAL or mark.run_open:
                continue
            if not await self._dependencies_done(target):
                continue
            started = await self._start_unless_running(target)
            if started is None:
                continue
            jobs.append(
                SyncJob(
                    instance_id=stream.instance_id,
                    entity=dependent,
                    direction=stream.direction,
                    sequence=started.sequence,
                )
            )
        return jobs

    async def _start_unless_running(self, stream: StreamId) -> Watermark | None:
        """Open a run of ``stream`` unless one is open; ``None`` if it was (or just got) one.

        Another dependency finishing, or the timer, may start the same stream at the same time.
        A second start would make the first run's job stale mid-page, while the second job is
        turned away by the lease the first still holds: the run would sit open, with no job,
        until the scheduler finds it stale. The save is conditioned on the ETag just read.
        """
        mark = await blocking(self.store.watermarks.get, stream)
        if mark.run_open:
            return None
        try:
            return await blocking(self.store.watermarks.save, start_run(mark, self.clock.now()))
        except ConcurrencyConflict:
            return None

    # --- helpers ---------------------------------------------------------------------------

    async def _mapping_lookup(
        self, instance_id: str, entity: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, bool]]:
        found = await blocking(self.store.mappings.link_states, instance_id, entity, ids)
        return {k: (marketo_id, not deleted) for k, (marketo_id, deleted) in found.items()}

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


@dataclass
class _LeaseHolder:
    """The current (renewed) lease of a running job."""

    lease: Lease
    lost: bool = False


def _lower_id(item: Prepared) -> Prepared:
    item.dynamics_id = item.dynamics_id.lower()
    return item


def _version(row: Mapping[str, Any]) -> str | None:
    value = row.get("versionnumber") or row.get("@odata.etag")
    return str(value) if value is not None else None


def _marketo_int(marketo_id: str) -> int | str:
    return int(marketo_id) if marketo_id.isdigit() else marketo_id


def _status_note(more: bool, watermark: Watermark) -> str:
    if watermark.phase is Phase.INITIAL and watermark.resync:
        return (
            "full resync in progress (the delta token had expired)"
            if more
            else "full resync complete (the delta token had expired); up to date"
        )
    if watermark.phase is Phase.INITIAL:
        return "initial sync in progress" if more else "initial sync complete"
    return "catching up" if more else "up to date"
