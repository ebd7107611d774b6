"""Bulk lead import against the emulator: a CSV with awkward values, failures and warnings."""

from __future__ import annotations

import pytest

from emulators.marketo.runner import RunningMarketo
from shared.marketo import MarketoClient
from tests.integration.marketo_client.conftest import LinkedClock

pytestmark = pytest.mark.integration


async def test_bulk_import_round_trip(
    client: MarketoClient, mkto: RunningMarketo, clock: LinkedClock
) -> None:
    """Quoted commas, quotes and line breaks survive; a bad email fails its row; a repeated key
    is a warning; the job is polled (Queued → Importing → Complete) with backoff. The emulator's
    import worker is stepped once per client wait, so the test never races it."""
    mkto.control.pause_bulk()
    clock.on_sleep.append(lambda _: mkto.control.bulk_step(1))
    rows = [
        {"email": "one@example.com", "firstName": 'Ann "A", Jr.', "address": "1 Main St\nFloor 2"},
        {"email": "not-an-email", "firstName": "Bad", "address": None},
        {"email": "one@example.com", "firstName": "Again", "address": None},
        {"email": "two@example.com", "firstName": "Bo", "address": "x,y"},
    ]
    (result,) = await client.bulk.run(rows, ["email", "firstName", "address"])
    assert result.status.status == "Complete"
    assert 5.0 in clock.sleeps  # the first poll delay
    assert result.status.rows_failed == 1
    assert [p.row["email"] for p in result.failures] == ["not-an-email"]
    assert result.failures[0].message
    assert [p.row["email"] for p in result.warnings] == ["one@example.com"]
    stored = {lead["email"]: lead for lead in mkto.control.leads()}
    assert stored["two@example.com"]["address"] == "x,y"
    assert stored["one@example.com"]["address"] == "1 Main St\nFloor 2"
