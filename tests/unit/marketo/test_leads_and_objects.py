"""Leads and the generic object API: paths, parameters, chunking, paging, describe."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.marketo import PagingLoopError
from shared.marketo.objects import (
    COMPANIES,
    OPPORTUNITIES,
    OPPORTUNITY_ROLES,
    SALES_PERSONS,
    custom_object_type,
)
from tests.unit.marketo.fakes import FakeMarketo, body_of, make_client, ok


async def test_lead_sync_sends_action_lookup_and_partition() -> None:
    """Sync Leads posts action, lookupField and partitionName with the records."""
    fake = FakeMarketo().on(
        "POST",
        "/rest/v1/leads.json",
        ok([{"id": 1, "status": "created"}, {"id": 2, "status": "updated"}]),
    )
    async with make_client(fake) as client:
        outcomes = await client.leads.sync(
            [{"externalPersonId": "a"}, {"externalPersonId": "b"}],
            action="createOnly",
            lookup_field="externalPersonId",
            partition_name="Default",
        )
    assert [(o.status, o.marketo_id) for o in outcomes] == [("created", 1), ("updated", 2)]
    body = body_of(fake.rest_requests()[0])
    assert body["action"] == "createOnly"
    assert body["lookupField"] == "externalPersonId"
    assert body["partitionName"] == "Default"
    assert fake.rest_requests()[0].headers["Content-Type"] == "application/json"


async def test_invalid_lead_sync_arguments_are_refused_before_any_call() -> None:
    """id as lookup needs updateOnly; a partition needs a create action."""
    fake = FakeMarketo()
    async with make_client(fake) as client:
        with pytest.raises(ValueError, match="updateOnly"):
            await client.leads.sync([{"id": 1}], lookup_field="id")
        with pytest.raises(ValueError, match="partition_name"):
            await client.leads.sync([{"id": 1}], action="updateOnly", partition_name="P")
    assert fake.requests == []


async def test_get_by_filter_chunks_values_by_300_and_follows_pages() -> None:
    """650 values make 3 value chunks; a chunk with more results is paged by nextPageToken."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        values = params["filterValues"].split(",")
        token = params.get("nextPageToken")
        assert params["filterType"] == "email" and params["fields"] == "id,email"
        assert params["batchSize"] == "300" and len(values) <= 300
        if values[0] == "v0" and token is None:
            return ok([{"id": 1}], nextPageToken="P2", moreResult=True)
        if token == "P2":
            return ok([{"id": 2}], moreResult=False)
        return ok([{"id": int(values[0][1:])}], moreResult=False)

    fake = FakeMarketo().on("GET", "/rest/v1/leads.json", answer)
    async with make_client(fake) as client:
        found = await client.leads.get_by_filter(
            "email", [f"v{i}" for i in range(650)], fields=["id", "email"]
        )
    assert found == [{"id": 1}, {"id": 2}, {"id": 300}, {"id": 600}]
    assert len(fake.rest_requests()) == 4


async def test_filter_values_with_commas_are_refused() -> None:
    """filterValues is comma-separated, so a value with a comma cannot be asked for."""
    async with make_client(FakeMarketo()) as client:
        with pytest.raises(ValueError, match="comma"):
            await client.leads.get_by_filter("email", ["a,b@example.com"])


async def test_query_paging_loop_is_detected() -> None:
    """A query page handing back the same token with more results is an error, not a spin."""
    fake = FakeMarketo().on(
        "GET", "/rest/v1/leads.json", ok([{"id": 1}], nextPageToken="SAME", moreResult=True)
    )
    async with make_client(fake) as client:
        with pytest.raises(PagingLoopError):
            await client.leads.get_by_filter("id", [1])
    assert len(fake.rest_requests()) == 2


async def test_get_by_id_and_missing_lead() -> None:
    """Get Lead by Id returns the record, or None when the result is empty."""
    fake = (
        FakeMarketo()
        .on("GET", "/rest/v1/lead/42.json", ok([{"id": 42, "email": "x@example.com"}]))
        .on("GET", "/rest/v1/lead/43.json", ok([]))
    )
    async with make_client(fake) as client:
        assert await client.leads.get_by_id(42, fields=["email"]) == {
            "id": 42,
            "email": "x@example.com",
        }
        assert await client.leads.get_by_id(43) is None
    assert fake.rest_requests()[0].url.params["fields"] == "email"


async def test_delete_leads_reports_each_id() -> None:
    """Delete Leads sends ids and returns deleted/skipped per id in order."""
    fake = FakeMarketo().on(
        "POST",
        "/rest/v1/leads/delete.json",
        ok(
            [
                {"id": 5, "status": "deleted"},
                {"id": 6, "status": "skipped", "reasons": [{"code": "1004", "message": "nf"}]},
            ]
        ),
    )
    async with make_client(fake) as client:
        outcomes = await client.leads.delete([5, 6])
    assert body_of(fake.rest_requests()[0]) == {"input": [{"id": 5}, {"id": 6}]}
    assert [o.status for o in outcomes] == ["deleted", "skipped"]
    assert outcomes[1].reason_codes == ("1004",)


