"""Definition endpoints: ``EntityDefinitions`` (with ``Attributes``, typed casts, ``OptionSet``
and ``Keys``) and ``GlobalOptionSetDefinitions`` (reference §6; PAD
``webapi/query-metadata-web-api.md``, ``retrieve-metadata-name-metadataid.md``).

Addresses served::

    EntityDefinitions[?$select&$filter&$expand=Attributes($select;$filter),Keys]
    EntityDefinitions(LogicalName='x') | EntityDefinitions(<MetadataId>)   [?$select&$expand]
    .../Attributes[?$select&$filter]              (AttributeMetadata base properties)
    .../Attributes/Microsoft.Dynamics.CRM.<T>[?$select&$filter&$expand=OptionSet,GlobalOptionSet]
    .../Attributes(LogicalName='y') | Attributes(<MetadataId>)[/Microsoft.Dynamics.CRM.<T>]
    .../Attributes(...)/Microsoft.Dynamics.CRM.<T>/OptionSet|GlobalOptionSet[?$select]
    .../Keys
    GlobalOptionSetDefinitions[?$select] | GlobalOptionSetDefinitions(Name='n') | (<MetadataId>)
"""

from __future__ import annotations

from typing import Any

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import bad_request, not_found, resource_not_found
from emulators.dynamics.metadata_model import (
    ATTRIBUTE_CASTS,
    BASE_ATTRIBUTE_PROPERTIES,
    CAST_PROPERTIES,
    CRM,
    ENTITY_NAVIGATION,
    ENTITY_PROPERTIES,
    OPTION_SET_CASTS,
    OPTION_SET_NAVIGATION,
    attribute_metadata,
    entity_keys,
    entity_metadata,
    metadata_id,
)
from emulators.dynamics.metadata_options import (
    OPTION_SET_PROPERTIES,
    global_option_sets,
    option_set,
)
from emulators.dynamics.metadata_query import (
    DeclaredType,
    Expander,
    context_suffix,
    parse_metadata_expand,
    parse_metadata_select,
    query_items,
    shape,
)
from emulators.dynamics.metadata_relationships import KINDS, entity_relationships
from emulators.dynamics.protocol import ApiRequest, ApiResponse, ResourcePath, parse_key, parse_path
from emulators.dynamics.query_options import check_options
from emulators.dynamics.schema import Column, Table

ENTITY_TYPE = DeclaredType(
    "EntityMetadata",
    ENTITY_PROPERTIES,
    ENTITY_NAVIGATION,
    {"Attributes": frozenset({"$select", "$filter"}), "Keys": frozenset({"$select"})},
)
ATTRIBUTE_TYPE = DeclaredType("AttributeMetadata", BASE_ATTRIBUTE_PROPERTIES)
OPTION_SET_TYPE = DeclaredType("OptionSetMetadata", OPTION_SET_PROPERTIES)
KEY_TYPE = DeclaredType(
    "EntityKeyMetadata",
    frozenset(
        {
            "MetadataId",
            "LogicalName",
            "SchemaName",
            "EntityLogicalName",
            "KeyAttributes",
            "EntityKeyIndexStatus",
            "DisplayName",
            "IsManaged",
            "HasChanged",
        }
    ),
)
_COLLECTION_OPTIONS = {"$select", "$filter", "$expand"}
_SINGLE_OPTIONS = {"$select", "$expand"}


def _cast_type(cast: str) -> DeclaredType:
    navigation = OPTION_SET_NAVIGATION if cast in OPTION_SET_CASTS else ()
    return DeclaredType(cast, CAST_PROPERTIES[cast], navigation)


def _cast_of(segment: str) -> str:
    """The derived type a ``Microsoft.Dynamics.CRM.<T>`` segment casts to."""
    prefix = f"{CRM}."
    if not segment.startswith(prefix):
        raise resource_not_found(segment)
    cast = segment[len(prefix) :]
    if cast == "EnumAttributeMetadata":
        # The doc: OptionSet is declared on EnumAttributeMetadata, "you cannot cast the
        # attributes to this type". UNVERIFIED status and wording.
        raise bad_request(f"The attributes can't be cast to '{segment}'; cast to a derived type.")
    if cast not in CAST_PROPERTIES:
        raise bad_request(f"The type '{segment}' is not a type derived from AttributeMetadata.")
    return cast


def _declared_as(item: dict[str, Any], cast: str | None) -> dict[str, Any]:
    """Minimal metadata names an item's type only when it differs from the declared type."""
    if cast is not None:
        item.pop("@odata.type", None)
    return item


