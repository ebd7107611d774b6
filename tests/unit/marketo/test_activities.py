"""Change feeds: paging tokens, short pages, loop detection, the watermark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from shared.errors import ApiRequestError
from shared.marketo import MarketoClient, PagingLoopError
from tests.unit.marketo.fakes import FakeMarketo, make_client, ok

CHANGES = "/rest/v1/activities/leadchanges.json"
DELETED = "/rest/v1/activities/deletedleads.json"


def change(n: int) -> dict[str, object]:
    return {
        "id": n,
        "marketoGUID": str(n),
        "leadId": 700 + n,
        "activityDate": "2026-03-01T12:00:00+0000",
        "activityTypeId": 13,
        "fields": [{"id": 48, "name": "firstName", "newValue": f"N{n}", "oldValue": "O"}],
        "attributes": [{"name": "Source", "value": "Web service API"}],
    }


def feed(pages: dict[str, tuple[list[int], str, bool]]) -> object:
    """A lead-changes endpoint serving ``token -> (activity numbers, next token, more)``."""

    def answer(request: httpx.Request) -> httpx.Response:
        items, next_token, more = pages[request.url.params["nextPageToken"]]
        extra = {"nextPageToken": next_token, "moreResult": more}
        # Marketo leaves "result" out of a page without activities
        return ok([change(n) for n in items] if items else None, **extra)

    return answer


async def test_paging_token_from_an_aware_datetime() -> None:
    """sinceDatetime is ISO 8601 with its offset (URL-encoded by the client)."""
    fake = FakeMarketo().on("GET", "/rest/v1/activities/pagingtoken.json", ok(nextPageToken="T0"))
    since = datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    async with make_client(fake) as client:
        assert await client.activities.paging_token(since) == "T0"
        with pytest.raises(ValueError, match="timezone-aware"):
            await client.activities.paging_token(datetime(2026, 3, 1))
    request = fake.rest_requests()[0]
    assert request.url.params["sinceDatetime"] == "2026-03-01T08:30:00+05:30"
    assert "%2B05" in str(request.url)  # a raw "+" would be read as a space


async def test_one_page_is_typed() -> None:
    """A page parses into LeadChange models with their fields and attributes."""
    fake = FakeMarketo().on("GET", CHANGES, feed({"T0": ([1, 2], "T1", True)}))
    async with make_client(fake) as client:
        page = await client.activities.lead_changes_page("T0", ["firstName", "email"])
    assert [c.lead_id for c in page.items] == [701, 702]
    first = page.items[0]
    assert first.marketo_guid == "1" and first.activity_type_id == 13
    assert first.activity_date == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert first.fields[0].name == "firstName" and first.fields[0].new_value == "N1"
    assert first.attribute("Source") == "Web service API"
    assert page.next_page_token == "T1" and page.more_result is True
    params = fake.rest_requests()[0].url.params
    assert params["fields"] == "firstName,email" and params["batchSize"] == "300"


async def test_iteration_continues_through_short_and_empty_pages() -> None:
    """Pages with fewer than batchSize items (even none) do not end the feed; only
    moreResult false does, and its token is the watermark."""
    pages = {
        "T0": ([1, 2], "T1", True),
        "T1": ([], "T2", True),
        "T2": ([3], "T3", True),
        "T3": ([], "T4", False),
    }
    fake = FakeMarketo().on("GET", CHANGES, feed(pages))
    async with make_client(fake) as client:
        collected = await client.activities.collect_lead_changes("T0", ["email"], batch_size=2)
    assert [c.id for c in collected.items] == [1, 2, 3]
    assert collected.watermark == "T4"
    assert collected.pages == 4
    assert [r.url.params["nextPageToken"] for r in fake.rest_requests()] == ["T0", "T1", "T2", "T3"]


async def test_iterating_yields_each_page_with_its_token() -> None:
    """The iterator form hands out pages one by one for per-page checkpoints."""
    pages = {"T0": ([1], "T1", True), "T1": ([2], "T2", False)}
    fake = FakeMarketo().on("GET", CHANGES, feed(pages))
    async with make_client(fake) as client:
        seen = [
            (p.next_page_token, [c.id for c in p.items])
            async for p in client.activities.iter_lead_changes("T0", ["email"])
        ]
    assert seen == [("T1", [1]), ("T2", [2])]


async def test_a_repeated_token_with_more_results_is_an_error() -> None:
    """T0 → T1 → T1 with moreResult true would spin forever: PagingLoopError after 2 calls,
    and the looping page is not handed out."""
    pages = {"T0": ([1], "T1", True), "T1": ([2], "T1", True)}
    fake = FakeMarketo().on("GET", CHANGES, feed(pages))
    handed_out: list[str | None] = []

    async def consume(client: MarketoClient) -> None:
        async for page in client.activities.iter_lead_changes("T0", ["email"]):
            handed_out.append(page.next_page_token)

    async with make_client(fake) as client:
        with pytest.raises(PagingLoopError):
            await consume(client)
    assert handed_out == ["T1"]
    assert len(fake.rest_requests()) == 2


async def test_a_cycle_back_to_an_old_token_is_an_error() -> None:
    """Loop detection remembers every token, not just the last one."""
    pages = {"T0": ([1], "T1", True), "T1": ([2], "T0", True)}
    fake = FakeMarketo().on("GET", CHANGES, feed(pages))
    async with make_client(fake) as client:
        with pytest.raises(PagingLoopError):
            await client.activities.collect_lead_changes("T0", ["email"])


async def test_same_token_without_more_results_is_the_end_not_a_loop() -> None:
    """No new activities: the same token comes back with moreResult false, which is fine."""
    fake = FakeMarketo().on("GET", CHANGES, feed({"T0": ([], "T0", False)}))
    async with make_client(fake) as client:
        collected = await client.activities.collect_lead_changes("T0", ["email"])
    assert collected.items == [] and collected.watermark == "T0"


async def test_more_results_without_a_token_is_an_error() -> None:
    """moreResult true with no nextPageToken cannot be followed."""
    fake = FakeMarketo().on("GET", CHANGES, ok([change(1)], moreResult=True))
    async with make_client(fake) as client:
        with pytest.raises(ApiRequestError, match="no nextPageToken"):
            await client.activities.collect_lead_changes("T0", ["email"])


async def test_max_pages_bounds_one_run() -> None:
    """max_pages stops early; the watermark is the last page's token, safe to resume from."""
    pages = {f"T{i}": ([i], f"T{i + 1}", True) for i in range(10)}
    fake = FakeMarketo().on("GET", CHANGES, feed(pages))
    async with make_client(fake) as client:
        collected = await client.activities.collect_lead_changes("T0", ["email"], max_pages=3)
    assert [c.id for c in collected.items] == [0, 1, 2]
    assert collected.watermark == "T3"


