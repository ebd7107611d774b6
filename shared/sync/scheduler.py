"""The timer's work: keep each instance safe, and start a run for every idle stream.

On each tick, for the app's instance:

1. register it on first sight, recording which Dynamics organization it is bound to;
2. stop if it is paused or suspended;
3. check the Dynamics side is still that organization: a copied or refreshed environment
   answers with another organization id (or creation time), and writing its data into this
   Marketo would be wrong, so the instance is suspended with the reason spelled out;
4. for each entity in dependency order, start a run and enqueue its job unless one is open and
   recent, or the entity's initial sync still waits for its dependencies (their completion
   starts it at once);
5. once an hour, purge sync errors past their retention.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.budget.gate import never_stopped
from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ConcurrencyConflict
from shared.jobs import Direction, JobReason, SyncJob
from shared.state.instances import DynamicsOrganization, Instance, InstanceStatus, MarketoInstance
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark, start_run
from shared.sync.blocking import blocking
from shared.sync.config import SyncConfig
from shared.sync.engine import EngineOptions, JobQueue
from shared.sync.ports import Source, SourceIdentity
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
    reason: str = ""


def identity_signature(identity: SourceIdentity) -> dict[str, str | None]:
    """The parts of an identity that must not change under a running integration."""
    return {
        "organization_id": identity.organization_id,
        "organization_created_on": identity.organization_created_on,
    }


def environment_change(recorded: Mapping[str, str | None], seen: SourceIdentity) -> str | None:
    """Why ``seen`` is not the recorded environment, or ``None`` if it is."""
    now = identity_signature(seen)
    changed = [k for k, v in recorded.items() if v is not None and now.get(k) != v]
    if not changed:
        return None
    parts = ", ".join(f"{k} was {recorded[k]} and is now {now.get(k)}" for k in changed)
    return (
        f"the Dynamics environment now reports a different organization ({parts}): it looks "
        "copied or refreshed (a sandbox refresh). Sync is suspended so that no data from the "
        "wrong environment reaches Marketo. If this is intended, re-link the instance with "
        "`dmsync instance relink`."
    )


class Scheduler:
    """Runs one timer tick for the app's instance."""

    def __init__(
        self,
        *,
        config: SyncConfig,
        store: StateStore,
        source: Source,
        queue: JobQueue,
        binding: Binding,
        clock: Clock = SYSTEM_CLOCK,
        options: EngineOptions | None = None,
        telemetry: SyncTelemetry | None = None,
        marketo_blocked_until: Callable[[], Awaitable[datetime | None]] | None = None,
    ) -> None:
        self.telemetry = telemetry or SyncTelemetry()
        self._blocked_until = marketo_blocked_until or never_stopped
        self.config = config
        self.store = store
        self.source = source
        self.queue = queue
        self.binding = binding
        self.clock = clock
        self.options = options or EngineOptions()
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
            entity: await blocking(self.store.watermarks.get, self._stream(entity))
            for entity in self.config.order
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
        for entity in self.config.order:
            mark = marks[entity]
            if self._in_flight(mark):
                report.in_flight.append(entity)
            elif mark.phase is Phase.INITIAL and not all(
                marks[d].phase is Phase.INCREMENTAL for d in self.config.entity[entity].depends_on
            ):
                report.waiting.append(entity)
            else:
                # Conditioned on the watermark read above: a dependency's completion may have
                # started this stream since (shared.sync.engine), and a second start would
                # leave that run's job stale and this one's turned away by its lease.
                try:
                    started = await blocking(
                        self.store.watermarks.save, start_run(mark, self.clock.now())
                    )
                except ConcurrencyConflict:
                    report.in_flight.append(entity)
                    continue
                await self.queue.enqueue(
                    SyncJob(
                        instance_id=instance.instance_id,
                        entity=entity,
                        direction=Direction.DYNAMICS_TO_MARKETO,
                        reason=JobReason.SCHEDULE,
                        sequence=started.sequence,
                    )
                )
                report.enqueued.append(entity)
        await self._report_streams(marks)
        await self._purge_now_and_then()
        log.info(
            "tick: enqueued %s; in flight %s; waiting %s",
            report.enqueued or "-",
            report.in_flight or "-",
            report.waiting or "-",
        )
        return report

    async def _report_streams(self, marks: dict[str, Watermark]) -> None:
        """Backlog and lag per stream (the workbook's and the stall alert's inputs)."""
        open_counts = await blocking(self.store.errors.count_open_by_kind, self.binding.instance_id)
        now = self.clock.now()
        for entity, mark in marks.items():
            stream = self._stream(entity)
            pending = open_counts.get(stream, (0, 0))[1]
            done, total = mark.progress
            backlog = pending
            if mark.phase is Phase.INITIAL and total is not None:
                backlog += max(0, total - done)
            since = mark.last_success_at or mark.last_run_at
            lag = (now - since).total_seconds() if mark.run_open and since else 0.0
            self.telemetry.backlog(stream.instance_id, entity, stream.direction, backlog)
            self.telemetry.lag(stream.instance_id, entity, stream.direction, max(0.0, lag))

    def _in_flight(self, mark: Watermark) -> bool:
        if not mark.run_open:
            return False
        since = mark.updated_at or mark.last_run_at
        if since is None:
            return False
        return (self.clock.now() - since) < self.options.run_stale_after

    def _stream(self, entity: str) -> StreamId:
        return StreamId(self.binding.instance_id, entity, Direction.DYNAMICS_TO_MARKETO)

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
        for entity in self.config.order:
            stream = self._stream(entity)
            note = "re-linked to a refreshed Dynamics environment: full resync"
            restarted = await blocking(self.store.watermarks.reset, stream, status=note)
            # Closed at once: the next tick starts it (dependencies first), as for a new stream.
            await blocking(
                self.store.watermarks.finish_run, stream, sequence=restarted.sequence, status=note
            )
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