async def test_lead_describe_gives_names_and_types() -> None:
    """Describe returns REST names, types and lengths; SOAP-only fields have no API name."""
    fields = [
        {
            "id": 1,
            "displayName": "Email",
            "dataType": "email",
            "length": 255,
            "rest": {"name": "email", "readOnly": False},
        },
        {"id": 2, "displayName": "Legacy", "dataType": "string", "soap": {"name": "Legacy"}},
    ]
    fake = FakeMarketo().on("GET", "/rest/v1/leads/describe.json", ok(fields))
    async with make_client(fake) as client:
        described = await client.leads.describe()
    assert [(f.api_name, f.data_type, f.length) for f in described] == [
        ("email", "email", 255),
        (None, "string", None),
    ]


@pytest.mark.parametrize(
    ("object_type", "path"),
    [
        (COMPANIES, "companies"),
        (OPPORTUNITIES, "opportunities"),
        (OPPORTUNITY_ROLES, "opportunities/roles"),
        (SALES_PERSONS, "salespersons"),
        (custom_object_type("car_c"), "customobjects/car_c"),
    ],
)
async def test_every_object_type_uses_one_implementation(object_type: Any, path: str) -> None:
    """Sync, query, delete and describe go to ``/rest/v1/<path>...`` for every object type."""
    fake = (
        FakeMarketo()
        .on("POST", f"/rest/v1/{path}.json", ok([{"seq": 0, "status": "created", "id": 9}]))
        .on("GET", f"/rest/v1/{path}.json", ok([{"seq": 0, "id": 9}]))
        .on("POST", f"/rest/v1/{path}/delete.json", ok([{"seq": 0, "status": "deleted"}]))
        .on(
            "GET",
            f"/rest/v1/{path}/describe.json",
            ok(
                [
                    {
                        "idField": "id",
                        "dedupeFields": ["k"],
                        "searchableFields": [["k"]],
                        "fields": [{"name": "k", "dataType": "string"}],
                    }
                ]
            ),
        )
    )
    async with make_client(fake) as client:
        api = (
            client.custom_object("car_c")
            if path.startswith("custom")
            else {
                "companies": client.companies,
                "opportunities": client.opportunities,
                "opportunities/roles": client.opportunity_roles,
                "salespersons": client.sales_persons,
            }[path]
        )
        assert api.type.path == object_type.path
        synced = await api.sync([{"k": "1"}], action="createOnly")
        found = await api.query("k", ["1"])
        deleted = await api.delete([{"k": "1"}])
        described = await api.describe()
    assert synced[0].status == "created" and synced[0].seq == 0
    assert found == [{"seq": 0, "id": 9}]
    assert deleted[0].status == "deleted"
    assert described.dedupe_fields == ["k"] and described.field_names() == {"k"}
    sync_body, delete_body = body_of(fake.rest_requests()[0]), body_of(fake.rest_requests()[2])
    assert sync_body == {"action": "createOnly", "dedupeBy": "dedupeFields", "input": [{"k": "1"}]}
    assert delete_body == {"deleteBy": "dedupeFields", "input": [{"k": "1"}]}


async def test_compound_key_query_posts_with_method_get() -> None:
    """Roles are looked up by (externalOpportunityId, leadId, role) with POST ?_method=GET."""
    keys = [{"externalOpportunityId": "o1", "leadId": 5, "role": "Buyer"}]
    fake = FakeMarketo().on(
        "POST", "/rest/v1/opportunities/roles.json", ok([{"seq": 0, "marketoGUID": "g"}])
    )
    async with make_client(fake) as client:
        found = await client.opportunity_roles.query_by_keys(keys, fields=["marketoGUID"])
    assert found == [{"seq": 0, "marketoGUID": "g"}]
    (request,) = fake.rest_requests()
    assert request.url.params["_method"] == "GET"
    assert body_of(request) == {
        "filterType": "dedupeFields",
        "input": keys,
        "batchSize": 300,
        "fields": ["marketoGUID"],
    }


def test_custom_object_names_cannot_change_the_path() -> None:
    """Only letters, digits and underscores are accepted as an API name."""
    for bad in ["../leads", "car c", "car/x", ""]:
        with pytest.raises(ValueError, match="letters, digits"):
            custom_object_type(bad)


async def test_id_field_dedupe_needs_update_only() -> None:
    """dedupeBy idField is only valid with updateOnly (Marketo developer docs,
    "Companies")."""
    async with make_client(FakeMarketo()) as client:
        with pytest.raises(ValueError, match="updateOnly"):
            await client.opportunities.sync([{"marketoGUID": "g"}], dedupe_by="idField")
