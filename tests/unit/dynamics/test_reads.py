"""Reading: paging of full loads, deltas with deletes, expired tokens, plain reads and counts."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.dynamics import TableRef
from shared.dynamics.odata import eq
from shared.dynamics.reads import parse_page
from shared.errors import ApiRequestError, ConfigurationError, DeltaTokenExpiredError

from .fakes import API, Script, json_response, make_client, odata_error

CONTACTS = TableRef.standard("contact", "contacts")
IDS = [str(uuid.UUID(int=n)) for n in range(1, 10)]
NEXT_2 = (
    API + "contacts?$select=firstname,emailaddress1,contactid&$skiptoken=%3Ccookie%20pagenumber="
    "%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%22%20istracking=%22True%22%20/%3E"
)
NEXT_3 = NEXT_2.replace("pagenumber=%222%22", "pagenumber=%223%22")
DELTA_1 = (
    API
    + "contacts?$select=firstname,emailaddress1,contactid&$deltatoken="
    + "919042%2108%2f22%2f2017%2008%3a10%3a44"
)
DELTA_2 = (
    API
    + "contacts?$select=firstname,emailaddress1,contactid&$deltatoken="
    + "919058%2108%2f22%2f2017%2008%3a21%3a20"
)


def row(n: int, version: int, **fields: object) -> dict[str, object]:
    return {"@odata.etag": f'W/"{version}"', "contactid": IDS[n], "firstname": f"F{n}", **fields}


def deleted(n: int) -> dict[str, object]:
    return {
        "@odata.context": f"{API}$metadata#contacts/$deletedEntity",
        "id": IDS[n],
        "reason": "deleted",
    }


def page(
    rows: list[dict[str, object]], *, next_link: str = "", delta_link: str = ""
) -> httpx.Response:
    body: dict[str, object] = {"@odata.context": f"{API}$metadata#contacts", "value": rows}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta_link:
        body["@odata.deltaLink"] = delta_link
    return json_response(200, body, {"Preference-Applied": "odata.track-changes"})


async def test_full_read_pages_through_to_the_delta_link() -> None:
    """Pages follow nextLinks exactly as given with the same preferences; the delta link ends it."""
    script = Script(
        [
            page([row(0, 10), row(1, 11)], next_link=NEXT_2),
            page([row(2, 12), row(3, 13)], next_link=NEXT_3),
            page([row(4, 14)], delta_link=DELTA_1),
        ]
    )
    client, _ = make_client(script)
    async with client:
        pages = [
            p
            async for p in client.iter_pages(CONTACTS, ["firstname", "emailaddress1"], page_size=2)
        ]
    assert script.raw_urls() == [
        API + "contacts?$select=firstname,emailaddress1,contactid",
        NEXT_2,
        NEXT_3,
    ]
    assert {r.headers["Prefer"] for r in script.requests} == {
        "odata.track-changes,odata.maxpagesize=2"
    }
    assert [[r.id for r in p.records] for p in pages] == [IDS[0:2], IDS[2:4], IDS[4:5]]
    assert [(p.next_link, p.delta_link) for p in pages] == [
        (NEXT_2, None),
        (NEXT_3, None),
        (None, DELTA_1),
    ]
    first = pages[0].records[0]
    assert first.etag == 'W/"10"'
    assert first.version == 10
    assert first.attributes["firstname"] == "F0"


async def test_read_page_resumes_at_a_stored_next_link() -> None:
    """One call, one page: a stored nextLink is fetched as is."""
    script = Script([page([row(4, 14)], delta_link=DELTA_1)])
    client, _ = make_client(script)
    async with client:
        result = await client.read_page(CONTACTS, ["ignored"], next_link=NEXT_3, page_size=2)
    assert script.raw_urls() == [NEXT_3]
    assert result.is_last
    assert result.delta_link == DELTA_1


async def test_delta_read_returns_changes_and_deletes() -> None:
    """The delta link is fetched verbatim; changed rows and deleted ids come apart."""
    script = Script(
        [page([row(1, 20, firstname="New"), deleted(5), deleted(6)], delta_link=DELTA_2)]
    )
    client, _ = make_client(script)
    async with client:
        result = await client.read_page(CONTACTS, ["firstname"], delta_link=DELTA_1)
    assert script.raw_urls() == [DELTA_1]
    assert script.requests[0].headers["Prefer"] == "odata.track-changes,odata.maxpagesize=5000"
    assert [r.id for r in result.records] == [IDS[1]]
    assert result.records[0].attributes["firstname"] == "New"
    assert result.deleted_ids == (IDS[5], IDS[6])
    assert result.delta_link == DELTA_2
    assert result.next_link is None


async def test_a_multi_page_delta_ends_with_its_new_delta_link() -> None:
    """Deltas page like full reads."""
    script = Script([page([row(1, 20)], next_link=NEXT_2), page([deleted(2)], delta_link=DELTA_2)])
    client, _ = make_client(script)
    async with client:
        pages = [p async for p in client.iter_pages(CONTACTS, ["firstname"], delta_link=DELTA_1)]
    assert script.raw_urls() == [DELTA_1, NEXT_2]
    assert pages[-1].deleted_ids == (IDS[2],)
    assert pages[-1].delta_link == DELTA_2


async def test_expired_delta_token_asks_for_a_full_resync() -> None:
    """0x80044352 surfaces as DeltaTokenExpiredError after a single request."""
    script = Script(
        [
            odata_error(
                400,
                "0x80044352",
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        ]
    )
    client, clock = make_client(script)
    async with client:
        with pytest.raises(DeltaTokenExpiredError) as caught:
            await client.read_page(CONTACTS, ["firstname"], delta_link=DELTA_1)
    assert caught.value.code == "0x80044352"
    assert caught.value.status == 400
    assert "delta read of contacts" in str(caught.value)
    assert len(script.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b""),
        json_response(200, {}),
        json_response(200, {"@odata.context": "x", "value": []}),
    ],
)
async def test_an_empty_delta_keeps_the_cursor(reply: httpx.Response) -> None:
    """'An empty JSON response' when nothing changed (Dataverse change tracking docs): resume
    from the same link."""
    client, _ = make_client(Script([reply]))
    async with client:
        result = await client.read_page(CONTACTS, ["firstname"], delta_link=DELTA_1)
    assert result.records == ()
    assert result.deleted_ids == ()
    assert result.delta_link == DELTA_1


async def test_a_full_read_without_delta_link_means_tracking_is_off() -> None:
    """No deltaLink on the last page of a tracked read: a clear configuration error."""
    client, _ = make_client(Script([page([row(0, 1)])]))
    async with client:
        with pytest.raises(
            ConfigurationError, match="turn on change tracking for the table 'contact'"
        ):
            await client.read_page(CONTACTS, ["firstname"])


async def test_tracked_reads_refuse_annotations_and_filters() -> None:
    """Annotations drop the deltaLink (powerapps-docs#439); $filter is unsupported. No request."""
    script = Script([])
    client, _ = make_client(script)
    async with client:
        for options in (
            {"include_lookup_names": True},
            {"formatted_values": True},
            {"where": eq("a", 1)},
        ):
            with pytest.raises(ConfigurationError, match="change tracking cannot use"):
                await client.read_page(CONTACTS, ["firstname"], **options)  # type: ignore[arg-type]
    assert script.requests == []


async def test_plain_read_with_lookup_names_and_filter() -> None:
    """Without tracking: annotations preference, an escaped $filter, and owner logical names."""
    owner = str(uuid.UUID(int=77))
    script = Script(
        [
            json_response(
                200,
                {
                    "value": [
                        row(
                            0,
                            5,
                            **{
                                "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "team",
                                "_ownerid_value": owner,
                            },
                        )
                    ]
                },
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        result = await client.read_page(
            CONTACTS,
            ["firstname", "_ownerid_value"],
            track_changes=False,
            where=eq("lastname", "O'Hara & Sons"),
            include_lookup_names=True,
            page_size=50,
        )
    request = script.requests[0]
    assert request.headers["Prefer"] == (
        'odata.maxpagesize=50,odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
    )
    assert script.raw_urls()[0] == (
        API + "contacts?$select=firstname,_ownerid_value,contactid"
        "&$filter=lastname%20eq%20'O''Hara%20%26%20Sons'"
    )
    assert result.records[0].lookup_logical_name("_ownerid_value") == "team"
    assert result.delta_link is None and result.is_last


async def test_read_records_by_id_in_chunks() -> None:
    """150 ids are read in two filtered requests of at most 100 GUIDs each."""
    ids = [str(uuid.UUID(int=n)) for n in range(150)]
    script = Script(
        [
            json_response(200, {"value": [{"contactid": i} for i in ids[:100]]}),
            json_response(200, {"value": [{"contactid": i} for i in ids[100:]]}),
        ]
    )
    client, _ = make_client(script)
    async with client:
        rows = await client.read_records(CONTACTS, ids, ["firstname"])
    assert [r.id for r in rows] == ids
    first_filter = script.requests[0].url.params["$filter"]
    assert first_filter.count(" eq ") == 100
    assert f"(contactid eq {ids[0]})" in first_filter
    assert "odata.track-changes" not in script.requests[0].headers["Prefer"]
    with pytest.raises(ValueError, match="not a GUID"):
        await client.read_records(CONTACTS, ["1 or 1 eq 1"], ["firstname"])


async def test_a_repeated_next_link_stops_the_loop() -> None:
    """A server that hands back the same nextLink cannot make us spin."""
    script = Script([page([row(0, 1)], next_link=NEXT_2), page([row(1, 2)], next_link=NEXT_2)])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ApiRequestError, match="repeated a nextLink"):
            async for _ in client.iter_pages(CONTACTS, ["firstname"]):
                pass
    assert len(script.requests) == 2


async def test_max_pages_bounds_a_read() -> None:
    """max_pages ends a read that runs longer than the caller allows."""
    script = Script([page([row(0, 1)], next_link=NEXT_2), page([row(1, 2)], next_link=NEXT_3)])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ApiRequestError, match="passed 2 pages"):
            async for _ in client.iter_pages(CONTACTS, ["firstname"], max_pages=2):
                pass


async def test_page_size_and_link_arguments_are_checked() -> None:
    """Page size within 1..5000; next_link and delta_link are exclusive."""
    client, _ = make_client(Script([]))
    async with client:
        with pytest.raises(ValueError, match="page_size"):
            await client.read_page(CONTACTS, [], page_size=5001)
        with pytest.raises(ValueError, match="not both"):
            await client.read_page(CONTACTS, [], next_link=NEXT_2, delta_link=DELTA_1)
        with pytest.raises(ValueError, match="not a valid Dataverse name"):
            await client.read_page(CONTACTS, ["name,fullname"])


def test_rows_without_a_primary_key_are_rejected() -> None:
    """A row lacking its id cannot be synced: the page is refused, naming the table."""
    with pytest.raises(ApiRequestError, match="without contactid"):
        parse_page(CONTACTS, {"value": [{"firstname": "x"}]})
    with pytest.raises(ApiRequestError, match="no 'value' list"):
        parse_page(CONTACTS, {"error": "x"})


def test_version_falls_back_to_versionnumber() -> None:
    """Without a W/"n" ETag the versionnumber column gives the row version."""
    result = parse_page(CONTACTS, {"value": [{"contactid": IDS[0], "versionnumber": 99}]})
    assert result.records[0].version == 99
    assert result.records[0].etag is None


async def test_count_exact_below_5000() -> None:
    """$count=true with one-row pages gives the exact count in one call."""
    script = Script(
        [
            json_response(
                200,
                {
                    "@odata.count": 58,
                    "@Microsoft.Dynamics.CRM.totalrecordcount": 58,
                    "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": False,
                    "value": [{"contactid": IDS[0]}],
                },
            )
        ]
    )
    client, _ = make_client(script)
    async with client:
        counted = await client.count(CONTACTS)
    assert (counted.value, counted.exact) == (58, True)
    assert script.requests[0].url.params["$count"] == "true"
    assert "odata.maxpagesize=1" in script.requests[0].headers["Prefer"]


async def test_count_past_5000_uses_the_snapshot() -> None:
    """Past the 5,000 cap, RetrieveTotalRecordCount gives an approximate total."""
    script = Script(
        [
            json_response(
                200,
                {
                    "@odata.count": 5000,
                    "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": True,
                    "value": [],
                },
            ),
            json_response(
                200,
                {
                    "EntityRecordCountCollection": {
                        "Count": 1,
                        "Keys": ["contact"],
                        "Values": [123456],
                    }
                },
            ),
        ]
    )
    client, _ = make_client(script)
    async with client:
        counted = await client.count(CONTACTS)
    assert (counted.value, counted.exact) == (123456, False)
    assert script.requests[1].url.path.endswith("/RetrieveTotalRecordCount(EntityNames=@p1)")
    assert script.requests[1].url.params["@p1"] == '["contact"]'


async def test_count_falls_back_to_the_lower_bound_when_no_snapshot() -> None:
    """If RetrieveTotalRecordCount is refused, 5,000 is reported as a lower bound."""
    script = Script(
        [
            json_response(
                200,
                {
                    "@odata.count": 5000,
                    "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": True,
                    "value": [],
                },
            ),
            odata_error(400, "0x80040203", "not supported"),
        ]
    )
    client, _ = make_client(script)
    async with client:
        counted = await client.count(CONTACTS)
    assert (counted.value, counted.exact) == (5000, False)


async def test_a_body_that_is_not_json_is_an_api_error() -> None:
    """A proxy's HTML page with status 200 is reported, not parsed."""
    client, _ = make_client(Script([httpx.Response(200, content=b"<html>login</html>")]))
    async with client:
        with pytest.raises(
            ApiRequestError, match="read of contacts returned a body that is not JSON"
        ):
            await client.read_page(CONTACTS, ["firstname"])
