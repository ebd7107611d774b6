"""Change feeds against the emulator: short pages with moreResult true, the watermark, resume."""

from __future__ import annotations

import pytest

from emulators.marketo.runner import RunningMarketo
from shared.marketo import MarketoClient

pytestmark = pytest.mark.integration


async def test_lead_changes_through_short_pages_to_a_resumable_watermark(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """New Lead and Change Data Value activities arrive through pages the emulator cuts short
    (web-visit noise is scanned but not returned); the final token resumes exactly after them."""
    token = await client.activities.paging_token(mkto.control.now())
    outcomes = await client.leads.sync(
        [{"email": f"feed{i}@example.com", "firstName": f"F{i}"} for i in range(3)]
    )
    ids = [o.marketo_id for o in outcomes]
    assert all(isinstance(i, int) for i in ids)
    mkto.control.add_activities(ids[0], count=7)  # visits: scanned, never returned
    mkto.control.change_lead(ids[1], {"firstName": "Renamed"})

    pages = [
        p async for p in client.activities.iter_lead_changes(token, ["firstName"], batch_size=2)
    ]
    items = [c for p in pages for c in p.items]
    assert any(p.more_result and len(p.items) < 2 for p in pages)  # short page, more to come
    assert pages[-1].more_result is False
    assert sorted(c.lead_id for c in items if c.activity_type_id == 12) == sorted(ids)
    (change,) = [c for c in items if c.activity_type_id == 13]
    assert change.lead_id == ids[1]
    assert [(f.name, f.new_value) for f in change.fields] == [("firstName", "Renamed")]
    assert len({c.marketo_guid for c in items}) == len(items)

    watermark = pages[-1].next_page_token
    assert watermark
    mkto.control.change_lead(ids[2], {"firstName": "Later"})
    resumed = await client.activities.collect_lead_changes(watermark, ["firstName"])
    assert [(c.lead_id, c.activity_type_id) for c in resumed.items] == [(ids[2], 13)]
    assert resumed.watermark and resumed.watermark != watermark


async def test_deleted_leads_feed(client: MarketoClient, mkto: RunningMarketo) -> None:
    """A lead deleted through the API shows up once in deletedleads (activity 37)."""
    token = await client.activities.paging_token(mkto.control.now())
    (created,) = await client.leads.sync([{"email": "bye@example.com"}])
    assert created.marketo_id is not None
    await client.leads.delete([created.marketo_id])
    feed = await client.activities.collect_deleted_leads(token, batch_size=300)
    assert [(d.lead_id, d.activity_type_id) for d in feed.items] == [(created.marketo_id, 37)]