class _Definitions:
    """Answers one request under ``EntityDefinitions``."""

    def __init__(self, env: Environment, req: ApiRequest, options: dict[str, str]) -> None:
        self.env = env
        self.req = req
        self.options = options
        self.tables = list(env.tables.values())
        self.root = f"{req.api_root}/$metadata#EntityDefinitions"

    def entity_expander(self, table: Table) -> Expander:
        def expand(name: str, nested: dict[str, str]) -> Any:
            if name == "Keys":
                keys, _ = query_items(entity_keys(table), KEY_TYPE, nested)
                return keys
            attributes, _ = query_items(self.attribute_items(table, None), ATTRIBUTE_TYPE, nested)
            return attributes

        return expand

    def attribute_items(self, table: Table, cast: str | None) -> list[dict[str, Any]]:
        columns = [
            c for c in table.columns.values() if cast is None or ATTRIBUTE_CASTS[c.type] == cast
        ]
        return [attribute_metadata(table, c) for c in columns]

    def attribute_expander(self, table: Table, column: Column) -> Expander:
        def expand(_name: str, nested: dict[str, str]) -> Any:
            # OptionSet and GlobalOptionSet hold the same definition (retrieve-metadata doc note).
            select = parse_metadata_select(nested.get("$select"), OPTION_SET_TYPE)
            return shape(option_set(table, column), select, [], None)

        return expand

    # -- entities -------------------------------------------------------------------------------

    def entities(self) -> ApiResponse:
        check_options(self.options, _COLLECTION_OPTIONS)
        items = [entity_metadata(t, self.tables) for t in self.tables]
        shaped, suffix = query_items(
            items, ENTITY_TYPE, self.options, lambda n: self.entity_expander(self.tables[n])
        )
        return ApiResponse.json(200, {"@odata.context": f"{self.root}{suffix}", "value": shaped})

    def entity(self, table: Table) -> ApiResponse:
        check_options(self.options, _SINGLE_OPTIONS)
        select = parse_metadata_select(self.options.get("$select"), ENTITY_TYPE)
        expands = parse_metadata_expand(self.options.get("$expand"), ENTITY_TYPE)
        item = shape(
            entity_metadata(table, self.tables), select, expands, self.entity_expander(table)
        )
        context = f"{self.root}{context_suffix(select, expands)}/$entity"
        return ApiResponse.json(200, {"@odata.context": context, **item})

    # -- attributes -----------------------------------------------------------------------------

    def attributes(self, table: Table, key_text: str, cast: str | None) -> ApiResponse:
        check_options(self.options, _COLLECTION_OPTIONS)
        declared = _cast_type(cast) if cast else ATTRIBUTE_TYPE
        columns = [
            c for c in table.columns.values() if cast is None or ATTRIBUTE_CASTS[c.type] == cast
        ]
        items = [_declared_as(attribute_metadata(table, c), cast) for c in columns]
        shaped, suffix = query_items(
            items,
            declared,
            self.options,
            lambda n: self.attribute_expander(table, columns[n]),
        )
        typed = f"/{CRM}.{cast}" if cast else ""
        context = f"{self.root}({key_text})/Attributes{typed}{suffix}"
        return ApiResponse.json(200, {"@odata.context": context, "value": shaped})

    def attribute(
        self, table: Table, key_text: str, column: Column, cast: str | None
    ) -> ApiResponse:
        check_options(self.options, _SINGLE_OPTIONS)
        declared = _cast_type(cast) if cast else ATTRIBUTE_TYPE
        select = parse_metadata_select(self.options.get("$select"), declared)
        expands = parse_metadata_expand(self.options.get("$expand"), declared)
        item = shape(
            _declared_as(attribute_metadata(table, column), cast),
            select,
            expands,
            self.attribute_expander(table, column),
        )
        typed = f"/{CRM}.{cast}" if cast else ""
        suffix = context_suffix(select, expands)
        context = f"{self.root}({key_text})/Attributes{typed}{suffix}/$entity"
        return ApiResponse.json(200, {"@odata.context": context, **item})

    def option_set_of(
        self, table: Table, key_text: str, column: Column, cast: str, nav: str
    ) -> ApiResponse:
        check_options(self.options, {"$select"})
        select = parse_metadata_select(self.options.get("$select"), OPTION_SET_TYPE)
        item = shape(option_set(table, column), select, [], None)
        attribute_id = metadata_id(table.logical_name, column.name)
        names = f"({','.join(select)})" if select else ""
        context = (
            f"{self.root}({key_text})/Attributes({attribute_id})/{CRM}.{cast}/{nav}{names}/$entity"
        )
        return ApiResponse.json(200, {"@odata.context": context, **item})

    def keys(self, table: Table, key_text: str) -> ApiResponse:
        check_options(self.options, {"$select"})
        shaped, suffix = query_items(entity_keys(table), KEY_TYPE, self.options)
        context = f"{self.root}({key_text})/Keys{suffix}"
        return ApiResponse.json(200, {"@odata.context": context, "value": shaped})

    # -- routing --------------------------------------------------------------------------------

    def route(self, path: ResourcePath) -> ApiResponse:
        if path.key is None:
            if path.rest:
                raise resource_not_found("/".join(path.rest))
            return self.entities()
        table, key_text = self.table_for(path.key)
        if not path.rest:
            return self.entity(table)
        head = parse_path(path.rest[0])
        rest = path.rest[1:]
        if head.name == "Keys" and head.key is None and not rest:
            return self.keys(table, key_text)
        if head.name in KINDS and head.key is None and not rest:
            return entity_relationships(
                self.env, self.req, table, key_text, head.name, self.options
            )
        if head.name != "Attributes":
            raise resource_not_found(path.rest[0])
        if head.key is None:
            if len(rest) > 1:
                raise resource_not_found("/".join(path.rest))
            return self.attributes(table, key_text, _cast_of(rest[0]) if rest else None)
        column = self.column_for(table, head.key)
        if not rest:
            return self.attribute(table, key_text, column, None)
        cast = _cast_of(rest[0])
        if ATTRIBUTE_CASTS.get(column.type) != cast:
            # UNVERIFIED: the status for a cast the attribute is not an instance of.
            raise not_found(f"{CRM}.{cast}", column.name)
        if len(rest) == 1:
            return self.attribute(table, key_text, column, cast)
        if len(rest) == 2 and rest[1] in OPTION_SET_NAVIGATION and cast in OPTION_SET_CASTS:
            return self.option_set_of(table, key_text, column, cast, rest[1])
        raise resource_not_found("/".join(path.rest))

    def table_for(self, key: str) -> tuple[Table, str]:
        """The table a key names, and the key as the context URL spells it."""
        parsed = parse_key(key)
        if isinstance(parsed, str):
            for table in self.tables:
                if metadata_id(table.logical_name) == parsed:
                    return table, parsed
            raise not_found("EntityMetadata", parsed)
        name = parsed.get("LogicalName")
        if not isinstance(name, str) or len(parsed) != 1:
            raise bad_request("EntityDefinitions is keyed by MetadataId or LogicalName='<name>'.")
        found = self.env.tables.get(name)
        if found is None:
            raise not_found("EntityMetadata", f"LogicalName='{name}'")
        return found, f"'{name}'"

    @staticmethod
    def column_for(table: Table, key: str) -> Column:
        parsed = parse_key(key)
        if isinstance(parsed, str):
            for column in table.columns.values():
                if metadata_id(table.logical_name, column.name) == parsed:
                    return column
            raise not_found("AttributeMetadata", parsed)
        name = parsed.get("LogicalName")
        if not isinstance(name, str) or len(parsed) != 1:
            raise bad_request("Attributes are keyed by MetadataId or LogicalName='<name>'.")
        found = table.columns.get(name)
        if found is None:
            raise not_found("AttributeMetadata", f"LogicalName='{name}'")
        return found


