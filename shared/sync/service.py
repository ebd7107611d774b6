"""The composition root the triggers call: settings → clients → state store → runner.

Everything is built on first use, not at import (Flex Consumption gives an app 30 s to load),
once per worker process, and reused by every invocation on that process: one connection pool
per API, one Marketo governor, one state store. The Marketo governor and the Dataverse limiter
are the shared ones: every process of the app draws on one budget row per API (shared.budget).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from shared.clock import SYSTEM_CLOCK, Clock
from shared.dynamics.client import DynamicsClient
from shared.dynamics.limiter import SharedLimiter
from shared.dynamics.transport import DEFAULT_RETRY_POLICY
from shared.jobs import SYNC_JOBS_QUEUE, Direction, SyncJob
from shared.marketo.client import MarketoClient
from shared.marketo.governor import CallGate
from shared.marketo.shared_governor import SharedGovernor
from shared.retry import RetryPolicy
from shared.settings import DynamicsSettings, MarketoSettings, StorageSettings, SyncSettings, load
from shared.state.store import StateStore
from shared.state.sync_errors import ErrorRetryPolicy
from shared.storage import StorageConnection
from shared.sync.config import load_config
from shared.sync.d2m.pipeline import DynamicsToMarketo
from shared.sync.d2m.reader import DataverseChangeReader
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.job_queue import StorageJobQueue
from shared.sync.runner import JobOutcome, JobRunner
from shared.sync.runs import SyncOptions
from shared.sync.scheduler import Binding, Scheduler, TickReport
from shared.sync.usage import ApiUsageReporter
from shared.telemetry.logs import REDACTOR
from shared.telemetry.metrics import SyncTelemetry
from shared.validation.checklist import ChecklistTargets, validate_at_start

log = logging.getLogger("dmsync.service")

RETRY_POLICY = ErrorRetryPolicy(
    max_attempts=10, first_delay=timedelta(minutes=1), max_delay=timedelta(hours=6)
)
"""Failed records come back one tick later, then ever more slowly, ten tries in all."""


@dataclass
class Runtime:
    """The long-lived objects of one worker process."""

    runner: JobRunner
    scheduler: Scheduler
    store: StateStore
    dynamics: DynamicsClient
    marketo: MarketoClient
    queue: StorageJobQueue
    telemetry: SyncTelemetry
    usage: ApiUsageReporter
    dynamics_limiter: SharedLimiter | None = None

    async def tick(self) -> TickReport:
        """One scheduling pass, then this process's API usage, the shared budgets' use and the
        queue depths as metrics."""
        report = await self.scheduler.tick()
        self.usage.report()
        await self.usage.report_shared(self.dynamics_limiter)
        for queue, depth in (await asyncio.to_thread(self.queue.depths)).items():
            self.telemetry.queue_depth(queue, depth)
        return report

    async def aclose(self) -> None:
        """Give back the shared budgets' unused calls; close both connection pools."""
        governor = self.marketo.governor
        if isinstance(governor, SharedGovernor):
            await governor.aclose()
        if self.dynamics_limiter is not None:
            await self.dynamics_limiter.aclose()
        await self.dynamics.aclose()
        await self.marketo.aclose()


