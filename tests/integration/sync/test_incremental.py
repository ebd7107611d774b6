"""Incremental sync: changes made through the Dataverse Web API arrive in Marketo."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.models import TableRef
from shared.jobs import SyncJob
from shared.sync.runner import JobOutcome
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.2, "bad_data_share": 0.0}
SMALL = {"systemuser": 3, "team": 2, "account": 6, "contact": 12, "lead": 8, "opportunity": 4,
         "new_project": 2}  # fmt: skip
CONTACTS = TableRef("contact", "contacts", "contactid")
ACCOUNTS = TableRef("account", "accounts", "accountid")
LEADS = TableRef("lead", "leads", "leadid")


def person(mkto: RunningMarketo, dynamics_id: str) -> dict[str, Any]:
    """The one Marketo person holding ``dynamics_id`` (fails if none or several)."""
    found = [
        lead
        for lead in mkto.control.leads()
        if str(lead.get("externalPersonId", "")).lower() == dynamics_id.lower()
    ]
    assert len(found) == 1, f"{len(found)} Marketo people for {dynamics_id}"
    return found[0]


def company(mkto: RunningMarketo, dynamics_id: str) -> dict[str, Any]:
    """The one Marketo company holding ``dynamics_id``."""
    found = [c for c in mkto.control.records("companies") if c["externalCompanyId"] == dynamics_id]
    assert len(found) == 1
    return found[0]


async def caught_up(sync: SyncHarness) -> None:
    """Sync until quiet and check the reconciliation holds."""
    await sync.sync_until_caught_up()
    report = await sync.reconcile()
    assert report.holds, report.table()


async def test_every_kind_of_change_arrives(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Creates, updates, deletes, filter flips and an owner change, in one tick."""
    dyn.control.seed(counts=SMALL, seed=21, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await caught_up(sync)
        api = sync.runtime.dynamics
        accounts = dyn.control.records("account")
        contacts = [
            c for c in dyn.control.records("contact") if c.get("new_synctomkto") is not False
        ]
        teams = dyn.control.records("team")
        account = accounts[0]["accountid"]

        created = await api.create(CONTACTS, {
            "firstname": "Grace", "lastname": "Hopper", "emailaddress1": "grace@example.com",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
        })  # fmt: skip
        updated, deleted, to_no, later = (c["contactid"] for c in contacts[:4])
        await api.update(CONTACTS, updated, {"jobtitle": "Rear Admiral"})
        await api.delete(CONTACTS, deleted)
        await api.update(CONTACTS, to_no, {"new_synctomkto": False})
        await api.update(ACCOUNTS, account, {"ownerid@odata.bind": f"/teams({teams[0]['teamid']})"})
        before_no = person(mkto, to_no)

        await caught_up(sync)
        assert created.id is not None
        new = person(mkto, created.id)
        assert new["dynamicsType"] == "Contact"
        assert new["externalCompanyId"] == account
        assert person(mkto, updated)["title"] == "Rear Admiral"
        assert person(mkto, deleted)["dynamicsIsDeleted"] is True
        assert company(mkto, account)["externalSalesPersonId"] == teams[0]["teamid"]

        # Yes→No: the Marketo person stays as it was, and later changes no longer arrive.
        await api.update(CONTACTS, to_no, {"jobtitle": "Should not arrive"})
        await caught_up(sync)
        assert person(mkto, to_no)["title"] == before_no["title"]

        # No→Yes: it syncs again at the next tick, with what changed meanwhile.
        await api.update(CONTACTS, to_no, {"new_synctomkto": True})
        await api.update(CONTACTS, later, {"lastname": "Later"})
        await caught_up(sync)
        assert person(mkto, to_no)["title"] == "Should not arrive"
        assert person(mkto, later)["lastName"] == "Later"
        assert [e for e in sync.open_errors()] == []


async def test_a_quiet_tick_costs_one_read_per_entity_and_no_marketo_call(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Nothing changed: each delta job makes one Dataverse call, nothing goes to Marketo."""
    dyn.control.seed(counts=SMALL, seed=22, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await caught_up(sync)
        dynamics_before = sync.runtime.dynamics.counters.requests
        marketo_before = sync.runtime.marketo.stats.snapshot()["calls"]
        report = await sync.tick()
        drained = await sync.drain()
        entities = len(sync.runtime.runner.config.order)
        assert len(report.enqueued) == entities
        assert drained.count(JobOutcome.CAUGHT_UP) == entities
        identity_calls = 2  # the tick's WhoAmI + organization check (sandbox-refresh guard)
        assert (
            sync.runtime.dynamics.counters.requests - dynamics_before == entities + identity_calls
        )
        assert sync.runtime.marketo.stats.snapshot()["calls"] == marketo_before


async def test_a_contact_whose_account_arrives_in_the_same_tick_ends_up_linked(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """The account is created after its stream's job ran: no sync error, linked a tick later."""
    dyn.control.seed(counts=SMALL, seed=23, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await caught_up(sync)
        account_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())

        def create_late(job: SyncJob) -> None:
            if job.entity == "contact" and sync.before_job is not None:
                sync.before_job = None
                dyn.control.put_records("account", [{"accountid": account_id, "name": "Late Ltd"}])
                dyn.control.put_records("contact", [{
                    "contactid": contact_id, "firstname": "Lin", "lastname": "Late",
                    "emailaddress1": "lin@example.com", "_parentcustomerid_value": account_id,
                    "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
                }])  # fmt: skip

        sync.before_job = create_late
        await sync.cycle()
        first = person(mkto, contact_id)
        assert not first.get("externalCompanyId")  # the company was not in Marketo yet
        assert [e.code for e in sync.open_errors()] == ["DEPENDENCY_PENDING"]

        await caught_up(sync)
        assert person(mkto, contact_id)["externalCompanyId"] == account_id
        assert company(mkto, account_id)
        assert sync.open_errors() == []


async def test_a_lead_and_a_contact_sharing_an_email_stay_two_people(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Identity follows the Dynamics record, never the email."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1, "account": 1}, seed=24, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        api = sync.runtime.dynamics
        shared = {"firstname": "Sam", "lastname": "Same", "emailaddress1": "sam@example.com"}
        contact = await api.create(CONTACTS, shared)
        lead = await api.create(LEADS, shared)
        await caught_up(sync)
        assert contact.id and lead.id
        as_contact, as_lead = person(mkto, contact.id), person(mkto, lead.id)
        assert as_contact["id"] != as_lead["id"]
        assert (as_contact["dynamicsType"], as_lead["dynamicsType"]) == ("Contact", "Lead")

        await api.update(LEADS, lead.id, {"lastname": "Changed"})
        await caught_up(sync)
        assert person(mkto, lead.id)["lastName"] == "Changed"
        assert person(mkto, contact.id)["lastName"] == "Same"
