"""System query options shared by entity and definition reads: which are accepted, and the
parsers of ``$select``, ``$orderby`` and ``$top`` (reference §0-§2)."""

from __future__ import annotations

from emulators.dynamics.errors import ODataError, bad_request, query_property_not_found
from emulators.dynamics.schema import Column, Table

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
