"""The timer's work: keep each instance safe, and start a run for every idle stream.

On each tick, for the app's instance:

1. register it on first sight, recording which Dynamics organization it is bound to;
2. stop if it is paused or suspended;
3. check the Dynamics side is still that organization: a copied or refreshed environment
   answers with another organization id (or creation time), and writing its data into this
   Marketo would be wrong, so the instance is suspended with the reason spelled out;
4. for each direction the app runs and each entity in dependency order: start a run and
   enqueue its job if none is open (unless the entity's initial sync still waits for its
   dependencies: their completion starts it at once); nudge a run that has gone quiet (its job
   died with its worker: see :mod:`shared.sync.runs`);
5. once an hour, purge sync errors past their retention.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.budget.gate import never_stopped
from shared.clock import SYSTEM_CLOCK, Clock
from shared.jobs import Direction, JobReason
from shared.state.instances import DynamicsOrganization, Instance, InstanceStatus, MarketoInstance
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark
from shared.sync.backfill_jobs import quiet_backfill_job
from shared.sync.blocking import blocking
from shared.sync.config import SyncConfig
from shared.sync.identity import (
    IdentitySource,
    SourceIdentity,
    environment_change,
    identity_signature,
)
from shared.sync.job_queue import JobQueue
from shared.sync.runs import (
    RunActivity,
    RunTransitions,
    SyncOptions,
    dependencies_done,
    first_job,
    nudge_job,
    quiet_in,
    run_activity,
)
from shared.telemetry.metrics import SyncTelemetry

log = logging.getLogger("dmsync.scheduler")


@dataclass(frozen=True)
class Binding:
    """What this app is configured to connect (from its settings)."""

    instance_id: str
    dynamics_url: str
    marketo_base_url: str


@dataclass
class TickReport:
    """What a tick did (for logs and tests)."""

    instance_id: str
    status: InstanceStatus
    enqueued: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    nudged: list[str] = field(default_factory=list)
    """Streams whose run had gone quiet (its job lost with a dead worker) and got a new job."""
    nudged_later: list[str] = field(default_factory=list)
    """Streams that will go quiet before the next tick: their new job waits for that moment."""
    reason: str = ""


class Scheduler:
    """Runs one timer tick for the app's instance."""

    def __init__(
        self,
        *,
        config: SyncConfig,
        store: StateStore,
        source: IdentitySource,
        queue: JobQueue,
        binding: Binding,
        clock: Clock = SYSTEM_CLOCK,
        options: SyncOptions | None = None,
        telemetry: SyncTelemetry | None = None,
        marketo_blocked_until: Callable[[], Awaitable[datetime | None]] | None = None,
        directions: Sequence[Direction] = (Direction.DYNAMICS_TO_MARKETO,),
    ) -> None:
        self.telemetry = telemetry or SyncTelemetry()
        self._blocked_until = marketo_blocked_until or never_stopped
        self.config = config
        self.store = store
        self.source = source
        self.queue = queue
        self.binding = binding
        self.clock = clock
        self.options = options or SyncOptions()
        self.directions = tuple(directions)
        self.runs = RunTransitions(
            store, clock, {name: spec.depends_on for name, spec in config.entity.items()}
        )
        self._last_purge: float | None = None

    async def tick(self) -> TickReport:
        """One scheduling pass (see the module docstring)."""
        instance = await self._instance()
        report = TickReport(instance.instance_id, instance.status, reason=instance.status_reason)
        if instance.status is not InstanceStatus.ACTIVE:
            log.info("instance %s is %s: %s", instance.instance_id, instance.status.value,
                     instance.status_reason)  # fmt: skip
            self.telemetry.instance_state(
                instance.instance_id,
                suspended=instance.status is InstanceStatus.SUSPENDED,
                reason=instance.status_reason,
            )
            return report
        seen = await self.source.identity()
        recorded = instance.config.get("dynamics_identity")
        if not recorded:
            # Registered by hand (dmsync instance add): adopt what the settings reach now, after
            # checking it against an organization id the operator may have given.
            recorded = {"organization_id": instance.dynamics.organization_id}
            if environment_change(recorded, seen) is None:
                instance = await self._adopt_identity(instance, seen)
                recorded = instance.config["dynamics_identity"]
        change = environment_change(recorded, seen)
        if change is not None:
            await blocking(
                self.store.instances.set_status,
                instance.instance_id,
                InstanceStatus.SUSPENDED,
                change,
            )
            log.error("instance %s suspended: %s", instance.instance_id, change)
            self.telemetry.instance_state(instance.instance_id, suspended=True, reason=change)
            report.status, report.reason = InstanceStatus.SUSPENDED, change
            return report
        self.telemetry.instance_state(instance.instance_id, suspended=False)
        marks = {
            stream: await blocking(self.store.watermarks.get, stream) for stream in self._streams()
        }
        blocked = await self._blocked_until()
        if blocked is not None:
            report.reason = (
                f"Marketo's daily API quota is used up until {blocked:%Y-%m-%d %H:%M} UTC; "
                "no run starts before then"
            )
            log.warning("instance %s: %s", instance.instance_id, report.reason)
            await self._report_streams(marks)
            return report
        for stream, mark in marks.items():
            await self._schedule(stream, mark, marks, report)
        await self._nudge_backfills(marks, report)
        await self._report_streams(marks)
        await self._purge_now_and_then()
        log.info(
            "tick: enqueued %s; in flight %s; waiting %s; nudged %s",
            report.enqueued or "-",
            report.in_flight or "-",
            report.waiting or "-",
            report.nudged or "-",
        )
        return report

    async def _schedule(
        self,
        stream: StreamId,
        mark: Watermark,
        marks: dict[StreamId, Watermark],
        report: TickReport,
    ) -> None:
        """Start, leave, or nudge one stream's run."""
        lease = await blocking(self.store.leases.get, stream) if mark.run_open else None
        activity = run_activity(mark, lease, self.clock.now(), self.options)
        if activity is RunActivity.RUNNING:
            report.in_flight.append(stream.entity)
            wait = quiet_in(mark, lease, self.clock.now(), self.options) if mark.run_open else None
            if wait is not None and wait <= self.options.nudge_horizon:
                # Quiet before the next tick: the nudge waits, invisible, for that moment.
                await self.queue.enqueue(nudge_job(stream, mark), delay=wait)
                report.nudged_later.append(stream.entity)
            return
        if activity is RunActivity.QUIET:
            log.warning("stream %s: its run went quiet (no job for %s); sending it a new job",
                        stream, self.options.quiet_after)  # fmt: skip
            await self.queue.enqueue(nudge_job(stream, mark))
            report.nudged.append(stream.entity)
            return
        by_entity = {s.entity: m for s, m in marks.items() if s.direction is stream.direction}
        if mark.phase is Phase.INITIAL and not dependencies_done(
            stream.entity, self.runs.depends, by_entity
        ):
            report.waiting.append(stream.entity)
            return
        # Conditioned on the watermark read above: a dependency's completion may have started
        # this stream since, and a second start would leave that run's job stale.
        started = await self.runs.start(mark)
        if started is None:
            report.in_flight.append(stream.entity)
            return
        await self.queue.enqueue(first_job(stream, started, JobReason.SCHEDULE))
        report.enqueued.append(stream.entity)

    async def _nudge_backfills(self, marks: dict[StreamId, Watermark], report: TickReport) -> None:
        """Send a job to an operator's back-fill whose job was lost (as for a quiet run)."""
        now = self.clock.now()
        for stream in marks:
            backfill = await blocking(self.store.backfills.get, stream)
            if backfill is None or not backfill.open:
                continue
            lease = await blocking(self.store.leases.get, stream)
            job = quiet_backfill_job(backfill, lease, now, self.options)
            if job is not None:
                log.warning("stream %s: its back-fill went quiet; sending it a new job", stream)
                await self.queue.enqueue(job)
                report.nudged.append(f"{stream.entity} (back-fill)")

    def _streams(self) -> list[StreamId]:
        return [
            StreamId(self.binding.instance_id, entity, direction)
            for direction in self.directions
            for entity in self.config.order
        ]

    async def _report_streams(self, marks: dict[StreamId, Watermark]) -> None:
        """Backlog and lag per stream (the workbook's and the stall alert's inputs)."""
        open_counts = await blocking(self.store.errors.count_open_by_kind, self.binding.instance_id)
        now = self.clock.now()
        for stream, mark in marks.items():
            entity = stream.entity
            pending = open_counts.get(stream, (0, 0))[1]
            done, total = mark.progress
            backlog = pending
            if mark.phase is Phase.INITIAL and total is not None:
                backlog += max(0, total - done)
            since = mark.last_success_at or mark.last_run_at
            lag = (now - since).total_seconds() if mark.run_open and since else 0.0
            self.telemetry.backlog(stream.instance_id, entity, stream.direction, backlog)
            self.telemetry.lag(stream.instance_id, entity, stream.direction, max(0.0, lag))

    async def _instance(self) -> Instance:
        existing = await blocking(self.store.instances.get, self.binding.instance_id)
        if existing is not None:
            return existing
        identity = await self.source.identity()
        instance = Instance(
            instance_id=self.binding.instance_id,
            dynamics=DynamicsOrganization(
                url=self.binding.dynamics_url, organization_id=identity.organization_id
            ),
            marketo=MarketoInstance(base_url=self.binding.marketo_base_url),
            config={
                "entities": list(self.config.order),
                "dynamics_identity": identity_signature(identity),
            },
            integrated_with_dynamics=True,
        )
        log.info(
            "registering instance %s: Dynamics %s (organization %s) with Marketo %s",
            instance.instance_id,
            self.binding.dynamics_url,
            identity.organization_id,
            self.binding.marketo_base_url,
        )
        return await blocking(self.store.instances.create, instance)

    async def _adopt_identity(self, instance: Instance, seen: SourceIdentity) -> Instance:
        adopted = replace(
            instance,
            config={**instance.config, "dynamics_identity": identity_signature(seen)},
            dynamics=replace(instance.dynamics, organization_id=seen.organization_id),
        )
        log.info(
            "instance %s: recorded Dynamics organization %s as its environment",
            instance.instance_id,
            seen.organization_id,
        )
        return await blocking(self.store.instances.save, adopted)

    async def relink(self) -> Instance:
        """Accept the Dynamics environment as it is now and resume (operator action).

        Every stream starts over with a full resync: delta tokens and cursors of the old
        environment mean nothing in the new one (reference §5: whether tokens survive a copy is
        undocumented), and unchanged records cost no Marketo call, while the sweep at the end
        marks records that are gone.
        """
        instance = await self._instance()
        identity = await self.source.identity()
        await self._adopt_identity(instance, identity)
        for stream in self._streams():
            note = "re-linked to a refreshed Dynamics environment: full resync"
            # Closed at once: the next tick starts it (dependencies first), as for a new stream.
            await self.runs.resync(stream, note, close=True)
        return await blocking(
            self.store.instances.set_status,
            instance.instance_id,
            InstanceStatus.ACTIVE,
            f"re-linked to organization {identity.organization_id}",
        )

    async def _purge_now_and_then(self) -> None:
        now = self.clock.monotonic()
        if self._last_purge is not None and now - self._last_purge < 3600:
            return
        self._last_purge = now
        purged = await blocking(self.store.errors.purge)
        if purged:
            log.info("purged %d sync errors past their retention", purged)
