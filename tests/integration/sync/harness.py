"""Run the real sync (settings, clients, state store, runner, scheduler) against the emulators.

The harness builds the runtime with :func:`shared.sync.service.build_runtime`, exactly as the
triggers do, on a private table prefix and queue. ``tick`` is the timer; ``drain`` plays the
queue trigger (receive, run, delete; a failed job's message stays for redelivery, as the host
would leave it). Time for the state store moves only when a test says so.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from azure.storage.queue import QueueClient

from emulators.app_settings import emulator_app_settings
from emulators.azurite import REPO_ROOT, AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.clock import ManualClock
from shared.jobs import Direction, SyncJob, parse_job
from shared.marketo.governor import Governor, Limits
from shared.retry import RetryPolicy
from shared.settings import MarketoSettings, load
from shared.state.streams import StreamId
from shared.state.watermarks import Phase
from shared.sync.d2m.pipeline import DynamicsToMarketo
from shared.sync.pipeline import RecordWriter
from shared.sync.reconcile import Reconciler, ReconciliationReport
from shared.sync.runner import JobOutcome
from shared.sync.scheduler import TickReport
from shared.sync.service import Runtime, build_runtime
from shared.telemetry.metrics import SyncTelemetry

SAMPLE_ORG_MAPPING = REPO_ROOT / "emulators" / "sample_org_mapping.toml"
"""The default mapping plus the sample organisation's custom entity."""


def sync_environment(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, **extra: str
) -> dict[str, str]:
    """App settings that point the sync at Azurite and both emulators."""
    return {
        **emulator_app_settings(azurite, dyn, mkto),
        "SYNC_MAPPING_FILE": str(SAMPLE_ORG_MAPPING),
        "MARKETO_MAX_CONCURRENCY": "5",
        **extra,
    }


@dataclass
class Drained:
    """What one drain did."""

    outcomes: list[JobOutcome] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def count(self, outcome: JobOutcome) -> int:
        """How many jobs ended with ``outcome``."""
        return self.outcomes.count(outcome)


