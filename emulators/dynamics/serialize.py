"""Rendering rows as the Web API does: ``@odata.etag``, selected columns, the primary key, and
the annotations asked for with ``Prefer: odata.include-annotations`` (reference §2).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from emulators.dynamics.schema import AttrType, Column, Table
from emulators.dynamics.store import Database, Record

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_PROPERTY = "Microsoft.Dynamics.CRM.associatednavigationproperty"
TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_COUNT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"

# Names of rows in tables the emulator does not serve but lookups point at.
FIXED_LOOKUP_NAMES = {"transactioncurrency": "US Dollar", "businessunit": "Emulated Org"}


class AnnotationFilter:
    """Which annotations ``odata.include-annotations`` asked for (``*`` or a comma list)."""

    def __init__(self, spec: str | None) -> None:
        self.spec = spec
        patterns = [p.strip() for p in (spec or "").split(",") if p.strip()]
        self.formatted = _any_match(patterns, FORMATTED)
        self.lookup_name = _any_match(patterns, LOOKUP_NAME)
        self.nav_property = _any_match(patterns, NAV_PROPERTY)
        self.total_count = _any_match(patterns, TOTAL_COUNT)

    @property
    def any(self) -> bool:
        """True when at least one row annotation is wanted."""
        return self.formatted or self.lookup_name or self.nav_property


def _any_match(patterns: list[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def etag(version: int) -> str:
    """The weak ETag for a row version (reference §2: ``W/"<versionnumber>"``)."""
    return f'W/"{version}"'


def format_value(column: Column, value: Any) -> str | None:
    """The FormattedValue string for a non-lookup value (en-US, UTC), or None when there is none."""
    if value is None:
        return None
    kind = column.type
    if kind is AttrType.BOOLEAN:
        labels = column.options or {1: "Yes", 0: "No"}
        return labels.get(1 if value else 0)
    if column.options is not None:
        return column.options.get(value)
    if kind is AttrType.MONEY:
        return f"${value:,.2f}"
    if kind is AttrType.INTEGER:
        return f"{value:,}"
    if kind in (AttrType.DECIMAL, AttrType.DOUBLE):
        return f"{value:,.2f}"
    if kind is AttrType.DATETIME:
        if column.date_only:
            instant = datetime.fromisoformat(value)
            return f"{instant.month}/{instant.day}/{instant.year}"
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
        hour = instant.hour % 12 or 12
        suffix = "AM" if instant.hour < 12 else "PM"
        return f"{instant.month}/{instant.day}/{instant.year} {hour}:{instant.minute:02d} {suffix}"
    return None


def navigation_property(column: Column, target: str) -> str:
    """The navigation property a lookup value came through (associatednavigationproperty)."""
    if column.type is AttrType.OWNER:
        return column.nav or column.name
    if len(column.targets) == 1:
        return column.nav or column.name
    return f"{column.name}_{target}"


class RowRenderer:
    """Turns records of one table into response dictionaries for one query shape."""

    def __init__(
        self,
        db: Database,
        table: Table,
        select: list[Column] | None,
        annotations: AnnotationFilter,
    ) -> None:
        self.db = db
        self.table = table
        self.annotations = annotations
        columns = list(table.columns.values()) if select is None else list(select)
        if select is not None:
            if any(c.type is AttrType.MONEY for c in columns):
                currency = table.columns.get("transactioncurrencyid")
                if currency is not None and currency not in columns:
                    columns.append(currency)  # reference §2: money brings the currency along
            primary = table.columns[table.primary_id]
            if primary not in columns:
                columns.append(primary)  # reference §2: the primary key is always returned
        self.columns = columns
        self.names = [c.value_name for c in columns]
        self.fast = not annotations.any

    def render(self, record: Record) -> dict[str, Any]:
        """One row as the Web API returns it."""
        values = record.values
        if self.fast:
            row: dict[str, Any] = {"@odata.etag": etag(record.version)}
            row.update(zip(self.names, map(values.get, self.names), strict=True))
            return row
        return self._render_annotated(record)

    def _render_annotated(self, record: Record) -> dict[str, Any]:
        values = record.values
        wants = self.annotations
        row: dict[str, Any] = {"@odata.etag": etag(record.version)}
        for column in self.columns:
            name = column.value_name
            value = values.get(name)
            if column.is_lookup and value is not None:
                target = record.targets.get(name, column.targets[0] if column.targets else "")
                if wants.formatted:
                    label = self._lookup_label(target, value)
                    if label is not None:
                        row[f"{name}@{FORMATTED}"] = label
                if wants.nav_property:
                    row[f"{name}@{NAV_PROPERTY}"] = navigation_property(column, target)
                if wants.lookup_name:
                    row[f"{name}@{LOOKUP_NAME}"] = target
            elif wants.formatted and value is not None:
                label = format_value(column, value)
                if label is not None:
                    row[f"{name}@{FORMATTED}"] = label
            row[name] = value
        return row

    def _lookup_label(self, target: str, record_id: str) -> str | None:
        data = self.db.data.get(target)
        if data is None:
            return FIXED_LOOKUP_NAMES.get(target)
        row = data.rows.get(record_id)
        if row is None:
            return None
        label = row.values.get(data.table.primary_name)
        return label if isinstance(label, str) else None
