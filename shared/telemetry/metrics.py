"""``SyncTelemetry``: the sync's custom metrics, recorded through the OpenTelemetry API.

In Azure the Python worker configures the Azure Monitor distro itself (host.json
``telemetryMode: OpenTelemetry`` + ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``,
reference §10), which installs the global meter provider; this module never configures an
exporter. Instruments created before that provider exists are proxies that start recording once
it is set. Tests pass their own ``MeterProvider`` with an in-memory reader.

Counters are exported as deltas and gauges as the last value recorded in each export interval
(60 s by default), so a gauge shows up only while something keeps reporting it: the sync
engine reports backlog, lag and instance state on every scheduling pass.

Every metric carries low-cardinality dimensions only (instance, entity, direction, outcome,
system, operation, code); never record ids, e-mail addresses or job ids here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
from opentelemetry.metrics import _Gauge as Gauge

from shared.jobs import Direction
from shared.telemetry.names import (
    METER_NAME,
    ApiOutcome,
    Dim,
    JobEnding,
    Metric,
    RecordTally,
    System,
)

Attributes = Mapping[str, str]

# Operation names and codes become metric dimensions: short tokens only, so a URL, a query
# string or a message can never leak in (or explode the number of series).
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _token(kind: str, value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(
            f"{kind} must be a short token (letters, digits, _ . : -; at most 64), "
            "not a URL or free text"
        )
    return value


def _not_negative(kind: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{kind} must not be negative")
    return value


class SyncTelemetry:
    """Records the sync's metrics; one instance per process is enough (it is thread-safe).

    Args:
        meter_provider: where instruments come from; default the global provider (the one the
            Functions worker configures for Azure Monitor).
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter: Meter = provider.get_meter(METER_NAME)
        self._records: Counter = meter.create_counter(
            Metric.RECORDS, unit="{record}", description="records by outcome per stream"
        )
        self._api_calls: Counter = meter.create_counter(
            Metric.API_CALLS, unit="{call}", description="API calls by system, operation, outcome"
        )
        self._throttles: Counter = meter.create_counter(
            Metric.API_THROTTLES, unit="{response}", description="throttling answers by code"
        )
        self._quota_used: Gauge = meter.create_gauge(
            Metric.DAILY_QUOTA_USED, unit="{call}", description="API calls used today"
        )
        self._quota_percent: Gauge = meter.create_gauge(
            Metric.DAILY_QUOTA_PERCENT, unit="%", description="percent of the daily quota used"
        )
        self._budget_window: Gauge = meter.create_gauge(
            Metric.BUDGET_WINDOW_CALLS, unit="{call}",
            description="calls in the current rate window, all processes of the app",
        )  # fmt: skip
        self._budget_in_flight: Gauge = meter.create_gauge(
            Metric.BUDGET_IN_FLIGHT, unit="{call}",
            description="calls in flight, all processes of the app",
        )  # fmt: skip
        self._backlog: Gauge = meter.create_gauge(
            Metric.BACKLOG, unit="{record}", description="records waiting in a stream"
        )
        self._lag: Gauge = meter.create_gauge(
            Metric.LAG_SECONDS, unit="s", description="age of the oldest unsynced change"
        )
        self._initial_done: Gauge = meter.create_gauge(
            Metric.INITIAL_SYNC_DONE, unit="{record}", description="initial sync: records copied"
        )
        self._initial_total: Gauge = meter.create_gauge(
            Metric.INITIAL_SYNC_TOTAL, unit="{record}", description="initial sync: records to copy"
        )
        self._suspended: Gauge = meter.create_gauge(
            Metric.INSTANCE_SUSPENDED, unit="1", description="1 while a sync instance is suspended"
        )
        self._queue_depth: Gauge = meter.create_gauge(
            Metric.QUEUE_DEPTH, unit="{message}", description="approximate messages in a queue"
        )
        self._job_duration: Histogram = meter.create_histogram(
            Metric.JOB_DURATION, unit="s", description="duration of one sync job"
        )

    # --- records and streams -----------------------------------------------------------------

    def records(
        self,
        instance: str,
        entity: str,
        direction: Direction,
        outcome: RecordTally,
        count: int = 1,
        *,
        code: str | None = None,
    ) -> None:
        """Count records of one stream that were read, written, skipped or failed.

        Args:
            instance: the sync instance id.
            entity: the entity name (e.g. ``contact``).
            direction: which way the records moved.
            outcome: what happened to them.
            count: how many (0 is allowed and records nothing new).
            code: for ``failed`` only, the target's error code (e.g. Marketo ``1003``).

        Raises:
            ValueError: a negative count, or a code on an outcome other than ``failed``.
        """
        _not_negative("count", count)
        attributes = self._stream(instance, entity, direction)
        attributes[Dim.OUTCOME.value] = RecordTally(outcome).value
        if code is not None:
            if RecordTally(outcome) is not RecordTally.FAILED:
                raise ValueError("code is recorded for failed records only")
            attributes[Dim.CODE.value] = _token("code", code)
        self._records.add(count, attributes)

    def backlog(self, instance: str, entity: str, direction: Direction, pending: int) -> None:
        """Report how many records wait to be synced in a stream (0 when caught up)."""
        _not_negative("pending", pending)
        self._backlog.set(pending, self._stream(instance, entity, direction))

    def lag(self, instance: str, entity: str, direction: Direction, seconds: float) -> None:
        """Report the age of the oldest change not yet synced (0 when caught up)."""
        _not_negative("seconds", seconds)
        self._lag.set(seconds, self._stream(instance, entity, direction))

    def initial_progress(self, instance: str, entity: str, done: int, total: int) -> None:
        """Report initial-sync progress of an entity (Dynamics to Marketo).

        ``total`` may be an estimate that is later corrected; ``done`` above it is reported as is.
        """
        _not_negative("done", done)
        _not_negative("total", total)
        attributes = {Dim.INSTANCE.value: instance, Dim.ENTITY.value: entity}
        self._initial_done.set(done, attributes)
        self._initial_total.set(total, attributes)

    def job(
        self,
        instance: str,
        entity: str,
        direction: Direction,
        outcome: JobEnding,
        seconds: float,
    ) -> None:
        """Record one sync job's duration and how it ended (the workbook's "last run")."""
        _not_negative("seconds", seconds)
        attributes = self._stream(instance, entity, direction)
        attributes[Dim.OUTCOME.value] = JobEnding(outcome).value
        self._job_duration.record(seconds, attributes)

    # --- APIs ----------------------------------------------------------------------------------

    def api_call(
        self,
        system: System,
        operation: str,
        outcome: ApiOutcome,
        *,
        code: str | None = None,
        count: int = 1,
    ) -> None:
        """Count API requests (one by default).

        Args:
            system: ``dynamics`` or ``marketo``.
            operation: a short fixed name such as ``leads.sync`` or ``contacts.delta``, never a
                URL.
            outcome: success, throttled or error.
            code: HTTP status or service error code for non-successful calls.
            count: how many requests ended this way (a reporter may add a batch at once).

        Raises:
            ValueError: ``operation`` or ``code`` is not a short token, or ``count`` < 0.
        """
        _not_negative("count", count)
        attributes = {
            Dim.SYSTEM.value: System(system).value,
            Dim.OPERATION.value: _token("operation", operation),
            Dim.OUTCOME.value: ApiOutcome(outcome).value,
        }
        if code is not None:
            attributes[Dim.CODE.value] = _token("code", code)
        self._api_calls.add(count, attributes)

    def throttled(self, system: System, code: str, *, instance: str | None = None) -> None:
        """Count one throttling answer (Dynamics 429; Marketo 606 rate, 607 daily, 615 concurrency).

        ``instance`` names the sync instance when known, so the quota alert can say which one.
        """
        attributes = {Dim.SYSTEM.value: System(system).value, Dim.CODE.value: _token("code", code)}
        if instance is not None:
            attributes[Dim.INSTANCE.value] = instance
        self._throttles.add(1, attributes)

    def daily_quota(self, system: System, instance: str, used: int, limit: int) -> None:
        """Report API calls used today against the daily quota (Marketo: 00:00 US Central).

        Raises:
            ValueError: a negative ``used`` or a ``limit`` below 1.
        """
        _not_negative("used", used)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        attributes = {Dim.SYSTEM.value: System(system).value, Dim.INSTANCE.value: instance}
        self._quota_used.set(used, attributes)
        self._quota_percent.set(round(100.0 * used / limit, 2), attributes)

    def shared_budget(
        self, system: System, instance: str, window_calls: int, in_flight: int
    ) -> None:
        """Report a shared budget's use by the whole app: calls held in the rate window and
        calls in flight (the daily count goes through :meth:`daily_quota`)."""
        _not_negative("window_calls", window_calls)
        _not_negative("in_flight", in_flight)
        attributes = {Dim.SYSTEM.value: System(system).value, Dim.INSTANCE.value: instance}
        self._budget_window.set(window_calls, attributes)
        self._budget_in_flight.set(in_flight, attributes)

    # --- instances and queues ------------------------------------------------------------------

    def instance_state(self, instance: str, *, suspended: bool, reason: str = "") -> None:
        """Report whether a sync instance runs (0) or is suspended (1), and why.

        Call it on every scheduling pass for every instance, so a suspension keeps showing (and
        its alert keeps firing) until it is resolved.
        """
        if suspended and not reason:
            raise ValueError("a suspended instance needs a reason")
        self._suspended.set(
            1 if suspended else 0,
            {Dim.INSTANCE.value: instance, Dim.REASON.value: reason if suspended else ""},
        )

    def queue_depth(self, queue: str, messages: int) -> None:
        """Report a queue's approximate message count (the job queue and its poison queue)."""
        _not_negative("messages", messages)
        self._queue_depth.set(messages, {Dim.QUEUE.value: queue})

    @staticmethod
    def _stream(instance: str, entity: str, direction: Direction) -> dict[str, str]:
        return {
            Dim.INSTANCE.value: instance,
            Dim.ENTITY.value: entity,
            Dim.DIRECTION.value: Direction(direction).value,
        }
