"""Reading and deleting leads, describe (Marketo developer docs, "Leads" and
"Error Codes" 414; see docs/vendor-facts.md)."""

from __future__ import annotations

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, reason, sync_leads


def _seed(rest: httpx.Client, count: int) -> list[int]:
    records = [
        {"email": f"q{i}@example.com", "firstName": f"F{i}", "externalPersonId": f"guid-{i}"}
        for i in range(count)
    ]
    return [item["id"] for item in sync_leads(rest, records)]


def test_filter_by_email_returns_the_default_fields(rest: httpx.Client) -> None:
    ids = _seed(rest, 2)
    body = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={"filterType": "email", "filterValues": "q0@example.com,Q1@EXAMPLE.COM"},
        )
    )
    assert [lead["id"] for lead in body["result"]] == ids
    assert set(body["result"][0]) == {
        "id",
        "email",
        "updatedAt",
        "createdAt",
        "firstName",
        "lastName",
    }
    assert body["result"][0]["createdAt"].endswith("Z")


def test_filter_by_id_and_external_person_id_with_chosen_fields(rest: httpx.Client) -> None:
    ids = _seed(rest, 3)
    body = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={
                "filterType": "id",
                "filterValues": f"{ids[2]},{ids[0]}",
                "fields": "email,dynamicsType",
            },
        )
    )
    assert body["result"] == [
        {"email": "q0@example.com", "dynamicsType": None},
        {"email": "q2@example.com", "dynamicsType": None},
    ]
    body = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={"filterType": "externalPersonId", "filterValues": "GUID-1"},
        )
    )
    assert [lead["id"] for lead in body["result"]] == [ids[1]]


def test_no_match_is_an_empty_success(rest: httpx.Client) -> None:
    body = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={"filterType": "email", "filterValues": "none@example.com"},
        )
    )
    assert body["result"] == []


def test_bad_filter_parameters(rest: httpx.Client) -> None:
    base = {"filterType": "email", "filterValues": "a@example.com"}
    assert (
        error_code(rest.get("/rest/v1/leads.json", params={**base, "fields": "email,nope,nada"}))
        == "1003"
    )
    assert (
        rest.get("/rest/v1/leads.json", params={**base, "fields": "nope"}).json()["errors"][0][
            "message"
        ]
        == "Invalid fields [nope]"
    )
    assert (
        error_code(
            rest.get("/rest/v1/leads.json", params={"filterType": "firstName", "filterValues": "A"})
        )
        == "1011"
    )
    assert error_code(rest.get("/rest/v1/leads.json", params={"filterValues": "A"})) == "701"
    many = ",".join(f"v{i}@example.com" for i in range(301))
    assert (
        error_code(
            rest.get("/rest/v1/leads.json", params={"filterType": "email", "filterValues": many})
        )
        == "1003"
    )
    assert (
        error_code(rest.get("/rest/v1/leads.json", params={**base, "batchSize": "301"})) == "1003"
    )