class SyncHarness:
    """One isolated sync instance over shared emulators."""

    def __init__(self, runtime: Runtime, queue: QueueClient, clock: ManualClock) -> None:
        self.runtime = runtime
        self.queue = queue
        self.clock = clock
        self.instance_id = runtime.scheduler.binding.instance_id
        self.before_job: Callable[[SyncJob], None] | None = None

    async def tick(self) -> TickReport:
        """One timer tick."""
        return await self.runtime.tick()

    @property
    def d2m(self) -> DynamicsToMarketo:
        """The Dynamics → Marketo pipeline."""
        pipeline = self.runtime.runner.pipelines[Direction.DYNAMICS_TO_MARKETO]
        assert isinstance(pipeline, DynamicsToMarketo)
        return pipeline

    def tune(self, **changes: Any) -> None:
        """Change the runner's, scheduler's and pipelines' options (e.g. ``page_size``)."""
        options = replace(self.runtime.runner.options, **changes)
        self.runtime.runner.options = options
        self.runtime.scheduler.options = options
        self.d2m.options = options

    def use_writer(self, writer: RecordWriter) -> None:
        """Write to Marketo through ``writer`` (a wrapper of the real one, for fault tests)."""
        self.d2m.writer = writer  # type: ignore[assignment]
        self.d2m.records.writer = writer  # type: ignore[assignment]

    def pending_messages(self) -> int:
        """Messages waiting in the job queue."""
        props = self.queue.get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def drain(self, *, limit: int = 2000, redeliver_failures: bool = False) -> Drained:
        """Run queued jobs one by one until the queue is empty (or ``limit`` jobs ran).

        A job that raises keeps its message (the host would retry it); with
        ``redeliver_failures`` it is made visible again at once, else it stays hidden and the
        failure is collected.
        """
        drained = Drained()
        while len(drained.outcomes) + len(drained.failures) < limit:
            messages = list(self.queue.receive_messages(max_messages=16, visibility_timeout=300))
            if not messages:
                break
            for message in messages:
                job = parse_job(base64.b64decode(message.content))
                if self.before_job is not None:
                    self.before_job(job)
                try:
                    outcome = await self.runtime.runner.run_job(job)
                except Exception as failure:
                    drained.failures.append(failure)
                    if redeliver_failures:
                        self.queue.update_message(message, visibility_timeout=0)
                    continue
                drained.outcomes.append(outcome)
                self.queue.delete_message(message)
        return drained

    async def cycle(self) -> Drained:
        """A tick, then everything it caused."""
        await self.tick()
        return await self.drain()

    def marketo_writes(self) -> int:
        """Write calls (sync and delete) this runtime has made to Marketo so far."""
        snapshot = self.runtime.marketo.stats.snapshot()
        return sum(
            sum(outcomes.values())
            for endpoint, outcomes in snapshot["by_endpoint"].items()
            if endpoint.endswith((".sync", ".delete"))
        )

    async def sync_until_caught_up(self, *, max_cycles: int = 20, step_seconds: float = 61) -> int:
        """Cycles until every stream is incremental and idle and a cycle wrote nothing to Marketo.

        The state clock moves ``step_seconds`` between cycles, so records waiting for a retry or
        a pending link come due as they would a minute later. Returns the cycles it took.
        """
        for cycle in range(1, max_cycles + 1):
            writes = self.marketo_writes()
            drained = await self.cycle()
            if drained.failures:
                raise drained.failures[0]
            marks = [self.watermark(e) for e in self.runtime.runner.config.order]
            phases = {m.phase for m in marks}
            busy = drained.count(JobOutcome.ADVANCED) + drained.count(JobOutcome.RESYNC)
            idle = not any(m.run_open for m in marks)  # a run left open gets nudged later
            if (
                phases == {Phase.INCREMENTAL}
                and busy == 0
                and idle
                and self.marketo_writes() == writes
            ):
                return cycle
            self.clock.advance(step_seconds)
        raise AssertionError(f"not caught up after {max_cycles} cycles")

    def watermark(self, entity: str) -> Any:
        """The stored watermark of a d2m stream."""
        return self.runtime.store.watermarks.get(StreamId(self.instance_id, entity, "d2m"))

    def open_errors(self, *, code: str | None = None) -> list[Any]:
        """Unresolved sync errors (optionally of one code)."""
        errors = self.runtime.store.errors.list(self.instance_id)
        return [e for e in errors if not e.resolved and (code is None or e.code == code)]

    async def reconcile(self) -> ReconciliationReport:
        """Compare both systems through their APIs (see :mod:`shared.sync.reconcile`)."""
        return await Reconciler(
            self.runtime.runner.config,
            self.runtime.dynamics,
            self.runtime.marketo,
            self.runtime.store,
            self.instance_id,
        ).run()

    def mapping(self, entity: str, dynamics_id: str) -> Any:
        """The ID mapping of one record."""
        return self.runtime.store.mappings.get(self.instance_id, entity, dynamics_id)


@asynccontextmanager
async def sync_harness(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    *,
    fast_retries: bool = False,
    telemetry: SyncTelemetry | None = None,
    **settings: str,
):  # type: ignore[no-untyped-def]
    """A harness on a fresh table prefix and queue; everything is closed afterwards.

    ``fast_retries`` makes the clients' waits instant (Marketo on a manual clock, Dataverse
    backoff in milliseconds) for tests that inject many faults; the limits they honour stay.
    """
    suffix = uuid.uuid4().hex[:10]
    environ = sync_environment(azurite, dyn, mkto, **settings)
    clock = ManualClock()
    api_clock = ManualClock() if fast_retries else None
    limits = Limits.from_settings(load(MarketoSettings, environ))
    governor = Governor(limits, clock=api_clock) if api_clock else Governor(limits)
    queue_name = f"jobs-{suffix}"
    runtime = await build_runtime(
        environ,
        table_prefix=f"t{suffix}",
        queue_name=queue_name,
        clock=clock,
        governor=governor,
        marketo_clock=api_clock,
        dynamics_retry=RetryPolicy(base_delay=0.01, max_delay=0.05) if fast_retries else None,
        telemetry=telemetry,
    )
    queue = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    queue.create_queue()
    try:
        yield SyncHarness(runtime, queue, clock)
    finally:
        await runtime.aclose()
        runtime.store.drop_tables()
        queue.delete_queue()


@contextmanager
def advanced(clock: ManualClock, seconds: float) -> Iterator[None]:
    """Move the state clock forward on exit."""
    yield
    clock.advance(seconds)
