"""An oracle that shares no code with the sync: literal values in, literal values out.

The reconciliation (``shared.sync.reconcile``) builds what it expects with the sync's own row
transformer and reads Marketo with the sync's own client, so a wrong field mapping agrees with
itself there. Here every field of the shipped mapping (``shared/sync/default_mapping.toml``) is
written into Dynamics as a literal value through the emulator's control API, the real sync
runs, and each Marketo record is read back through the Marketo emulator's control API and
compared with literal values written in this file. A second test reads the mapping file with
``tomllib`` (not the sync's loader) and checks that this oracle names every mapped field, so a
field added to the mapping without a check here fails.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from tests.integration.sync.harness import sync_harness

pytestmark = pytest.mark.integration

LOOKUP = "@Microsoft.Dynamics.CRM.lookuplogicalname"
SHIPPED_MAPPING = __import__("pathlib").Path(__file__).resolve().parents[3] / (
    "shared/sync/default_mapping.toml"
)

USER = "a0000000-0000-4000-8000-000000000001"
TEAM = "a0000000-0000-4000-8000-000000000002"
ACCOUNT = "a0000000-0000-4000-8000-000000000003"
CONTACT = "a0000000-0000-4000-8000-000000000004"
LEAD_LINKED = "a0000000-0000-4000-8000-000000000005"
LEAD_ALONE = "a0000000-0000-4000-8000-000000000006"
OPPORTUNITY = "a0000000-0000-4000-8000-000000000007"
ROLE = "a0000000-0000-4000-8000-000000000008"
CONNECTION = "a0000000-0000-4000-8000-000000000009"
RECIPROCAL = "a0000000-0000-4000-8000-00000000000a"
CREATED = "2024-03-05T10:20:30Z"

DYNAMICS: dict[str, list[dict[str, Any]]] = {
    "systemuser": [{
        "systemuserid": USER, "internalemailaddress": "grace.owner@example.com",
        "firstname": "Grace", "lastname": "Owner", "jobtitle": "Account Executive",
    }],
    "team": [{"teamid": TEAM, "name": "Northern Sales"}],
    "account": [{
        "accountid": ACCOUNT, "name": "Fabrikam Ltd", "address1_line1": "1 Harbour Road",
        "address1_city": "Leith", "address1_stateorprovince": "Lothian",
        "address1_country": "United Kingdom", "address1_postalcode": "EH6 6RA",
        "telephone1": "+44 131 555 0101", "revenue": 2500000.5, "industrycode": 1,
        "sic": "7372", "websiteurl": "https://fabrikam.example.com", "numberofemployees": 240,
        "_ownerid_value": TEAM, f"_ownerid_value{LOOKUP}": "team",
    }],
    "contact": [{
        "contactid": CONTACT, "firstname": "Ada", "middlename": "Augusta", "lastname": "King",
        "salutation": "Dr", "emailaddress1": "ada.king@example.com", "jobtitle": "Analyst",
        "telephone1": "+44 20 5550 0102", "mobilephone": "+44 7700 900102",
        "fax": "+44 20 5550 0103", "address1_line1": "12 St James's Square",
        "address1_city": "London", "address1_stateorprovince": "Greater London",
        "address1_country": "United Kingdom", "address1_postalcode": "SW1Y 4JH",
        "donotphone": True, "donotbulkemail": False, "createdon": CREATED,
        "_ownerid_value": USER, f"_ownerid_value{LOOKUP}": "systemuser",
        "_parentcustomerid_value": ACCOUNT, f"_parentcustomerid_value{LOOKUP}": "account",
    }],
    "lead": [
        {
            "leadid": LEAD_LINKED, "firstname": "Linus", "middlename": "B", "lastname": "Linked",
            "salutation": "Mr", "emailaddress1": "linus.linked@example.com",
            "jobtitle": "Buyer", "telephone1": "+1 206 555 0104", "mobilephone": "+1 206 555 0105",
            "fax": "+1 206 555 0106", "companyname": "Ignored Because Linked",
            "address1_line1": "400 Broad St", "address1_city": "Seattle",
            "address1_stateorprovince": "WA", "address1_country": "United States",
            "address1_postalcode": "98109", "donotphone": False, "donotbulkemail": True,
            "revenue": 99.0, "createdon": CREATED, "statecode": 1,
            "_ownerid_value": TEAM, f"_ownerid_value{LOOKUP}": "team",
            "_parentaccountid_value": ACCOUNT,
        },
        {
            "leadid": LEAD_ALONE, "firstname": "Alma", "lastname": "Alone",
            "emailaddress1": "alma.alone@example.com", "companyname": "Contoso Pharmaceuticals",
            "revenue": 750000.0, "statecode": 2, "createdon": CREATED,
            "_ownerid_value": USER, f"_ownerid_value{LOOKUP}": "systemuser",
        },
    ],
    "opportunity": [{
        "opportunityid": OPPORTUNITY, "name": "Fabrikam renewal 2025",
        "description": "Three-year renewal", "estimatedvalue": 120000.0,
        "closeprobability": 60, "actualclosedate": "2025-06-30", "statecode": 1,
        "_ownerid_value": USER, f"_ownerid_value{LOOKUP}": "systemuser",
        "_parentaccountid_value": ACCOUNT,
        "_customerid_value": CONTACT, f"_customerid_value{LOOKUP}": "contact",
    }],
    "connectionrole": [{"connectionroleid": ROLE, "name": "Technical Buyer"}],
    "connection": [
        {
            "connectionid": CONNECTION, "ismaster": True,
            "_record1id_value": OPPORTUNITY, f"_record1id_value{LOOKUP}": "opportunity",
            "_record2id_value": CONTACT, f"_record2id_value{LOOKUP}": "contact",
            "_record2roleid_value": ROLE, "_relatedconnectionid_value": RECIPROCAL,
        },
        {
            "connectionid": RECIPROCAL, "ismaster": False,
            "_record1id_value": CONTACT, f"_record1id_value{LOOKUP}": "contact",
            "_record2id_value": OPPORTUNITY, f"_record2id_value{LOOKUP}": "opportunity",
            "_record1roleid_value": ROLE, "_relatedconnectionid_value": CONNECTION,
        },
    ],
}  # fmt: skip

SALES_PERSONS = {
    USER: {"email": "grace.owner@example.com", "firstName": "Grace", "lastName": "Owner",
           "title": "Account Executive"},
    TEAM: {"firstName": "Team", "lastName": "Northern Sales"},
}  # fmt: skip
COMPANY = {
    "company": "Fabrikam Ltd", "billingStreet": "1 Harbour Road", "billingCity": "Leith",
    "billingState": "Lothian", "billingCountry": "United Kingdom", "billingPostalCode": "EH6 6RA",
    "mainPhone": "+44 131 555 0101", "annualRevenue": 2500000.5, "industry": "Accounting",
    "sicCode": "7372", "website": "https://fabrikam.example.com", "numberOfEmployees": 240,
    "externalSalesPersonId": TEAM,
}  # fmt: skip
PEOPLE = {
    CONTACT: {
        "firstName": "Ada", "middleName": "Augusta", "lastName": "King", "salutation": "Dr",
        "email": "ada.king@example.com", "title": "Analyst", "phone": "+44 20 5550 0102",
        "mobilePhone": "+44 7700 900102", "fax": "+44 20 5550 0103",
        "address": "12 St James's Square", "city": "London", "state": "Greater London",
        "country": "United Kingdom", "postalCode": "SW1Y 4JH", "doNotCall": True,
        "unsubscribed": False, "dynamicsCreatedDate": CREATED,
        "externalSalesPersonId": USER, "externalCompanyId": ACCOUNT,
        "dynamicsType": "Contact", "dynamicsIsDeleted": False,
    },
    LEAD_LINKED: {
        "firstName": "Linus", "middleName": "B", "lastName": "Linked", "salutation": "Mr",
        "email": "linus.linked@example.com", "title": "Buyer", "phone": "+1 206 555 0104",
        "mobilePhone": "+1 206 555 0105", "fax": "+1 206 555 0106", "address": "400 Broad St",
        "city": "Seattle", "state": "WA", "country": "United States", "postalCode": "98109",
        "doNotCall": False, "unsubscribed": True, "dynamicsCreatedDate": CREATED,
        "leadStatus": "Qualified", "externalSalesPersonId": TEAM, "externalCompanyId": ACCOUNT,
        "dynamicsType": "Lead", "dynamicsIsDeleted": False,
    },
    LEAD_ALONE: {
        "firstName": "Alma", "lastName": "Alone", "email": "alma.alone@example.com",
        "company": "Contoso Pharmaceuticals", "annualRevenue": 750000.0,
        "leadStatus": "Disqualified", "dynamicsCreatedDate": CREATED,
        "externalSalesPersonId": USER, "dynamicsType": "Lead", "dynamicsIsDeleted": False,
    },
}  # fmt: skip
OPPORTUNITY_FIELDS = {
    "name": "Fabrikam renewal 2025", "description": "Three-year renewal", "amount": 120000.0,
    "probability": 60, "closeDate": "2025-06-30", "stage": "Won",
    "externalSalesPersonId": USER, "externalCompanyId": ACCOUNT,
}  # fmt: skip

CHECKED_FIELDS: dict[str, set[str]] = {
    "systemuser": set(SALES_PERSONS[USER]),
    "team": set(SALES_PERSONS[TEAM]),
    "account": set(COMPANY),
    "contact": set(PEOPLE[CONTACT]),
    "lead": set(PEOPLE[LEAD_LINKED]) | set(PEOPLE[LEAD_ALONE]),
    "opportunity": set(OPPORTUNITY_FIELDS),
    "connection": {"externalOpportunityId", "leadId", "role"},
    "opportunity_customer": {"externalOpportunityId", "leadId", "role", "isPrimary"},
}
"""The Marketo fields each entity's literal check below looks at."""


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Field → (expected, actual) for every expected field that differs."""
    return {k: (v, actual.get(k)) for k, v in expected.items() if actual.get(k) != v}


def test_the_oracle_names_every_field_of_the_shipped_mapping() -> None:
    """Read with tomllib: fields, constants and links of every entity are checked below."""
    mapping = tomllib.loads(SHIPPED_MAPPING.read_text(encoding="utf-8"))
    assert set(mapping["entity"]) == set(CHECKED_FIELDS)
    for name, entity in mapping["entity"].items():
        mapped = {v if isinstance(v, str) else v["to"] for v in entity.get("fields", {}).values()}
        mapped |= set(entity.get("constants", {}))
        mapped |= {link["to"] for link in entity.get("links", {}).values()}
        mapped |= {lookup["to"] for lookup in entity.get("lookups", {}).values()}
        missing = mapped - CHECKED_FIELDS[name]
        assert not missing, f"{name}: mapped but not checked by the oracle: {sorted(missing)}"


async def test_every_mapped_field_arrives_with_its_literal_value(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """One record (two for leads: with and without a company) of every shipped entity."""
    for table, rows in DYNAMICS.items():
        dyn.control.put_records(table, rows)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        assert [(e.stream.entity, e.code, e.message) for e in sync.open_errors()] == []

        sales = {s["externalSalesPersonId"]: s for s in mkto.control.records("salespersons")}
        assert {USER, TEAM} <= set(sales)  # the environment has its own users too
        for dynamics_id, expected in SALES_PERSONS.items():
            assert differences(sales[dynamics_id], expected) == {}, dynamics_id

        [company] = mkto.control.records("companies")
        assert company["externalCompanyId"] == ACCOUNT
        assert differences(company, COMPANY) == {}
        assert not company.get("dynamicsIsDeleted")

        people = {p["externalPersonId"]: p for p in mkto.control.leads()}
        assert set(people) == set(PEOPLE)
        for dynamics_id, expected in PEOPLE.items():
            assert differences(people[dynamics_id], expected) == {}, dynamics_id
        linked = people[LEAD_LINKED]
        # A person linked to a company leaves the company's fields to the company (1021).
        assert not linked.get("company") and not linked.get("annualRevenue")

        [opportunity] = mkto.control.records("opportunities")
        assert opportunity["externalOpportunityId"] == OPPORTUNITY
        assert differences(opportunity, OPPORTUNITY_FIELDS) == {}
        assert not opportunity.get("dynamicsIsDeleted")

        ada = people[CONTACT]["id"]
        roles = sorted(
            (r["externalOpportunityId"], r["leadId"], r["role"], bool(r.get("isPrimary")))
            for r in mkto.control.records("opportunities/roles")
        )
        assert roles == [
            (OPPORTUNITY, ada, "Potential Customer", True),  # the contact customer
            (OPPORTUNITY, ada, "Technical Buyer", False),  # the stakeholder connection
        ]
