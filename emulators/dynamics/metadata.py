"""Functions and metadata: ``WhoAmI``, ``RetrieveCurrentOrganization``, ``EntityDefinitions``
(with ``/Attributes``) and the service document (reference §5, §6).
"""

from __future__ import annotations

import uuid
from typing import Any

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import bad_request, not_found, resource_not_found
from emulators.dynamics.odata_filter import compile_filter
from emulators.dynamics.protocol import ApiRequest, ApiResponse, ResourcePath, parse_key
from emulators.dynamics.reads import check_options
from emulators.dynamics.schema import AttrType, Column, Table, boolean, text

_METADATA_NS = uuid.UUID("3f0b4c1e-7d2a-4e5f-9a8b-6c7d8e9f0a1b")

# Pseudo tables so ``$filter``/``$select`` on metadata reuse the real query parser.
ENTITY_METADATA = Table(
    logical_name="EntityMetadata",
    entity_set="EntityDefinitions",
    primary_id="MetadataId",
    primary_name="LogicalName",
    columns={
        c.name: c
        for c in (
            Column("MetadataId", AttrType.UNIQUEIDENTIFIER),
            text("LogicalName", 64),
            text("SchemaName", 64),
            text("EntitySetName", 64),
            text("PrimaryIdAttribute", 64),
            text("PrimaryNameAttribute", 64),
            boolean("ChangeTrackingEnabled"),
            boolean("IsCustomEntity"),
            Column("CanChangeTrackingBeEnabled", AttrType.STRING),
        )
    },
)
ATTRIBUTE_METADATA = Table(
    logical_name="AttributeMetadata",
    entity_set="Attributes",
    primary_id="MetadataId",
    primary_name="LogicalName",
    columns={
        c.name: c
        for c in (
            Column("MetadataId", AttrType.UNIQUEIDENTIFIER),
            text("LogicalName", 64),
            text("SchemaName", 64),
            text("AttributeType", 64),
            Column("MaxLength", AttrType.INTEGER),
            boolean("IsValidForCreate"),
            boolean("IsValidForUpdate"),
            Column("Targets", AttrType.STRING),
            Column("AttributeTypeName", AttrType.STRING),
        )
    },
)

