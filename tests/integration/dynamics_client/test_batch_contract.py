"""$batch over HTTPS: mixed results, splitting, change sets with references, stop-on-error."""

from __future__ import annotations

import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.dynamics import BatchOperation, ChangeSet, DynamicsClient
from shared.errors import RecordError, TransientServiceError

from .conftest import ACCOUNTS, CONTACTS

pytestmark = pytest.mark.integration


async def test_one_bad_record_does_not_fail_its_batch(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Continue-on-error: each operation gets its own status, id or mapped error."""
    existing = await client.create(CONTACTS, {"firstname": "Old", "emailaddress1": "old@x.com"})
    operations = [
        BatchOperation.create(CONTACTS, {"firstname": "A", "emailaddress1": "a@x.com"}),
        BatchOperation.create(CONTACTS, {"firstname": "x" * 80}),
        BatchOperation.upsert(CONTACTS, {"emailaddress1": "b@x.com"}, {"lastname": "B"}),
        BatchOperation.upsert(CONTACTS, {"emailaddress1": "old@x.com"}, {"lastname": "Updated"}),
        BatchOperation.update(CONTACTS, "00000000-0000-0000-0000-00000000dead", {"lastname": "X"}),
    ]
    results = await client.execute_batch(operations)
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert [r.created for r in (results[0], results[2], results[3])] == [True, True, False]
    assert results[3].id == existing.id
    assert isinstance(results[1].error, RecordError)
    assert results[1].error.code == "0x80044331"
    assert isinstance(results[4].error, RecordError)
    assert results[4].error.code == "0x80040217"
    stored = {row["contactid"] for row in emulator.control.records("contact")}
    assert {results[0].id, results[2].id, existing.id} == stored


async def test_large_lists_are_split_into_several_batches(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """25 upserts with at most 10 a batch: three $batch requests, 25 rows, counts reported."""
    operations = [
        BatchOperation.upsert(ACCOUNTS, {"accountnumber": f"N-{n}"}, {"name": f"Account {n}"})
        for n in range(25)
    ]
    emulator.control.clear_requests()
    results = await client.execute_batch(operations, max_operations=10)
    assert all(r.ok for r in results) and len(results) == 25
    counters = emulator.control.requests()
    assert counters["by_resource"].get("POST $batch") == 3
    assert counters["batch_parts"] == {"PATCH accounts": 25}
    assert client.counters.batch_operations == 25
    assert len(emulator.control.records("account")) == 25


async def test_change_set_with_content_id_reference(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """A contact created in a change set is bound to a new account by `$1`."""
    changeset = ChangeSet(
        (
            BatchOperation.create(CONTACTS, {"firstname": "Primary"}, content_id="1"),
            BatchOperation.create(
                ACCOUNTS, {"name": "With contact", "primarycontactid@odata.bind": "$1"}
            ),
        )
    )
    contact, account = await client.execute_batch([changeset])
    assert contact.ok and account.ok
    stored = emulator.control.record("account", str(account.id))
    assert stored["_primarycontactid_value"] == contact.id


async def test_a_failing_change_set_is_rolled_back_entirely(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """One bad member: every member reports the failure and no row was written."""
    changeset = ChangeSet(
        (
            BatchOperation.create(ACCOUNTS, {"name": "Would be rolled back"}),
            BatchOperation.create(ACCOUNTS, {"name": "y" * 200}),
        )
    )
    results = await client.execute_batch(
        [changeset, BatchOperation.create(ACCOUNTS, {"name": "Ok"})]
    )
    assert [r.ok for r in results] == [False, False, True]
    assert all(r.error and r.error.code == "0x80044331" for r in results[:2])
    assert [row["name"] for row in emulator.control.records("account")] == ["Ok"]


async def test_stop_on_error_reports_what_did_not_run(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """Without continue-on-error the batch stops at the failure; later operations are unrun."""
    operations = [
        BatchOperation.create(ACCOUNTS, {"name": "First"}),
        BatchOperation.create(ACCOUNTS, {"name": "z" * 200}),
        BatchOperation.create(ACCOUNTS, {"name": "Never"}),
    ]
    results = await client.execute_batch(operations, continue_on_error=False)
    assert [r.status for r in results] == [204, 400, None]
    assert isinstance(results[1].error, RecordError)
    assert isinstance(results[2].error, TransientServiceError)
    assert [row["name"] for row in emulator.control.records("account")] == ["First"]
