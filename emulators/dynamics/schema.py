"""Table and column definitions: what each served table holds and how its values validate.

Column names, types and maximum lengths follow the Dataverse table reference for the columns the
sync uses (reference §6, marketo.md A.6). Lookups hold a GUID in ``_<name>_value`` and remember
which table it points at (``lookuplogicalname``); they are written with ``<nav>@odata.bind``
(reference §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from emulators.dynamics.option_sets import (
    ACCESS_MODE,
    ACTIVE_STATE,
    ACTIVE_STATUS,
    ACTIVE_STATUS_STATE,
    ALLOW_DONT,
    BUSINESS_TYPE,
    CONNECTION_ROLE_CATEGORY,
    CONTACT_METHOD,
    INDUSTRY,
    LEAD_QUALITY,
    LEAD_SOURCE,
    LEAD_STATE,
    LEAD_STATUS,
    LEAD_STATUS_STATE,
    OPPORTUNITY_STATE,
    OPPORTUNITY_STATUS,
    OPPORTUNITY_STATUS_STATE,
    TEAM_TYPE,
    YES_NO,
)


class AttrType(StrEnum):
    """Dataverse ``AttributeType`` names (as EntityDefinitions/Attributes report them)."""

    STRING = "String"
    MEMO = "Memo"
    INTEGER = "Integer"
    BIGINT = "BigInt"
    MONEY = "Money"
    DECIMAL = "Decimal"
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    LOOKUP = "Lookup"
    OWNER = "Owner"
    CUSTOMER = "Customer"
    UNIQUEIDENTIFIER = "Uniqueidentifier"


LOOKUP_TYPES = frozenset({AttrType.LOOKUP, AttrType.OWNER, AttrType.CUSTOMER})
CHOICE_TYPES = frozenset({AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS})
NUMBER_TYPES = frozenset(
    {AttrType.INTEGER, AttrType.BIGINT, AttrType.MONEY, AttrType.DECIMAL, AttrType.DOUBLE}
)
STRING_TYPES = frozenset({AttrType.STRING, AttrType.MEMO})

# Edm types used in OData error messages.
EDM_TYPES: dict[AttrType, str] = {
    AttrType.STRING: "Edm.String",
    AttrType.MEMO: "Edm.String",
    AttrType.INTEGER: "Edm.Int32",
    AttrType.BIGINT: "Edm.Int64",
    AttrType.MONEY: "Edm.Decimal",
    AttrType.DECIMAL: "Edm.Decimal",
    AttrType.DOUBLE: "Edm.Double",
    AttrType.BOOLEAN: "Edm.Boolean",
    AttrType.DATETIME: "Edm.DateTimeOffset",
    AttrType.PICKLIST: "Edm.Int32",
    AttrType.STATE: "Edm.Int32",
    AttrType.STATUS: "Edm.Int32",
    AttrType.LOOKUP: "Edm.Guid",
    AttrType.OWNER: "Edm.Guid",
    AttrType.CUSTOMER: "Edm.Guid",
    AttrType.UNIQUEIDENTIFIER: "Edm.Guid",
}


class OnDelete(StrEnum):
    """What deleting the referenced row does to a lookup (relationship cascade behaviour)."""

    REMOVE_LINK = "remove_link"  # referential: the lookup is cleared (an update of the child)
    CASCADE = "cascade"  # parental: the child row is deleted too


@dataclass(frozen=True)
class Column:
    """One column (attribute) of a table."""

    name: str
    type: AttrType
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    options: Mapping[int, str] | None = None
    targets: tuple[str, ...] = ()
    nav: str | None = None
    """Single-valued navigation property for ``@odata.bind`` (single-target lookups only;
    custom lookups use the column's SchemaName, e.g. ``new_AccountId``)."""
    read_only: bool = False
    default: Any = None
    date_only: bool = False
    on_delete: OnDelete = OnDelete.REMOVE_LINK
    option_states: Mapping[int, int] | None = None
    """Status columns: each option's state (``statuscode`` value → ``statecode`` value)."""
    global_option_set: str | None = None
    """The name of the global option set the choice uses; None for a local option set."""

    @property
    def is_lookup(self) -> bool:
        """True for Lookup, Owner and Customer columns."""
        return self.type in LOOKUP_TYPES

    @property
    def value_name(self) -> str:
        """The property that carries the value: ``_<name>_value`` for lookups."""
        return f"_{self.name}_value" if self.is_lookup else self.name

    def bind_names(self) -> dict[str, str]:
        """``@odata.bind`` property name → the target table it binds to.

        A single-target lookup binds through its navigation property; an owner binds through
        ``ownerid`` to a systemuser or a team (both are principals); a multi-target lookup
        (customer, connection ends) has one navigation property per target, ``<name>_<target>``
        (reference §3).
        """
        if not self.is_lookup:
            return {}
        if self.type is AttrType.OWNER:
            return {self.nav or self.name: "*"}
        if len(self.targets) == 1:
            return {self.nav or self.name: self.targets[0]}
        return {f"{self.name}_{target}": target for target in self.targets}


@dataclass
class Table:
    """A served table and its metadata."""

    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    columns: dict[str, Column]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    change_tracking: bool = True
    can_delete: bool = True
    can_create: bool = True
    computed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Computed string columns: name → source columns joined with a space (``fullname``)."""
    schema_name: str = ""
    is_custom: bool = False

    def __post_init__(self) -> None:
        self.by_value_name: dict[str, Column] = {c.value_name: c for c in self.columns.values()}
        self.bind_targets: dict[str, tuple[Column, str]] = {}
        for column in self.columns.values():
            for bind_name, target in column.bind_names().items():
                self.bind_targets[bind_name] = (column, target)
        if not self.schema_name:
            self.schema_name = self.logical_name.capitalize()

    def column_for_property(self, prop: str) -> Column | None:
        """The column behind a query property name (``name`` or ``_parentcustomerid_value``)."""
        return self.by_value_name.get(prop)


MONEY_MIN, MONEY_MAX = -922337203685477.0, 922337203685477.0
INT_MIN, INT_MAX = -2147483648, 2147483647


# --- column builders ---------------------------------------------------------------------------


def text(name: str, max_length: int, **kw: Any) -> Column:
    """A single line of text."""
    return Column(name, AttrType.STRING, max_length=max_length, **kw)


def memo(name: str, max_length: int = 2000) -> Column:
    """Multiple lines of text."""
    return Column(name, AttrType.MEMO, max_length=max_length)


def integer(name: str, low: float = INT_MIN, high: float = INT_MAX) -> Column:
    """A whole number with its range."""
    return Column(name, AttrType.INTEGER, min_value=low, max_value=high)


def money(name: str) -> Column:
    """A currency column (brings ``_transactioncurrencyid_value`` along, reference §2)."""
    return Column(name, AttrType.MONEY, min_value=MONEY_MIN, max_value=MONEY_MAX)


def boolean(name: str, labels: Mapping[int, str] = YES_NO, default: bool | None = False) -> Column:
    """A Two Options column."""
    return Column(name, AttrType.BOOLEAN, options=labels, default=default)


def choice(
    name: str,
    options: Mapping[int, str],
    kind: AttrType = AttrType.PICKLIST,
    *,
    states: Mapping[int, int] | None = None,
    global_name: str | None = None,
) -> Column:
    """A choice (picklist), state or status column (a status column names each option's state)."""
    return Column(name, kind, options=options, option_states=states, global_option_set=global_name)


def lookup(
    name: str,
    *targets: str,
    nav: str | None = None,
    on_delete: OnDelete = OnDelete.REMOVE_LINK,
    read_only: bool = False,
) -> Column:
    """A lookup to one table, or a customer lookup to several."""
    kind = AttrType.CUSTOMER if set(targets) == {"account", "contact"} else AttrType.LOOKUP
    return Column(
        name, kind, targets=tuple(targets), nav=nav, on_delete=on_delete, read_only=read_only
    )


def system(name: str, kind: AttrType) -> Column:
    """A column the platform maintains (read-only to callers)."""
    return Column(name, kind, read_only=True)


def _common(owner: bool = True) -> list[Column]:
    columns = [
        system("createdon", AttrType.DATETIME),
        system("modifiedon", AttrType.DATETIME),
        system("versionnumber", AttrType.BIGINT),
        lookup("createdby", "systemuser", read_only=True),
        lookup("modifiedby", "systemuser", read_only=True),
    ]
    if owner:
        columns.append(Column("ownerid", AttrType.OWNER, targets=("systemuser", "team")))
    return columns


def _address() -> list[Column]:
    return [
        text("address1_line1", 250),
        text("address1_line2", 250),
        text("address1_line3", 250),
        text("address1_city", 80),
        text("address1_stateorprovince", 50),
        text("address1_postalcode", 20),
        text("address1_country", 80),
    ]


def _person() -> list[Column]:
    return [
        text("firstname", 50),
        text("middlename", 50),
        text("lastname", 50),
        Column("fullname", AttrType.STRING, max_length=160, read_only=True),
        text("salutation", 100),
        text("emailaddress1", 100),
        text("emailaddress2", 100),
        text("jobtitle", 100),
        text("telephone1", 50),
        text("telephone2", 50),
        text("mobilephone", 50),
        text("fax", 50),
        memo("description"),
        boolean("donotphone", ALLOW_DONT),
        boolean("donotemail", ALLOW_DONT),
        boolean("donotbulkemail", ALLOW_DONT),
        boolean("donotfax", ALLOW_DONT),
        boolean("donotpostalmail", ALLOW_DONT),
        boolean("donotsendmm", {0: "Send", 1: "Do Not Send"}),
        choice("preferredcontactmethodcode", CONTACT_METHOD),
        *_address(),
    ]


SYNC_FILTER = "new_synctomkto"


def sync_filter_column(default: bool | None) -> Column:
    """The Marketo sync filter Two Options column (marketo.md A.4)."""
    return boolean(SYNC_FILTER, YES_NO, default=default)


def _table(
    logical_name: str,
    entity_set: str,
    primary_name: str,
    columns: list[Column],
    **kw: Any,
) -> Table:
    primary_id = f"{logical_name}id"
    all_columns = [Column(primary_id, AttrType.UNIQUEIDENTIFIER), *columns]
    return Table(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_id=primary_id,
        primary_name=primary_name,
        columns={c.name: c for c in all_columns},
        **kw,
    )


def standard_tables(sync_filter_default: bool | None = True) -> list[Table]:
    """The out-of-the-box tables the emulator serves (reference §6)."""
    flag = sync_filter_column(sync_filter_default)
    lead = _table(
        "lead",
        "leads",
        "fullname",
        [
            text("subject", 300),
            *_person(),
            text("companyname", 100),
            text("websiteurl", 200),
            money("revenue"),
            integer("numberofemployees", 0, 1_000_000_000),
            choice("leadsourcecode", LEAD_SOURCE),
            choice("leadqualitycode", LEAD_QUALITY),
            choice("statecode", LEAD_STATE, AttrType.STATE),
            choice("statuscode", LEAD_STATUS, AttrType.STATUS, states=LEAD_STATUS_STATE),
            lookup("parentaccountid", "account"),
            lookup("parentcontactid", "contact"),
            lookup("transactioncurrencyid", "transactioncurrency"),
            flag,
            *_common(),
        ],
        computed={"fullname": ("firstname", "lastname")},
    )
    contact = _table(
        "contact",
        "contacts",
        "fullname",
        [
            *_person(),
            choice("leadsourcecode", {1: "Default Value"}),
            choice("statecode", ACTIVE_STATE, AttrType.STATE),
            choice("statuscode", ACTIVE_STATUS, AttrType.STATUS, states=ACTIVE_STATUS_STATE),
            lookup("parentcustomerid", "account", "contact", on_delete=OnDelete.CASCADE),
            lookup("transactioncurrencyid", "transactioncurrency"),
            flag,
            *_common(),
        ],
        computed={"fullname": ("firstname", "lastname")},
    )
    account = _table(
        "account",
        "accounts",
        "name",
        [
            text("name", 160),
            text("accountnumber", 20),
            text("telephone1", 50),
            text("fax", 50),
            text("emailaddress1", 100),
            text("websiteurl", 200),
            *_address(),
            money("revenue"),
            integer("numberofemployees", 0, 1_000_000_000),
            choice("industrycode", INDUSTRY),
            choice("businesstypecode", BUSINESS_TYPE),
            text("sic", 20),
            memo("description"),
            choice("statecode", ACTIVE_STATE, AttrType.STATE),
            choice("statuscode", ACTIVE_STATUS, AttrType.STATUS, states=ACTIVE_STATUS_STATE),
            lookup("primarycontactid", "contact"),
            lookup("parentaccountid", "account"),
            lookup("transactioncurrencyid", "transactioncurrency"),
            flag,
            *_common(),
        ],
    )
    opportunity = _table(
        "opportunity",
        "opportunities",
        "name",
        [
            text("name", 300),
            money("estimatedvalue"),
            integer("closeprobability", 0, 100),
            Column("actualclosedate", AttrType.DATETIME, date_only=True),
            Column("estimatedclosedate", AttrType.DATETIME, date_only=True),
            memo("description"),
            choice("statecode", OPPORTUNITY_STATE, AttrType.STATE),
            choice(
                "statuscode", OPPORTUNITY_STATUS, AttrType.STATUS, states=OPPORTUNITY_STATUS_STATE
            ),
            lookup("customerid", "account", "contact", on_delete=OnDelete.CASCADE),
            lookup("parentaccountid", "account"),
            lookup("parentcontactid", "contact"),
            lookup("transactioncurrencyid", "transactioncurrency"),
            flag,
            *_common(),
        ],
    )
    systemuser = _table(
        "systemuser",
        "systemusers",
        "fullname",
        [
            text("firstname", 64),
            text("lastname", 64),
            Column("fullname", AttrType.STRING, max_length=200, read_only=True),
            text("domainname", 1024),
            text("internalemailaddress", 100),
            text("jobtitle", 100),
            text("title", 128),
            Column("azureactivedirectoryobjectid", AttrType.UNIQUEIDENTIFIER),
            Column("applicationid", AttrType.UNIQUEIDENTIFIER),
            boolean("isdisabled", {0: "Enabled", 1: "Disabled"}),
            choice("accessmode", ACCESS_MODE),
            lookup("businessunitid", "businessunit"),
            *_common(owner=False),
        ],
        computed={"fullname": ("firstname", "lastname")},
        can_delete=False,  # users are disabled, never deleted
    )
    team = _table(
        "team",
        "teams",
        "name",
        [
            text("name", 160),
            memo("description"),
            choice("teamtype", TEAM_TYPE),
            Column("azureactivedirectoryobjectid", AttrType.UNIQUEIDENTIFIER),
            boolean("isdefault", YES_NO),
            lookup("businessunitid", "businessunit"),
            lookup("administratorid", "systemuser"),
            *_common(owner=False),
        ],
    )
    organization = _table(
        "organization",
        "organizations",
        "name",
        [
            text("name", 160),
            integer("expirechangetrackingindays", 0, 365),
            integer("expiresubscriptionsindays", 0, 365),
            system("createdon", AttrType.DATETIME),
            system("modifiedon", AttrType.DATETIME),
            system("versionnumber", AttrType.BIGINT),
        ],
        change_tracking=False,
        can_delete=False,
        can_create=False,
    )
    connectionrole = _table(
        "connectionrole",
        "connectionroles",
        "name",
        [
            text("name", 100),
            memo("description"),
            choice("category", CONNECTION_ROLE_CATEGORY, global_name="connectionrole_category"),
            choice("statecode", ACTIVE_STATE, AttrType.STATE),
            choice("statuscode", ACTIVE_STATUS, AttrType.STATUS, states=ACTIVE_STATUS_STATE),
            system("createdon", AttrType.DATETIME),
            system("modifiedon", AttrType.DATETIME),
            system("versionnumber", AttrType.BIGINT),
        ],
        change_tracking=False,
    )
    connection_ends = ("account", "contact", "lead", "opportunity", "systemuser", "team")
    connection = _table(
        "connection",
        "connections",
        "name",
        [
            text("name", 500, read_only=True),
            memo("description"),
            Column("effectivestart", AttrType.DATETIME),
            Column("effectiveend", AttrType.DATETIME),
            boolean("ismaster", YES_NO),
            lookup("record1id", *connection_ends, on_delete=OnDelete.CASCADE),
            lookup("record2id", *connection_ends, on_delete=OnDelete.CASCADE),
            lookup("record1roleid", "connectionrole"),
            lookup("record2roleid", "connectionrole"),
            lookup("relatedconnectionid", "connection", read_only=True),
            choice("statecode", ACTIVE_STATE, AttrType.STATE),
            choice("statuscode", ACTIVE_STATUS, AttrType.STATUS, states=ACTIVE_STATUS_STATE),
            *_common(),
        ],
    )
    return [
        lead,
        contact,
        account,
        opportunity,
        systemuser,
        team,
        organization,
        connectionrole,
        connection,
    ]


SYNC_FILTER_TABLES = frozenset({"lead", "contact", "account", "opportunity"})
