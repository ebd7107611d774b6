"""Resolving sync errors touches only records that have an open error row."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.jobs import SyncJob
from shared.state.streams import StreamId
from tests.integration.sync.harness import sync_harness

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.0, "bad_data_share": 0.0}


async def test_records_without_errors_are_not_sent_to_resolve(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Every id handed to ``resolve`` had an open error; a clean first copy resolves none.

    Resolving an id without an error row costs the store one rejected transaction per id (the
    404 names the operation, which is dropped and the rest resent): 45 s for 1,500 accounts.
    """
    dyn.control.seed(counts={"systemuser": 2, "team": 1, "account": 8, "contact": 10}, seed=31,
                     **CLEAN)  # fmt: skip
    async with sync_harness(azurite, dyn, mkto) as sync:
        errors = sync.runtime.store.errors
        asked: list[str] = []
        without_error: list[str] = []
        resolve = errors.resolve

        def spy(stream: StreamId, record_ids: Iterable[str]) -> int:
            ids = list(record_ids)
            open_ids = errors.open_record_ids(stream)
            asked.extend(ids)
            without_error.extend(i for i in ids if i.lower() not in open_ids)
            return resolve(stream, ids)

        errors.resolve = spy  # type: ignore[method-assign]
        await sync.sync_until_caught_up()
        assert len(mkto.control.records("companies")) == 8
        assert without_error == []
        assert asked == []

        # A contact whose account reaches Dynamics after the account stream ran this tick
        # waits for its link (an error row), and is resolved once the link is written.
        account_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())

        def create_late(job: SyncJob) -> None:
            if job.entity == "contact" and sync.before_job is not None:
                sync.before_job = None
                dyn.control.put_records("account", [{"accountid": account_id, "name": "Late"}])
                dyn.control.put_records("contact", [{
                    "contactid": contact_id, "firstname": "Pat", "lastname": "Pending",
                    "emailaddress1": "pat@example.com", "_parentcustomerid_value": account_id,
                    "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
                }])  # fmt: skip

        sync.before_job = create_late
        await sync.cycle()
        assert [e.code for e in sync.open_errors()] == ["DEPENDENCY_PENDING"]
        await sync.sync_until_caught_up()
        assert sync.open_errors() == []
        assert asked == [contact_id]
        assert without_error == []
