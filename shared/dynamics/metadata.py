"""Table metadata: entity set, primary key, change tracking and columns, to check mappings.

Queries (reference §6; PAD ``webapi/query-metadata-web-api.md``, not paged):
``EntityDefinitions(LogicalName='x')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,
ChangeTrackingEnabled`` and ``EntityDefinitions(LogicalName='x')/Attributes?$select=LogicalName,
AttributeType``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from shared.dynamics.models import TableDefinition, TableRef
from shared.dynamics.odata import identifier, string_literal
from shared.dynamics.transport import DataverseTransport, decode_json
from shared.errors import ApiRequestError, ConfigurationError, DmsyncError


def _definition_path(logical_name: str) -> str:
    literal = quote(string_literal(identifier(logical_name)), safe="'")
    return f"EntityDefinitions(LogicalName={literal})"


async def _get_json(transport: DataverseTransport, url: str, action: str) -> dict[str, Any]:
    response = await transport.send("GET", url, action=action)
    body = decode_json(response, action)
    if not isinstance(body, dict):
        raise ApiRequestError(f"Dataverse {action} returned no JSON object", system="dynamics")
    return body


async def table_definition(transport: DataverseTransport, logical_name: str) -> TableDefinition:
    """The metadata of the table ``logical_name`` (two requests).

    Raises:
        ConfigurationError: Dataverse has no such table, or the name is not a valid name.
    """
    try:
        path = _definition_path(logical_name)
    except ValueError:
        raise ConfigurationError(f"{logical_name!r} is not a valid Dataverse table name") from None
    select = "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled"
    try:
        entity = await _get_json(
            transport,
            transport.url(path, {"$select": select}),
            f"metadata read of table {logical_name}",
        )
    except DmsyncError as exc:
        if exc.status == 404:
            raise ConfigurationError(
                f"Dynamics has no table with the logical name '{logical_name}' "
                f"(code {exc.code or 'none'})"
            ) from None
        raise
    try:
        table = TableRef(
            str(entity["LogicalName"]),
            str(entity["EntitySetName"]),
            str(entity["PrimaryIdAttribute"]),
        )
    except (KeyError, ValueError):
        raise ApiRequestError(
            f"Dataverse metadata for {logical_name} lacks its entity set or primary key",
            system="dynamics",
        ) from None
    attributes: dict[str, str] = {}
    url: str | None = transport.url(f"{path}/Attributes", {"$select": "LogicalName,AttributeType"})
    while url:
        page = await _get_json(transport, url, f"column metadata read of table {logical_name}")
        for item in page.get("value") or []:
            name = item.get("LogicalName") if isinstance(item, dict) else None
            if isinstance(name, str):
                attributes[name] = str(item.get("AttributeType") or "")
        link = page.get("@odata.nextLink")
        url = transport.checked_link(link) if isinstance(link, str) and link else None
    tracking = entity.get("ChangeTrackingEnabled")
    return TableDefinition(table, tracking if isinstance(tracking, bool) else None, attributes)


def require_columns(definition: TableDefinition, columns: Sequence[str]) -> None:
    """Check that the table has every column a field mapping names.

    Raises:
        ConfigurationError: naming the table and every unknown column.
    """
    unknown = definition.unknown_columns(list(columns))
    if unknown:
        raise ConfigurationError(
            f"Dynamics table '{definition.table.logical_name}' has no column(s) "
            f"{', '.join(sorted(unknown))}; check the field mapping"
        )


def require_change_tracking(definition: TableDefinition) -> None:
    """Check that change tracking is on for the table (delta reads need it, reference §1).

    Raises:
        ConfigurationError: it is reported off.
    """
    if definition.change_tracking_enabled is False:
        raise ConfigurationError(
            f"Change tracking is off for Dynamics table '{definition.table.logical_name}': "
            "turn on 'Track changes' in the table's properties"
        )
