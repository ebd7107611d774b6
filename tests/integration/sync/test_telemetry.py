"""A real sync emits the metrics operators watch (read with an in-memory OpenTelemetry reader)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.models import TableRef
from shared.telemetry.metrics import SyncTelemetry
from shared.telemetry.names import Metric
from tests.integration.sync.harness import sync_harness

pytestmark = pytest.mark.integration


def points(reader: InMemoryMetricReader) -> dict[str, list[NumberDataPoint]]:
    """Metric name → number data points."""
    found: dict[str, list[NumberDataPoint]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint):
                        found.setdefault(metric.name, []).append(point)
    return found


def total(found: dict[str, list[NumberDataPoint]], metric: str, **match: str) -> float:
    """Sum of the points of ``metric`` whose attributes include ``match``."""
    return sum(
        p.value
        for p in found.get(metric, [])
        if all((p.attributes or {}).get(k) == v for k, v in match.items())
    )


async def test_records_api_calls_progress_backlog_and_state_are_emitted(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Per instance and entity: records by outcome, API calls per system, progress, backlog."""
    dyn.control.seed(
        counts={"systemuser": 2, "team": 1, "account": 4, "contact": 10},
        seed=41,
        no_sync_share=0.0,
        bad_data_share=0.0,
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with sync_harness(azurite, dyn, mkto, telemetry=SyncTelemetry(provider)) as sync:
            await sync.sync_until_caught_up()
            bad = await sync.runtime.dynamics.create(
                TableRef("contact", "contacts", "contactid"),
                {"lastname": "Broken", "emailaddress1": "broken@"},
            )
            assert bad.id
            await sync.cycle()
            await sync.tick()
            found = points(reader)
    finally:
        provider.shutdown()

    stream = {"instance": "default", "entity": "contact", "direction": "d2m"}
    assert total(found, Metric.RECORDS, outcome="read", **stream) == 11
    assert total(found, Metric.RECORDS, outcome="written", **stream) == 10
    assert total(found, Metric.RECORDS, outcome="failed", code="1001", **stream) == 1
    assert total(found, Metric.API_CALLS, system="dynamics", outcome="success") > 0
    assert total(found, Metric.API_CALLS, system="marketo", operation="leads.sync") >= 2
    assert total(found, Metric.INITIAL_SYNC_DONE, instance="default", entity="contact") == 10
    assert total(found, Metric.BACKLOG, **stream) == 0
    assert total(found, Metric.INSTANCE_SUSPENDED, instance="default") == 0
    assert any(p.attributes.get("queue", "").endswith("-poison") for p in found[Metric.QUEUE_DEPTH])
