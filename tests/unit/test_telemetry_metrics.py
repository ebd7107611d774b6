"""SyncTelemetry: every metric is emitted with the names and dimensions the KQL queries read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.monitor.opentelemetry.exporter.export.metrics._exporter import (
    _convert_point_to_envelope,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)

from shared.jobs import Direction
from shared.telemetry import (
    METER_NAME,
    ApiOutcome,
    JobEnding,
    Metric,
    RecordTally,
    SyncTelemetry,
    System,
)

D2M = Direction.DYNAMICS_TO_MARKETO
M2D = Direction.MARKETO_TO_DYNAMICS

Point = NumberDataPoint | HistogramDataPoint


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def telemetry(reader: InMemoryMetricReader) -> Iterator[SyncTelemetry]:
    provider = MeterProvider(metric_readers=[reader])
    yield SyncTelemetry(provider)
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, list[Point]]:
    """Metric name -> its data points, from the dmsync meter only."""
    data = reader.get_metrics_data()
    found: dict[str, list[Point]] = {}
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == METER_NAME
            for metric in scope_metrics.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)  # type: ignore[arg-type]
    return found


def value_of(points: list[Point], **attributes: str) -> float:
    """The value of the one point whose attributes are exactly ``attributes``."""
    matching = [p for p in points if dict(p.attributes or {}) == attributes]
    assert len(matching) == 1, f"expected one point with {attributes}, got {points}"
    point = matching[0]
    assert isinstance(point, NumberDataPoint)
    return point.value


def test_records_are_counted_per_stream_and_outcome(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """Read, written, skipped and failed add up per instance, entity, direction and outcome."""
    telemetry.records("contoso", "contact", D2M, RecordTally.READ, 300)
    telemetry.records("contoso", "contact", D2M, RecordTally.WRITTEN, 290)
    telemetry.records("contoso", "contact", D2M, RecordTally.WRITTEN, 5)
    telemetry.records("contoso", "contact", D2M, RecordTally.SKIPPED, 3)
    telemetry.records("contoso", "contact", D2M, RecordTally.FAILED, 2, code="1003")
    telemetry.records("contoso", "lead", M2D, RecordTally.WRITTEN, 7)

    points = collect(reader)[Metric.RECORDS]
    stream = {"instance": "contoso", "entity": "contact", "direction": "d2m"}
    assert value_of(points, **stream, outcome="read") == 300
    assert value_of(points, **stream, outcome="written") == 295
    assert value_of(points, **stream, outcome="skipped") == 3
    assert value_of(points, **stream, outcome="failed", code="1003") == 2
    lead = {"instance": "contoso", "entity": "lead", "direction": "m2d"}
    assert value_of(points, **lead, outcome="written") == 7


def test_api_calls_and_throttles_are_counted_per_system(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """API calls carry system, operation, outcome (and code); throttles carry system and code."""
    for _ in range(3):
        telemetry.api_call(System.MARKETO, "leads.sync", ApiOutcome.SUCCESS)
    telemetry.api_call(System.MARKETO, "leads.sync", ApiOutcome.THROTTLED, code="606")
    telemetry.api_call(System.DYNAMICS, "contacts.delta", ApiOutcome.ERROR, code="500")
    telemetry.throttled(System.MARKETO, "606")
    telemetry.throttled(System.MARKETO, "607", instance="contoso")
    telemetry.throttled(System.DYNAMICS, "429")

    metrics = collect(reader)
    calls = metrics[Metric.API_CALLS]
    assert value_of(calls, system="marketo", operation="leads.sync", outcome="success") == 3
    assert (
        value_of(calls, system="marketo", operation="leads.sync", outcome="throttled", code="606")
        == 1
    )
    assert (
        value_of(calls, system="dynamics", operation="contacts.delta", outcome="error", code="500")
        == 1
    )
    throttles = metrics[Metric.API_THROTTLES]
    assert value_of(throttles, system="marketo", code="606") == 1
    assert value_of(throttles, system="marketo", code="607", instance="contoso") == 1
    assert value_of(throttles, system="dynamics", code="429") == 1


def test_backlog_lag_and_initial_progress_report_the_latest_value(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """Gauges keep the last value per stream (what the workbook shows as pending, lag, %)."""
    telemetry.backlog("contoso", "contact", D2M, 1200)
    telemetry.backlog("contoso", "contact", D2M, 900)
    telemetry.lag("contoso", "contact", D2M, 42.5)
    telemetry.initial_progress("contoso", "account", done=2_500, total=10_000)

    metrics = collect(reader)
    stream = {"instance": "contoso", "entity": "contact", "direction": "d2m"}
    assert value_of(metrics[Metric.BACKLOG], **stream) == 900
    assert value_of(metrics[Metric.LAG_SECONDS], **stream) == 42.5
    entity = {"instance": "contoso", "entity": "account"}
    assert value_of(metrics[Metric.INITIAL_SYNC_DONE], **entity) == 2_500
    assert value_of(metrics[Metric.INITIAL_SYNC_TOTAL], **entity) == 10_000


def test_quota_instance_state_and_queue_depth(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """The gauges the alert rules read: quota %, suspended flag with reason, poison depth."""
    telemetry.daily_quota(System.MARKETO, "contoso", used=41_000, limit=50_000)
    telemetry.instance_state("contoso", suspended=True, reason="dynamics environment copied")
    telemetry.instance_state("fabrikam", suspended=False)
    telemetry.queue_depth("sync-jobs-poison", 2)

    metrics = collect(reader)
    quota = {"system": "marketo", "instance": "contoso"}
    assert value_of(metrics[Metric.DAILY_QUOTA_USED], **quota) == 41_000
    assert value_of(metrics[Metric.DAILY_QUOTA_PERCENT], **quota) == 82.0
    suspended = metrics[Metric.INSTANCE_SUSPENDED]
    assert value_of(suspended, instance="contoso", reason="dynamics environment copied") == 1
    assert value_of(suspended, instance="fabrikam", reason="") == 0
    assert value_of(metrics[Metric.QUEUE_DEPTH], queue="sync-jobs-poison") == 2


def test_job_duration_is_a_histogram_per_stream_and_outcome(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """Each job records its duration; count and sum are what the workbook's last run reads."""
    telemetry.job("contoso", "contact", D2M, JobEnding.CONTINUED, 12.0)
    telemetry.job("contoso", "contact", D2M, JobEnding.CONTINUED, 8.0)

    (point,) = collect(reader)[Metric.JOB_DURATION]
    assert isinstance(point, HistogramDataPoint)
    assert dict(point.attributes or {}) == {
        "instance": "contoso",
        "entity": "contact",
        "direction": "d2m",
        "outcome": "continued",
    }
    assert (point.count, point.sum, point.min, point.max) == (2, 20.0, 8.0, 12.0)


