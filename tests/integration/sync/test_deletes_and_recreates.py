"""Deletes the README makes promises about, made on either side, checked in the emulators.

* A person deleted in Marketo and changed in Dynamics comes back as a new person (README
  "Identity"; Marketo's own sync does the same: Adobe Experience League, "Microsoft Dynamics
  Sync Details" / "Deleting a person").
* A deleted stakeholder connection and a deleted team "stay as they are" in Marketo: opportunity
  roles and sales persons have no "deleted in Dynamics" field (README "Deletes").

Every expectation is read back through the emulators' control APIs, not the sync's client.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.models import TableRef
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.0, "bad_data_share": 0.0}
CONTACTS = TableRef("contact", "contacts", "contactid")
TEAMS = TableRef("team", "teams", "teamid")
CONNECTIONS = TableRef("connection", "connections", "connectionid")


def people_of(mkto: RunningMarketo, dynamics_id: str) -> list[dict[str, Any]]:
    """Every Marketo person holding ``dynamics_id`` as its external person id."""
    return [
        lead
        for lead in mkto.control.leads()
        if str(lead.get("externalPersonId", "")).lower() == dynamics_id.lower()
    ]


def one_person(mkto: RunningMarketo, dynamics_id: str) -> dict[str, Any]:
    """The one Marketo person of ``dynamics_id`` (fails, saying how many, otherwise)."""
    found = people_of(mkto, dynamics_id)
    assert len(found) == 1, f"{len(found)} Marketo people hold externalPersonId {dynamics_id}"
    return found[0]


async def quiet(sync: SyncHarness) -> None:
    """Sync until nothing moves; no job may fail on the way."""
    await sync.sync_until_caught_up()


async def test_a_person_deleted_in_marketo_and_changed_in_dynamics_comes_back_as_new(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """The update by Marketo id meets "not found": the whole record is created again, with a
    new Marketo id that the ID mapping now holds, and no sync error is left."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1, "account": 2}, seed=61, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        api = sync.runtime.dynamics
        created = await api.create(CONTACTS, {
            "firstname": "Ada", "lastname": "Lovelace", "emailaddress1": "ada@example.com",
            "jobtitle": "Analyst", "address1_city": "London",
        })  # fmt: skip
        assert created.id is not None
        contact_id = created.id
        await quiet(sync)
        first = one_person(mkto, contact_id)
        old_marketo_id = first["id"]

        mkto.control.delete_lead_inside(old_marketo_id)
        assert mkto.control.lead(old_marketo_id) is None
        await api.update(CONTACTS, contact_id, {"jobtitle": "Countess"})
        await quiet(sync)

        again = one_person(mkto, contact_id)
        assert again["id"] != old_marketo_id
        # Every mapped field is back, not only the one that changed.
        assert (again["firstName"], again["lastName"], again["email"]) == (
            "Ada",
            "Lovelace",
            "ada@example.com",
        )
        assert (again["title"], again["city"]) == ("Countess", "London")
        assert again["dynamicsType"] == "Contact"
        assert str(sync.mapping("contact", contact_id).marketo_id) == str(again["id"])
        assert sync.open_errors() == []

        # And it stays one person: the next change updates the new record.
        await api.update(CONTACTS, contact_id, {"lastname": "King"})
        await quiet(sync)
        later = one_person(mkto, contact_id)
        assert (later["id"], later["lastName"]) == (again["id"], "King")


async def test_a_deleted_team_leaves_its_sales_person_as_it_was(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Sales persons have no deleted mark: nothing is written, the record stays unchanged."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1}, seed=62, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        created = await sync.runtime.dynamics.create(TEAMS, {"name": "Night Shift"})
        assert created.id is not None
        team_id = created.id
        await quiet(sync)
        before = [
            s for s in mkto.control.records("salespersons") if s["externalSalesPersonId"] == team_id
        ]
        assert len(before) == 1
        assert (before[0]["firstName"], before[0]["lastName"]) == ("Team", "Night Shift")
        all_before = mkto.control.records("salespersons")

        await sync.runtime.dynamics.delete(TEAMS, team_id)
        writes = sync.marketo_writes()
        await quiet(sync)

        assert mkto.control.records("salespersons") == all_before
        assert sync.marketo_writes() == writes
        assert sync.mapping("team", team_id).deleted_in_dynamics
        assert sync.open_errors() == []


async def test_a_deleted_stakeholder_connection_leaves_its_role_as_it_was(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Opportunity roles have no deleted mark: the role of a deleted connection stays."""
    dyn.control.seed(
        counts={"systemuser": 2, "team": 1, "account": 3, "contact": 8, "opportunity": 4},
        seed=63,
        **CLEAN,
    )
    async with sync_harness(azurite, dyn, mkto) as sync:
        await quiet(sync)
        connections = [
            c
            for c in dyn.control.records("connection")
            if sync.mapping("connection", c["connectionid"]) is not None
        ]
        assert connections, "the seed should give at least one synced stakeholder connection"
        victim = connections[0]["connectionid"]
        roles_before = mkto.control.records("opportunities/roles")
        marketo_role = sync.mapping("connection", victim).marketo_id
        assert any(str(r["marketoGUID"]) == str(marketo_role) for r in roles_before)

        await sync.runtime.dynamics.delete(CONNECTIONS, victim)
        assert all(c["connectionid"] != victim for c in dyn.control.records("connection"))
        writes = sync.marketo_writes()
        await quiet(sync)

        assert mkto.control.records("opportunities/roles") == roles_before
        assert sync.marketo_writes() == writes
        assert sync.mapping("connection", victim).deleted_in_dynamics
        assert sync.open_errors() == []
