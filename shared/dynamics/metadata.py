"""Table metadata: entity set, primary key, change tracking and columns, to check mappings;
and the options of choice columns, to translate values.

Queries (reference §6; PAD ``webapi/query-metadata-web-api.md``, not paged):
``EntityDefinitions(LogicalName='x')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,
ChangeTrackingEnabled``, ``EntityDefinitions(LogicalName='x')/Attributes?$select=LogicalName,
AttributeType`` and, per choice type, ``.../Attributes/Microsoft.Dynamics.CRM.<T>AttributeMetadata
?$select=LogicalName&$expand=OptionSet($select=...)`` (the OptionSet navigation property is only
reachable through the typed cast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from shared.dynamics.models import ChoiceColumn, TableDefinition, TableRef
from shared.dynamics.odata import identifier, string_literal
from shared.dynamics.transport import DataverseTransport, decode_json
from shared.errors import ApiRequestError, ConfigurationError, DmsyncError


def _definition_path(logical_name: str) -> str:
    literal = quote(string_literal(identifier(logical_name)), safe="'")
    return f"EntityDefinitions(LogicalName={literal})"


def _missing_table(exc: DmsyncError, logical_name: str) -> DmsyncError:
    """A 404 on a table's definition as the configuration error it is; anything else as is."""
    if exc.status != 404:
        return exc
    return ConfigurationError(
        f"Dynamics has no table with the logical name '{logical_name}' (code {exc.code or 'none'})"
    )


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
        raise _missing_table(exc, logical_name) from None
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


async def table_definitions(
    transport: DataverseTransport, logical_names: Sequence[str]
) -> dict[str, TableDefinition]:
    """The metadata of several tables in one request, keyed by logical name (a table Dataverse
    does not have is absent).

    ``EntityDefinitions?$select=...&$filter=LogicalName eq 'a' or ...&$expand=Attributes(
    $select=LogicalName,AttributeType)``: the documented collection query with its attributes
    expanded (Microsoft Learn, "Query table definitions using the Web API"; the collection is
    not paged).
    """
    names = list(dict.fromkeys(logical_names))
    if not names:
        return {}
    try:
        wanted = " or ".join(f"LogicalName eq {string_literal(identifier(n))}" for n in names)
    except ValueError:
        raise ConfigurationError(
            f"not every name in {names!r} is a valid Dataverse table name"
        ) from None
    query = {
        "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled",
        "$filter": wanted,
        "$expand": "Attributes($select=LogicalName,AttributeType)",
    }
    body = await _get_json(
        transport, transport.url("EntityDefinitions", query), "metadata read of the mapped tables"
    )
    found: dict[str, TableDefinition] = {}
    for entity in body.get("value") or []:
        try:
            table = TableRef(
                str(entity["LogicalName"]),
                str(entity["EntitySetName"]),
                str(entity["PrimaryIdAttribute"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ApiRequestError(
                "Dataverse table metadata lacks a logical name, entity set or primary key",
                system="dynamics",
            ) from None
        attributes = {
            str(item["LogicalName"]): str(item.get("AttributeType") or "")
            for item in entity.get("Attributes") or []
            if isinstance(item, dict) and isinstance(item.get("LogicalName"), str)
        }
        tracking = entity.get("ChangeTrackingEnabled")
        found[table.logical_name] = TableDefinition(
            table, tracking if isinstance(tracking, bool) else None, attributes
        )
    return found


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


# Choice attribute types → the cast that exposes their OptionSet, and what to select from it.
_CHOICE_CASTS = {
    "Picklist": ("PicklistAttributeMetadata", "Options"),
    "MultiSelectPicklist": ("MultiSelectPicklistAttributeMetadata", "Options"),
    "State": ("StateAttributeMetadata", "Options"),
    "Status": ("StatusAttributeMetadata", "Options"),
    "Boolean": ("BooleanAttributeMetadata", "TrueOption,FalseOption"),
}


def _label_text(option: object) -> tuple[int, str] | None:
    """(Value, user-localized label) of one OptionMetadata, or None when either is missing."""
    if not isinstance(option, dict) or isinstance(option.get("Value"), bool):
        return None
    value = option.get("Value")
    label = option.get("Label")
    if not isinstance(value, int) or not isinstance(label, dict):
        return None
    user = label.get("UserLocalizedLabel")
    text = user.get("Label") if isinstance(user, dict) else None
    if not isinstance(text, str):
        localized = label.get("LocalizedLabels")
        first = localized[0] if isinstance(localized, list) and localized else None
        text = first.get("Label") if isinstance(first, dict) else None
    return (value, text) if isinstance(text, str) else None


def _options(option_set: object) -> dict[int, str]:
    if not isinstance(option_set, dict):
        return {}
    items = option_set.get("Options")
    if not isinstance(items, list):
        items = [option_set.get("TrueOption"), option_set.get("FalseOption")]
    pairs = (_label_text(item) for item in items)
    return dict(pair for pair in pairs if pair is not None)


async def choice_columns(
    transport: DataverseTransport, logical_name: str
) -> dict[str, ChoiceColumn]:
    """Every choice (picklist, multi-select, state, status, Two Options) column of a table with
    its options, by column logical name (one request per choice type).

    Raises:
        ConfigurationError: the name is not a valid name, or Dataverse has no such table.
    """
    try:
        path = _definition_path(logical_name)
    except ValueError:
        raise ConfigurationError(f"{logical_name!r} is not a valid Dataverse table name") from None
    found: dict[str, ChoiceColumn] = {}
    for attribute_type, (cast, options) in _CHOICE_CASTS.items():
        url = transport.url(
            f"{path}/Attributes/Microsoft.Dynamics.CRM.{cast}",
            {"$select": "LogicalName", "$expand": f"OptionSet($select={options})"},
        )
        try:
            page = await _get_json(transport, url, f"option metadata read of table {logical_name}")
        except DmsyncError as exc:
            raise _missing_table(exc, logical_name) from None
        for item in page.get("value") or []:
            name = item.get("LogicalName") if isinstance(item, dict) else None
            if isinstance(name, str):
                found[name] = ChoiceColumn(name, attribute_type, _options(item.get("OptionSet")))
    return found
