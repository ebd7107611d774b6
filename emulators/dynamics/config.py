"""Emulator configuration: credentials, limits, change tracking, alternate keys, custom tables.

Loaded from a JSON file (``--config``) or built in code; every field has a documented default
(see README). The default declares the custom table ``new_project`` with a lookup to account.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from emulators.dynamics.option_sets import ACTIVE_STATE, ACTIVE_STATUS, ACTIVE_STATUS_STATE
from emulators.dynamics.schema import (
    AttrType,
    Column,
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
from emulators.dynamics.standard_tables import SYNC_FILTER_TABLES, standard_tables

DEFAULT_TENANT_ID = "6f3c1a52-8d7e-4b1f-9a0c-2e5d4c3b2a10"
DEFAULT_CLIENT_ID = "0b9e3c7a-5f41-4d2e-8c6b-1a2f3e4d5c6b"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"  # noqa: S105 - a documented local test default
API_PATH = "/api/data/v9.2"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomColumn(_Strict):
    """A column of a custom table."""

    name: str
    type: Literal["String", "Memo", "Integer", "Money", "Boolean", "DateTime", "Picklist", "Lookup"]
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    options: dict[int, str] | None = None
    target: str | None = Field(default=None, description="Lookup: the target table")
    schema_name: str | None = Field(
        default=None, description="Lookup: the navigation property used in @odata.bind"
    )


class CustomTable(_Strict):
    """A custom table (publisher prefix ``new_``) with standard columns added automatically."""

    logical_name: str
    entity_set: str
    primary_name: str
    schema_name: str | None = None
    columns: list[CustomColumn]
    alternate_keys: list[list[str]] = []
    change_tracking: bool = True
    sync_filter: bool = True


DEFAULT_PROJECT_TABLE = CustomTable(
    logical_name="new_project",
    entity_set="new_projects",
    primary_name="new_name",
    schema_name="new_Project",
    columns=[
        CustomColumn(name="new_name", type="String", max_length=100),
        CustomColumn(name="new_description", type="Memo", max_length=2000),
        CustomColumn(name="new_budget", type="Money"),
        CustomColumn(name="new_startdate", type="DateTime"),
        CustomColumn(
            name="new_accountid", type="Lookup", target="account", schema_name="new_AccountId"
        ),
    ],
    alternate_keys=[],
)


class AuthConfig(_Strict):
    """The application user's credentials the token endpoint accepts."""

    tenant_id: str = DEFAULT_TENANT_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = Field(default=DEFAULT_CLIENT_SECRET, repr=False)
    token_lifetime_seconds: int = 3600


class LimitsConfig(_Strict):
    """Service protection limits (PAD api-limits.md), on by default at the real numbers."""

    enabled: bool = True
    requests_per_window: int = 6000
    window_seconds: int = 300
    concurrent_requests: int = 52
    concurrency_retry_after_seconds: int = 1


class EmulatorConfig(_Strict):
    """Everything configurable about one emulated environment."""

    organization_name: str = "Dmsync Emulated Org"
    expire_change_tracking_in_days: int = 7
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    change_tracking: dict[str, bool] = Field(
        default_factory=dict, description="Per-table override of ChangeTrackingEnabled"
    )
    alternate_keys: dict[str, list[list[str]]] = Field(
        default_factory=lambda: {
            "contact": [["emailaddress1"]],
            "account": [["accountnumber"]],
        }
    )
    sync_filter_default: bool | None = Field(
        default=True, description="DefaultValue of new_synctomkto on create (None: no default)"
    )
    custom_tables: list[CustomTable] = Field(default_factory=lambda: [DEFAULT_PROJECT_TABLE])
    max_page_size: int = 5000

    @classmethod
    def load(cls, path: Path) -> EmulatorConfig:
        """Read a JSON configuration file."""
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def build_tables(self) -> dict[str, Table]:
        """The served tables by logical name, with this configuration applied."""
        tables = standard_tables(self.sync_filter_default)
        tables.extend(_custom_table(t, self.sync_filter_default) for t in self.custom_tables)
        by_name: dict[str, Table] = {}
        for table in tables:
            if table.logical_name in self.change_tracking:
                table.change_tracking = self.change_tracking[table.logical_name]
            keys = self.alternate_keys.get(table.logical_name)
            if keys is not None:
                table.alternate_keys = tuple(tuple(k) for k in keys)
            by_name[table.logical_name] = table
        for table in by_name.values():
            for key in table.alternate_keys:
                for name in key:
                    if name not in table.columns:
                        raise ValueError(
                            f"alternate key column {name!r} is not a column of {table.logical_name}"
                        )
        assert by_name.keys() >= SYNC_FILTER_TABLES
        return by_name


def _custom_column(spec: CustomColumn) -> Column:
    kind = AttrType(spec.type)
    if kind is AttrType.LOOKUP:
        if spec.target is None:
            raise ValueError(f"lookup column {spec.name!r} needs a target")
        return lookup(spec.name, spec.target, nav=spec.schema_name or spec.name)
    if kind is AttrType.STRING:
        return text(spec.name, spec.max_length or 100)
    if kind is AttrType.MEMO:
        return memo(spec.name, spec.max_length or 2000)
    if kind is AttrType.INTEGER:
        return integer(
            spec.name,
            spec.min_value if spec.min_value is not None else -2147483648,
            spec.max_value if spec.max_value is not None else 2147483647,
        )
    if kind is AttrType.MONEY:
        return money(spec.name)
    if kind is AttrType.BOOLEAN:
        return boolean(spec.name)
    if kind is AttrType.PICKLIST:
        return choice(spec.name, spec.options or {})
    return Column(spec.name, kind)


def _custom_table(spec: CustomTable, sync_filter_default: bool | None) -> Table:
    primary_id = f"{spec.logical_name}id"
    columns = [Column(primary_id, AttrType.UNIQUEIDENTIFIER)]
    columns.extend(_custom_column(c) for c in spec.columns)
    columns.extend(
        [
            choice("statecode", ACTIVE_STATE, AttrType.STATE),
            choice("statuscode", ACTIVE_STATUS, AttrType.STATUS, states=ACTIVE_STATUS_STATE),
            system("createdon", AttrType.DATETIME),
            system("modifiedon", AttrType.DATETIME),
            system("versionnumber", AttrType.BIGINT),
            lookup("createdby", "systemuser", read_only=True),
            lookup("modifiedby", "systemuser", read_only=True),
            Column("ownerid", AttrType.OWNER, targets=("systemuser", "team")),
        ]
    )
    if spec.sync_filter:
        columns.append(sync_filter_column(sync_filter_default))
    return Table(
        logical_name=spec.logical_name,
        entity_set=spec.entity_set,
        primary_id=primary_id,
        primary_name=spec.primary_name,
        columns={c.name: c for c in columns},
        alternate_keys=tuple(tuple(k) for k in spec.alternate_keys),
        change_tracking=spec.change_tracking,
        schema_name=spec.schema_name or spec.logical_name,
        is_custom=True,
    )
