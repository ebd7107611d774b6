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


SYNC_FILTER = "new_synctomkto"


def sync_filter_column(default: bool | None) -> Column:
    """The Marketo sync filter Two Options column (marketo.md A.4)."""
    return boolean(SYNC_FILTER, YES_NO, default=default)
