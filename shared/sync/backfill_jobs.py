"""Back-fill jobs in the runner: one step of an operator's back-fill of one field per job.

A back-fill job (``reason = backfill``) names its request's ``sequence`` and ``step`` as a run
job names its run's. Under the stream's lease (so it never interleaves with the stream's own
writes), the runner:

1. drops the job if the request is gone, finished, or at another (sequence, step): a duplicate
   or a replay of a committed step, so each page of records is sent once per request;
2. lets the pipeline do the step (:meth:`~shared.sync.pipeline.Pipeline.run_backfill`);
3. commits the position, conditioned on the row's ETag and only while the lease is ours;
4. sends the next step's job (a lost one is recovered by the scheduler's nudge,
   :func:`quiet_backfill_job`).

A crash before 3 replays the step: its writes are updates of one field to the same value. While
the target's daily quota is used up the job comes back after the reset.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from shared.errors import ResumeLaterError
from shared.jobs import JobReason, SyncJob
from shared.state.backfills import Backfill
from shared.state.leases import Lease
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.sync.blocking import blocking
from shared.sync.job_outcome import JobOutcome
from shared.sync.job_queue import JobQueue
from shared.sync.lease_keeper import LeaseKeeper
from shared.sync.pipeline import Pipeline
from shared.sync.runs import SyncOptions, job_context

log = logging.getLogger("dmsync.backfill")


class BackfillStepOutcome:
    """Names for what a back-fill job did (the runner maps them onto its own outcomes)."""

    ADVANCED = "advanced"
    DONE = "done"
    STALE = "stale"
    QUOTA = "quota"


def backfill_job(stream: StreamId, backfill: Backfill) -> SyncJob:
    """The job for the request's current step."""
    return SyncJob(
        instance_id=stream.instance_id,
        entity=stream.entity,
        direction=stream.direction,
        reason=JobReason.BACKFILL,
        sequence=backfill.sequence,
        step=backfill.step,
    )


async def run_backfill_step(
    job: SyncJob,
    stream: StreamId,
    pipeline: Pipeline,
    store: StateStore,
    keeper: LeaseKeeper,
    queue: JobQueue,
    followups: list[SyncJob],
    now: datetime,
) -> str:
    """Do one back-fill step (see the module docstring); returns a :class:`BackfillStepOutcome`."""
    backfill = await blocking(store.backfills.get, stream)
    if (
        backfill is None
        or not backfill.open
        or (job.sequence, job.step) != (backfill.sequence, backfill.step)
    ):
        log.info("back-fill job is stale or its request is over; dropped", extra=job_context(job))
        return BackfillStepOutcome.STALE
    try:
        page = await pipeline.run_backfill(stream, backfill, keeper)
    except ResumeLaterError as later:
        resumes = later.resumes_at or now + timedelta(minutes=5)
        log.warning("back-fill of %s waits for the quota until %s", stream, resumes,
                    extra=job_context(job))  # fmt: skip
        await queue.enqueue(job, delay=max(timedelta(seconds=1), resumes - now))
        return BackfillStepOutcome.QUOTA
    keeper.check()
    committed = await blocking(
        store.backfills.commit, backfill, position=page.position, counts=page.counts
    )
    log.info(
        "back-fill step committed: scanned %d, sent %d, empty %d, older %d, failed %d",
        page.counts.scanned,
        page.counts.sent,
        page.counts.empty,
        page.counts.older,
        page.counts.failed,
        extra=job_context(job),
    )
    if not committed.open:
        return BackfillStepOutcome.DONE
    followups.append(_next(job, committed))
    return BackfillStepOutcome.ADVANCED


def _next(job: SyncJob, backfill: Backfill) -> SyncJob:
    return job.model_copy(
        update={
            "job_id": uuid.uuid4().hex,
            "created_at": datetime.now(UTC),
            "sequence": backfill.sequence,
            "step": backfill.step,
        }
    )


def quiet_backfill_job(
    backfill: Backfill | None, lease: Lease | None, now: datetime, options: SyncOptions
) -> SyncJob | None:
    """A job for an open back-fill nothing has moved for ``quiet_after`` (its job was lost)."""
    if backfill is None or not backfill.open:
        return None
    if lease is not None and not lease.is_expired(now):
        return None
    last = backfill.updated_at or backfill.requested_at
    if last is not None and now - last < options.quiet_after:
        return None
    return backfill_job(backfill.stream, backfill)


BACKFILL_OUTCOMES = {
    BackfillStepOutcome.ADVANCED: JobOutcome.ADVANCED,
    BackfillStepOutcome.DONE: JobOutcome.CAUGHT_UP,
    BackfillStepOutcome.STALE: JobOutcome.STALE,
    BackfillStepOutcome.QUOTA: JobOutcome.QUOTA,
}
"""The job outcome of each back-fill step outcome."""