def test_outcomes_may_be_given_as_their_text(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """Callers holding plain strings ('failed') get the same rules and dimensions."""
    telemetry.records("i", "lead", D2M, "failed", 2, code="1003")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failed"):
        telemetry.records("i", "lead", D2M, "written", 1, code="1003")  # type: ignore[arg-type]
    points = collect(reader)[Metric.RECORDS]
    assert (
        value_of(
            points, instance="i", entity="lead", direction="d2m", outcome="failed", code="1003"
        )
        == 2
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.records("i", "e", D2M, RecordTally.READ, -1), "count"),
        (lambda t: t.records("i", "e", D2M, RecordTally.WRITTEN, 1, code="x"), "failed"),
        (lambda t: t.backlog("i", "e", D2M, -5), "pending"),
        (lambda t: t.api_call(System.MARKETO, "https://x/rest?a=b", ApiOutcome.ERROR), "operation"),
        (lambda t: t.throttled(System.MARKETO, "606 too many calls"), "code"),
        (lambda t: t.daily_quota(System.MARKETO, "i", 1, 0), "limit"),
        (lambda t: t.instance_state("i", suspended=True), "reason"),
        (lambda t: t.shared_budget(System.MARKETO, "i", -1, 0), "window_calls"),
    ],
)
def test_bad_measurements_are_refused(telemetry: SyncTelemetry, call: object, message: str) -> None:
    """Negative values, free text or URLs as dimensions, and reasonless suspensions raise."""
    with pytest.raises(ValueError, match=message):
        call(telemetry)  # type: ignore[operator]


def test_every_metric_becomes_a_custom_metric_with_its_dimensions(
    telemetry: SyncTelemetry, reader: InMemoryMetricReader
) -> None:
    """The Azure Monitor exporter turns each point into name + customDimensions as emitted.

    This is the mapping the KQL in infra/queries relies on (customMetrics.name is the instrument
    name; customDimensions holds the attributes unchanged).
    """
    telemetry.records("contoso", "contact", D2M, RecordTally.WRITTEN, 10)
    telemetry.backlog("contoso", "contact", D2M, 4)
    telemetry.job("contoso", "contact", D2M, JobEnding.COMPLETED, 3.0)
    telemetry.api_call(System.DYNAMICS, "contacts.delta", ApiOutcome.SUCCESS)
    telemetry.throttled(System.DYNAMICS, "429")
    telemetry.daily_quota(System.MARKETO, "contoso", 10, 100)
    telemetry.initial_progress("contoso", "account", 1, 2)
    telemetry.instance_state("contoso", suspended=False)
    telemetry.queue_depth("sync-jobs", 0)
    telemetry.lag("contoso", "contact", D2M, 1.0)
    telemetry.shared_budget(System.MARKETO, "contoso", 42, 3)

    metrics = collect(reader)
    assert set(metrics) == {m.value for m in Metric}  # every metric was exercised above
    for name, points in metrics.items():
        for point in points:
            envelope = _convert_point_to_envelope(point, name)
            data = envelope.data.base_data  # type: ignore[union-attr]
            assert data.metrics[0].name == name
            assert data.properties == dict(point.attributes or {})
