"""Single-record writes over HTTPS: ids, If-Match, upsert by alternate key, record errors."""

from __future__ import annotations

import uuid

import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.dynamics import DynamicsClient
from shared.errors import RecordError

from .conftest import ACCOUNTS, CONTACTS

pytestmark = pytest.mark.integration


async def test_create_returns_the_new_id(emulator: EmulatorHandle, client: DynamicsClient) -> None:
    """The GUID from OData-EntityId is the row the service stored."""
    result = await client.create(ACCOUNTS, {"name": "Contoso", "accountnumber": "A-1"})
    stored = emulator.control.record("account", str(result.id))
    assert stored["name"] == "Contoso"
    represented = await client.create(ACCOUNTS, {"name": "B"}, return_representation=True)
    assert represented.id and represented.etag


async def test_update_never_creates(emulator: EmulatorHandle, client: DynamicsClient) -> None:
    """If-Match: * on a missing row: RecordError 404 0x80040217, and nothing was created."""
    missing = str(uuid.uuid4())
    with pytest.raises(RecordError) as caught:
        await client.update(CONTACTS, missing, {"firstname": "Ghost"})
    assert (caught.value.status, caught.value.code) == (404, "0x80040217")
    assert caught.value.record.dynamics_id == missing
    assert emulator.control.records("contact") == []


async def test_upsert_by_alternate_key_creates_then_updates(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Same key twice: created then updated, one row, the same GUID; quotes survive the key."""
    key = {"emailaddress1": "o'neil@example.com"}
    first = await client.upsert(CONTACTS, key, {"lastname": "O'Neil"})
    second = await client.upsert(CONTACTS, key, {"firstname": "Shaun"})
    assert first.created is True and second.created is False
    assert first.id == second.id
    rows = emulator.control.records("contact")
    assert len(rows) == 1
    assert rows[0]["emailaddress1"] == "o'neil@example.com"
    assert (rows[0]["lastname"], rows[0]["firstname"]) == ("O'Neil", "Shaun")


async def test_upsert_by_guid_creates_with_that_id(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """PATCH to a GUID that does not exist creates the row with that GUID."""
    record_id = str(uuid.uuid4())
    result = await client.upsert(ACCOUNTS, record_id, {"name": "Fixed id"})
    assert (result.id, result.created) == (record_id, True)
    assert emulator.control.record("account", record_id)["name"] == "Fixed id"


async def test_data_errors_are_record_errors(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Too long a value (0x80044331) and a clashing alternate key (0x80040237) name the record."""
    with pytest.raises(RecordError) as too_long:
        await client.create(CONTACTS, {"firstname": "x" * 51})
    assert (too_long.value.status, too_long.value.code) == (400, "0x80044331")
    assert too_long.value.record.entity == "contact"

    await client.create(ACCOUNTS, {"name": "A", "accountnumber": "DUP-1"})
    with pytest.raises(RecordError) as duplicate:
        await client.create(ACCOUNTS, {"name": "B", "accountnumber": "DUP-1"})
    assert (duplicate.value.status, duplicate.value.code) == (412, "0x80040237")
    assert len(emulator.control.records("account")) == 1


async def test_delete_and_missing_ok(emulator: EmulatorHandle, client: DynamicsClient) -> None:
    """A delete removes the row; deleting it again is False with missing_ok, else a RecordError."""
    created = await client.create(ACCOUNTS, {"name": "Gone soon"})
    assert created.id is not None
    assert await client.delete(ACCOUNTS, created.id) is True
    assert await client.delete(ACCOUNTS, created.id, missing_ok=True) is False
    with pytest.raises(RecordError) as caught:
        await client.delete(ACCOUNTS, created.id)
    assert caught.value.code == "0x80040217"
    assert emulator.control.records("account") == []
