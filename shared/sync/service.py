"""The composition root the triggers call: settings → clients → state store → engine.

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
from shared.jobs import SYNC_JOBS_QUEUE, SyncJob
from shared.marketo.client import MarketoClient
from shared.marketo.governor import CallGate
from shared.marketo.shared_governor import SharedGovernor
from shared.retry import RetryPolicy
from shared.settings import DynamicsSettings, MarketoSettings, StorageSettings, SyncSettings, load
from shared.state.store import StateStore
from shared.state.sync_errors import ErrorRetryPolicy
from shared.storage import StorageConnection
from shared.sync.adapters import DataverseSource, MarketoTarget
from shared.sync.config import load_config
from shared.sync.engine import JobOutcome, SyncEngine
from shared.sync.job_queue import StorageJobQueue
from shared.sync.scheduler import Binding, Scheduler, TickReport
from shared.sync.schema_check import check_schemas
from shared.sync.usage import ApiUsageReporter
from shared.telemetry.logs import REDACTOR
from shared.telemetry.metrics import SyncTelemetry

log = logging.getLogger("dmsync.service")

RETRY_POLICY = ErrorRetryPolicy(
    max_attempts=10, first_delay=timedelta(minutes=1), max_delay=timedelta(hours=6)
)
"""Failed records come back one tick later, then ever more slowly, ten tries in all."""


@dataclass
class Runtime:
    """The long-lived objects of one worker process."""

    engine: SyncEngine
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
) -> Runtime:
    """Load and validate every setting, connect, and check the mapping against both schemas.

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
    try:
        config = await check_schemas(config, dynamics, marketo)
    except BaseException:
        await dynamics.aclose()
        await marketo.aclose()
        raise
    queue = StorageJobQueue(connection, queue_name)
    source = DataverseSource(dynamics)
    telemetry = telemetry or SyncTelemetry()
    engine = SyncEngine(
        config=config,
        store=store,
        source=source,
        target=MarketoTarget(marketo),
        queue=queue,
        clock=clock,
        telemetry=telemetry,
    )
    scheduler = Scheduler(
        config=config,
        store=store,
        source=source,
        queue=queue,
        binding=Binding(sync.instance_id, dynamics_settings.url, marketo_settings.base_url),
        clock=clock,
        telemetry=telemetry,
        marketo_blocked_until=marketo.governor.quota_stop_until,
    )
    usage = ApiUsageReporter(dynamics, marketo, telemetry, sync.instance_id)
    return Runtime(engine, scheduler, store, dynamics, marketo, queue, telemetry, usage, limiter)


def _register_secrets(
    storage: StorageSettings, dynamics: DynamicsSettings, marketo: MarketoSettings
) -> None:
    """Make the log redaction know this app's secret values, wherever they might surface."""
    for secret in (storage.connection_string, dynamics.client_secret, marketo.client_secret):
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
    return await (await runtime()).engine.run_job(job)
