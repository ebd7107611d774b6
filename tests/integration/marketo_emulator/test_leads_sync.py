"""Sync Leads: actions, lookup fields, per-record outcomes and validation (Marketo developer docs,
"Leads": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/leads)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, reason, sync_leads


def test_create_then_update_by_email_ignoring_case(rest: httpx.Client) -> None:
    created = sync_leads(rest, [{"email": "ada@example.com", "firstName": "Ada"}])
    assert created == [{"id": created[0]["id"], "status": "created"}]
    updated = sync_leads(rest, [{"email": "ADA@example.com", "lastName": "Lovelace"}])
    assert updated == [{"id": created[0]["id"], "status": "updated"}]


def test_results_come_back_in_input_order_with_reasons(rest: httpx.Client) -> None:
    sync_leads(rest, [{"email": "exists@example.com"}])
    result = sync_leads(
        rest,
        [
            {"email": "new@example.com"},
            {"email": "exists@example.com"},
            {"email": "other@example.com", "notAField": 1},
        ],
        action="createOnly",
    )
    assert [item["status"] for item in result] == ["created", "skipped", "skipped"]
    assert result[1]["reasons"] == [{"code": "1005", "message": "Lead already exists"}]
    assert result[2]["reasons"] == [{"code": "1006", "message": "Field 'notAField' not found"}]


def test_update_only_skips_unknown_leads_with_1004(rest: httpx.Client) -> None:
    result = sync_leads(rest, [{"email": "ghost@example.com"}], action="updateOnly")
    assert reason(result[0]) == "1004"


def test_create_duplicate_then_lookup_matching_two_leads_is_1007(rest: httpx.Client) -> None:
    first = sync_leads(rest, [{"email": "twin@example.com"}])
    second = sync_leads(rest, [{"email": "twin@example.com"}], action="createDuplicate")
    assert second[0]["status"] == "created" and second[0]["id"] != first[0]["id"]
    result = sync_leads(rest, [{"email": "twin@example.com", "firstName": "X"}])
    assert result[0]["reasons"][0] == {
        "code": "1007",
        "message": "Multiple leads match the lookup criteria",
    }
    assert reason(sync_leads(rest, [{"email": "twin@example.com"}], action="updateOnly")[0]) == (
        "1007"
    )


def test_same_key_twice_in_one_request_creates_then_updates(rest: httpx.Client) -> None:
    result = sync_leads(
        rest, [{"email": "x@example.com"}, {"email": "x@example.com", "city": "Lyon"}]
    )
    assert [item["status"] for item in result] == ["created", "updated"]
    assert result[0]["id"] == result[1]["id"]


def test_id_lookup_only_with_update_only(rest: httpx.Client) -> None:
    lead_id = sync_leads(rest, [{"email": "id@example.com"}])[0]["id"]
    result = sync_leads(
        rest, [{"id": lead_id, "city": "Porto"}], action="updateOnly", lookupField="id"
    )
    assert result == [{"id": lead_id, "status": "updated"}]
    refused = sync_leads(rest, [{"id": lead_id, "city": "Porto"}], lookupField="id")
    assert reason(refused[0]) == "1003"
    with_id = sync_leads(rest, [{"id": lead_id, "email": "id@example.com"}], action="createOnly")
    assert reason(with_id[0]) == "1003"


def test_external_person_id_and_custom_string_fields_are_lookup_fields(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    guid = "8C8E4B5E-0D3B-4C6F-9F3A-2B1F0C9D7E61"
    first = sync_leads(
        rest, [{"externalPersonId": guid, "email": "p@example.com"}], lookupField="externalPersonId"
    )
    again = sync_leads(
        rest,
        [{"externalPersonId": guid.lower(), "dynamicsType": "Contact"}],
        lookupField="externalPersonId",
    )
    assert again == [{"id": first[0]["id"], "status": "updated"}]
    owner = sync_leads(rest, [{"dynamicsOwnerId": "owner-1"}], lookupField="dynamicsOwnerId")
    assert owner[0]["status"] == "created"
    assert mkto.control.lead(first[0]["id"])["dynamicsType"] == "Contact"


def test_unsupported_or_unknown_lookup_field_fails_the_request(rest: httpx.Client) -> None:
    body = {"lookupField": "firstName", "input": [{"firstName": "A"}]}
    assert error_code(rest.post("/rest/v1/leads.json", json=body)) == "1011"
    body["lookupField"] = "nope"
    assert error_code(rest.post("/rest/v1/leads.json", json=body)) == "1006"


def test_missing_lookup_value(rest: httpx.Client) -> None:
    created = sync_leads(rest, [{"firstName": "NoEmail"}])
    assert created[0]["status"] == "created"
    assert reason(sync_leads(rest, [{"firstName": "NoEmail"}], action="updateOnly")[0]) == "1002"


def test_more_than_300_records_or_no_input_fails_the_request(rest: httpx.Client) -> None:
    records = [{"email": f"n{i}@example.com"} for i in range(301)]
    assert error_code(rest.post("/rest/v1/leads.json", json={"input": records})) == "1003"
    assert error_code(rest.post("/rest/v1/leads.json", json={"input": []})) == "701"
    assert (
        error_code(
            rest.post("/rest/v1/leads.json", json={"action": "upsert", "input": records[:1]})
        )
        == "1003"
    )
    assert len(sync_leads(rest, records[:300])) == 300


def test_type_mismatches_are_1001(rest: httpx.Client) -> None:
    result = sync_leads(
        rest,
        [
            {"email": "a@example.com", "dynamicsIsDeleted": "maybe"},
            {"email": "b@example.com", "numberOfEmployees": "many"},
            {"email": "c@example.com", "dynamicsCreatedDate": "yesterday"},
            {"email": "d@example.com", "firstName": {"nested": 1}},
            {"email": "e@example.com", "firstName": "x" * 256},
            {"email": "f@example.com", "dynamicsIsDeleted": "true", "annualRevenue": "12.5"},
        ],
    )
    assert [item.get("reasons", [{}])[0].get("code") for item in result] == [
        "1001", "1001", "1001", "1001", "1001", None,
    ]  # fmt: skip
    assert result[5]["status"] == "created"


def test_email_must_be_ascii_and_look_like_an_address(rest: httpx.Client) -> None:
    result = sync_leads(
        rest,
        [{"email": "zoë@example.com"}, {"email": "no-at-sign"}, {"email": "ok+tag@example.co.uk"}],
    )
    assert [item["status"] for item in result] == ["skipped", "skipped", "created"]
    assert reason(result[0]) == "1001"


def test_read_only_fields_are_refused(rest: httpx.Client) -> None:
    result = sync_leads(rest, [{"email": "r@example.com", "createdAt": "2020-01-01T00:00:00Z"}])
    assert reason(result[0]) == "1003"


def test_values_are_stored_normalized(rest: httpx.Client, mkto: RunningMarketo) -> None:
    lead_id = sync_leads(
        rest,
        [
            {
                "email": "n@example.com",
                "dynamicsIsDeleted": "false",
                "dynamicsSyncToMkto": True,
                "dynamicsCreatedDate": "2024-03-01T10:00:00+02:00",
                "numberOfEmployees": "42",
            }
        ],
    )[0]["id"]
    stored = mkto.control.lead(lead_id)
    assert stored is not None
    assert stored["dynamicsIsDeleted"] is False
    assert stored["dynamicsSyncToMkto"] is True
    assert stored["dynamicsCreatedDate"] == "2024-03-01T08:00:00Z"
    assert stored["numberOfEmployees"] == 42
    assert stored["leadPartitionId"] == 1


def test_partition_name_must_exist(rest: httpx.Client) -> None:
    body = {"partitionName": "Nowhere", "input": [{"email": "p@example.com"}]}
    assert error_code(rest.post("/rest/v1/leads.json", json=body)) == "1003"
    body["partitionName"] = "Default"
    assert ok(rest.post("/rest/v1/leads.json", json=body))["result"][0]["status"] == "created"


def test_company_link_inherits_company_fields_and_refuses_company_updates(
    rest: httpx.Client,
) -> None:
    ok(
        rest.post(
            "/rest/v1/companies.json",
            json={
                "input": [{"externalCompanyId": "ACME", "company": "Acme Inc", "industry": "Tools"}]
            },
        )
    )
    lead = sync_leads(rest, [{"email": "l@example.com", "externalCompanyId": "acme"}])[0]
    assert lead["status"] == "created"
    refused = sync_leads(rest, [{"email": "l@example.com", "company": "Other"}])
    assert refused[0]["reasons"][0] == {"code": "1021", "message": "Company update not allowed"}
    shown = ok(
        rest.get(
            f"/rest/v1/lead/{lead['id']}.json",
            params={"fields": "company,industry,externalCompanyId"},
        )
    )
    assert shown["result"] == [
        {"company": "Acme Inc", "industry": "Tools", "externalCompanyId": "acme"}
    ]
    unlinked = sync_leads(rest, [{"email": "u@example.com", "company": "Solo Ltd"}])
    assert unlinked[0]["status"] == "created"


def test_sales_person_link_is_stored(rest: httpx.Client, mkto: RunningMarketo) -> None:
    lead_id = sync_leads(rest, [{"email": "s@example.com", "externalSalesPersonId": "sp-1"}])[0][
        "id"
    ]
    stored = mkto.control.lead(lead_id)
    assert stored is not None and stored["externalSalesPersonId"] == "sp-1"


def test_malformed_requests(rest: httpx.Client) -> None:
    bad_json = rest.post(
        "/rest/v1/leads.json", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_code(bad_json) == "609"
    form = rest.post("/rest/v1/leads.json", data={"input": "x"})
    assert error_code(form) == "612"
    assert error_code(rest.put("/rest/v1/leads.json", json={"input": []})) == "605"
    assert error_code(rest.get("/rest/v1/leadz.json")) == "610"


def test_overlapping_upserts_of_one_key_both_create(
    mkto: RunningMarketo, rest: httpx.Client, token: str
) -> None:
    """Marketo developer docs, "Leads": closely timed upserts with the same key may create
    duplicates."""
    mkto.control.hold("upsert", ["/rest/v1/leads.json"])

    def upsert() -> list[dict[str, object]]:
        with httpx.Client(
            base_url=mkto.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            return sync_leads(c, [{"email": "race@example.com"}])

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(upsert) for _ in range(2)]
        for _ in range(500):
            if mkto.control.waiting() == 2:
                break
            time.sleep(0.01)
        assert mkto.control.waiting() == 2
        mkto.control.release()
        results = [f.result(timeout=30) for f in futures]
    assert [r[0]["status"] for r in results] == ["created", "created"]
    assert results[0][0]["id"] != results[1][0]["id"]
    assert reason(sync_leads(rest, [{"email": "race@example.com"}])[0]) == "1007"