async def test_lead_changes_arguments_are_checked() -> None:
    """fields is required, batchSize ≤ 300, leadIds ≤ 30, not both leadIds and listId."""
    async with make_client(FakeMarketo()) as client:
        with pytest.raises(ValueError, match="fields"):
            await client.activities.lead_changes_page("T0", [])
        with pytest.raises(ValueError, match="batch_size"):
            await client.activities.lead_changes_page("T0", ["email"], batch_size=301)
        with pytest.raises(ValueError, match="lead_ids"):
            await client.activities.lead_changes_page("T0", ["email"], lead_ids=list(range(31)))
        with pytest.raises(ValueError, match="not both"):
            await client.activities.lead_changes_page("T0", ["email"], lead_ids=[1], list_id=2)


async def test_deleted_leads_feed() -> None:
    """Deleted leads (activity 37) page the same way and parse into DeletedLead."""
    deleted = {
        "id": 9,
        "marketoGUID": "9",
        "leadId": 55,
        "activityDate": "2026-03-01T12:00:00Z",
        "activityTypeId": 37,
        "primaryAttributeValue": "Jane Doe",
        "attributes": [],
    }
    fake = FakeMarketo().on(
        "GET",
        DELETED,
        ok([deleted], nextPageToken="D1", moreResult=True),
        ok(None, nextPageToken="D2", moreResult=False),
    )
    async with make_client(fake) as client:
        collected = await client.activities.collect_deleted_leads("D0")
    assert [(d.lead_id, d.activity_type_id) for d in collected.items] == [(55, 37)]
    assert collected.watermark == "D2"


async def test_malformed_activity_is_reported() -> None:
    """An activity without its lead id is an ApiRequestError naming what is missing."""
    broken = change(1)
    del broken["leadId"]
    fake = FakeMarketo().on("GET", CHANGES, ok([broken], nextPageToken="T1", moreResult=False))
    async with make_client(fake) as client:
        with pytest.raises(ApiRequestError, match="leadId"):
            await client.activities.lead_changes_page("T0", ["email"])
