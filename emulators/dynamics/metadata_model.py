"""Table and column definitions (EntityMetadata, AttributeMetadata, OptionSetMetadata) generated
from the emulator's own schema, so what the metadata says is what the tables do.

Shapes follow PAD ``webapi/query-metadata-web-api.md`` and ``retrieve-metadata-name-metadataid.md``
(labels as ``{"LocalizedLabels": [...], "UserLocalizedLabel": {...}}``, options with ``Value`` and
``Label``, ``MetadataId`` on everything) and the metadata type reference (property names per
derived type). Values the schema does not hold are marked UNVERIFIED where they are set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from emulators.dynamics.schema import AttrType, Column, Table

CRM = "Microsoft.Dynamics.CRM"
LANGUAGE_CODE = 1033  # English; the emulator serves one language
_NAMESPACE = uuid.UUID("3f0b4c1e-7d2a-4e5f-9a8b-6c7d8e9f0a1b")

ATTRIBUTE_CASTS: dict[AttrType, str] = {
    AttrType.STRING: "StringAttributeMetadata",
    AttrType.MEMO: "MemoAttributeMetadata",
    AttrType.INTEGER: "IntegerAttributeMetadata",
    AttrType.BIGINT: "BigIntAttributeMetadata",
    AttrType.MONEY: "MoneyAttributeMetadata",
    AttrType.DECIMAL: "DecimalAttributeMetadata",
    AttrType.DOUBLE: "DoubleAttributeMetadata",
    AttrType.BOOLEAN: "BooleanAttributeMetadata",
    AttrType.DATETIME: "DateTimeAttributeMetadata",
    AttrType.PICKLIST: "PicklistAttributeMetadata",
    AttrType.STATE: "StateAttributeMetadata",
    AttrType.STATUS: "StatusAttributeMetadata",
    AttrType.LOOKUP: "LookupAttributeMetadata",
    AttrType.OWNER: "LookupAttributeMetadata",
    AttrType.CUSTOMER: "LookupAttributeMetadata",
    AttrType.UNIQUEIDENTIFIER: "UniqueIdentifierAttributeMetadata",
}
# Derived types the Web API has but no served column uses: a cast to them is an empty collection.
EMPTY_CASTS = frozenset(
    {
        "MultiSelectPicklistAttributeMetadata",
        "EntityNameAttributeMetadata",
        "ImageAttributeMetadata",
        "FileAttributeMetadata",
        "ManagedPropertyAttributeMetadata",
    }
)
# Types whose OptionSet and GlobalOptionSet single-valued navigation properties can be expanded.
OPTION_SET_CASTS = frozenset(
    {
        "PicklistAttributeMetadata",
        "MultiSelectPicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
        "BooleanAttributeMetadata",
    }
)
OPTION_SET_NAVIGATION = ("OptionSet", "GlobalOptionSet")
ENTITY_NAVIGATION = ("Attributes", "Keys")

# Object type codes of the standard tables (entity reference); custom tables count from 10000.
_OBJECT_TYPE_CODES = {
    "account": 1,
    "contact": 2,
    "opportunity": 3,
    "lead": 4,
    "systemuser": 8,
    "team": 9,
    "organization": 1019,
    "connectionrole": 3231,
    "connection": 3234,
}
_BUSINESS_OWNED = frozenset({"systemuser", "team"})


def metadata_id(*names: str) -> str:
    """A stable MetadataId for a definition item (the same on every run and every instance)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(names)))


def label(text: str | None, *owner: str) -> dict[str, Any]:
    """A Label complex type in the one served language (or an empty label)."""
    if text is None:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE_CODE,
        "IsManaged": True,
        "MetadataId": metadata_id("label", *owner),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def managed(value: Any, logical_name: str, can_be_changed: bool = False) -> dict[str, Any]:
    """A BooleanManagedProperty-style complex value (``{"Value": ..., "CanBeChanged": ...}``)."""
    return {
        "Value": value,
        "CanBeChanged": can_be_changed,
        "ManagedPropertyLogicalName": logical_name,
    }


def display_name(name: str) -> str:
    """A label for a logical name: words in title case (UNVERIFIED: not the real labels)."""
    return name.replace("_", " ").strip().title()


