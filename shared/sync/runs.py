"""Run transitions, in one place for the job runner and the scheduler.

A stream's *run* is one pass of reading: opened by the timer (or by a dependency finishing its
first copy, or by a resync), advanced page by page by jobs, closed by the last page. The rules:

* **start unless running**: a run opens only if none is open, and the save is conditioned on
  the ETag just read, so two starters racing (the timer and a finishing dependency) open one;
* **dependencies**: an entity's first copy starts only when every entity it depends on is
  incremental; the dependency that finishes last starts its waiting dependents at once;
* **resync**: the one way back to a full read (an expired cursor, a re-link);
* **activity** (:func:`run_activity`): whether an open run has a job working on it, or has gone
  quiet because its job died (a killed worker, a lost continuation). A quiet run is *nudged*:
  the scheduler sends a job for the step the run is at. Duplicates are harmless (the lease and
  the step check turn them away), so a nudge never needs to know whether a job still exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.clock import Clock
from shared.errors import ConcurrencyConflict
from shared.jobs import JobReason, SyncJob
from shared.state.leases import Lease
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark, start_run
from shared.sync.blocking import blocking
from shared.sync.order import dependents_of


@dataclass(frozen=True)
class SyncOptions:
    """Tuning shared by the runner, the scheduler and the pipelines; defaults are the limits."""

    page_size: int = 5000
    """Dataverse's maximum page (Microsoft Learn, "Page results": ``odata.maxpagesize``)."""
    lease_duration: timedelta = timedelta(seconds=30)
    """A job's hold on its stream, renewed every third of itself while it runs: it lapses only
    when the worker dies, and then soon, so the stream can be nudged within minutes."""
    quiet_after: timedelta = timedelta(seconds=90)
    """An open run with no live lease and no sign of life for this long gets a nudge. Longer
    than Marketo's 90 s server-side write timeout counted from the last sign of life, so a
    write a dead worker left in flight has been settled before the page is replayed."""
    retry_batch: int = 500
    """Most earlier failures retried per job."""
    nudge_horizon: timedelta = timedelta(seconds=60)
    """A run that will be quiet within this long gets its nudge now, delayed to that moment
    (the default timer's interval: the next tick would come too late)."""
    queue_retry_delay: timedelta = timedelta(minutes=2)
    """When a failed job's message comes back (host.json ``visibilityTimeout``, checked by a
    test): a run whose last attempt failed is not quiet before that retry had its chance."""


class RunActivity(StrEnum):
    """What the scheduler sees of a stream's run."""

    IDLE = "idle"
    """No run is open: start one."""
    RUNNING = "running"
    """A job holds the stream, or one is due soon (just queued, or waiting out a retry)."""
    QUIET = "quiet"
    """Open, but nothing has happened for too long: its job is gone; nudge it."""


def run_activity(
    mark: Watermark, lease: Lease | None, now: datetime, options: SyncOptions
) -> RunActivity:
    """Classify a stream's run (pure; see the module docstring)."""
    if not mark.run_open:
        return RunActivity.IDLE
    wait = quiet_in(mark, lease, now, options)
    if wait is not None and wait <= timedelta(0):
        return RunActivity.QUIET
    return RunActivity.RUNNING


def quiet_in(
    mark: Watermark, lease: Lease | None, now: datetime, options: SyncOptions
) -> timedelta | None:
    """How long until an open run with no live lease counts as quiet (zero or less: it is);
    ``None`` while a job holds its lease. The timer sends a nudge that becomes visible at
    that moment when it falls before the next tick, so a dead worker's stream moves again
    about ``quiet_after`` after its last sign of life, not up to a tick later."""
    if lease is not None and not lease.is_expired(now):
        return None
    signs = [t for t in (mark.updated_at, mark.last_run_at) if t is not None]
    if lease is not None:
        signs.append(lease.renewed_at or lease.acquired_at)
    quiet_after = options.quiet_after
    if mark.last_error is not None:  # the queue brings the failed job back by itself
        quiet_after += options.queue_retry_delay
    if not signs:
        return timedelta(0)
    return max(signs) + quiet_after - now


def dependencies_done(
    entity: str, depends: Mapping[str, tuple[str, ...]], marks: Mapping[str, Watermark]
) -> bool:
    """Whether every entity ``entity`` depends on has finished its first copy."""
    return all(marks[d].phase is Phase.INCREMENTAL for d in depends.get(entity, ()))


