"""Option set definitions (OptionSetMetadata, BooleanOptionSetMetadata) of the served choice
and Two Options columns, generated from the schema's option sets (PAD
``retrieve-metadata-name-metadataid.md``: options with ``Value``, ``Label``, ``Description``...;
state options with ``DefaultStatus``/``InvariantName``, status options with ``State``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulators.dynamics.metadata_model import CRM, display_name, label, managed, metadata_id
from emulators.dynamics.schema import AttrType, Column, Table


def option_set_name(table: Table, column: Column) -> str:
    """The option set's Name: the global set's name, or ``<table>_<column>`` for a local one."""
    return column.global_option_set or f"{table.logical_name}_{column.name}"


def _option(value: int, text: str, *owner: str) -> dict[str, Any]:
    return {
        "Value": value,
        "Color": None,
        "IsManaged": True,
        "ExternalValue": None,
        "ParentValues": [],
        "Tag": None,
        "IsHidden": False,
        "MetadataId": None,
        "HasChanged": None,
        "Label": label(text, *owner, str(value)),
        "Description": label(None),
    }


def _state_options(options: Mapping[int, str], status: Column | None, owner: str) -> list[Any]:
    states = status.option_states if status is not None and status.option_states else {}
    items = []
    for value, text in options.items():
        defaults = sorted(s for s, state in states.items() if state == value)
        item = {"@odata.type": f"#{CRM}.StateOptionMetadata", **_option(value, text, owner)}
        item["DefaultStatus"] = defaults[0] if defaults else None  # lowest status of the state
        item["InvariantName"] = text
        items.append(item)
    return items


def _status_options(column: Column, owner: str) -> list[Any]:
    states = column.option_states or {}
    return [
        {
            "@odata.type": f"#{CRM}.StatusOptionMetadata",
            **_option(value, text, owner),
            "State": states.get(value),
            "TransitionData": None,
        }
        for value, text in (column.options or {}).items()
    ]


def option_set(table: Table, column: Column) -> dict[str, Any]:
    """The OptionSetMetadata (or BooleanOptionSetMetadata) of a choice or Two Options column."""
    name = option_set_name(table, column)
    kind = column.type
    item: dict[str, Any] = {
        "MetadataId": metadata_id("optionset", name),
        "Name": name,
        "DisplayName": label(display_name(column.name), "optionset", name),
        "Description": label(None),
        "IsGlobal": column.global_option_set is not None,
        "IsCustomOptionSet": table.is_custom or column.name.startswith("new_"),
        "IsManaged": not (table.is_custom or column.name.startswith("new_")),
        "IsCustomizable": managed(True, "iscustomizable"),
        "OptionSetType": "Boolean" if kind is AttrType.BOOLEAN else kind.value,
        "ExternalTypeName": None,
        "IntroducedVersion": None,
        "ParentOptionSetName": None,
        "HasChanged": None,
    }
    options = column.options or {}
    if kind is AttrType.BOOLEAN:
        labels = options or {1: "Yes", 0: "No"}
        item["TrueOption"] = _option(1, labels[1], name)
        item["FalseOption"] = _option(0, labels[0], name)
    elif kind is AttrType.STATE:
        item["Options"] = _state_options(options, table.columns.get("statuscode"), name)
    elif kind is AttrType.STATUS:
        item["Options"] = _status_options(column, name)
    else:
        item["Options"] = [_option(v, text, name) for v, text in options.items()]
    return item


def typed_option_set(table: Table, column: Column) -> dict[str, Any]:
    """An option set as an item of GlobalOptionSetDefinitions (with its derived ``@odata.type``)."""
    derived = "BooleanOptionSetMetadata" if column.type is AttrType.BOOLEAN else "OptionSetMetadata"
    return {"@odata.type": f"#{CRM}.{derived}", **option_set(table, column)}


def global_option_sets(tables: Iterable[Table]) -> dict[str, dict[str, Any]]:
    """Every global option set a served column uses, by name."""
    found: dict[str, dict[str, Any]] = {}
    for table in tables:
        for column in table.columns.values():
            if column.global_option_set and column.global_option_set not in found:
                found[column.global_option_set] = typed_option_set(table, column)
    return found


OPTION_SET_PROPERTIES = frozenset(
    option_set(Table("t", "ts", "tid", "tid", {}), Column("c", AttrType.PICKLIST, options={}))
) | {"TrueOption", "FalseOption"}
