"""Relationship definitions: ``RelationshipDefinitions`` (with the ``OneToManyRelationshipMetadata``
cast) and ``EntityDefinitions(...)/ManyToOneRelationships|OneToManyRelationships|
ManyToManyRelationships`` (PAD ``webapi/query-metadata-web-api.md`` "Querying relationship
metadata"), generated from the same relationship list that ``$expand`` uses.

Clients read these to find the navigation property for ``@odata.bind``
(``ReferencingEntityNavigationPropertyName``) and the related table (``ReferencedEntity``). The
served tables have no many-to-many relationships, so that collection is empty.
"""

from __future__ import annotations

from typing import Any

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import bad_request, not_found, resource_not_found
from emulators.dynamics.metadata_model import CRM, managed, metadata_id
from emulators.dynamics.metadata_query import (
    DeclaredType,
    context_suffix,
    parse_metadata_select,
    query_items,
    shape,
)
from emulators.dynamics.navigation import Relationship, cascades_delete, relationships
from emulators.dynamics.protocol import ApiRequest, ApiResponse, ResourcePath, parse_key
from emulators.dynamics.query_options import check_options
from emulators.dynamics.schema import AttrType, Column, Table

ONE_TO_MANY = "OneToManyRelationshipMetadata"
KINDS = ("ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships")


def relationship_metadata(relationship: Relationship, tables: dict[str, Table]) -> dict[str, Any]:
    """One OneToManyRelationshipMetadata object."""
    referenced = tables.get(relationship.referenced)
    custom = relationship.column.name.startswith("new_")
    return {
        "MetadataId": metadata_id("relationship", relationship.schema_name),
        "SchemaName": relationship.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "IsCustomRelationship": custom,
        "IsManaged": not custom,
        "IsValidForAdvancedFind": True,
        "IsCustomizable": managed(True, "iscustomizable"),
        "SecurityTypes": "None",
        "HasChanged": None,
        "ReferencedEntity": relationship.referenced,
        "ReferencedAttribute": referenced.primary_id
        if referenced
        else f"{relationship.referenced}id",
        "ReferencingEntity": relationship.referencing,
        "ReferencingAttribute": relationship.column.name,
        "ReferencedEntityNavigationPropertyName": relationship.referenced_navigation,
        "ReferencingEntityNavigationPropertyName": relationship.referencing_navigation,
        "CascadeConfiguration": {
            "Assign": "NoCascade",
            "Delete": "Cascade" if cascades_delete(relationship) else "RemoveLink",
            "Merge": "NoCascade",
            "Reparent": "NoCascade",
            "Share": "NoCascade",
            "Unshare": "NoCascade",
            "RollupView": "NoCascade",
        },
    }


_SAMPLE = relationship_metadata(
    Relationship("sample", "a", "b", Column("aid", AttrType.LOOKUP, targets=("a",)), "aid"), {}
)
ONE_TO_MANY_PROPERTIES = frozenset(_SAMPLE)
BASE_PROPERTIES = frozenset(
    {
        "MetadataId",
        "SchemaName",
        "RelationshipType",
        "IsCustomRelationship",
        "IsManaged",
        "IsValidForAdvancedFind",
        "IsCustomizable",
        "SecurityTypes",
        "HasChanged",
    }
)
BASE_TYPE = DeclaredType("RelationshipMetadataBase", BASE_PROPERTIES)
ONE_TO_MANY_TYPE = DeclaredType(ONE_TO_MANY, ONE_TO_MANY_PROPERTIES)
MANY_TO_MANY_TYPE = DeclaredType("ManyToManyRelationshipMetadata", BASE_PROPERTIES)


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.type": f"#{CRM}.{ONE_TO_MANY}", **item}


def entity_relationships(
    env: Environment,
    req: ApiRequest,
    table: Table,
    key_text: str,
    kind: str,
    options: dict[str, str],
) -> ApiResponse:
    """``EntityDefinitions(...)/<kind>``: the table's relationships of one kind."""
    check_options(options, {"$select", "$filter"})
    tables = dict(env.tables)
    if kind == "ManyToManyRelationships":
        items: list[dict[str, Any]] = []
        declared = MANY_TO_MANY_TYPE
    else:
        side = "referencing" if kind == "ManyToOneRelationships" else "referenced"
        items = [
            relationship_metadata(r, tables)
            for r in relationships(tables.values())
            if getattr(r, side) == table.logical_name
        ]
        declared = ONE_TO_MANY_TYPE
    shaped, suffix = query_items(items, declared, options)
    context = f"{req.api_root}/$metadata#EntityDefinitions({key_text})/{kind}{suffix}"
    return ApiResponse.json(200, {"@odata.context": context, "value": shaped})


def relationship_definitions(
    env: Environment, req: ApiRequest, path: ResourcePath, options: dict[str, str]
) -> ApiResponse:
    """``RelationshipDefinitions`` (base type, or cast to OneToManyRelationshipMetadata), and one
    relationship by ``(SchemaName='x')`` or ``(<MetadataId>)``."""
    tables = dict(env.tables)
    items = [relationship_metadata(r, tables) for r in relationships(tables.values())]
    root = f"{req.api_root}/$metadata#RelationshipDefinitions"
    cast = None
    if path.rest:
        if len(path.rest) != 1 or path.rest[0] not in (
            f"{CRM}.{ONE_TO_MANY}",
            f"{CRM}.ManyToManyRelationshipMetadata",
        ):
            raise resource_not_found("/".join(path.rest))
        cast = path.rest[0].removeprefix(f"{CRM}.")
    if path.key is None:
        check_options(options, {"$select", "$filter"})
        if cast is None:
            declared, items = BASE_TYPE, [_typed(i) for i in items]
        elif cast == ONE_TO_MANY:
            declared = ONE_TO_MANY_TYPE
        else:
            declared, items = MANY_TO_MANY_TYPE, []
        shaped, suffix = query_items(items, declared, options)
        typed = f"/{CRM}.{cast}" if cast else ""
        return ApiResponse.json(200, {"@odata.context": f"{root}{typed}{suffix}", "value": shaped})
    check_options(options, {"$select"})
    parsed = parse_key(path.key)
    if isinstance(parsed, str):
        found = next((i for i in items if i["MetadataId"] == parsed), None)
    elif set(parsed) == {"SchemaName"}:
        found = next((i for i in items if i["SchemaName"] == parsed["SchemaName"]), None)
    else:
        raise bad_request("RelationshipDefinitions is keyed by MetadataId or SchemaName='<name>'.")
    if found is None or cast == "ManyToManyRelationshipMetadata":
        raise not_found("RelationshipMetadataBase", path.key)
    declared = ONE_TO_MANY_TYPE if cast else BASE_TYPE
    if cast is None:
        found = _typed(found)
    item = shape(found, _select(options, declared), [], None)
    context = f"{root}{context_suffix(_select(options, declared), [])}/$entity"
    return ApiResponse.json(200, {"@odata.context": context, **item})


def _select(options: dict[str, str], declared: DeclaredType) -> list[str] | None:
    return parse_metadata_select(options.get("$select"), declared)