_ATTRIBUTE_ODATA_TYPES = {
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


def who_am_i(env: Environment, req: ApiRequest) -> ApiResponse:
    """``WhoAmI``: the caller's user, business unit and organization (reference §5)."""
    return ApiResponse.json(
        200,
        {
            "@odata.context": f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": env.business_unit_id,
            "UserId": req.principal.user_id,
            "OrganizationId": env.organization_id,
        },
    )


def retrieve_current_organization(
    env: Environment, req: ApiRequest, path: ResourcePath
) -> ApiResponse:
    """``RetrieveCurrentOrganization(AccessType=...)``: the OrganizationDetail (reference §5)."""
    if not path.key or "AccessType" not in path.key:
        raise bad_request(
            "The parameter 'AccessType' of 'RetrieveCurrentOrganization' is required."
        )
    org = env.db.data["organization"].rows[env.organization_id].values
    host = req.base_url.split("://", 1)[-1]
    return ApiResponse.json(
        200,
        {
            "@odata.context": (
                f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse"
            ),
            "Detail": {
                "OrganizationId": env.organization_id,
                "FriendlyName": org.get("name"),
                "OrganizationVersion": "9.2.24101.00000",
                "EnvironmentId": env.environment_id,
                "DatacenterId": "00000000-0000-0000-0000-000000000000",
                "Geo": "NA",
                "TenantId": env.config.auth.tenant_id,
                "UrlName": host.split(".")[0],
                "UniqueName": f"org{env.organization_id.replace('-', '')[:8]}",
                "State": "Enabled",
                "Endpoints": {
                    "Count": 2,
                    "IsReadOnly": True,
                    "Keys": ["WebApplication", "OrganizationDataService"],
                    "Values": [f"{req.base_url}/", f"{req.api_root}/"],
                },
            },
        },
    )


def service_document(env: Environment, req: ApiRequest) -> ApiResponse:
    """``GET /api/data/v9.2/``: the entity sets served."""
    value = [
        {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
        for t in env.tables.values()
    ]
    value.append({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"})
    return ApiResponse.json(200, {"@odata.context": f"{req.api_root}/$metadata", "value": value})


def _metadata_id(*names: str) -> str:
    return str(uuid.uuid5(_METADATA_NS, "/".join(names)))


def entity_metadata(table: Table) -> dict[str, Any]:
    """One EntityMetadata object."""
    return {
        "MetadataId": _metadata_id(table.logical_name),
        "LogicalName": table.logical_name,
        "SchemaName": table.schema_name,
        "EntitySetName": table.entity_set,
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "ChangeTrackingEnabled": table.change_tracking,
        "CanChangeTrackingBeEnabled": {
            "Value": table.logical_name != "organization",
            "CanBeChanged": False,
            "ManagedPropertyLogicalName": "canchangetrackingbeenabled",
        },
        "IsCustomEntity": table.logical_name.startswith("new_"),
    }


def attribute_metadata(table: Table, column: Column) -> dict[str, Any]:
    """One AttributeMetadata object."""
    odata_type = _ATTRIBUTE_ODATA_TYPES[column.type]
    item: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{odata_type}",
        "MetadataId": _metadata_id(table.logical_name, column.name),
        "LogicalName": column.name,
        "SchemaName": column.nav if column.nav else column.name,
        "AttributeType": column.type.value,
        "AttributeTypeName": {"Value": f"{column.type.value}Type"},
        "IsValidForCreate": not column.read_only,
        "IsValidForUpdate": not column.read_only and column.name != table.primary_id,
        "IsValidForRead": True,
    }
    if column.max_length is not None:
        item["MaxLength"] = column.max_length
    if column.is_lookup:
        item["Targets"] = list(column.targets)
    if column.min_value is not None and column.type is not AttrType.BOOLEAN:
        item["MinValue"] = column.min_value
        item["MaxValue"] = column.max_value
    return item


def _select(
    items: list[dict[str, Any]], options: dict[str, str], meta: Table
) -> list[dict[str, Any]]:
    if "$filter" in options:
        predicate = compile_filter(options["$filter"], meta)
        items = [i for i in items if predicate(i)]
    if "$select" in options:
        names = [n.strip() for n in options["$select"].split(",") if n.strip()]
        for name in names:
            if name not in meta.columns:
                raise bad_request(
                    f"Could not find a property named '{name}' on type "
                    f"'Microsoft.Dynamics.CRM.{meta.logical_name}'."
                )
        keep = set(names) | {"MetadataId", "@odata.type"}
        items = [{k: v for k, v in i.items() if k in keep} for i in items]
    return items


def entity_definitions(
    env: Environment, req: ApiRequest, path: ResourcePath, options: dict[str, str]
) -> ApiResponse:
    """``EntityDefinitions``, ``EntityDefinitions(LogicalName='x')`` and ``.../Attributes``."""
    check_options(options, {"$select", "$filter"})
    root = f"{req.api_root}/$metadata#EntityDefinitions"
    if path.key is None:
        items = _select([entity_metadata(t) for t in env.tables.values()], options, ENTITY_METADATA)
        return ApiResponse.json(200, {"@odata.context": root, "value": items})
    table = _table_for(env, path.key)
    if not path.rest:
        item = _select([entity_metadata(table)], options, ENTITY_METADATA)[0]
        return ApiResponse.json(200, {"@odata.context": f"{root}/$entity", **item})
    if path.rest[0] != "Attributes" or len(path.rest) > 1:
        attribute = _attribute_segment(path.rest[0])
        if attribute is None:
            raise resource_not_found(path.rest[0])
        column = table.columns.get(attribute)
        if column is None:
            raise not_found("attribute", attribute)
        item = _select([attribute_metadata(table, column)], options, ATTRIBUTE_METADATA)[0]
        return ApiResponse.json(
            200, {"@odata.context": f"{root}({table.logical_name})/Attributes/$entity", **item}
        )
    items = _select(
        [attribute_metadata(table, c) for c in table.columns.values()], options, ATTRIBUTE_METADATA
    )
    return ApiResponse.json(
        200,
        {"@odata.context": f"{root}('{table.logical_name}')/Attributes", "value": items},
    )


def _attribute_segment(segment: str) -> str | None:
    if segment.startswith("Attributes(") and segment.endswith(")"):
        parsed = parse_key(segment[len("Attributes(") : -1])
        if isinstance(parsed, dict) and isinstance(parsed.get("LogicalName"), str):
            return str(parsed["LogicalName"])
    return None


def _table_for(env: Environment, key: str) -> Table:
    parsed = parse_key(key)
    if isinstance(parsed, str):
        for table in env.tables.values():
            if _metadata_id(table.logical_name) == parsed:
                return table
        raise not_found("EntityMetadata", parsed)
    name = parsed.get("LogicalName")
    if not isinstance(name, str) or len(parsed) != 1:
        raise bad_request("EntityDefinitions is keyed by MetadataId or LogicalName='<name>'.")
    found = env.tables.get(name)
    if found is None:
        raise not_found("EntityMetadata", f"LogicalName='{name}'")
    return found
