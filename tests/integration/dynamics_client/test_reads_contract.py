"""Reads over HTTPS: paged full loads, deltas with changes and deletes, expiry, plain reads."""

from __future__ import annotations

import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.dynamics import DynamicsClient, TableRef
from shared.dynamics.odata import eq
from shared.errors import ApiRequestError, DeltaTokenExpiredError

from .conftest import ACCOUNTS, CONTACTS

pytestmark = pytest.mark.integration

COLUMNS = ["firstname", "lastname", "emailaddress1"]


async def full_read(client: DynamicsClient, page_size: int) -> tuple[list[str], str, int]:
    """Every id of a tracked full read, its delta link and the number of pages."""
    ids: list[str] = []
    pages = 0
    delta = None
    async for page in client.iter_pages(CONTACTS, COLUMNS, page_size=page_size):
        ids += [r.id for r in page.records]
        pages += 1
        delta = page.delta_link
    assert delta is not None
    return ids, delta, pages


async def test_full_read_pages_and_ends_with_a_delta_link(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """23 contacts at 10 a page: 3 pages, every row once, etags and versions present."""
    emulator.control.seed(counts={"contact": 23})
    expected = [row["contactid"] for row in emulator.control.records("contact")]
    page = await client.read_page(CONTACTS, COLUMNS, page_size=10)
    assert len(page.records) == 10 and page.next_link and page.delta_link is None
    record = page.records[0]
    assert record.etag and record.version is not None
    assert set(COLUMNS) <= set(record.attributes)
    ids, _, pages = await full_read(client, page_size=10)
    assert pages == 3
    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == 23


async def test_delta_returns_creates_updates_and_deletes(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Changes after the delta link come back once: changed rows, then deleted ids."""
    emulator.control.seed(counts={"contact": 5})
    ids, delta, _ = await full_read(client, page_size=5000)
    created = await client.create(CONTACTS, {"firstname": "New", "lastname": "Row"})
    await client.update(CONTACTS, ids[0], {"firstname": "Changed"})
    await client.delete(CONTACTS, ids[1])

    page = await client.read_page(CONTACTS, COLUMNS, delta_link=delta)
    changed = {r.id: r for r in page.records}
    assert set(changed) == {created.id, ids[0]}
    assert changed[ids[0]].attributes["firstname"] == "Changed"
    assert page.deleted_ids == (ids[1],)
    assert page.delta_link and page.delta_link != delta

    quiet = await client.read_page(CONTACTS, COLUMNS, delta_link=page.delta_link)
    assert quiet.records == () and quiet.deleted_ids == ()
    assert quiet.delta_link is not None


async def test_a_delta_larger_than_a_page_pages_too(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Twelve changes read five at a time arrive over three pages, the delta link on the last."""
    emulator.control.seed(counts={"contact": 12})
    ids, delta, _ = await full_read(client, page_size=5000)
    for record_id in ids:
        await client.update(CONTACTS, record_id, {"lastname": "Bulk"})
    seen: list[str] = []
    pages = [p async for p in client.iter_pages(CONTACTS, COLUMNS, delta_link=delta, page_size=5)]
    for page in pages:
        seen += [r.id for r in page.records]
    assert [len(p.records) for p in pages] == [5, 5, 2]
    assert sorted(seen) == sorted(ids)
    assert pages[-1].delta_link is not None
    assert all(p.delta_link is None for p in pages[:-1])


async def test_an_expired_delta_token_asks_for_a_full_resync(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """0x80044352 becomes DeltaTokenExpiredError; a full read without a link recovers."""
    emulator.control.seed(counts={"contact": 3})
    _, delta, _ = await full_read(client, page_size=5000)
    emulator.control.expire_change_tracking()
    with pytest.raises(DeltaTokenExpiredError) as caught:
        await client.read_page(CONTACTS, COLUMNS, delta_link=delta)
    assert caught.value.code == "0x80044352"
    assert caught.value.status == 400
    assert client.counters.retries == 0
    ids, _, _ = await full_read(client, page_size=5000)
    assert len(ids) == 3


async def test_a_delta_older_than_the_retention_expires(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """A token older than organization.expirechangetrackingindays answers ExpiredVersionStamp."""
    emulator.control.seed(counts={"contact": 2})
    _, delta, _ = await full_read(client, page_size=5000)
    organization = await client.organization()
    assert organization.expire_change_tracking_in_days == 7
    emulator.control.advance_clock(days=8)
    with pytest.raises(DeltaTokenExpiredError):
        await client.read_page(CONTACTS, COLUMNS, delta_link=delta)


async def test_a_table_without_change_tracking_is_refused(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """A track-changes read of an untracked table fails clearly, naming the read."""
    emulator.control.set_change_tracking("contact", False)
    with pytest.raises(ApiRequestError, match="read of contacts failed"):
        await client.read_page(CONTACTS, COLUMNS)
    definition = await client.table_definition("contact")
    assert definition.change_tracking_enabled is False


async def test_plain_read_with_escaped_filter_and_owner_types(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """A quote in a value matches literally and cannot widen the filter; owners name a table."""
    await client.create(CONTACTS, {"firstname": "Ann", "lastname": "O'Brien"})
    await client.create(CONTACTS, {"firstname": "Bob", "lastname": "Other"})
    found = await client.read_page(
        CONTACTS,
        ["lastname", "_ownerid_value"],
        track_changes=False,
        where=eq("lastname", "O'Brien"),
        include_lookup_names=True,
    )
    assert [r.attributes["lastname"] for r in found.records] == ["O'Brien"]
    assert found.records[0].lookup_logical_name("_ownerid_value") in {"systemuser", "team"}
    injected = await client.read_page(
        CONTACTS, ["lastname"], track_changes=False, where=eq("lastname", "x' or lastname ne 'x")
    )
    assert injected.records == ()


async def test_read_records_by_id_and_count(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Rows by id come back with lookup names; count is exact below 5,000."""
    emulator.control.seed(counts={"account": 7})
    ids = [row["accountid"] for row in emulator.control.records("account")]
    rows = await client.read_records(ACCOUNTS, ids[:3], ["name", "_ownerid_value"])
    assert sorted(r.id for r in rows) == sorted(ids[:3])
    assert all(r.lookup_logical_name("_ownerid_value") for r in rows)
    counted = await client.count(ACCOUNTS)
    assert (counted.value, counted.exact) == (7, True)


async def test_count_past_5000_is_a_lower_bound(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """$count stops at 5,000; without a RetrieveTotalRecordCount snapshot that is a lower bound."""
    emulator.control.seed(counts={"team": 5001})
    teams = TableRef.standard("team", "teams")
    counted = await client.count(teams)
    assert (counted.value, counted.exact) == (5000, False)
    assert client.counters.requests == 2
