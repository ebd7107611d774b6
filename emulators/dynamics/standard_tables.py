"""The out-of-the-box tables the emulator serves: columns, lengths, option sets and lookups as
the Dataverse table reference gives them for the columns the sync uses (reference §6,
marketo.md A.6)."""

from __future__ import annotations

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
from emulators.dynamics.schema import (
    AttrType,
    Column,
    OnDelete,
    Table,
    boolean,
    choice,
    integer,
    lookup,
    memo,
    money,
    sync_filter_column,
    system,
    text,
)


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
