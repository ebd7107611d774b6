"""Request shapes that real clients send: ``_method=GET`` inside a form-encoded POST body (as well
as in the URL, Marketo developer docs, "Lead Database": "Long URIs"), and ``DELETE
/rest/v1/leads.json`` with a JSON body (absent from today's docs; accepted by Marketo). The
documented refusals stay.
"""

from __future__ import annotations

import httpx
import pytest

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, reason, sync_leads

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form(**fields: str) -> bytes:
    return str(httpx.QueryParams(fields)).encode()


def _seed(rest: httpx.Client) -> list[int]:
    records = [
        {"email": f"shape{i}@example.com", "firstName": f"S{i}", "externalPersonId": f"p-{i}"}
        for i in range(3)
    ]
    return [item["id"] for item in sync_leads(rest, records)]


def test_lead_query_with_method_get_in_the_form_body(rest: httpx.Client) -> None:
    """``POST /rest/v1/leads.json`` whose form body carries ``_method=GET`` is a lead query."""
    ids = _seed(rest)
    body = ok(
        rest.post(
            "/rest/v1/leads.json",
            content=_form(
                _method="GET",
                filterType="email",
                filterValues="shape0@example.com,shape2@example.com",
                fields="id,email,firstName,externalPersonId",
            ),
            headers=FORM,
        )
    )
    assert body["result"] == [
        {"id": ids[0], "email": "shape0@example.com", "firstName": "S0", "externalPersonId": "p-0"},
        {"id": ids[2], "email": "shape2@example.com", "firstName": "S2", "externalPersonId": "p-2"},
    ]
    same = ok(
        rest.get(
            "/rest/v1/leads.json",
            params={
                "filterType": "email",
                "filterValues": "shape0@example.com,shape2@example.com",
                "fields": "id,email,firstName,externalPersonId",
            },
        )
    )
    assert same["result"] == body["result"]


def test_form_body_query_pages_like_a_get(rest: httpx.Client) -> None:
    """``batchSize`` and ``nextPageToken`` travel in the form body too."""
    ids = _seed(rest)
    values = ",".join(f"shape{i}@example.com" for i in range(3))
    first = ok(
        rest.post(
            "/rest/v1/leads.json",
            content=_form(_method="GET", filterType="email", filterValues=values, batchSize="2"),
            headers=FORM,
        )
    )
    assert [lead["id"] for lead in first["result"]] == ids[:2]
    assert first["moreResult"] is True
    second = ok(
        rest.post(
            "/rest/v1/leads.json",
            content=_form(
                _method="GET",
                filterType="email",
                filterValues=values,
                batchSize="2",
                nextPageToken=first["nextPageToken"],
            ),
            headers=FORM,
        )
    )
    assert [lead["id"] for lead in second["result"]] == ids[2:]


@pytest.mark.parametrize("path", ["companies", "salespersons"])
def test_object_queries_accept_method_get_in_the_form_body(rest: httpx.Client, path: str) -> None:
    """Every Lead Database object query documents the POST form (Marketo developer docs,
    "Lead Database")."""
    key = "externalCompanyId" if path == "companies" else "externalSalesPersonId"
    record = {key: "shape-1", "company": "Shape Co"} if path == "companies" else {key: "shape-1"}
    ok(rest.post(f"/rest/v1/{path}.json", json={"input": [record]}))
    body = ok(
        rest.post(
            f"/rest/v1/{path}.json",
            content=_form(_method="GET", filterType=key, filterValues="shape-1", fields=key),
            headers=FORM,
        )
    )
    assert [item[key] for item in body["result"]] == ["shape-1"]


def test_refusals_without_method_get_stay(rest: httpx.Client) -> None:
    """A form body without ``_method=GET`` is still a Sync Leads call, which needs JSON (612);
    ``_method=GET`` in a JSON body is not a query; other methods answer 605."""
    assert (
        error_code(
            rest.post(
                "/rest/v1/leads.json",
                content=_form(filterType="email", filterValues="x@example.com"),
                headers=FORM,
            )
        )
        == "612"
    )
    as_json = rest.post(
        "/rest/v1/leads.json", json={"_method": "GET", "filterType": "email", "input": []}
    )
    assert error_code(as_json) != "" and "result" not in as_json.json()
    assert error_code(rest.put("/rest/v1/leads.json", json={"input": [{"id": 1}]})) == "605"
    assert (
        error_code(
            rest.post(
                "/rest/v1/activities/types.json",
                content=_form(_method="GET"),
                headers={"Content-Type": "application/json"},
            )
        )
        == "605"
    )


def test_delete_on_leads_json_deletes_like_delete_leads(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    """``DELETE /rest/v1/leads.json`` with ``{"input":[{"id":n}]}`` (undocumented, accepted)."""
    ids = _seed(rest)
    body = ok(
        rest.request(
            "DELETE", "/rest/v1/leads.json", json={"input": [{"id": ids[1]}, {"id": 777777}]}
        )
    )
    assert body["result"][0] == {"id": ids[1], "status": "deleted"}
    assert body["result"][1]["id"] == 777777 and reason(body["result"][1]) == "1004"
    assert mkto.control.lead(ids[1]) is None
    assert mkto.control.lead(ids[0]) is not None
    assert error_code(rest.request("DELETE", "/rest/v1/leads.json", json={})) == "701"
