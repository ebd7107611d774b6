"""The job runner: advance one stream (instance, entity, direction) by one unit of work.

It names neither vendor: a direction is a :class:`~shared.sync.pipeline.Pipeline`. One job, in
order (design invariants 1-4 and 7):

1. the gates: the entity is configured, the instance is active;
2. take the stream's lease (one job per stream at a time). If another job holds it, this job
   comes back when that lease ends (a delayed copy of the message), so a job is never dropped
   because of a lease a dead worker left behind;
3. drop the job if its (run, step) is not the stream's current one: a replayed or duplicated
   message of a step already committed;
4. in the initial phase, wait until the entities it depends on finished theirs;
5. stop while the target's daily quota is used up (the run resumes after the reset);
6. let the pipeline do the page (or a step of the delete sweep): read, write, store mappings
   and sync errors;
7. only then commit the watermark, conditioned on the run *and* the step, with a delete sweep
   owed after a full read written in the same save; and only while the lease is still ours;
8. release the lease, then send the continuation (a lost one is recovered by the scheduler's
   nudge, :mod:`shared.sync.runs`).

A back-fill job (an operator's request to send one field) takes the same gates and lease, then
does one step of the back-fill instead of steps 3-7 (:mod:`shared.sync.backfill_jobs`).

A crash anywhere before 7 replays the same page; writes are keyed by the mapping and the key,
so the replay creates nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import (
    DmsyncError,
    FatalError,
    LeaseHeldError,
    LeaseLostError,
    ResumeLaterError,
    ResyncRequiredError,
    RetriableError,
)
from shared.jobs import Direction, JobReason, SyncJob
from shared.state.instances import InstanceStatus
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, RunCounts, Watermark
from shared.sync.backfill_jobs import BACKFILL_OUTCOMES, run_backfill_step
from shared.sync.blocking import blocking
from shared.sync.config import SyncConfig
from shared.sync.job_outcome import JobOutcome
from shared.sync.job_queue import JobQueue
from shared.sync.lease_keeper import LeaseKeeper
from shared.sync.pipeline import PageCounts, Pipeline
from shared.sync.runs import RunTransitions, SyncOptions, job_context, status_note, sweep_note
from shared.telemetry.metrics import SyncTelemetry
from shared.telemetry.names import JobEnding, RecordTally

__all__ = ["BUSY_MARGIN", "ENQUEUE_ATTEMPTS", "JobOutcome", "JobRunner"]

log = logging.getLogger("dmsync.sync")

ENQUEUE_ATTEMPTS = 3
"""Tries at sending a continuation before the job fails (the scheduler's nudge is the backstop)."""
BUSY_MARGIN = timedelta(seconds=1)
"""A job turned away by a held lease comes back this long after the lease would end."""


@dataclass
class _Work:
    """One leased job's unit of work: what its page or sweep step needs."""

    job: SyncJob
    stream: StreamId
    pipeline: Pipeline
    watermark: Watermark
    keeper: LeaseKeeper
    counts: PageCounts
    followups: list[SyncJob] = field(default_factory=list)


class JobRunner:
    """Runs sync jobs for every direction it has a pipeline for."""

    def __init__(
        self,
        *,
        config: SyncConfig,
        store: StateStore,
        pipelines: Mapping[Direction, Pipeline],
        queue: JobQueue,
        clock: Clock = SYSTEM_CLOCK,
        options: SyncOptions | None = None,
        telemetry: SyncTelemetry | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.pipelines = dict(pipelines)
        self.queue = queue
        self.clock = clock
        self.options = options or SyncOptions()
        self.telemetry = telemetry or SyncTelemetry()
        self.runs = RunTransitions(
            store, clock, {name: spec.depends_on for name, spec in config.entity.items()}
        )

    async def run_job(self, job: SyncJob) -> JobOutcome:
        """Advance ``job``'s stream by one unit of work (see the module docstring).

        Emits the job's duration and outcome and its record counts as metrics; failures
        propagate (the queue retries them) after being counted.
        """
        started = time.monotonic()
        counts = PageCounts()
        try:
            outcome = await self._run(job, counts)
        except Exception as failure:
            ending = JobEnding.RETRY if isinstance(failure, RetriableError) else JobEnding.FAILED
            self._emit(job, counts, ending, time.monotonic() - started)
            raise
        ending = (
            JobEnding.CONTINUED
            if outcome in (JobOutcome.ADVANCED, JobOutcome.RESYNC)
            else JobEnding.COMPLETED
        )
        self._emit(job, counts, ending, time.monotonic() - started)
        return outcome

    def _emit(self, job: SyncJob, counts: PageCounts, ending: JobEnding, seconds: float) -> None:
        stream = (job.instance_id, job.entity, job.direction)
        metric = self.telemetry
        metric.records(*stream, RecordTally.READ, counts.read)
        metric.records(*stream, RecordTally.WRITTEN, counts.written)
        metric.records(*stream, RecordTally.SKIPPED, counts.skipped)
        for code, n in counts.error_codes.items():
            metric.records(*stream, RecordTally.FAILED, n, code=code)
        metric.job(*stream, ending, seconds)

    async def _run(self, job: SyncJob, counts: PageCounts) -> JobOutcome:
        pipeline = self.pipelines.get(job.direction)
        if pipeline is None:
            raise FatalError(
                f"job {job.job_id} asks for direction {job.direction.value}, which this app "
                f"does not run (it runs {', '.join(d.value for d in self.pipelines) or 'none'})"
            )
        stream = StreamId(job.instance_id, job.entity, job.direction)
        context = job_context(job)
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
        except LeaseHeldError as busy:
            wait = timedelta(seconds=busy.retry_after or 5) + BUSY_MARGIN
            log.info(
                "stream %s is busy (%s); the job comes back in %.0f s",
                stream,
                busy,
                wait.total_seconds(),
                extra=context,
            )
            await self.queue.enqueue(job, delay=wait)
            return JobOutcome.BUSY
        keeper = LeaseKeeper(
            self.store.leases, lease, self.options.lease_duration, context, self.store.clock
        )
        followups: list[SyncJob] = []
        keeper.start()
        try:
            outcome = await self._run_leased(job, stream, pipeline, keeper, counts, followups)
        finally:
            await keeper.close()
        # Only now, with the lease released, can the follow-up jobs find the stream free.
        for followup in followups:
            await self._send(followup, context)
        return outcome

    async def _send(self, job: SyncJob, context: Mapping[str, str]) -> None:
        for attempt in range(1, ENQUEUE_ATTEMPTS + 1):
            try:
                await self.queue.enqueue(job)
                return
            except Exception as failure:  # the SDK's own errors: any of them means "not sent"
                if attempt == ENQUEUE_ATTEMPTS:
                    log.warning(
                        "sending the continuation failed (%s); the scheduler will nudge the stream",
                        failure,
                        extra=context,
                    )
                    raise
                await asyncio.sleep(0.2 * attempt)

    async def _run_leased(
        self,
        job: SyncJob,
        stream: StreamId,
        pipeline: Pipeline,
        keeper: LeaseKeeper,
        counts: PageCounts,
        followups: list[SyncJob],
    ) -> JobOutcome:
        if job.reason is JobReason.BACKFILL:
            step = await run_backfill_step(
                job, stream, pipeline, self.store, keeper, self.queue, followups, self.clock.now()
            )
            return BACKFILL_OUTCOMES[step]
        watermark = await blocking(self.store.watermarks.get, stream)
        if (job.sequence, job.step) != (watermark.sequence, watermark.step):
            log.info(
                "job for run %d step %d is stale (stream at run %d step %d)",
                job.sequence,
                job.step,
                watermark.sequence,
                watermark.step,
                extra=job_context(job),
            )
            return JobOutcome.STALE
        spec = self.config.entity[job.entity]
        if watermark.phase is Phase.INITIAL and not await self.runs.dependencies_done(stream):
            log.info(
                "waiting for %s to finish their initial sync",
                spec.depends_on,
                extra=job_context(job),
            )
            await blocking(
                self.store.watermarks.finish_run,
                stream,
                sequence=watermark.sequence,
                status="waiting for " + ", ".join(spec.depends_on),
            )
            return JobOutcome.WAITING
        blocked = await pipeline.writes_blocked_until()
        if blocked is not None:
            return await self._park(stream, watermark, blocked)
        work = _Work(job, stream, pipeline, watermark, keeper, counts, followups)
        try:
            if watermark.sweep is not None:
                return await self._sweep(work)
            return await self._page(work)
        except ResumeLaterError as later:
            return await self._park(stream, watermark, later.resumes_at or self.clock.now())
        except LeaseLostError:
            raise  # whoever holds the stream now owns its watermark
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

    async def _park(self, stream: StreamId, watermark: Watermark, until: datetime) -> JobOutcome:
        when = until.strftime("%Y-%m-%d %H:%M UTC")
        note = (
            f"the target's daily API quota is used up; nothing is written until {when}, "
            "then the run resumes where it stopped"
        )
        log.warning("%s: %s", stream, note)
        with contextlib.suppress(DmsyncError):
            await blocking(
                self.store.watermarks.finish_run, stream, sequence=watermark.sequence, status=note
            )
        return JobOutcome.QUOTA

    async def _page(self, work: _Work) -> JobOutcome:
        job, stream, watermark, keeper, counts = (
            work.job,
            work.stream,
            work.watermark,
            work.keeper,
            work.counts,
        )
        pipeline, followups = work.pipeline, work.followups
        try:
            result = await pipeline.run_page(stream, watermark, keeper, counts)
        except ResyncRequiredError as expired:
            keeper.check()
            note = f"the change cursor expired ({expired}); a full resync started"
            log.warning("%s: %s", stream, note)
            restarted = await self.runs.resync(stream, note)
            followups.append(job.continuation(restarted.sequence, restarted.step))
            return JobOutcome.RESYNC
        keeper.check()
        initial = watermark.phase is Phase.INITIAL
        # After a full read, look for records deleted during it: which moment a paged read's
        # delta link stands for is undocumented, and a replayed first page starts a new read.
        # Only a first copy read in one page, into an empty mapping, cannot have missed one.
        sweep_owed = (
            initial and result.done and not (watermark.cursor is None and result.fresh_copy)
        )
        # An operator's resync reads on from the cursor it had, not from the read's own link.
        cursor = result.cursor
        if initial and result.done and watermark.resume_cursor:
            cursor = watermark.resume_cursor
        committed = await blocking(
            self.store.watermarks.advance,
            stream,
            sequence=watermark.sequence,
            step=watermark.step,
            cursor=cursor,
            counts=RunCounts(
                read=counts.read,
                written=counts.written,
                skipped=counts.skipped,
                failed=counts.failed,
            ),
            phase=Phase.INCREMENTAL if result.done else None,
            total_expected=result.total_expected,
            status=status_note(watermark, more=not result.done, sweep=sweep_owed),
            finish=result.done and not sweep_owed,
            fresh_copy=result.fresh_copy,
            sweep="" if sweep_owed else None,
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
            extra=job_context(job),
        )
        if initial:
            done, expected = committed.progress
            self.telemetry.initial_progress(
                stream.instance_id, stream.entity, done, max(expected or 0, done)
            )
        if initial and result.done:
            followups.extend(await self.runs.start_dependents(stream))
        if not committed.run_open:
            return JobOutcome.CAUGHT_UP
        followups.append(job.continuation(committed.sequence, committed.step))
        return JobOutcome.ADVANCED

    async def _sweep(self, work: _Work) -> JobOutcome:
        mark = work.watermark
        result = await work.pipeline.run_sweep(work.stream, mark, work.keeper, work.counts)
        work.keeper.check()
        if result.gone:
            log.warning(
                "%s: %d records were deleted at the source during the full read; marked deleted",
                work.stream,
                result.gone,
            )
        done = result.position is None
        swept = await blocking(
            self.store.watermarks.set_sweep,
            work.stream,
            sequence=mark.sequence,
            step=mark.step,
            sweep=result.position,
            finish=done,
            status=sweep_note(mark, done),
        )
        if done:
            return JobOutcome.CAUGHT_UP
        work.followups.append(work.job.continuation(swept.sequence, swept.step))
        return JobOutcome.ADVANCED
