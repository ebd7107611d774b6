"""Single-record writes: ids from OData-EntityId, If-Match, upsert by key, delete, record errors."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from shared.dynamics import TableRef
from shared.errors import RecordError

from .fakes import API, Script, json_response, make_client, odata_error

ACCOUNTS = TableRef.standard("account", "accounts")
CONTACTS = TableRef.standard("contact", "contacts")
GUID = "d31ba648-c592-ed11-aad1-000d3a993550"


async def test_create_reads_the_id_from_odata_entity_id() -> None:
    """204 + OData-EntityId: the GUID at its end is the new row's id."""
    script = Script(
        [httpx.Response(204, headers={"OData-EntityId": f"{API}accounts({GUID.upper()})"})]
    )
    client, _ = make_client(script)
    async with client:
        result = await client.create(ACCOUNTS, {"name": "Contoso", "revenue": 1.5})
    request = script.requests[0]
    assert request.method == "POST"
    assert str(request.url) == API + "accounts"
    assert json.loads(request.content) == {"name": "Contoso", "revenue": 1.5}
    assert result.id == GUID
    assert result.created is True


async def test_create_falls_back_to_location_and_representation() -> None:
    """Location serves when OData-EntityId is missing; a representation body gives id and ETag."""
    script = Script(
        [
            httpx.Response(204, headers={"Location": f"{API}accounts({GUID})"}),
            json_response(201, {"@odata.etag": 'W/"5"', "accountid": GUID}),
        ]
    )
    client, _ = make_client(script)
    async with client:
        located = await client.create(ACCOUNTS, {"name": "A"})
        represented = await client.create(ACCOUNTS, {"name": "B"}, return_representation=True)
    assert located.id == GUID
    assert (represented.id, represented.etag) == (GUID, 'W/"5"')
    assert script.requests[1].headers["Prefer"] == "return=representation"
    assert script.requests[1].url.params["$select"] == "accountid"


async def test_update_sends_if_match_star() -> None:
    """Update never creates: If-Match: * on a PATCH to the GUID."""
    script = Script([httpx.Response(204)])
    client, _ = make_client(script)
    async with client:
        result = await client.update(ACCOUNTS, GUID, {"name": "New"})
    request = script.requests[0]
    assert (request.method, str(request.url)) == ("PATCH", f"{API}accounts({GUID})")
    assert request.headers["If-Match"] == "*"
    assert result.id == GUID


async def test_update_of_a_missing_row_is_a_record_error() -> None:
    """404 0x80040217 names the table and the record, and is not retried."""
    script = Script([odata_error(404, "0x80040217", f"account With Id = {GUID} Does Not Exist")])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(RecordError) as caught:
            await client.update(ACCOUNTS, GUID, {"name": "x"})
    error = caught.value
    assert (error.status, error.code) == (404, "0x80040217")
    assert error.record.entity == "account"
    assert error.record.dynamics_id == GUID
    assert f"update of accounts({GUID})" in str(error)
    assert len(script.requests) == 1


async def test_upsert_by_alternate_key_escapes_and_reports_created() -> None:
    """The key is quoted, its quote doubled and encoded; 201 means created, with the GUID."""
    script = Script([json_response(201, {"@odata.etag": 'W/"9"', "contactid": GUID})])
    client, _ = make_client(script)
    async with client:
        result = await client.upsert(
            CONTACTS, {"emailaddress1": "o'neil@example.com"}, {"lastname": "O'Neil"}
        )
    request = script.requests[0]
    assert script.raw_urls() == [
        API + "contacts(emailaddress1='o''neil%40example.com')?$select=contactid"
    ]
    assert request.method == "PATCH"
    assert "If-Match" not in request.headers
    assert request.headers["Prefer"] == "return=representation"
    assert (result.id, result.created, result.etag) == (GUID, True, 'W/"9"')


async def test_upsert_update_and_key_form_entity_id() -> None:
    """200 means updated; a bare 204 with a key-form OData-EntityId leaves id, created unknown."""
    key_url = f"{API}contacts(emailaddress1='a%40b.c')"
    script = Script(
        [
            json_response(200, {"contactid": GUID}),
            httpx.Response(204, headers={"OData-EntityId": key_url}),
        ]
    )
    client, _ = make_client(script)
    async with client:
        updated = await client.upsert(CONTACTS, {"emailaddress1": "a@b.c"}, {"lastname": "B"})
        unknown = await client.upsert(CONTACTS, {"emailaddress1": "a@b.c"}, {"lastname": "B"})
    assert (updated.id, updated.created) == (GUID, False)
    assert (unknown.id, unknown.created, unknown.entity_url) == (None, None, key_url)


async def test_upsert_by_guid() -> None:
    """A GUID key addresses the row directly; its id is known even from a bare 204."""
    script = Script([httpx.Response(204)])
    client, _ = make_client(script)
    async with client:
        result = await client.upsert(CONTACTS, uuid.UUID(GUID), {"lastname": "B"})
    assert str(script.requests[0].url) == f"{API}contacts({GUID})?$select=contactid"
    assert result.id == GUID


async def test_a_key_dataverse_cannot_address_fails_before_sending() -> None:
    """A key holding '/' is a RecordError naming the table; no request is made."""
    script = Script([])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(RecordError, match="Cannot address a contact record") as caught:
            await client.upsert(CONTACTS, {"emailaddress1": "a/b@c.d"}, {})
    assert caught.value.record.entity == "contact"
    assert script.requests == []


async def test_duplicate_key_on_create_is_a_record_error() -> None:
    """412 0x80040237 (matching key values exist) is about the record."""
    script = Script(
        [odata_error(412, "0x80040237", "A record with matching key values already exists.")]
    )
    client, _ = make_client(script)
    async with client:
        with pytest.raises(RecordError) as caught:
            await client.create(ACCOUNTS, {"accountnumber": "A1"})
    assert caught.value.code == "0x80040237"
    assert caught.value.record.dynamics_id is None


async def test_delete_and_missing_ok() -> None:
    """Delete returns True; a gone row is False with missing_ok, a RecordError without."""
    script = Script(
        [
            httpx.Response(204),
            odata_error(404, "0x80040217", "Does Not Exist"),
            odata_error(404, "0x80040217", "Does Not Exist"),
        ]
    )
    client, _ = make_client(script)
    async with client:
        assert await client.delete(ACCOUNTS, GUID) is True
        assert await client.delete(ACCOUNTS, GUID, missing_ok=True) is False
        with pytest.raises(RecordError):
            await client.delete(ACCOUNTS, GUID)
    assert {r.method for r in script.requests} == {"DELETE"}
    assert str(script.requests[0].url) == f"{API}accounts({GUID})"
