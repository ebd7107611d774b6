"""System query options shared by entity and definition reads: which are accepted, and the
parsers of ``$select``, ``$orderby`` and ``$top`` (reference §0-§2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulators.dynamics.errors import ODataError, bad_request, query_property_not_found
from emulators.dynamics.protocol import parse_key
from emulators.dynamics.schema import Column, Table
from emulators.dynamics.store import Record, TableData

UNSUPPORTED_OPTIONS = ("$skip", "$search", "$format")  # reference §0
COLLECTION_OPTIONS = {
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$skiptoken",
    "$deltatoken",
    "$expand",
}
NOT_IMPLEMENTED_OPTIONS = ("$apply", "fetchXml", "savedQuery", "userQuery")


def check_options(options: dict[str, str], allowed: set[str]) -> None:
    """Reject unsupported and unknown system query options."""
    for name in options:
        if name in UNSUPPORTED_OPTIONS:
            raise bad_request(f"The query parameter {name} is not supported")
        if name in NOT_IMPLEMENTED_OPTIONS:
            raise ODataError(
                501, "0x8006088a", f"The query option '{name}' is not implemented by the emulator."
            )
        if name.startswith("$") and name not in allowed:
            raise bad_request(f"The query parameter {name} is not supported")


def parse_select(table: Table, text: str | None) -> list[Column] | None:
    """Columns named in ``$select`` (lookups by ``_<name>_value``), or None for all."""
    if text is None:
        return None
    columns: list[Column] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        column = table.column_for_property(name)
        if column is None:
            raise query_property_not_found(name, table.logical_name)
        if column not in columns:
            columns.append(column)
    return columns


def parse_orderby(table: Table, text: str | None) -> list[tuple[Column, bool]]:
    """``$orderby`` as (column, descending) pairs."""
    if not text:
        return []
    orders: list[tuple[Column, bool]] = []
    for raw in text.split(","):
        parts = raw.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
            raise bad_request(f"The $orderby expression '{text}' is not valid.")
        column = table.column_for_property(parts[0])
        if column is None:
            raise query_property_not_found(parts[0], table.logical_name)
        orders.append((column, len(parts) == 2 and parts[1] == "desc"))
    return orders


def parse_top(text: str | None) -> int | None:
    """``$top`` as a non-negative integer, or None when absent."""
    if text is None:
        return None
    try:
        top = int(text)
    except ValueError:
        raise bad_request(f"Invalid value '{text}' for $top query option.") from None
    if top < 0:
        raise bad_request("The $top query option must be a non-negative integer.")
    return top


def sort_key(value: Any) -> tuple[int, Any]:
    # SQL Server sorts empty values first when ascending.
    if value is None:
        return (0, "")
    return (1, value.casefold() if isinstance(value, str) else value)


def column_sort_key(name: str) -> Callable[[Record], tuple[int, Any]]:
    def key(record: Record) -> tuple[int, Any]:
        return sort_key(record.values.get(name))

    return key


def compare_keys(a: list[Any], b: list[Any], descending: list[bool]) -> int:
    for left, right, desc in zip(a, b, descending, strict=True):
        ka, kb = sort_key(left), sort_key(right)
        if ka != kb:
            result = -1 if ka < kb else 1
            return -result if desc else result
    return 0


def resolve_key(data: TableData, key: str) -> str | None:
    """The id of the row a URL key names (GUID or alternate key), or None if there is none."""
    parsed = parse_key(key)
    if isinstance(parsed, str):
        return parsed
    names = tuple(parsed)
    table = data.table
    for alternate in table.alternate_keys:
        if set(alternate) == set(names) and len(alternate) == len(names):
            return data.find_by_key(alternate, tuple(parsed[n] for n in alternate))
    raise bad_request(
        f"The key in the request URI is not valid for resource "
        f"'Microsoft.Dynamics.CRM.{table.logical_name}'. Ensure that the names and number of key "
        f"properties match the declared or alternate key properties for the resource "
        f"'Microsoft.Dynamics.CRM.{table.logical_name}'."
    )
