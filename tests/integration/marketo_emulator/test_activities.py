"""The change feed: paging tokens, lead changes, deleted leads (Marketo developer
docs, "Activities" and "Paging Tokens"; see docs/vendor-facts.md)."""

from __future__ import annotations

from typing import Any

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, sync_leads

EPOCH = "2000-01-01T00:00:00Z"


def _token(rest: httpx.Client, since: str = EPOCH) -> str:
    token: str = ok(
        rest.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since})
    )["nextPageToken"]
    return token


def _caught_up(rest: httpx.Client) -> str:
    """A position token past every activity so far (dates have one-second resolution, so a
    date token for "now" would still include this second's activities)."""
    return _drain(rest, "/rest/v1/activities/leadchanges.json", _token(rest), fields="email")[2]


def _drain(
    rest: httpx.Client, path: str, token: str, **params: str
) -> tuple[list[dict[str, Any]], list[int], str]:
    """Every item from ``token`` on, the size of each page, and the final token."""
    items: list[dict[str, Any]] = []
    sizes: list[int] = []
    for _ in range(1000):
        body = ok(rest.get(path, params={"nextPageToken": token, **params}))
        items.extend(body["result"])
        sizes.append(len(body["result"]))
        token = body["nextPageToken"]
        if not body["moreResult"]:
            return items, sizes, token
    raise AssertionError("the feed never ended")


def test_new_lead_and_change_data_value_activities(rest: httpx.Client) -> None:
    token = _token(rest)
    lead_id = sync_leads(rest, [{"email": "c@example.com", "firstName": "Old"}])[0]["id"]
    sync_leads(rest, [{"email": "c@example.com", "firstName": "New", "dynamicsIsDeleted": True}])
    items, _, _ = _drain(
        rest, "/rest/v1/activities/leadchanges.json", token, fields="firstName,dynamicsIsDeleted"
    )
    assert [item["activityTypeId"] for item in items] == [12, 13, 13]
    new_lead, first_name, deleted = items
    assert new_lead["leadId"] == lead_id and new_lead["fields"] == []
    assert {"name": "Source Type", "value": "Web service API"} in new_lead["attributes"]
    assert first_name["fields"] == [
        {
            "id": first_name["fields"][0]["id"],
            "name": "firstName",
            "newValue": "New",
            "oldValue": "Old",
        }
    ]
    assert deleted["fields"][0]["newValue"] == "true" and deleted["fields"][0]["oldValue"] is None
    attributes = {a["name"]: a["value"] for a in first_name["attributes"]}
    assert attributes["Source"] == "Web service API"
    assert attributes["api method name"] == "syncLead"
    assert attributes["modifying user"] == "dmsync-api@emulator.local"
    assert attributes["Lead ID"] == lead_id
    for item in items:
        assert item["marketoGUID"] == str(item["id"])
        assert item["activityDate"].endswith("Z")


def test_unchanged_values_leave_no_activity(rest: httpx.Client) -> None:
    sync_leads(rest, [{"email": "same@example.com", "city": "Lyon"}])
    token = _caught_up(rest)
    sync_leads(rest, [{"email": "same@example.com", "city": "Lyon"}])
    items, _, _ = _drain(rest, "/rest/v1/activities/leadchanges.json", token, fields="city,email")
    assert items == []
    sync_leads(rest, [{"email": "SAME@example.com"}])  # a lookup that ignores case changes nothing
    items, _, _ = _drain(rest, "/rest/v1/activities/leadchanges.json", token, fields="email")
    assert [item["fields"][0]["newValue"] for item in items] == ["SAME@example.com"]