# --- EntityMetadata -------------------------------------------------------------------------------


def _ownership(table: Table) -> str:
    if table.logical_name in _BUSINESS_OWNED:
        return "BusinessOwned"
    return "UserOwned" if "ownerid" in table.columns else "OrganizationOwned"


def object_type_code(table: Table, tables: Iterable[Table]) -> int:
    """The table's ObjectTypeCode (custom tables: 10000 + their position, UNVERIFIED numbers)."""
    code = _OBJECT_TYPE_CODES.get(table.logical_name)
    if code is not None:
        return code
    custom = [t.logical_name for t in tables if t.logical_name not in _OBJECT_TYPE_CODES]
    return 10000 + (custom.index(table.logical_name) if table.logical_name in custom else 0)


def entity_metadata(table: Table, tables: Iterable[Table]) -> dict[str, Any]:
    """One EntityMetadata object (structural properties only; navigation is expanded apart)."""
    name = table.logical_name
    collection = table.entity_set
    return {
        "MetadataId": metadata_id(name),
        "LogicalName": name,
        "SchemaName": table.schema_name,
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": collection,
        "CollectionSchemaName": collection[:1].upper() + collection[1:],
        "ObjectTypeCode": object_type_code(table, tables),
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "OwnershipType": _ownership(table),
        "ChangeTrackingEnabled": table.change_tracking,
        "CanChangeTrackingBeEnabled": managed(name != "organization", "canchangetrackingbeenabled"),
        "IsCustomEntity": table.is_custom,
        "IsManaged": not table.is_custom,
        "IsActivity": False,
        "IsIntersect": False,
        "IsValidForAdvancedFind": True,
        "IsCustomizable": managed(True, "iscustomizable"),
        "DisplayName": label(display_name(name), name, "display"),
        "DisplayCollectionName": label(display_name(collection), name, "collection"),
        "Description": label(None),
        "HasChanged": None,
    }


def entity_keys(table: Table) -> list[dict[str, Any]]:
    """The table's alternate keys as EntityKeyMetadata objects."""
    keys = []
    for columns in table.alternate_keys:
        name = f"{table.logical_name}_{'_'.join(columns)}_key"  # UNVERIFIED naming
        keys.append(
            {
                "MetadataId": metadata_id(table.logical_name, "key", *columns),
                "LogicalName": name,
                "SchemaName": name,
                "EntityLogicalName": table.logical_name,
                "KeyAttributes": list(columns),
                "EntityKeyIndexStatus": "Active",
                "DisplayName": label(display_name(name), table.logical_name, "key", *columns),
                "IsManaged": False,
                "HasChanged": None,
            }
        )
    return keys


# --- AttributeMetadata ----------------------------------------------------------------------------


def _string_format(name: str) -> str:
    # UNVERIFIED heuristics that match the standard columns' formats (e-mail, phone, URL).
    if name.startswith("emailaddress") or name == "internalemailaddress":
        return "Email"
    if name.startswith("telephone") or name in ("mobilephone", "fax"):
        return "Phone"
    if name == "websiteurl":
        return "Url"
    return "Text"


def _date_time(column: Column) -> dict[str, Any]:
    # The emulator stores date-only columns as ``YYYY-MM-DD``, which is DateOnly behaviour.
    behavior = "DateOnly" if column.date_only else "UserLocal"
    return {
        "Format": "DateOnly" if column.date_only else "DateAndTime",
        "DateTimeBehavior": {"Value": behavior},
        "CanChangeDateTimeBehavior": managed(not column.read_only, "canchangedatetimebehavior"),
        "MinSupportedValue": "1753-01-01T00:00:00Z",
        "MaxSupportedValue": "9999-12-30T23:59:59Z",
        "ImeMode": "Inactive",
    }


