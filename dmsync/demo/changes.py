"""The changes the demo makes in Dynamics, as a user would, and how each shows in Marketo.

Every change goes through the Dataverse Web API with :class:`shared.dynamics.DynamicsClient`
(the emulator's control API is used only to pick the records to change). Each change carries a
check that looks at Marketo (through the emulator's control API) and at the ID mapping, and
says how the change arrived, or that it has not yet.

The records changed are ones the initial sync copied cleanly (mapped, no open sync error), so
what arrives is the change itself and not a retried error. The contact that is deleted is one no
opportunity, connection or account refers to, so the delete is that contact alone and no cascade.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dmsync.demo.observe import MarketoView, SyncStateView
from dmsync.demo.output import DemoFailure
from dmsync.demo.scenario import EMAIL
from emulators.dynamics.runner import EmulatorHandle
from shared.dynamics.client import DynamicsClient
from shared.dynamics.models import TableRef
from shared.state.mappings import SyncFilter
from shared.sync.values import same_value

ACCOUNTS = TableRef("account", "accounts", "accountid")
CONTACTS = TableRef("contact", "contacts", "contactid")
LEADS = TableRef("lead", "leads", "leadid")
OPPORTUNITIES = TableRef("opportunity", "opportunities", "opportunityid")
PROJECTS = TableRef("new_project", "new_projects", "new_projectid")

CANDIDATES = 200
"""Rows per table looked at when picking the records to change."""
OWNER_TABLE = "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"

NEW_TITLE = "Chief Demo Officer"
KEPT_OUT_TITLE = "Kept out of Marketo"
NEW_ACCOUNT_NAME = "Renamed Demo Holdings"
NEW_AMOUNT = 424242.0


@dataclass(frozen=True)
class Subjects:
    """The existing records the demo changes (Dynamics ids)."""

    account: str
    """Gets the new contact and the new project, and a new name."""
    owned_account: str
    """Owned by a user; its owner becomes :attr:`team`."""
    team: str
    contact_update: str
    contact_delete: str
    contact_to_no: str
    contact_to_yes: str
    lead_delete: str
    opportunity: str


class Observation:
    """Marketo and the sync state, as the checks read them (one polling round)."""

    def __init__(self, marketo: MarketoView, state: SyncStateView) -> None:
        self.marketo = marketo
        self.state = state

    def person(self, entity: str, dynamics_id: str) -> dict[str, Any] | None:
        """The Marketo person the ID mapping names for a Dynamics contact or lead."""
        mapping = self.state.mapping(entity, dynamics_id)
        return self.marketo.lead(mapping.marketo_id) if mapping is not None else None

    def company(self, account_id: str) -> dict[str, Any] | None:
        """The Marketo company of an account."""
        return self.marketo.find("companies", "externalCompanyId", account_id)


Apply = Callable[[DynamicsClient], Awaitable[str]]
"""Makes the change through the Web API; returns the Dynamics id of the record changed."""
Check = Callable[[Observation, str], str | None]
"""Given the Dynamics id, how the change shows in Marketo; ``None`` while it has not arrived."""


@dataclass
class Change:
    """One change, when it was made and when it was seen in Marketo."""

    kind: str
    description: str
    apply: Apply
    check: Check
    record_id: str = ""
    applied_at: float | None = None
    landed_at: float | None = None
    evidence: str = ""

    @property
    def latency(self) -> float | None:
        """Seconds from the Web API call's answer to the first sight in Marketo."""
        if self.applied_at is None or self.landed_at is None:
            return None
        return self.landed_at - self.applied_at


def short(record_id: str) -> str:
    """The first block of a GUID, enough to tell records apart in the output."""
    return record_id.split("-")[0]


# --- picking the records to change -----------------------------------------------------------


def _clean(
    rows: Iterable[Mapping[str, Any]],
    key: str,
    state: SyncStateView,
    entity: str,
    open_ids: set[str],
) -> list[Mapping[str, Any]]:
    """Rows the initial sync copied: mapped, in scope, not deleted, no open sync error."""
    chosen = list(rows)[:CANDIDATES]
    mapped = state.mapped(entity, [str(r[key]) for r in chosen])
    clean = []
    for row in chosen:
        record_id = str(row[key]).lower()
        mapping = mapped.get(record_id)
        if (
            mapping is not None
            and not mapping.deleted_in_dynamics
            and mapping.sync_filter is not SyncFilter.NO
            and record_id not in open_ids
        ):
            clean.append(row)
    return clean


def _referenced_contacts(dyn: EmulatorHandle) -> set[str]:
    referenced: set[str] = set()
    for table, columns in (
        ("opportunity", ("_customerid_value", "_parentcontactid_value")),
        ("connection", ("_record1id_value", "_record2id_value")),
        ("account", ("_primarycontactid_value",)),
    ):
        for row in dyn.control.records(table):
            referenced.update(str(row[c]).lower() for c in columns if row.get(c))
    return referenced


