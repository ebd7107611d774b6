"""Metric names, dimension names and dimension values: the contract with the KQL queries.

Application Insights stores each OpenTelemetry metric point as a ``customMetrics`` row whose
``name`` is the instrument name below and whose ``customDimensions`` are the point's attributes
(the Azure Monitor exporter copies them as they are). The workbook and alert queries in
``infra/queries`` filter on exactly these strings; ``tests/infra`` fails if a query names a
metric or dimension that is not defined here.
"""

from __future__ import annotations

from enum import StrEnum

METER_NAME = "dmsync"
"""The OpenTelemetry meter (instrumentation scope) every metric is created on."""

APP_LOGGER_NAME = "dmsync"
"""Parent logger for the app's own structured log records."""


class Metric(StrEnum):
    """Instrument names (``customMetrics.name``)."""

    RECORDS = "dmsync.records"
    """Counter: records by outcome (read, written, skipped, failed) per stream."""
    API_CALLS = "dmsync.api.calls"
    """Counter: requests to Dynamics or Marketo by operation and outcome."""
    API_THROTTLES = "dmsync.api.throttles"
    """Counter: throttling answers (429; Marketo 606, 607, 615) by system and code."""
    DAILY_QUOTA_USED = "dmsync.api.daily_quota_used"
    """Gauge: API calls used today (Marketo counts its day from 00:00 US Central)."""
    DAILY_QUOTA_PERCENT = "dmsync.api.daily_quota_percent"
    """Gauge: percent of the daily quota used today."""
    BUDGET_WINDOW_CALLS = "dmsync.api.budget_window_calls"
    """Calls held in the current rate window by every process of the app (the shared budget)."""
    BUDGET_IN_FLIGHT = "dmsync.api.budget_in_flight"
    """Calls in flight across every process of the app (the shared budget)."""
    BACKLOG = "dmsync.backlog"
    """Gauge: records waiting to be synced in a stream."""
    LAG_SECONDS = "dmsync.lag_seconds"
    """Gauge: age in seconds of the oldest change not yet synced in a stream."""
    INITIAL_SYNC_DONE = "dmsync.initial_sync.done"
    """Gauge: records the initial sync of an entity has copied so far."""
    INITIAL_SYNC_TOTAL = "dmsync.initial_sync.total"
    """Gauge: records the initial sync of an entity has to copy."""
    INSTANCE_SUSPENDED = "dmsync.instance.suspended"
    """Gauge: 1 while a sync instance is suspended, 0 while it runs."""
    QUEUE_DEPTH = "dmsync.queue.depth"
    """Gauge: approximate message count of a queue (the job queue, its poison queue)."""
    JOB_DURATION = "dmsync.job.duration"
    """Histogram: seconds one sync job (queue message) took, by outcome."""


class Dim(StrEnum):
    """Dimension (attribute) names (``customMetrics.customDimensions`` keys) and log fields."""

    INSTANCE = "instance"
    ENTITY = "entity"
    DIRECTION = "direction"
    OUTCOME = "outcome"
    CODE = "code"
    SYSTEM = "system"
    OPERATION = "operation"
    REASON = "reason"
    QUEUE = "queue"
    JOB_ID = "job_id"
    """Logs only: per-job ids would make metric series unbounded."""


class RecordTally(StrEnum):
    """What happened to a record."""

    READ = "read"
    WRITTEN = "written"
    SKIPPED = "skipped"
    FAILED = "failed"


class ApiOutcome(StrEnum):
    """How an API call ended."""

    SUCCESS = "success"
    THROTTLED = "throttled"
    ERROR = "error"


class JobEnding(StrEnum):
    """How a sync job ended."""

    COMPLETED = "completed"
    """The stream is caught up for now."""
    CONTINUED = "continued"
    """A page was done and a continuation job was enqueued."""
    RETRY = "retry"
    """It failed in a way the queue retries (throttled, transient)."""
    FAILED = "failed"
    """It failed for good (configuration, authentication, quota)."""


class System(StrEnum):
    """The external systems the sync calls."""

    DYNAMICS = "dynamics"
    MARKETO = "marketo"
