"""Companies, opportunities, roles, sales persons and custom objects (Marketo
developer docs, "Companies", "Opportunities", "Sales Persons", "Custom Objects")."""

from __future__ import annotations

from typing import Any

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, reason, sync_leads


def _sync(
    rest: httpx.Client, path: str, records: list[dict[str, Any]], **options: Any
) -> list[Any]:
    result: list[Any] = ok(rest.post(f"/rest/v1/{path}.json", json={**options, "input": records}))[
        "result"
    ]
    return result


def test_companies_create_update_with_seq(rest: httpx.Client) -> None:
    created = _sync(rest, "companies", [{"externalCompanyId": "A-1", "company": "Acme"}])
    assert created == [{"seq": 0, "status": "created", "id": created[0]["id"]}]
    result = _sync(
        rest,
        "companies",
        [
            {"externalCompanyId": "B-2", "company": "Bolt"},
            {"externalCompanyId": "a-1", "company": "Acme Corp", "dynamicsIsDeleted": True},
        ],
    )
    assert result[0]["seq"] == 0 and result[0]["status"] == "created"
    assert result[1] == {"seq": 1, "status": "updated", "id": created[0]["id"]}


def test_key_repeated_within_one_request_is_1036(rest: httpx.Client) -> None:
    result = _sync(
        rest,
        "companies",
        [{"externalCompanyId": "D"}, {"externalCompanyId": "d"}, {"externalCompanyId": "E"}],
    )
    assert [item["status"] for item in result] == ["created", "skipped", "created"]
    assert result[1]["reasons"] == [{"code": "1036", "message": "Duplicate object found in input"}]


def test_actions_and_dedupe_by(rest: httpx.Client) -> None:
    assert (
        reason(_sync(rest, "companies", [{"externalCompanyId": "X"}], action="updateOnly")[0])
        == "1004"
    )
    _sync(rest, "companies", [{"externalCompanyId": "X"}])
    assert (
        reason(_sync(rest, "companies", [{"externalCompanyId": "X"}], action="createOnly")[0])
        == "1005"
    )
    assert reason(_sync(rest, "companies", [{"company": "no key"}])[0]) == "1002"
    body = {"action": "createOrUpdate", "dedupeBy": "idField", "input": [{"id": 1}]}
    assert error_code(rest.post("/rest/v1/companies.json", json=body)) == "1003"
    assert (
        error_code(
            rest.post("/rest/v1/companies.json", json={"action": "createDuplicate", "input": [{}]})
        )
        == "1003"
    )


def test_companies_query_delete_and_describe(rest: httpx.Client) -> None:
    ids = [
        item["id"]
        for item in _sync(
            rest,
            "companies",
            [
                {"externalCompanyId": "Q1", "company": "One"},
                {"externalCompanyId": "Q2", "company": "Two"},
            ],
        )
    ]
    body = ok(
        rest.get(
            "/rest/v1/companies.json",
            params={"filterType": "externalCompanyId", "filterValues": "q1,Q2"},
        )
    )
    assert [(item["seq"], item["id"], item["externalCompanyId"]) for item in body["result"]] == [
        (0, ids[0], "Q1"),
        (1, ids[1], "Q2"),
    ]
    assert set(body["result"][0]) == {"seq", "id", "externalCompanyId", "updatedAt", "createdAt"}
    body = ok(
        rest.get(
            "/rest/v1/companies.json",
            params={
                "filterType": "id",
                "filterValues": str(ids[1]),
                "fields": "company,dynamicsIsDeleted",
            },
        )
    )
    assert body["result"] == [{"seq": 0, "company": "Two", "dynamicsIsDeleted": None}]
    body = ok(
        rest.get(
            "/rest/v1/companies.json", params={"filterType": "dedupeFields", "filterValues": "Q1"}
        )
    )
    assert [item["id"] for item in body["result"]] == [ids[0]]
    assert (
        error_code(
            rest.get(
                "/rest/v1/companies.json", params={"filterType": "industry", "filterValues": "x"}
            )
        )
        == "1011"
    )
    deleted = ok(
        rest.post(
            "/rest/v1/companies/delete.json",
            json={"input": [{"externalCompanyId": "Q1"}, {"externalCompanyId": "nope"}]},
        )
    )["result"]
    assert deleted[0] == {"seq": 0, "id": ids[0], "status": "deleted"}
    assert deleted[1]["reasons"] == [{"code": "1013", "message": "Record not found"}]
    deleted = ok(
        rest.post(
            "/rest/v1/companies/delete.json",
            json={"deleteBy": "idField", "input": [{"id": ids[1]}]},
        )
    )["result"]
    assert deleted == [{"seq": 0, "id": ids[1], "status": "deleted"}]
    (described,) = ok(rest.get("/rest/v1/companies/describe.json"))["result"]
    assert described["idField"] == "id" and described["dedupeFields"] == ["externalCompanyId"]
    assert ["externalCompanyId"] in described["searchableFields"]
    names = {f["name"]: f for f in described["fields"]}
    assert names["externalCompanyId"]["length"] == 100
    assert names["dynamicsIsDeleted"]["dataType"] == "boolean"


