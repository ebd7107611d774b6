"""Leads against the emulator: per-record outcomes and skip reasons, batching by count and by
bytes with order kept, queries (long URIs, paging), get, delete, describe."""

from __future__ import annotations

import uuid

import pytest

from emulators.marketo.runner import RunningMarketo
from shared.errors import ApiRequestError
from shared.marketo import MarketoClient

pytestmark = pytest.mark.integration


async def test_sync_reports_created_then_updated(client: MarketoClient) -> None:
    """createOrUpdate creates new leads and updates them on the second call, with their ids."""
    records = [{"email": f"p{i}@example.com", "firstName": f"P{i}"} for i in range(3)]
    created = await client.leads.sync(records)
    updated = await client.leads.sync([{**r, "lastName": "Changed"} for r in records])
    assert [o.status for o in created] == ["created"] * 3
    assert [o.status for o in updated] == ["updated"] * 3
    assert [o.marketo_id for o in created] == [o.marketo_id for o in updated]
    assert all(isinstance(o.marketo_id, int) for o in created)


async def test_record_level_skips_carry_marketo_reasons(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """1005 createOnly on an existing lead, 1004 updateOnly on a missing one, 1006 unknown field,
    1007 several leads match, 1003 a read-only field: skipped with the code, neighbours written."""
    mkto.control.seed(
        leads=[
            {"email": "exists@example.com"},
            {"email": "twin@example.com"},
            {"email": "twin@example.com"},
        ]
    )
    create_only = await client.leads.sync(
        [{"email": "exists@example.com"}, {"email": "new@example.com"}], action="createOnly"
    )
    update_only = await client.leads.sync(
        [
            {"email": "missing@example.com", "firstName": "X"},
            {"email": "twin@example.com", "firstName": "X"},
            {"email": "exists@example.com", "noSuchField": "X"},
            {"email": "exists@example.com", "createdAt": "2020-01-01T00:00:00Z"},
            {"email": "exists@example.com", "firstName": "Fine"},
        ],
        action="updateOnly",
    )
    assert [(o.status, o.reason_codes) for o in create_only] == [
        ("skipped", ("1005",)),
        ("created", ()),
    ]
    assert [o.reason_codes[:1] or (o.status,) for o in update_only] == [
        ("1004",),
        ("1007",),
        ("1006",),
        ("1003",),
        ("updated",),
    ]
    assert all(o.reasons[0].message for o in update_only if not o.ok)


async def test_batches_split_at_300_and_results_keep_input_order(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """650 leads go in 3 requests; outcome i belongs to record i (checked against the store)."""
    records = [{"email": f"bulk{i:04d}@example.com", "leadScore": i} for i in range(650)]
    outcomes = await client.leads.sync(records)
    assert mkto.control.usage().by_endpoint["POST /rest/v1/leads.json"] == 3
    assert [o.index for o in outcomes] == list(range(650))
    stored = {lead["id"]: lead for lead in mkto.control.leads()}
    for record, outcome in zip(records, outcomes, strict=True):
        assert outcome.status == "created"
        assert outcome.marketo_id is not None
        assert stored[outcome.marketo_id]["email"] == record["email"]


async def test_batches_split_by_bytes_and_an_oversize_record_is_a_failure(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """Leads with 20 kB addresses split into bodies under 1 MB; a 1.1 MB one is not sent and
    comes back skipped with code 413; every other lead is written, in order."""
    records = [{"email": f"big{i:03d}@example.com", "address": "A" * 20_000} for i in range(120)]
    records[57] = {"email": "huge@example.com", "address": "B" * 1_100_000}
    outcomes = await client.leads.sync(records)
    requests = mkto.control.usage().by_endpoint["POST /rest/v1/leads.json"]
    assert requests == 3  # 119 x ~20 kB = ~2.4 MB in bodies below 1 MB
    assert mkto.control.usage().errors.get("413", 0) == 0
    assert outcomes[57].status == "skipped" and outcomes[57].reason_codes == ("413",)
    stored = {lead["id"]: lead["email"] for lead in mkto.control.leads()}
    for i, outcome in enumerate(outcomes):
        if i != 57:
            assert outcome.status == "created"
            assert stored[outcome.marketo_id] == records[i]["email"]
    assert "huge@example.com" not in stored.values()


async def test_query_by_300_guids_uses_post_method_get(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """300 GUID filter values make a URI over 8 KB; the client sends POST _method=GET and the
    emulator answers it like the GET."""
    guids = [str(uuid.UUID(int=i + 1)) for i in range(300)]
    await client.leads.sync(
        [{"externalPersonId": g, "email": f"g{i}@example.com"} for i, g in enumerate(guids)],
        lookup_field="externalPersonId",
    )
    found = await client.leads.get_by_filter(
        "externalPersonId", guids, fields=["externalPersonId", "email"]
    )
    assert len(",".join(guids)) > 8_192  # as a GET this URI would be refused with 414
    assert sorted(f["externalPersonId"] for f in found) == sorted(guids)
    usage = mkto.control.usage()
    assert usage.errors.get("414", 0) == 0
    # the emulator books a POST _method=GET under the operation it performs
    assert usage.by_endpoint["GET /rest/v1/leads.json"] == 1


async def test_query_pages_through_small_batches(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """batchSize 2 over 5 matches pages three times by nextPageToken."""
    emails = [f"page{i}@example.com" for i in range(5)]
    mkto.control.seed(leads=[{"email": e} for e in emails])
    pages = [p async for p in client.leads.iter_by_filter("email", emails, batch_size=2)]
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert sorted(i["email"] for p in pages for i in p.items) == emails


async def test_get_delete_and_describe(client: MarketoClient) -> None:
    """Get by id, delete (with 1004 for a missing id), then the lead is gone; describe lists
    field names and types for mapping validation."""
    (created,) = await client.leads.sync([{"email": "gone@example.com", "firstName": "G"}])
    assert created.marketo_id is not None
    lead = await client.leads.get_by_id(created.marketo_id, fields=["email", "firstName"])
    assert lead is not None and lead["firstName"] == "G"
    deleted = await client.leads.delete([created.marketo_id, 999_999])
    assert [(o.status, o.reason_codes) for o in deleted] == [
        ("deleted", ()),
        ("skipped", ("1004",)),
    ]
    assert await client.leads.get_by_id(created.marketo_id) is None
    described = {f.api_name: f.data_type for f in await client.leads.describe()}
    assert described["email"] == "email" and described["leadScore"] == "integer"


async def test_request_level_1003_is_an_api_request_error(client: MarketoClient) -> None:
    """Asking for fields the instance does not have fails the whole call with 1003
    ("Invalid fields [...]", the field drift reported in airbytehq/airbyte#25064; see
    docs/vendor-facts.md): ApiRequestError, not retried."""
    with pytest.raises(ApiRequestError) as raised:
        await client.leads.get_by_filter("email", ["a@example.com"], fields=["email", "site2"])
    assert raised.value.code == "1003"
    assert "site2" in str(raised.value)
    assert client.stats.count(endpoint="leads.query") == 1