def entity_definitions(
    env: Environment, req: ApiRequest, path: ResourcePath, options: dict[str, str]
) -> ApiResponse:
    """Answer a GET under ``EntityDefinitions``."""
    return _Definitions(env, req, options).route(path)


def global_option_set_definitions(
    env: Environment, req: ApiRequest, path: ResourcePath, options: dict[str, str]
) -> ApiResponse:
    """``GlobalOptionSetDefinitions``: all global option sets, or one by Name or MetadataId.

    The doc: "this path does not support the use of the $filter system query option"
    (UNVERIFIED status and wording of the refusal)."""
    if "$filter" in options:
        raise bad_request(
            "The $filter query option is not supported on GlobalOptionSetDefinitions."
        )
    check_options(options, {"$select"})
    if path.rest:
        raise resource_not_found("/".join(path.rest))
    sets = global_option_sets(env.tables.values())
    declared = DeclaredType("OptionSetMetadataBase", OPTION_SET_PROPERTIES)
    root = f"{req.api_root}/$metadata#GlobalOptionSetDefinitions"
    if path.key is None:
        shaped, suffix = query_items(list(sets.values()), declared, options)
        return ApiResponse.json(200, {"@odata.context": f"{root}{suffix}", "value": shaped})
    parsed = parse_key(path.key)
    if isinstance(parsed, str):
        found = next((s for s in sets.values() if s["MetadataId"] == parsed), None)
    elif set(parsed) == {"Name"}:
        found = sets.get(str(parsed["Name"]))
    else:
        raise bad_request("GlobalOptionSetDefinitions is keyed by MetadataId or Name='<name>'.")
    if found is None:
        raise not_found("OptionSetMetadataBase", path.key)
    select = parse_metadata_select(options.get("$select"), declared)
    item = shape(found, select, [], None)
    context = f"{root}{context_suffix(select, [])}/$entity"
    return ApiResponse.json(200, {"@odata.context": context, **item})