def test_opportunities_need_a_name_and_update_by_guid(rest: httpx.Client) -> None:
    missing = _sync(rest, "opportunities", [{"externalOpportunityId": "O-1"}])
    assert missing[0]["reasons"][0]["code"] == "1002"
    created = _sync(
        rest,
        "opportunities",
        [
            {
                "externalOpportunityId": "O-1",
                "name": "Deal",
                "amount": "10.5",
                "dynamicsIsDeleted": False,
            }
        ],
    )
    guid = created[0]["marketoGUID"]
    assert len(guid) == 36
    updated = _sync(
        rest,
        "opportunities",
        [{"marketoGUID": guid.upper(), "stage": "Won"}],
        action="updateOnly",
        dedupeBy="idField",
    )
    assert updated == [{"seq": 0, "status": "updated", "marketoGUID": guid}]
    body = ok(
        rest.get(
            "/rest/v1/opportunities.json",
            params={
                "filterType": "marketoGUID",
                "filterValues": guid,
                "fields": "name,stage,amount",
            },
        )
    )
    assert body["result"] == [{"seq": 0, "name": "Deal", "stage": "Won", "amount": 10.5}]
    (described,) = ok(rest.get("/rest/v1/opportunities/describe.json"))["result"]
    assert described["idField"] == "marketoGUID"
    assert described["searchableFields"][:2] == [["externalOpportunityId"], ["marketoGUID"]]


def test_unknown_sales_person_fails_the_call_with_718(rest: httpx.Client) -> None:
    body = {
        "input": [{"externalOpportunityId": "O-9", "name": "N", "externalSalesPersonId": "ghost"}]
    }
    assert error_code(rest.post("/rest/v1/opportunities.json", json=body)) == "718"
    _sync(rest, "salespersons", [{"externalSalesPersonId": "ghost", "email": "g@example.com"}])
    assert (
        ok(rest.post("/rest/v1/opportunities.json", json=body))["result"][0]["status"] == "created"
    )


def test_roles_need_existing_parents_and_query_by_compound_key(rest: httpx.Client) -> None:
    lead_id = sync_leads(rest, [{"email": "buyer@example.com"}])[0]["id"]
    role = {
        "externalOpportunityId": "O-R",
        "leadId": lead_id,
        "role": "Technical Buyer",
        "isPrimary": True,
    }
    assert reason(_sync(rest, "opportunities/roles", [role])[0]) == "1013"
    _sync(rest, "opportunities", [{"externalOpportunityId": "O-R", "name": "Roles"}])
    assert reason(_sync(rest, "opportunities/roles", [{**role, "leadId": 999999}])[0]) == "1004"
    created = _sync(rest, "opportunities/roles", [role])
    assert created[0]["status"] == "created"
    again = _sync(rest, "opportunities/roles", [{**role, "isPrimary": False}])
    assert again == [{"seq": 0, "status": "updated", "marketoGUID": created[0]["marketoGUID"]}]
    query = {
        "filterType": "dedupeFields",
        "fields": ["marketoGUID", "isPrimary"],
        "input": [{"externalOpportunityId": "O-R", "leadId": lead_id, "role": "Technical Buyer"}],
    }
    body = ok(rest.post("/rest/v1/opportunities/roles.json", params={"_method": "GET"}, json=query))
    assert body["result"] == [
        {"seq": 0, "marketoGUID": created[0]["marketoGUID"], "isPrimary": False}
    ]
    body = ok(
        rest.get(
            "/rest/v1/opportunities/roles.json",
            params={"filterType": "leadId", "filterValues": str(lead_id)},
        )
    )
    assert len(body["result"]) == 1
    (described,) = ok(rest.get("/rest/v1/opportunities/roles/describe.json"))["result"]
    assert described["dedupeFields"] == ["externalOpportunityId", "leadId", "role"]


def test_sales_persons_email_query_and_delete_in_use(rest: httpx.Client) -> None:
    created = _sync(
        rest,
        "salespersons",
        [
            {"externalSalesPersonId": "SP-1", "email": "sam@example.com", "firstName": "Sam"},
            {"externalSalesPersonId": "SP-2", "email": "dave@example.com"},
        ],
    )
    body = ok(
        rest.get(
            "/rest/v1/salespersons.json",
            params={"filterType": "email", "filterValues": "sam@example.com"},
        )
    )
    assert body["result"][0]["id"] == created[0]["id"]
    assert body["result"][0]["firstName"] == "Sam"  # all populated fields by default
    sync_leads(rest, [{"email": "owned@example.com", "externalSalesPersonId": "SP-1"}])
    deleted = ok(
        rest.post(
            "/rest/v1/salespersons/delete.json",
            json={"input": [{"externalSalesPersonId": "SP-1"}, {"externalSalesPersonId": "SP-2"}]},
        )
    )["result"]
    assert reason(deleted[0]) == "1022"
    assert deleted[1]["status"] == "deleted"