def nudge_job(stream: StreamId, mark: Watermark) -> SyncJob:
    """A job for the step an open run is at (sent when the run has gone quiet)."""
    return SyncJob(
        instance_id=stream.instance_id,
        entity=stream.entity,
        direction=stream.direction,
        reason=JobReason.CONTINUATION,
        sequence=mark.sequence,
        step=mark.step,
    )


class RunTransitions:
    """The run rules over the watermark store."""

    def __init__(
        self, store: StateStore, clock: Clock, depends: Mapping[str, tuple[str, ...]]
    ) -> None:
        self.store = store
        self.clock = clock
        self.depends = dict(depends)

    async def start(self, mark: Watermark) -> Watermark | None:
        """Open a run from ``mark`` as read; ``None`` if the row changed since (someone else
        started or moved it) or a run is already open."""
        if mark.run_open:
            return None
        try:
            return await blocking(self.store.watermarks.save, start_run(mark, self.clock.now()))
        except ConcurrencyConflict:
            return None

    async def start_unless_running(self, stream: StreamId) -> Watermark | None:
        """Open a run of ``stream`` unless one is open (read, then a conditioned save)."""
        return await self.start(await blocking(self.store.watermarks.get, stream))

    async def dependencies_done(self, stream: StreamId) -> bool:
        """Whether ``stream``'s dependencies (same instance and direction) are incremental."""
        marks = {
            dependency: await blocking(
                self.store.watermarks.get,
                StreamId(stream.instance_id, dependency, stream.direction),
            )
            for dependency in self.depends.get(stream.entity, ())
        }
        return dependencies_done(stream.entity, self.depends, marks)

    async def start_dependents(self, stream: StreamId) -> list[SyncJob]:
        """Runs for the entities that waited for ``stream``'s first copy: those still in their
        initial phase, idle, and with every dependency done. Returns their first jobs."""
        jobs = []
        for dependent in dependents_of(stream.entity, self.depends):
            target = StreamId(stream.instance_id, dependent, stream.direction)
            mark = await blocking(self.store.watermarks.get, target)
            if mark.phase is not Phase.INITIAL or mark.run_open:
                continue
            if not await self.dependencies_done(target):
                continue
            started = await self.start(mark)
            if started is not None:
                jobs.append(first_job(target, started, JobReason.CONTINUATION))
        return jobs

    async def resync(
        self, stream: StreamId, note: str, *, close: bool = False, keep_cursor: bool = False
    ) -> Watermark:
        """Start ``stream`` over with a full read; ``close`` leaves the run closed, for the next
        tick to start in dependency order; ``keep_cursor`` (an operator's resync, the cursor
        still good) has the read's end continue from the old cursor, so no change made while
        it ran is missed (:attr:`~shared.state.watermarks.Watermark.resume_cursor`)."""
        restarted = await blocking(
            self.store.watermarks.reset, stream, status=note, keep_cursor=keep_cursor
        )
        if not close:
            return restarted
        return await blocking(
            self.store.watermarks.finish_run, stream, sequence=restarted.sequence, status=note
        )


def first_job(stream: StreamId, started: Watermark, reason: JobReason) -> SyncJob:
    """The job for the first step of a run just opened."""
    return SyncJob(
        instance_id=stream.instance_id,
        entity=stream.entity,
        direction=stream.direction,
        reason=reason,
        sequence=started.sequence,
    )


def job_context(job: SyncJob) -> dict[str, str]:
    """The structured log fields of a job (as :mod:`shared.telemetry.logs` expects)."""
    return {
        "instance": job.instance_id,
        "entity": job.entity,
        "direction": job.direction.value,
        "job_id": job.job_id,
    }


def status_note(watermark: Watermark, *, more: bool, sweep: bool) -> str:
    """The operator's note after a committed page."""
    if watermark.phase is Phase.INITIAL:
        if more:
            return f"{_read_kind(watermark)} in progress"
        if sweep:
            return f"{_read_kind(watermark)} read; checking for records deleted meanwhile"
        return f"{_read_kind(watermark)} complete"
    return "catching up" if more else "up to date"


def sweep_note(watermark: Watermark, done: bool) -> str:
    """The operator's note after a sweep step."""
    if not done:
        return f"{_read_kind(watermark)} read; checking for records deleted meanwhile"
    return f"{_read_kind(watermark)} complete, deletes made meanwhile marked; up to date"


def _read_kind(watermark: Watermark) -> str:
    return "full resync (the change token had expired)" if watermark.resync else "initial sync"
