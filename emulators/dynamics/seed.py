"""Deterministic, realistic seed data (the same seed always gives the same rows and GUIDs).

Users and teams own records; accounts have primary contacts; contacts belong to accounts;
leads, opportunities (customer = account or contact, with stakeholder connections) and custom
``new_project`` rows linked to accounts. A configurable share of lead/contact/account/opportunity/
custom rows has ``new_synctomkto`` = No (and a few None: rows from before the column existed), and
a share carries bad data: invalid e-mail addresses, values at the column's maximum length,
surrounding whitespace and non-Latin text.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from emulators.dynamics.clock import format_datetime
from emulators.dynamics.environment import Environment, new_guid
from emulators.dynamics.schema import SYNC_FILTER, AttrType, Table
from emulators.dynamics.store import Record
from emulators.dynamics.writes import DEFAULT_CURRENCY_ID

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Edsger",
    "Karen",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Fran",
    "Niklaus",
    "Adele",
    "Yukihiro",
    "Jean",
    "Rasmus",
    "Ana",
    "Mary",
    "Carlos",
    "Priya",
    "Chen",
    "Olga",
    "Kwame",
    "Fatima",
    "Mateo",
    "Aiko",
    "Lars",
    "Ingrid",
    "Omar",
    "Zoe",
    "Pablo",
    "Hana",
    "Ivan",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Backus",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Dijkstra",
    "Jones",
    "Knuth",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Wirth",
    "Goldberg",
    "Matsumoto",
    "Sammet",
    "Lerdorf",
    "Silva",
    "Nakamura",
    "Okafor",
    "Haddad",
    "Novak",
    "Jensen",
    "Garcia",
    "Kowalski",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Ivanova",
    "Mensah",
    "Patel",
    "Nguyen",
    "Moreau",
    "Fischer",
]
COMPANY_A = [
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Tailspin",
    "Litware",
    "Adventure",
    "Proseware",
    "Wingtip",
    "Alpine",
    "Coho",
]
COMPANY_B = [
    "Systems",
    "Labs",
    "Traders",
    "Logistics",
    "Health",
    "Energy",
    "Foods",
    "Media",
    "Partners",
    "Works",
]
SUFFIX = ("Inc.", "Ltd", "GmbH", "S.A.", "LLC", "plc")
CITIES = (
    ("Seattle", "WA", "United States", "98101"),
    ("Redmond", "WA", "United States", "98052"),
    ("Chicago", "IL", "United States", "60601"),
    ("London", None, "United Kingdom", "EC1A 1BB"),
    ("Munich", "Bavaria", "Germany", "80331"),
    ("Paris", None, "France", "75001"),
    ("Tokyo", None, "Japan", "100-0001"),
    ("São Paulo", "SP", "Brazil", "01000-000"),
    ("Toronto", "ON", "Canada", "M5H 2N2"),
    ("Sydney", "NSW", "Australia", "2000"),
)
TITLES = (
    "CEO",
    "CTO",
    "VP Marketing",
    "Marketing Manager",
    "Sales Director",
    "Purchasing Manager",
    "IT Administrator",
    "Operations Lead",
    "Account Executive",
    "Data Engineer",
)
STREETS = ("Main St", "Oak Avenue", "Pine Road", "Market Street", "High Street", "Elm Drive")
BAD_EMAILS = (
    "{f}.{l}.at.example.com",
    "{f}.{l}@",
    "{f}.{l}@@example.com",
    "{f} {l}@example.com",
    "@{f}.{l}.example.com",
    "{f}.{l}@example",
)
ROLES = (
    ("Stakeholder", 1000),
    ("Decision Maker", 1000),
    ("Influencer", 1000),
    ("Economic Buyer", 1000),
    ("Technical Buyer", 1000),
    ("Sales Team Member", 1001),
)
TABLE_ORDER = (
    "systemuser",
    "team",
    "connectionrole",
    "account",
    "contact",
    "lead",
    "opportunity",
    "connection",
)


@dataclass
class SeedSpec:
    """How much to seed and how much of it is unsynced or bad."""

    seed: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    no_sync_share: float = 0.1
    null_sync_share: float = 0.05
    bad_data_share: float = 0.05

    @classmethod
    def per_table(cls, n: int, custom_tables: tuple[str, ...] = (), **kw: Any) -> SeedSpec:
        """``n`` rows of each main and custom table, with users and teams in proportion."""
        counts = {
            **{name: n for name in custom_tables},
            "account": n,
            "contact": n,
            "lead": n,
            "opportunity": n,
            "systemuser": max(3, min(200, n // 20)),
            "team": max(2, min(50, n // 50)),
        }
        return cls(counts=counts, **kw)


class Seeder:
    """Generates rows into an environment."""

    def __init__(self, env: Environment, spec: SeedSpec) -> None:
        self.env = env
        self.spec = spec
        self.rng = random.Random(f"seed-{spec.seed}")
        self.now = env.clock.now()
        self.user_ids: list[str] = []
        self.team_ids: list[str] = []
        self.account_ids: list[str] = []
        self.contact_ids: list[str] = []
        self.role_ids: list[str] = []
        self.names: dict[str, str] = {}
        self._serial = 0

    def run(self) -> dict[str, int]:
        """Seed every requested table; returns rows created per table."""
        counts = dict(self.spec.counts)
        for name in counts:
            if name not in self.env.tables:
                raise ValueError(f"cannot seed unknown table {name!r}")
        custom = [n for n in counts if n.startswith("new_")]
        created: dict[str, int] = {}
        self.user_ids = [
            self.env.app_user_id,
            *self._many("systemuser", counts.get("systemuser", 0), self._user),
        ]
        self.team_ids = self._many("team", counts.get("team", 0), self._team)
        existing_roles = list(self.env.db.data["connectionrole"].order)
        self.role_ids = existing_roles or self._many("connectionrole", len(ROLES), self._role)
        self.account_ids = self._many("account", counts.get("account", 0), self._account)
        self.contact_ids = self._many("contact", counts.get("contact", 0), self._contact)
        self._link_primary_contacts()
        self._many("lead", counts.get("lead", 0), self._lead)
        opportunities = self._many("opportunity", counts.get("opportunity", 0), self._opportunity)
        self._stakeholders(opportunities)
        for name in custom:
            self._many(name, counts[name], lambda i, t=self.env.tables[name]: self._custom(t, i))
        for name, data in self.env.db.data.items():
            created[name] = len(data.rows)
        return created

    # -- helpers --------------------------------------------------------------------------------

    def _many(self, table: str, count: int, make: Any) -> list[str]:
        data = self.env.db.data[table]
        rows: dict[str, Record] = {}
        for index in range(count):
            record = make(index)
            record_id = record.values[data.table.primary_id]
            rows[record_id] = record
            self.names[record_id] = str(record.values.get(data.table.primary_name) or "")
        self.env.db.load(data, rows)
        return list(rows)

    def _id(self) -> str:
        return new_guid(self.rng)

    def _stamp(self, values: dict[str, Any]) -> None:
        created = self.now - timedelta(
            days=self.rng.randint(1, 900), seconds=self.rng.randint(0, 86399)
        )
        modified = created + timedelta(days=self.rng.randint(0, 30))
        values["createdon"] = format_datetime(created)
        values["modifiedon"] = format_datetime(min(modified, self.now))

    def _owned(self, values: dict[str, Any], targets: dict[str, str]) -> None:
        self._stamp(values)
        for name in ("_createdby_value", "_modifiedby_value"):
            values[name] = self.rng.choice(self.user_ids)
            targets[name] = "systemuser"
        if self.team_ids and self.rng.random() < 0.15:
            values["_ownerid_value"], targets["_ownerid_value"] = (
                self.rng.choice(self.team_ids),
                "team",
            )
        else:
            values["_ownerid_value"], targets["_ownerid_value"] = (
                self.rng.choice(self.user_ids),
                "systemuser",
            )

    def _sync_flag(self) -> bool | None:
        draw = self.rng.random()
        if draw < self.spec.no_sync_share:
            return False
        if draw < self.spec.no_sync_share + self.spec.null_sync_share:
            return None
        return True

    def _bad(self) -> bool:
        return self.rng.random() < self.spec.bad_data_share

    def _unique(self) -> int:
        self._serial += 1
        return self._serial

    def _person(self, table: Table, values: dict[str, Any]) -> None:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        serial = self._unique()
        email = f"{first}.{last}.{self.spec.seed}.{serial}@example.com".lower()
        if self._bad():
            kind = self.rng.randrange(4)
            if kind == 0:
                email = self.rng.choice(BAD_EMAILS).format(
                    f=first.lower(), l=f"{last.lower()}{serial}"
                )
            elif kind == 1:  # at the column's maximum lengths
                first = (first * 10)[: table.columns["firstname"].max_length]
                local = f"{last.lower()}.{serial}."
                email = (local + "x" * 100)[: 100 - len("@example.com")] + "@example.com"
                values["description"] = ("Long note. " * 200)[:2000]
                values["jobtitle"] = ("Senior " * 20)[:100]
            elif kind == 2:
                first, last = f"  {first} ", f"{last}  "
            else:
                first, last = "Zoë-Łucja", "Ñúñez 山田"
        city, state, country, postal = self.rng.choice(CITIES)
        values.update(
            {
                "firstname": first,
                "lastname": last,
                "fullname": " ".join(p for p in (first, last) if p),
                "emailaddress1": email,
                "jobtitle": values.get("jobtitle") or self.rng.choice(TITLES),
                "telephone1": f"+1 555 {self.rng.randint(1000000, 9999999)}",
                "mobilephone": f"+1 555 {self.rng.randint(1000000, 9999999)}"
                if self.rng.random() < 0.6
                else None,
                "address1_line1": f"{self.rng.randint(1, 9999)} {self.rng.choice(STREETS)}",
                "address1_city": city,
                "address1_stateorprovince": state,
                "address1_country": country,
                "address1_postalcode": postal,
                "donotemail": self.rng.random() < 0.05,
                "donotphone": self.rng.random() < 0.05,
                "donotbulkemail": self.rng.random() < 0.1,
                "donotfax": False,
                "donotpostalmail": False,
                "donotsendmm": False,
                "preferredcontactmethodcode": 1,
                SYNC_FILTER: self._sync_flag(),
            }
        )

    def _company(self) -> str:
        return (
            f"{self.rng.choice(COMPANY_A)} {self.rng.choice(COMPANY_B)} "
            f"{self.rng.choice(SUFFIX)} {self._unique()}"
        )

    # -- tables ---------------------------------------------------------------------------------

    def _user(self, index: int) -> Record:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        record_id = self._id()
        upn = f"{first}.{last}.{index}@contoso.example".lower()
        values: dict[str, Any] = {
            "systemuserid": record_id,
            "firstname": first,
            "lastname": last,
            "fullname": f"{first} {last}",
            "domainname": upn,
            "internalemailaddress": upn,
            "jobtitle": self.rng.choice(TITLES),
            "azureactivedirectoryobjectid": self._id(),
            "applicationid": None,
            "isdisabled": self.rng.random() < 0.05,
            "accessmode": 0,
            "_businessunitid_value": self.env.business_unit_id,
        }
        self._stamp(values)
        return Record(values, {"_businessunitid_value": "businessunit"})

    def _team(self, index: int) -> Record:
        record_id = self._id()
        values: dict[str, Any] = {
            "teamid": record_id,
            "name": f"{self.rng.choice(COMPANY_B)} Team {index + 1}",
            "teamtype": self.rng.choice((0, 0, 1, 2)),
            "isdefault": False,
            "azureactivedirectoryobjectid": None,
            "_businessunitid_value": self.env.business_unit_id,
            "_administratorid_value": self.rng.choice(self.user_ids),
        }
        self._stamp(values)
        return Record(
            values,
            {"_businessunitid_value": "businessunit", "_administratorid_value": "systemuser"},
        )

    def _role(self, index: int) -> Record:
        name, category = ROLES[index]
        values: dict[str, Any] = {
            "connectionroleid": self._id(),
            "name": name,
            "category": category,
            "statecode": 0,
            "statuscode": 1,
        }
        self._stamp(values)
        return Record(values)

    def _account(self, index: int) -> Record:
        city, state, country, postal = self.rng.choice(CITIES)
        name = self._company()
        values: dict[str, Any] = {
            "accountid": self._id(),
            "name": name,
            "accountnumber": f"ACC-{self.spec.seed:03d}-{index + 1:07d}",
            "telephone1": f"+1 555 {self.rng.randint(1000000, 9999999)}",
            "websiteurl": f"https://www.{name.split()[0].lower()}{index}.example.com",
            "address1_line1": f"{self.rng.randint(1, 9999)} {self.rng.choice(STREETS)}",
            "address1_city": city,
            "address1_stateorprovince": state,
            "address1_country": country,
            "address1_postalcode": postal,
            "revenue": float(self.rng.randint(1, 5000) * 10000),
            "numberofemployees": self.rng.randint(1, 50000),
            "industrycode": self.rng.randint(1, 33),
            "businesstypecode": 1,
            "sic": str(self.rng.randint(1000, 9999)),
            "description": None,
            "statecode": 0,
            "statuscode": 1,
            "_transactioncurrencyid_value": DEFAULT_CURRENCY_ID,
            SYNC_FILTER: self._sync_flag(),
        }
        if self._bad():
            values["name"] = (name + " " + "Holdings " * 20)[:160]
            values["description"] = ("Account history. " * 150)[:2000]
        targets = {"_transactioncurrencyid_value": "transactioncurrency"}
        self._owned(values, targets)
        return Record(values, targets)

    def _contact(self, index: int) -> Record:
        table = self.env.tables["contact"]
        values: dict[str, Any] = {"contactid": self._id(), "statecode": 0, "statuscode": 1}
        targets: dict[str, str] = {}
        self._person(table, values)
        if self.account_ids and self.rng.random() < 0.85:
            values["_parentcustomerid_value"] = self.rng.choice(self.account_ids)
            targets["_parentcustomerid_value"] = "account"
        self._owned(values, targets)
        return Record(values, targets)

    def _link_primary_contacts(self) -> None:
        data = self.env.db.data["account"]
        by_account: dict[str, str] = {}
        for contact_id in self.contact_ids:
            row = self.env.db.data["contact"].rows[contact_id]
            account = row.values.get("_parentcustomerid_value")
            if account and account not in by_account:
                by_account[account] = contact_id
        updates: dict[str, Record] = {}
        for account_id, contact_id in by_account.items():
            record = data.rows[account_id].copy()
            record.values["_primarycontactid_value"] = contact_id
            record.targets["_primarycontactid_value"] = "contact"
            updates[account_id] = record
        self.env.db.load(data, updates)

    def _lead(self, index: int) -> Record:
        table = self.env.tables["lead"]
        values: dict[str, Any] = {"leadid": self._id()}
        targets: dict[str, str] = {}
        self._person(table, values)
        state = self.rng.choices((0, 1, 2), weights=(80, 12, 8))[0]
        status = {0: self.rng.choice((1, 2)), 1: 3, 2: self.rng.choice((4, 5, 6, 7))}[state]
        values.update(
            {
                "subject": f"Interested in {self.rng.choice(COMPANY_B).lower()} solutions",
                "companyname": self._company()[:100],
                "leadsourcecode": self.rng.randint(1, 10),
                "leadqualitycode": self.rng.randint(1, 3),
                "statecode": state,
                "statuscode": status,
                "revenue": float(self.rng.randint(0, 900) * 1000),
                "numberofemployees": self.rng.randint(1, 5000),
                "_transactioncurrencyid_value": DEFAULT_CURRENCY_ID,
            }
        )
        targets["_transactioncurrencyid_value"] = "transactioncurrency"
        if self.account_ids and self.rng.random() < 0.2:
            values["_parentaccountid_value"] = self.rng.choice(self.account_ids)
            targets["_parentaccountid_value"] = "account"
        self._owned(values, targets)
        return Record(values, targets)

    def _opportunity(self, index: int) -> Record:
        state = self.rng.choices((0, 1, 2), weights=(70, 18, 12))[0]
        status = {0: self.rng.choice((1, 2)), 1: 3, 2: self.rng.choice((4, 5))}[state]
        values: dict[str, Any] = {
            "opportunityid": self._id(),
            "name": f"{self.rng.randint(5, 500)} licences – {self.rng.choice(COMPANY_A)}",
            "estimatedvalue": float(self.rng.randint(1, 1000) * 500),
            "closeprobability": self.rng.randint(0, 100),
            "estimatedclosedate": format_datetime(
                self.now + timedelta(days=self.rng.randint(-100, 200))
            )[:10],
            "actualclosedate": (
                format_datetime(self.now - timedelta(days=self.rng.randint(1, 300)))[:10]
                if state
                else None
            ),
            "description": None,
            "statecode": state,
            "statuscode": status,
            "_transactioncurrencyid_value": DEFAULT_CURRENCY_ID,
            SYNC_FILTER: self._sync_flag(),
        }
        targets = {"_transactioncurrencyid_value": "transactioncurrency"}
        if self._bad():
            values["description"] = ("Deal notes. " * 200)[:2000]
        use_contact = self.contact_ids and (not self.account_ids or self.rng.random() < 0.3)
        if use_contact:
            contact = self.rng.choice(self.contact_ids)
            values["_customerid_value"], targets["_customerid_value"] = contact, "contact"
            values["_parentcontactid_value"], targets["_parentcontactid_value"] = contact, "contact"
        elif self.account_ids:
            account = self.rng.choice(self.account_ids)
            values["_customerid_value"], targets["_customerid_value"] = account, "account"
            values["_parentaccountid_value"], targets["_parentaccountid_value"] = account, "account"
        self._owned(values, targets)
        return Record(values, targets)

    def _stakeholders(self, opportunities: list[str]) -> None:
        if not self.contact_ids or not self.role_ids:
            return
        data = self.env.db.data["connection"]
        rows: dict[str, Record] = {}
        for opportunity in opportunities:
            for _ in range(self.rng.choice((0, 1, 1, 2, 3))):
                contact = self.rng.choice(self.contact_ids)
                role = self.rng.choice(self.role_ids[:5])
                master_id, reciprocal_id = self._id(), self._id()
                base: dict[str, Any] = {"statecode": 0, "statuscode": 1, "description": None}
                targets: dict[str, str] = {}
                self._owned(base, targets)
                master = {
                    **base,
                    "connectionid": master_id,
                    "name": self.names.get(contact),
                    "ismaster": True,
                    "_record1id_value": opportunity,
                    "_record2id_value": contact,
                    "_record1roleid_value": None,
                    "_record2roleid_value": role,
                    "_relatedconnectionid_value": reciprocal_id,
                }
                reciprocal = {
                    **base,
                    "connectionid": reciprocal_id,
                    "name": self.names.get(opportunity),
                    "ismaster": False,
                    "_record1id_value": contact,
                    "_record2id_value": opportunity,
                    "_record1roleid_value": role,
                    "_record2roleid_value": None,
                    "_relatedconnectionid_value": master_id,
                }
                rows[master_id] = Record(
                    master,
                    {
                        **targets,
                        "_record1id_value": "opportunity",
                        "_record2id_value": "contact",
                        "_record2roleid_value": "connectionrole",
                        "_relatedconnectionid_value": "connection",
                    },
                )
                rows[reciprocal_id] = Record(
                    reciprocal,
                    {
                        **targets,
                        "_record1id_value": "contact",
                        "_record2id_value": "opportunity",
                        "_record1roleid_value": "connectionrole",
                        "_relatedconnectionid_value": "connection",
                    },
                )
        self.env.db.load(data, rows)

    def _custom(self, table: Table, index: int) -> Record:
        values: dict[str, Any] = {table.primary_id: self._id(), "statecode": 0, "statuscode": 1}
        targets: dict[str, str] = {}
        for column in table.columns.values():
            if column.read_only or column.name in values or column.name in ("ownerid",):
                continue
            if column.name == SYNC_FILTER:
                values[SYNC_FILTER] = self._sync_flag()
            elif column.is_lookup and column.targets == ("account",) and self.account_ids:
                values[column.value_name] = self.rng.choice(self.account_ids)
                targets[column.value_name] = "account"
            elif column.type is AttrType.STRING:
                values[column.name] = f"Project {index + 1} {self.rng.choice(COMPANY_B)}"[
                    : column.max_length
                ]
            elif column.type is AttrType.MEMO:
                values[column.name] = (
                    "Scope and milestones."
                    if not self._bad()
                    else ("Scope. " * 400)[: column.max_length]
                )
            elif column.type is AttrType.MONEY:
                values[column.name] = float(self.rng.randint(1, 200) * 1000)
            elif column.type is AttrType.DATETIME:
                values[column.name] = format_datetime(
                    self.now - timedelta(days=self.rng.randint(0, 400))
                )
            elif column.type is AttrType.INTEGER:
                values[column.name] = self.rng.randint(0, 100)
            elif column.type is AttrType.BOOLEAN:
                values[column.name] = self.rng.random() < 0.5
        if "transactioncurrencyid" in table.columns:
            values["_transactioncurrencyid_value"] = DEFAULT_CURRENCY_ID
            targets["_transactioncurrencyid_value"] = "transactioncurrency"
        self._owned(values, targets)
        return Record(values, targets)