def test_fields_filter_scans_past_other_changes_so_pages_can_be_short(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    lead_id = sync_leads(rest, [{"email": "s@example.com"}])[0]["id"]
    token = _caught_up(rest)
    mkto.control.add_activities(lead_id, count=5)  # web visits: scanned, never returned
    for i in range(3):
        sync_leads(rest, [{"email": "s@example.com", "city": f"City{i}", "title": f"T{i}"}])
    items, sizes, final = _drain(
        rest, "/rest/v1/activities/leadchanges.json", token, fields="city", batchSize="4"
    )
    assert [item["fields"][0]["newValue"] for item in items] == ["City0", "City1", "City2"]
    # 11 activities scanned 4 at a time: the first page holds none, yet more remain.
    assert sizes == [0, 2, 1]
    again = ok(
        rest.get(
            "/rest/v1/activities/leadchanges.json",
            params={"nextPageToken": final, "fields": "city"},
        )
    )
    assert again["result"] == [] and again["moreResult"] is False
    assert again["nextPageToken"] == final


def test_the_token_is_a_watermark_for_later_changes(rest: httpx.Client) -> None:
    token = _token(rest)
    sync_leads(rest, [{"email": "w@example.com"}])
    _, _, watermark = _drain(rest, "/rest/v1/activities/leadchanges.json", token, fields="email")
    sync_leads(rest, [{"email": "w@example.com", "firstName": "Later"}])
    items, _, _ = _drain(
        rest, "/rest/v1/activities/leadchanges.json", watermark, fields="firstName"
    )
    assert [item["fields"][0]["newValue"] for item in items] == ["Later"]


def test_since_datetime_skips_older_activities(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.freeze_clock()
    sync_leads(rest, [{"email": "old@example.com"}])
    mkto.control.advance_clock(600)
    later = mkto.control.now().strftime("%Y-%m-%dT%H:%M:%S%z")
    sync_leads(rest, [{"email": "new@example.com"}])
    items, _, _ = _drain(
        rest, "/rest/v1/activities/leadchanges.json", _token(rest, later), fields="email"
    )
    assert len(items) == 1 and items[0]["activityTypeId"] == 12


def test_changes_made_inside_marketo_carry_their_source(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    lead_id = sync_leads(rest, [{"email": "ui@example.com"}])[0]["id"]
    token = _caught_up(rest)
    mkto.control.change_lead(
        lead_id,
        {"leadStatus": "MQL", "priority": 3},
        source="Person Detail Page",
        user="marketer@example.com",
    )
    items, _, _ = _drain(
        rest, "/rest/v1/activities/leadchanges.json", token, fields="leadStatus,priority"
    )
    assert [item["fields"][0]["name"] for item in items] == ["leadStatus", "priority"]
    attributes = {a["name"]: a["value"] for a in items[0]["attributes"]}
    assert attributes["Source"] == "Person Detail Page"
    assert attributes["modifying user"] == "marketer@example.com"
    assert "api method name" not in attributes


def test_lead_ids_filter(rest: httpx.Client) -> None:
    token = _token(rest)
    ids = [
        item["id"]
        for item in sync_leads(rest, [{"email": "a@example.com"}, {"email": "b@example.com"}])
    ]
    items, _, _ = _drain(
        rest, "/rest/v1/activities/leadchanges.json", token, fields="email", leadIds=str(ids[1])
    )
    assert [item["leadId"] for item in items] == [ids[1]]


def test_deleted_leads_feed(rest: httpx.Client, mkto: RunningMarketo) -> None:
    token = _token(rest)
    ids = [
        item["id"]
        for item in sync_leads(
            rest,
            [
                {"email": "d1@example.com", "firstName": "Dee", "lastName": "One"},
                {"email": "d2@example.com"},
            ],
        )
    ]
    ok(rest.post("/rest/v1/leads/delete.json", json={"input": [{"id": ids[0]}]}))
    mkto.control.delete_lead_inside(ids[1])
    items, _, _ = _drain(rest, "/rest/v1/activities/deletedleads.json", token)
    assert [(item["leadId"], item["activityTypeId"]) for item in items] == [
        (ids[0], 37),
        (ids[1], 37),
    ]
    assert items[0]["primaryAttributeValueId"] == ids[0]
    assert items[0]["primaryAttributeValue"] == "Dee One"


def test_lead_activities_by_type(rest: httpx.Client) -> None:
    token = _token(rest)
    sync_leads(rest, [{"email": "t@example.com"}])
    sync_leads(rest, [{"email": "t@example.com", "city": "Perth"}])
    items, _, _ = _drain(rest, "/rest/v1/activities.json", token, activityTypeIds="13")
    assert len(items) == 1
    values = {a["name"]: a["value"] for a in items[0]["attributes"]}
    assert values["New Value"] == "Perth" and values["Old Value"] is None
    assert items[0]["primaryAttributeValue"] == "City"
    types = ok(rest.get("/rest/v1/activities/types.json"))["result"]
    assert {t["id"] for t in types} >= {12, 13, 37}


def test_feed_parameter_errors(rest: httpx.Client) -> None:
    token = _token(rest)
    assert (
        error_code(
            rest.get("/rest/v1/activities/leadchanges.json", params={"nextPageToken": token})
        )
        == "701"
    )
    assert (
        error_code(
            rest.get(
                "/rest/v1/activities/leadchanges.json",
                params={"nextPageToken": token, "fields": "bogus"},
            )
        )
        == "1003"
    )
    assert (
        error_code(
            rest.get(
                "/rest/v1/activities/leadchanges.json",
                params={"nextPageToken": "!!", "fields": "email"},
            )
        )
        == "1003"
    )
    assert (
        error_code(rest.get("/rest/v1/activities/leadchanges.json", params={"fields": "email"}))
        == "701"
    )
    assert (
        error_code(
            rest.get(
                "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": "last tuesday"}
            )
        )
        == "704"
    )
    assert error_code(rest.get("/rest/v1/activities/pagingtoken.json")) == "701"