def _typed_properties(column: Column) -> dict[str, Any]:
    """The properties a derived AttributeMetadata type adds (by the column's type)."""
    kind = column.type
    if kind is AttrType.STRING:
        fmt = _string_format(column.name)
        length = column.max_length or 100
        return {
            "MaxLength": length,
            "DatabaseLength": length * 2,
            "Format": fmt,
            "FormatName": {"Value": fmt},
            "ImeMode": "Auto",
            "IsLocalizable": False,
            "YomiOf": None,
        }
    if kind is AttrType.MEMO:
        return {
            "MaxLength": column.max_length or 2000,
            "DatabaseLength": (column.max_length or 2000) * 2,
            "Format": "TextArea",
            "FormatName": {"Value": "TextArea"},
            "ImeMode": "Auto",
            "IsLocalizable": False,
        }
    if kind in (AttrType.INTEGER, AttrType.BIGINT):
        low = column.min_value if column.min_value is not None else -(2**63)
        high = column.max_value if column.max_value is not None else 2**63 - 1
        props: dict[str, Any] = {"MinValue": int(low), "MaxValue": int(high)}
        if kind is AttrType.INTEGER:
            props["Format"] = "None"
        return props
    if kind in (AttrType.MONEY, AttrType.DECIMAL, AttrType.DOUBLE):
        props = {"MinValue": column.min_value, "MaxValue": column.max_value, "Precision": 2}
        if kind is AttrType.MONEY:
            props.update(PrecisionSource=2, ImeMode="Disabled", IsBaseCurrency=False)
        return props
    if kind is AttrType.DATETIME:
        return _date_time(column)
    if kind is AttrType.BOOLEAN:
        return {"DefaultValue": bool(column.default)}
    if kind in (AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS):
        return {"DefaultFormValue": -1 if kind is AttrType.PICKLIST else None}
    if column.is_lookup:
        return {"Targets": list(column.targets), "Format": "None"}
    return {}


def _required_level(table: Table, column: Column) -> dict[str, Any]:
    # UNVERIFIED beyond the primary key and owner: the emulator does not enforce required levels.
    system = column.name == table.primary_id or column.type is AttrType.OWNER
    return managed("SystemRequired" if system else "None", "canmodifyrequirementlevelsettings")


def base_attribute(table: Table, column: Column) -> dict[str, Any]:
    """The properties every AttributeMetadata has."""
    name = column.name
    return {
        "@odata.type": f"#{CRM}.{ATTRIBUTE_CASTS[column.type]}",
        "MetadataId": metadata_id(table.logical_name, name),
        "LogicalName": name,
        "SchemaName": column.nav or name,
        "EntityLogicalName": table.logical_name,
        "AttributeType": column.type.value,
        "AttributeTypeName": {"Value": f"{column.type.value}Type"},
        "AttributeOf": None,
        "DisplayName": label(display_name(name), table.logical_name, name),
        "Description": label(None),
        "IsCustomAttribute": table.is_custom or name.startswith("new_"),
        "IsManaged": not (table.is_custom or name.startswith("new_")),
        "IsPrimaryId": name == table.primary_id,
        "IsPrimaryName": name == table.primary_name,
        "IsLogical": False,
        "IsValidForCreate": not column.read_only,
        "IsValidForUpdate": not column.read_only and name != table.primary_id,
        "IsValidForRead": True,
        "RequiredLevel": _required_level(table, column),
        "HasChanged": None,
    }


def attribute_metadata(table: Table, column: Column) -> dict[str, Any]:
    """One AttributeMetadata object with the properties of its derived type."""
    return {**base_attribute(table, column), **_typed_properties(column)}


def _sample(kind: AttrType) -> Column:
    return Column("sample", kind, max_length=1, min_value=0, max_value=1)


BASE_ATTRIBUTE_PROPERTIES = frozenset(
    base_attribute(Table("t", "ts", "tid", "tid", {}), _sample(AttrType.STRING))
) - {"@odata.type"}
CAST_PROPERTIES: dict[str, frozenset[str]] = {
    cast: BASE_ATTRIBUTE_PROPERTIES | frozenset(_typed_properties(_sample(kind)))
    for kind, cast in ATTRIBUTE_CASTS.items()
}
CAST_PROPERTIES["MultiSelectPicklistAttributeMetadata"] = CAST_PROPERTIES[
    "PicklistAttributeMetadata"
]
for _cast in EMPTY_CASTS - {"MultiSelectPicklistAttributeMetadata"}:
    CAST_PROPERTIES[_cast] = BASE_ATTRIBUTE_PROPERTIES
ENTITY_PROPERTIES = frozenset(entity_metadata(Table("t", "ts", "tid", "tid", {}), []))