def _first(rows: Sequence[Mapping[str, Any]], key: str, what: str, taken: set[str]) -> str:
    for row in rows:
        record_id = str(row[key])
        if record_id not in taken:
            taken.add(record_id)
            return record_id
    raise DemoFailure(f"the seeded organisation has no {what} to change; try another --seed")


def pick_subjects(dyn: EmulatorHandle, state: SyncStateView, open_ids: set[str]) -> Subjects:
    """Choose distinct, cleanly synced records for every change.

    Raises:
        DemoFailure: the seed produced no suitable record of some kind.
    """
    accounts = _clean(dyn.control.records("account"), "accountid", state, "account", open_ids)
    contacts = _clean(dyn.control.records("contact"), "contactid", state, "contact", open_ids)
    leads = _clean(dyn.control.records("lead"), "leadid", state, "lead", open_ids)
    opportunities = _clean(
        dyn.control.records("opportunity"), "opportunityid", state, "opportunity", open_ids
    )
    teams = _clean(dyn.control.records("team"), "teamid", state, "team", open_ids)
    excluded = [
        r
        for r in dyn.control.records("contact")
        if r.get("new_synctomkto") is False and EMAIL.match(str(r.get("emailaddress1") or ""))
    ]
    referenced = _referenced_contacts(dyn)
    unreferenced = [c for c in contacts if str(c["contactid"]).lower() not in referenced]
    by_user = [a for a in accounts if a.get(OWNER_TABLE) == "systemuser"]
    taken: set[str] = set()
    return Subjects(
        account=_first(accounts, "accountid", "synced account", taken),
        owned_account=_first(by_user, "accountid", "user-owned synced account", taken),
        team=_first(teams, "teamid", "synced team", taken),
        contact_delete=_first(unreferenced, "contactid", "unreferenced synced contact", taken),
        contact_update=_first(contacts, "contactid", "synced contact", taken),
        contact_to_no=_first(contacts, "contactid", "second synced contact", taken),
        contact_to_yes=_first(
            sorted(excluded, key=lambda c: str(c["contactid"]).lower() in referenced),
            "contactid",
            "contact with new_synctomkto = No and a valid e-mail",
            taken,
        ),
        lead_delete=_first(leads, "leadid", "synced lead", taken),
        opportunity=_first(opportunities, "opportunityid", "synced opportunity", taken),
    )


# --- the changes -----------------------------------------------------------------------------


def _created(table: TableRef, attributes: dict[str, Any]) -> Apply:
    async def apply(client: DynamicsClient) -> str:
        result = await client.create(table, attributes)
        if result.id is None:
            raise DemoFailure(f"Dataverse did not return the id of the new {table.logical_name}")
        return str(result.id)

    return apply


def _updated(table: TableRef, record_id: str, attributes: dict[str, Any]) -> Apply:
    async def apply(client: DynamicsClient) -> str:
        await client.update(table, record_id, attributes)
        return record_id

    return apply


def _deleted(table: TableRef, record_id: str) -> Apply:
    async def apply(client: DynamicsClient) -> str:
        await client.delete(table, record_id)
        return record_id

    return apply


def _person_created(entity: str, person_type: str, **expected: str) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        person = seen.person(entity, record_id)
        if person is None or person.get("dynamicsType") != person_type:
            return None
        if any(not same_value(v, person.get(k)) for k, v in expected.items()):
            return None
        return f"Marketo person {person['id']} created ({person_type})"

    return check


def _person_field(entity: str, name: str, value: str) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        person = seen.person(entity, record_id)
        if person is None or person.get(name) != value:
            return None
        return f"Marketo person {person['id']}: {name} = {value!r}"

    return check


def _person_marked_deleted(entity: str) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        person = seen.person(entity, record_id)
        if person is None or person.get("dynamicsIsDeleted") is not True:
            return None
        return f"Marketo person {person['id']} kept, marked dynamicsIsDeleted = true"

    return check


def _company_field(name: str, value: str) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        company = seen.company(record_id)
        if company is None or company.get(name) != value:
            return None
        return f"Marketo company {company.get('id')}: {name} = {value!r}"

    return check


def _opportunity_amount(value: float) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        found = seen.marketo.find("opportunities", "externalOpportunityId", record_id)
        if found is None or not same_value(value, found.get("amount")):
            return None
        return f"Marketo opportunity {short(str(found.get('marketoGUID')))}…: amount = {value:g}"

    return check


