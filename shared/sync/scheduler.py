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

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import ConcurrencyConflict
from shared.jobs import Direction, JobReason, SyncJob
from shared.state.instances import DynamicsOrganization, Instance, InstanceStatus, MarketoInstance
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark, start_run
from shared.sync.config import SyncConfig
from shared.sync.engine import EngineOptions, JobQueue
from shared.sync.ports import Source, SourceIdentity

log = logging.getLogger("dmsync.scheduler")

P = ParamSpec("P")
R = TypeVar("R")


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


def environment_change(recorded: dict[str, str | None], seen: SourceIdentity) -> str | None:
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
    ) -> None:
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
            return report
        change = environment_change(
            instance.config.get("dynamics_identity", {}), await self.source.identity()
        )
        if change is not None:
            await self._db(
                self.store.instances.set_status,
                instance.instance_id,
                InstanceStatus.SUSPENDED,
                change,
            )
            log.error("instance %s suspended: %s", instance.instance_id, change)
            report.status, report.reason = InstanceStatus.SUSPENDED, change
            return report
        marks = {
            entity: await self._db(self.store.watermarks.get, self._stream(entity))
            for entity in self.config.order
        }
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
                    started = await self._db(
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
        await self._purge_now_and_then()
        log.info(
            "tick: enqueued %s; in flight %s; waiting %s",
            report.enqueued or "-",
            report.in_flight or "-",
            report.waiting or "-",
        )
        return report

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
        existing = await self._db(self.store.instances.get, self.binding.instance_id)
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
        return await self._db(self.store.instances.create, instance)

    async def relink(self) -> Instance:
        """Accept the Dynamics environment as it is now, and resume (operator action)."""
        instance = await self._instance()
        identity = await self.source.identity()
        config = {**instance.config, "dynamics_identity": identity_signature(identity)}
        relinked = replace(
            instance,
            config=config,
            dynamics=replace(instance.dynamics, organization_id=identity.organization_id),
        )
        await self._db(self.store.instances.save, relinked)
        return await self._db(
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
        purged = await self._db(self.store.errors.purge)
        if purged:
            log.info("purged %d sync errors past their retention", purged)

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(fn, *args, **kwargs)