async def build_runtime(
    environ: Mapping[str, str] | None = None,
    *,
    table_prefix: str | None = None,
    queue_name: str = SYNC_JOBS_QUEUE,
    clock: Clock = SYSTEM_CLOCK,
    governor: CallGate | None = None,
    dynamics_retry: RetryPolicy | None = None,
    marketo_clock: Clock | None = None,
    telemetry: SyncTelemetry | None = None,
    options: SyncOptions | None = None,
) -> Runtime:
    """Load and validate every setting, connect, and run the validate checklist
    (:mod:`shared.validation.checklist`: the mapping against both schemas, access, budget).

    Args:
        environ: the app settings (default: the process environment).
        table_prefix: state table prefix (tests isolate themselves with their own).
        queue_name: the job queue (default ``sync-jobs``).
        clock: the time source for state and scheduling (the API clients keep real time:
            token lifetimes and rate windows are real).
        governor: a Marketo governor to use instead of the shared one.
        dynamics_retry: the Dataverse client's retry bounds (default: the client's own).
        marketo_clock: the Marketo client's clock for tokens and backoff (default: real time).
        telemetry: where metrics go (default: the process's OpenTelemetry meter provider).
        options: the runner's and scheduler's tuning (default: :class:`SyncOptions`).

    Raises:
        ConfigurationError: naming the setting, file, entity or field at fault.
    """
    env = dict(os.environ if environ is None else environ)
    storage = load(StorageSettings, env)
    dynamics_settings = load(DynamicsSettings, env)
    marketo_settings = load(MarketoSettings, env)
    sync = load(SyncSettings, env)
    _register_secrets(storage, dynamics_settings, marketo_settings)
    config = load_config(sync.mapping_file)
    connection = StorageConnection.from_settings(storage)
    store = StateStore.from_connection(
        connection,
        error_policy=RETRY_POLICY,
        error_retention_days=sync.error_retention_days,
        clock=clock,
        **({"table_prefix": table_prefix} if table_prefix else {}),
    )
    await asyncio.to_thread(store.ensure_tables)
    # REQUESTS_CA_BUNDLE is what MSAL (azure-identity) trusts; the Web API calls trust the same
    # bundle so that a private CA (the local emulator's) works for both.
    ca_bundle = env.get("REQUESTS_CA_BUNDLE")
    limiter = SharedLimiter(dynamics_settings, store.budgets)
    dynamics = DynamicsClient(
        dynamics_settings,
        verify=ca_bundle or True,
        retry_policy=dynamics_retry or DEFAULT_RETRY_POLICY,
        limiter=limiter,
    )
    api_clock = marketo_clock or SYSTEM_CLOCK
    marketo = MarketoClient(
        marketo_settings,
        governor=governor or SharedGovernor(marketo_settings, store.budgets, clock=api_clock),
        clock=api_clock,
    )
    reader = DataverseChangeReader(dynamics, clock)
    try:
        config = await validate_at_start(
            ChecklistTargets(
                config=config,
                dynamics=dynamics,
                marketo=marketo,
                dynamics_url=dynamics_settings.url,
                marketo_settings=marketo_settings,
                instance_id=sync.instance_id,
                store=store,
                identity=reader,
                ca_bundle=ca_bundle,
            )
        )
    except BaseException:
        await dynamics.aclose()
        await marketo.aclose()
        raise
    queue = StorageJobQueue(connection, queue_name)
    telemetry = telemetry or SyncTelemetry()
    options = options or SyncOptions(quiet_after=timedelta(seconds=sync.recovery_seconds))
    d2m = DynamicsToMarketo(
        config=config,
        store=store,
        reader=reader,
        writer=MarketoRecordWriter(marketo),
        clock=clock,
        options=options,
    )
    runner = JobRunner(
        config=config,
        store=store,
        pipelines={Direction.DYNAMICS_TO_MARKETO: d2m},
        queue=queue,
        clock=clock,
        options=options,
        telemetry=telemetry,
    )
    scheduler = Scheduler(
        config=config,
        store=store,
        source=reader,
        queue=queue,
        binding=Binding(sync.instance_id, dynamics_settings.url, marketo_settings.base_url),
        clock=clock,
        options=options,
        telemetry=telemetry,
        marketo_blocked_until=marketo.governor.quota_stop_until,
        directions=tuple(runner.pipelines),
    )
    usage = ApiUsageReporter(dynamics, marketo, telemetry, sync.instance_id)
    return Runtime(runner, scheduler, store, dynamics, marketo, queue, telemetry, usage, limiter)


def _register_secrets(
    storage: StorageSettings, dynamics: DynamicsSettings, marketo: MarketoSettings
) -> None:
    """Make the log redaction know this app's secret values, wherever they might surface."""
    for secret in (
        storage.connection_string,
        dynamics.client_secret,
        dynamics.client_certificate,
        dynamics.client_certificate_password,
        marketo.client_secret,
    ):
        if secret is not None and secret.get_secret_value():
            REDACTOR.add_secret(secret.get_secret_value())


_runtime: Runtime | None = None
_building: asyncio.Lock | None = None


async def runtime() -> Runtime:
    """This process's runtime, built on first use."""
    global _runtime, _building
    if _runtime is not None:
        return _runtime
    if _building is None:
        _building = asyncio.Lock()
    async with _building:
        if _runtime is None:
            _runtime = await build_runtime()
    return _runtime


async def schedule_tick(*, past_due: bool = False) -> TickReport:
    """The timer trigger's work."""
    if past_due:
        log.info("the sync timer is past due; running now")
    return await (await runtime()).tick()


async def run_job(job: SyncJob, *, dequeue_count: int = 1) -> JobOutcome:
    """The queue trigger's work."""
    if dequeue_count > 1:
        log.info("job %s delivered again (attempt %d)", job.job_id, dequeue_count)
    return await (await runtime()).runner.run_job(job)