def _project_created(name: str, account_id: str) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        found = seen.marketo.find("customobjects/project_c", "dynamicsProjectId", record_id)
        if found is None or found.get("projectName") != name:
            return None
        if str(found.get("externalCompanyId") or "").lower() != account_id.lower():
            return None
        return f"Marketo project_c {short(str(found.get('marketoGUID')))}… linked to its company"

    return check


def _kept_out(previous_title: str | None) -> Check:
    def check(seen: Observation, record_id: str) -> str | None:
        mapping = seen.state.mapping("contact", record_id)
        if mapping is None or mapping.sync_filter is not SyncFilter.NO:
            return None
        person = seen.marketo.lead(mapping.marketo_id)
        title = person.get("title") if person else None
        if title != previous_title:
            raise DemoFailure(
                f"contact {record_id} is filtered out (new_synctomkto = No) but its Marketo "
                "person changed"
            )
        return (
            f"seen by the sync and not written: Marketo person {mapping.marketo_id} still has "
            f"title {title!r}, not {KEPT_OUT_TITLE!r}"
        )

    return check


def build_changes(subjects: Subjects, seen: Observation) -> list[Change]:
    """Every change, in the order they are made."""
    s = subjects
    to_no_person = seen.person("contact", s.contact_to_no)
    previous_title = to_no_person.get("title") if to_no_person else None
    return [
        Change(
            "create",
            "new contact Grace Hopper, at an existing account",
            _created(
                CONTACTS,
                {
                    "firstname": "Grace",
                    "lastname": "Hopper",
                    "jobtitle": "Rear Admiral",
                    "emailaddress1": "grace.hopper.demo@example.com",
                    "parentcustomerid_account@odata.bind": f"/accounts({s.account})",
                },
            ),
            _person_created("contact", "Contact", lastName="Hopper", externalCompanyId=s.account),
        ),
        Change(
            "create",
            "new lead Katherine Johnson",
            _created(
                LEADS,
                {
                    "firstname": "Katherine",
                    "lastname": "Johnson",
                    "companyname": "Langley Demo Lab",
                    "emailaddress1": "katherine.johnson.demo@example.com",
                    "subject": "Demo lead",
                },
            ),
            _person_created("lead", "Lead", lastName="Johnson", company="Langley Demo Lab"),
        ),
        Change(
            "create",
            f"new custom new_project 'Demo rollout' for account {short(s.account)}",
            _created(
                PROJECTS,
                {
                    "new_name": "Demo rollout",
                    "new_budget": 125000,
                    "new_AccountId@odata.bind": f"/accounts({s.account})",
                },
            ),
            _project_created("Demo rollout", s.account),
        ),
        Change(
            "update",
            f"contact {short(s.contact_update)}: jobtitle -> {NEW_TITLE!r}",
            _updated(CONTACTS, s.contact_update, {"jobtitle": NEW_TITLE}),
            _person_field("contact", "title", NEW_TITLE),
        ),
        Change(
            "update",
            f"account {short(s.account)}: name -> {NEW_ACCOUNT_NAME!r}",
            _updated(ACCOUNTS, s.account, {"name": NEW_ACCOUNT_NAME}),
            _company_field("company", NEW_ACCOUNT_NAME),
        ),
        Change(
            "update",
            f"opportunity {short(s.opportunity)}: estimatedvalue -> {NEW_AMOUNT:g}",
            _updated(OPPORTUNITIES, s.opportunity, {"estimatedvalue": NEW_AMOUNT}),
            _opportunity_amount(NEW_AMOUNT),
        ),
        Change(
            "owner",
            f"account {short(s.owned_account)}: owner user -> team {short(s.team)}",
            _updated(ACCOUNTS, s.owned_account, {"ownerid@odata.bind": f"/teams({s.team})"}),
            _company_field("externalSalesPersonId", s.team),
        ),
        Change(
            "filter",
            f"contact {short(s.contact_to_no)}: new_synctomkto Yes -> No, and a new "
            f"jobtitle {KEPT_OUT_TITLE!r}",
            _updated(
                CONTACTS, s.contact_to_no, {"new_synctomkto": False, "jobtitle": KEPT_OUT_TITLE}
            ),
            _kept_out(previous_title),
        ),
        Change(
            "filter",
            f"contact {short(s.contact_to_yes)}: new_synctomkto No -> Yes",
            _updated(CONTACTS, s.contact_to_yes, {"new_synctomkto": True}),
            _person_created("contact", "Contact"),
        ),
        Change(
            "delete",
            f"contact {short(s.contact_delete)} deleted",
            _deleted(CONTACTS, s.contact_delete),
            _person_marked_deleted("contact"),
        ),
        Change(
            "delete",
            f"lead {short(s.lead_delete)} deleted",
            _deleted(LEADS, s.lead_delete),
            _person_marked_deleted("lead"),
        ),
    ]
