"""Initial sync of a seeded organization, end to end, against both emulators."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.sync.config import DEFAULT_MAPPING_FILE, EntitySpec
from tests.integration.sync.harness import sync_harness

pytestmark = pytest.mark.integration

MARKETO_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
"""What Marketo accepts in an email field: ASCII ``local@domain.tld`` (Marketo emulator README,
"Leads"; Marketo refuses anything else with 1001 "Invalid value ... Required of type 'email'")."""

COUNTS = {
    "systemuser": 4,
    "team": 2,
    "account": 12,
    "contact": 40,
    "lead": 25,
    "opportunity": 10,
    "new_project": 6,
}


async def test_initial_sync_copies_everything_once(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Every eligible record arrives exactly once; filtered ones do not; the only failures are
    the people Marketo must refuse (an invalid e-mail address: 1001) and the roles waiting for
    them (DEPENDENCY_PENDING)."""
    dyn.control.seed(counts=COUNTS, seed=11)
    async with sync_harness(azurite, dyn, mkto) as sync:
        cycles = await sync.sync_until_caught_up()
        assert cycles <= 6

        leads = mkto.control.leads()
        by_person = Counter(lead.get("externalPersonId") for lead in leads)
        assert all(n == 1 for n in by_person.values()), "a Dynamics record became two people"
        errors = sync.open_errors()
        failed_people: set[str] = set()

        for table, person_type in (("contact", "Contact"), ("lead", "Lead")):
            rows = dyn.control.records(table)
            eligible = {r[f"{table}id"] for r in rows if r.get("new_synctomkto") is not False}
            filtered = {r[f"{table}id"] for r in rows if r.get("new_synctomkto") is False}
            bad_email = {
                r[f"{table}id"]
                for r in rows
                if r[f"{table}id"] in eligible
                and r.get("emailaddress1") is not None
                and not MARKETO_EMAIL.match(r["emailaddress1"])
            }
            arrived = {
                lead["externalPersonId"]
                for lead in leads
                if lead.get("dynamicsType") == person_type
            }
            failures = [e for e in errors if e.stream.entity == table]
            assert arrived.isdisjoint(filtered)
            assert arrived == eligible - bad_email
            assert {e.dynamics_id for e in failures} == bad_email
            assert {(e.operation, e.code) for e in failures} <= {("create", "1001")}
            failed_people |= bad_email
        assert failed_people, "seed 11 has people with invalid e-mail addresses"

        companies = {c["externalCompanyId"] for c in mkto.control.records("companies")}
        accounts = dyn.control.records("account")
        eligible_accounts = {
            a["accountid"] for a in accounts if a.get("new_synctomkto") is not False
        }
        assert companies == eligible_accounts

        sales = {s["externalSalesPersonId"] for s in mkto.control.records("salespersons")}
        users = {u["systemuserid"] for u in dyn.control.records("systemuser")}
        teams = {t["teamid"] for t in dyn.control.records("team")}
        assert users | teams <= sales

        others = [e for e in errors if e.stream.entity not in ("contact", "lead")]
        assert {(e.stream.entity, e.code) for e in others} <= {
            ("connection", "DEPENDENCY_PENDING"),
            ("opportunity_customer", "DEPENDENCY_PENDING"),
        }
        connections = {c["connectionid"]: c for c in dyn.control.records("connection")}
        opportunities = {o["opportunityid"]: o for o in dyn.control.records("opportunity")}
        for error in others:  # each waits for a person that Marketo refused
            if error.stream.entity == "connection":
                person = connections[error.dynamics_id]["_record2id_value"]
            else:
                person = opportunities[error.dynamics_id]["_customerid_value"]
            assert person in failed_people, error
        assert mkto.control.records("opportunities")
        assert mkto.control.records("opportunities/roles")
        assert mkto.control.records("customobjects/project_c")

        report = await sync.reconcile()
        assert report.holds, report.table()
        contacts = next(e for e in report.entities if e.entity == "contact")
        assert contacts.found > 0
        assert contacts.mismatched == {}


async def test_only_tables_larger_than_a_page_cost_a_count(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, tmp_path: Any
) -> None:
    """Progress needs each table's total: a table read whole in its first page is counted by
    that read; only a larger one costs a `$count` request. Every total is the table's size."""
    sizes = {"systemuser": 3, "team": 1, "account": 8, "contact": 25}
    dyn.control.seed(counts=sizes, seed=5)
    mapping = tmp_path / "mapping.toml"  # users, teams, accounts and contacts only
    mapping.write_text(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").split("[entity.lead]")[0])
    async with sync_harness(azurite, dyn, mkto, SYNC_MAPPING_FILE=str(mapping)) as sync:
        sync.tune(page_size=10)
        source = sync.d2m.reader
        count = source.count
        counted: list[str] = []

        async def recording_count(spec: EntitySpec) -> int:
            counted.append(spec.table)
            return await count(spec)

        source.count = recording_count  # type: ignore[method-assign]
        await sync.sync_until_caught_up()

        assert counted == ["contact"]
        for entity in sizes:
            rows = len(dyn.control.records(entity))
            assert sync.watermark(entity).total_expected == rows, entity
