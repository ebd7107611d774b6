"""Typed values the Dataverse client takes and returns.

Records stay close to the wire: :class:`ChangedRecord` keeps the raw attribute dictionary (the
mapping layer decides what each column means) and adds what every caller needs: the id, the
ETag and the row version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.dynamics.odata import identifier

_ETAG_VERSION = re.compile(r'^W/"(\d+)"$')

LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue"


@dataclass(frozen=True)
class TableRef:
    """How to address one Dataverse table: its logical name, entity set and primary key column.

    The entity set is usually, but not always, the plural of the logical name
    (``opportunity`` → ``opportunities``), so it is given, not derived (reference §6).
    """

    logical_name: str
    entity_set: str
    id_attribute: str

    def __post_init__(self) -> None:
        identifier(self.logical_name)
        identifier(self.entity_set)
        identifier(self.id_attribute)

    @classmethod
    def standard(cls, logical_name: str, entity_set: str) -> TableRef:
        """A table whose primary key is ``<logical name>id``, as for every standard table."""
        return cls(logical_name, entity_set, f"{logical_name}id")


@dataclass(frozen=True)
class ChangedRecord:
    """One row as Dataverse returned it: new and updated rows look the same (reference §1)."""

    id: str
    etag: str | None
    attributes: Mapping[str, Any]
    """Every property of the row as sent, annotations (``name@...``) included."""

    @property
    def version(self) -> int | None:
        """The row version: the number in a ``W/"<n>"`` ETag, else the ``versionnumber`` column.

        ETags are opaque and must not be ordered (reference §2); this is for logs and change
        detection by equality, never for "newer than" decisions.
        """
        if self.etag:
            match = _ETAG_VERSION.match(self.etag)
            if match:
                return int(match.group(1))
        value = self.attributes.get("versionnumber")
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else None

    def lookup_logical_name(self, column: str) -> str | None:
        """The table a polymorphic lookup points at (``systemuser`` or ``team`` for an owner).

        Only present on reads made with ``include_lookup_names=True`` (never on delta reads).
        """
        value = self.attributes.get(f"{column}@{LOOKUP_LOGICAL_NAME}")
        return value if isinstance(value, str) else None

    def formatted_value(self, column: str) -> str | None:
        """The display text of a column, when the read asked for formatted values."""
        value = self.attributes.get(f"{column}@{FORMATTED_VALUE}")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ChangePage:
    """One page of a full or delta read.

    Exactly one of ``next_link`` (more pages follow) and ``delta_link`` (the last page of a
    change-tracking read: store it to read the next changes) is set, or neither on the last page
    of a read without change tracking. Both links are opaque: keep them as given.
    """

    records: tuple[ChangedRecord, ...]
    deleted_ids: tuple[str, ...]
    next_link: str | None
    delta_link: str | None

    @property
    def is_last(self) -> bool:
        """True when no page follows this one."""
        return self.next_link is None


@dataclass(frozen=True)
class RecordCount:
    """A row count: exact, or a lower bound / snapshot when the table is past 5,000 rows."""

    value: int
    exact: bool


@dataclass(frozen=True)
class WriteResult:
    """What a create, update or upsert told us."""

    id: str | None
    """The row's GUID, when the response carried it (a key-form OData-EntityId does not)."""
    entity_url: str | None = None
    """The ``OData-EntityId`` header as sent."""
    created: bool | None = None
    """True/False when the service said which happened (upsert with a representation)."""
    etag: str | None = None


@dataclass(frozen=True)
class WhoAmI:
    """``WhoAmI``: the calling user and where it lives (reference §5)."""

    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True)
class OrganizationInfo:
    """The single ``organizations`` row: identity, and how long change tracking keeps deletes."""

    organization_id: str
    name: str | None
    expire_change_tracking_in_days: int | None
    created_on: datetime | None


@dataclass(frozen=True)
class OrganizationDetail:
    """``RetrieveCurrentOrganization``: the environment as the platform sees it (reference §5)."""

    organization_id: str
    friendly_name: str | None
    unique_name: str | None
    url_name: str | None
    environment_id: str | None
    tenant_id: str | None
    version: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableDefinition:
    """A table's metadata: how to address it, whether it tracks changes, and its columns."""

    table: TableRef
    change_tracking_enabled: bool | None
    attributes: Mapping[str, str]
    """Column logical name → AttributeType (``String``, ``Lookup``, ``Owner``, ...)."""

    def unknown_columns(self, columns: list[str] | tuple[str, ...]) -> list[str]:
        """The names in ``columns`` this table does not have.

        A lookup column may be named as its Web API property ``_<column>_value``.
        """
        unknown = []
        for name in columns:
            base = name
            if name.startswith("_") and name.endswith("_value"):
                base = name[1 : -len("_value")]
            if base not in self.attributes:
                unknown.append(name)
        return unknown


@dataclass(frozen=True)
class ChoiceColumn:
    """A choice column's options: value → label (``Label.UserLocalizedLabel.Label``).

    ``attribute_type`` is ``Picklist``, ``State``, ``Status``, ``MultiSelectPicklist`` or
    ``Boolean``; a Two Options column lists 1 (true) and 0 (false) and is written as a bool.
    """

    logical_name: str
    attribute_type: str
    options: Mapping[int, str]

    def label(self, value: int | bool | None) -> str | None:
        """The label of a stored value, or None when the value is empty or not an option."""
        if value is None:
            return None
        return self.options.get(int(value))

    def value(self, label: str | None) -> int | bool | None:
        """The value whose label matches (case and surrounding spaces ignored), or None.

        Two Options columns give True/False, as the Web API takes them.
        """
        if label is None:
            return None
        wanted = label.strip().casefold()
        for value, text in self.options.items():
            if text.strip().casefold() == wanted:
                return bool(value) if self.attribute_type == "Boolean" else value
        return None