def test_custom_object_with_company_link(rest: httpx.Client, mkto: RunningMarketo) -> None:
    listed = ok(rest.get("/rest/v1/customobjects.json"))["result"]
    assert [item["name"] for item in listed] == ["project_c"]
    (described,) = ok(rest.get("/rest/v1/customobjects/project_c/describe.json"))["result"]
    assert described["dedupeFields"] == ["dynamicsProjectId"]
    assert described["relationships"] == [
        {
            "field": "externalCompanyId",
            "type": "parent",
            "relatedTo": {"name": "Company", "field": "externalCompanyId"},
        }
    ]
    project = {
        "dynamicsProjectId": "P-1",
        "projectName": "Bridge",
        "externalCompanyId": "C-9",
        "budget": 1000,
    }
    assert reason(_sync(rest, "customobjects/project_c", [project])[0]) == "1013"
    _sync(rest, "companies", [{"externalCompanyId": "C-9"}])
    created = _sync(rest, "customobjects/project_c", [project])
    assert created[0]["status"] == "created"
    body = ok(
        rest.get(
            "/rest/v1/customobjects/project_c.json",
            params={
                "filterType": "dynamicsProjectId",
                "filterValues": "p-1",
                "fields": "projectName,budget",
            },
        )
    )
    assert body["result"] == [{"seq": 0, "projectName": "Bridge", "budget": 1000.0}]
    changed = _sync(
        rest,
        "customobjects/project_c",
        [{"dynamicsProjectId": "P-1", "externalCompanyId": "C-9", "status": "Active"}],
    )
    assert changed[0]["status"] == "updated"
    deleted = ok(
        rest.post(
            "/rest/v1/customobjects/project_c/delete.json",
            json={"deleteBy": "idField", "input": [{"marketoGUID": created[0]["marketoGUID"]}]},
        )
    )["result"]
    assert deleted == [{"seq": 0, "marketoGUID": created[0]["marketoGUID"], "status": "deleted"}]
    assert mkto.control.records("customobjects/project_c") == []
    assert error_code(rest.get("/rest/v1/customobjects/unknown_c/describe.json")) == "610"


def test_native_crm_sync_makes_crm_objects_read_only(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.set_native_crm_sync(True)
    result = _sync(rest, "companies", [{"externalCompanyId": "Z"}])
    assert result[0]["reasons"] == [{"code": "1018", "message": "CRM Enabled"}]
    assert (
        _sync(rest, "customobjects/project_c", [{"dynamicsProjectId": "P"}])[0]["status"]
        == "created"
    )


def test_object_field_validation(rest: httpx.Client) -> None:
    result = _sync(
        rest,
        "companies",
        [
            {"externalCompanyId": "V", "numberOfEmployees": "lots"},
            {"externalCompanyId": "W", "nope": 1},
            {"externalCompanyId": "Y", "createdAt": "2020-01-01"},
        ],
    )
    assert [reason(item) for item in result] == ["1001", "1006", "1003"]


def test_roles_go_with_their_lead_or_opportunity(rest: httpx.Client, mkto: RunningMarketo) -> None:
    lead_ids = [
        item["id"]
        for item in sync_leads(rest, [{"email": "r1@example.com"}, {"email": "r2@example.com"}])
    ]
    _sync(
        rest,
        "opportunities",
        [
            {"externalOpportunityId": "O-A", "name": "A"},
            {"externalOpportunityId": "O-B", "name": "B"},
        ],
    )
    roles = [
        {"externalOpportunityId": "O-A", "leadId": lead_ids[0], "role": "Buyer"},
        {"externalOpportunityId": "O-B", "leadId": lead_ids[1], "role": "Buyer"},
        {"externalOpportunityId": "O-B", "leadId": lead_ids[0], "role": "Champion"},
    ]
    assert [item["status"] for item in _sync(rest, "opportunities/roles", roles)] == ["created"] * 3
    ok(rest.post("/rest/v1/leads/delete.json", json={"input": [{"id": lead_ids[0]}]}))
    remaining = mkto.control.records("opportunities/roles")
    assert [(r["externalOpportunityId"], r["leadId"]) for r in remaining] == [("O-B", lead_ids[1])]
    ok(
        rest.post(
            "/rest/v1/opportunities/delete.json", json={"input": [{"externalOpportunityId": "O-B"}]}
        )
    )
    assert mkto.control.records("opportunities/roles") == []


def test_object_queries_accept_post_with_method_get(rest: httpx.Client) -> None:
    ids = [
        item["id"]
        for item in _sync(rest, "companies", [{"externalCompanyId": f"F-{i}"} for i in range(3)])
    ]
    response = rest.post(
        "/rest/v1/companies.json",
        params={"_method": "GET"},
        data={"filterType": "externalCompanyId", "filterValues": "F-0,F-2", "fields": "id"},
    )
    assert [item["id"] for item in ok(response)["result"]] == [ids[0], ids[2]]
    (described,) = ok(rest.get("/rest/v1/salespersons/describe.json"))["result"]
    assert described["idField"] == "id"
    assert described["searchableFields"] == [["email"], ["id"], ["externalSalesPersonId"]]