def test_more_than_1000_matches_is_1003(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.seed(
        leads=[{"email": f"m{i}@example.com", "dynamicsType": "Lead"} for i in range(1001)]
    )
    response = rest.get(
        "/rest/v1/leads.json", params={"filterType": "dynamicsType", "filterValues": "Lead"}
    )
    assert error_code(response) == "1003"
    assert response.json()["errors"][0]["message"] == "Too many results match the filter"


def test_paging_with_batch_size_and_next_page_token(rest: httpx.Client) -> None:
    ids = _seed(rest, 5)
    values = ",".join(f"q{i}@example.com" for i in range(5))
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        params = {"filterType": "email", "filterValues": values, "batchSize": "2", "fields": "id"}
        if token:
            params["nextPageToken"] = token
        body = ok(rest.get("/rest/v1/leads.json", params=params))
        pages += 1
        seen.extend(lead["id"] for lead in body["result"])
        if not body["moreResult"]:
            assert "nextPageToken" not in body
            break
        token = body["nextPageToken"]
    assert seen == ids
    assert pages == 3


def test_long_filters_use_post_with_method_get(rest: httpx.Client) -> None:
    ids = _seed(rest, 2)
    guids = ",".join(["guid-0", "guid-1"] + [f"{'f' * 36}-{i}" for i in range(250)])
    assert (
        error_code(
            rest.get(
                "/rest/v1/leads.json",
                params={"filterType": "externalPersonId", "filterValues": guids},
            ),
            status=414,
        )
        == "414"
    )
    response = rest.post(
        "/rest/v1/leads.json",
        params={"_method": "GET"},
        content=httpx.QueryParams({"filterType": "externalPersonId", "filterValues": guids})
        .__str__()
        .encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [lead["id"] for lead in ok(response)["result"]] == ids


def test_get_lead_by_id(rest: httpx.Client) -> None:
    lead_id = _seed(rest, 1)[0]
    body = ok(
        rest.get(f"/rest/v1/lead/{lead_id}.json", params={"fields": "email,externalPersonId"})
    )
    assert body["result"] == [{"email": "q0@example.com", "externalPersonId": "guid-0"}]
    assert ok(rest.get("/rest/v1/lead/999999.json"))["result"] == []


def test_delete_leads(rest: httpx.Client, mkto: RunningMarketo) -> None:
    ids = _seed(rest, 2)
    body = ok(
        rest.post("/rest/v1/leads/delete.json", json={"input": [{"id": ids[0]}, {"id": 424242}]})
    )
    assert body["result"][0] == {"id": ids[0], "status": "deleted"}
    assert body["result"][1]["id"] == 424242 and reason(body["result"][1]) == "1004"
    assert mkto.control.lead(ids[0]) is None
    assert mkto.control.lead(ids[1]) is not None
    too_many = [{"id": i} for i in range(301)]
    assert error_code(rest.post("/rest/v1/leads/delete.json", json={"input": too_many})) == "1003"


def test_describe_lists_standard_and_custom_fields(rest: httpx.Client) -> None:
    fields = {f["rest"]["name"]: f for f in ok(rest.get("/rest/v1/leads/describe.json"))["result"]}
    for name in (
        "email",
        "firstName",
        "lastName",
        "title",
        "company",
        "phone",
        "mobilePhone",
        "fax",
        "address",
        "city",
        "state",
        "country",
        "postalCode",
        "leadSource",
        "leadStatus",
        "annualRevenue",
        "website",
        "externalPersonId",
        "externalCompanyId",
        "externalSalesPersonId",
        "unsubscribed",
        "doNotCall",
    ):
        assert name in fields, name  # fmt: skip
    assert fields["email"]["dataType"] == "email" and fields["email"]["length"] == 255
    assert fields["id"]["rest"]["readOnly"] is True
    assert fields["dynamicsType"]["dataType"] == "string"
    assert fields["dynamicsIsDeleted"]["dataType"] == "boolean"
    assert fields["dynamicsCreatedDate"]["dataType"] == "datetime"
    assert fields["dynamicsOwnerId"]["dataType"] == "string"
    assert fields["dynamicsSyncToMkto"]["dataType"] == "boolean"


def test_describe2_lists_searchable_fields(rest: httpx.Client) -> None:
    (described,) = ok(rest.get("/rest/v1/leads/describe2.json"))["result"]
    assert described["name"] == "API Lead"
    searchable = [group[0] for group in described["searchableFields"]]
    for name in (
        "id",
        "email",
        "externalPersonId",
        "externalCompanyId",
        "dynamicsType",
        "dynamicsOwnerId",
    ):
        assert name in searchable
    assert "firstName" not in searchable
    field = next(f for f in described["fields"] if f["name"] == "email")
    assert field == {
        "name": "email",
        "displayName": "Email Address",
        "dataType": "email",
        "length": 255,
        "updateable": True,
        "crmManaged": False,
    }
