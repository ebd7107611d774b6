"""Pieces of the Dataverse emulator's definition and ``$expand`` support: the ``$expand`` parser,
the metadata filter rewrite, and that generated definitions agree with the schema."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.dynamics.config import EmulatorConfig
from emulators.dynamics.errors import ODataError
from emulators.dynamics.expand_options import (
    ExpandItem,
    count_expands,
    parse_expand,
    split_top_level,
)
from emulators.dynamics.metadata_model import (
    ATTRIBUTE_CASTS,
    CAST_PROPERTIES,
    ENTITY_PROPERTIES,
    attribute_metadata,
    entity_metadata,
)
from emulators.dynamics.metadata_options import OPTION_SET_PROPERTIES, option_set
from emulators.dynamics.metadata_query import normalize_filter
from emulators.dynamics.schema import AttrType

TABLES = EmulatorConfig().build_tables()


def test_parse_expand_items_options_and_refs() -> None:
    """Commas and semicolons split only at the top level, outside quotes."""
    items = parse_expand(
        "primarycontactid($select=fullname,emailaddress1;$expand=createdby($select=fullname)),"
        "contact_customer_accounts($filter=contains(fullname,'a,b;c');$top=2),ownerid/$ref"
    )
    assert items == [
        ExpandItem(
            "primarycontactid",
            {"$select": "fullname,emailaddress1", "$expand": "createdby($select=fullname)"},
        ),
        ExpandItem(
            "contact_customer_accounts",
            {"$filter": "contains(fullname,'a,b;c')", "$top": "2"},
        ),
        ExpandItem("ownerid", {}, ref=True),
    ]
    assert count_expands(items) == 4


@pytest.mark.parametrize(
    "text",
    ["a(", "a)", "a($select=x", "a,,b", "a(select=x)", "a($top=1;$top=2)", "a,a", "a b"],
)
def test_parse_expand_refuses_malformed_text(text: str) -> None:
    """Unbalanced parentheses, empty items, options without ``$``, repeats: 400."""
    with pytest.raises(ODataError) as caught:
        parse_expand(text)
    assert caught.value.status == 400


@settings(deadline=None, max_examples=200)
@given(st.lists(st.text(alphabet="ab,;'() ", max_size=12), max_size=5))
def test_split_top_level_never_splits_inside_quotes_or_parentheses(parts: list[str]) -> None:
    """Joining quoted, parenthesised chunks with the separator splits back into them."""
    chunks = [f"x('{p.replace(chr(39), '')}')" for p in parts] or ["x"]
    assert split_top_level(",".join(chunks), ",") == chunks


def test_normalize_filter_rewrites_enums_and_managed_values_outside_strings() -> None:
    """Enum type prefixes and ``X/Value`` are rewritten; string literals are left alone."""
    text = (
        "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist' and "
        "CanChangeTrackingBeEnabled/Value eq true and "
        "LogicalName ne 'Microsoft.Dynamics.CRM.a/Value'"
    )
    assert normalize_filter(text) == (
        "AttributeType eq 'Picklist' and CanChangeTrackingBeEnabled__Value eq true and "
        "LogicalName ne 'Microsoft.Dynamics.CRM.a/Value'"
    )


def test_every_generated_property_can_be_selected_on_its_declared_type() -> None:
    """What an item reports is what ``$select`` on its cast (and on EntityMetadata) accepts."""
    tables = list(TABLES.values())
    for table in tables:
        assert set(entity_metadata(table, tables)) <= ENTITY_PROPERTIES
        for column in table.columns.values():
            item = attribute_metadata(table, column)
            cast = ATTRIBUTE_CASTS[column.type]
            assert set(item) - {"@odata.type"} <= CAST_PROPERTIES[cast], (table, column.name)
            assert item["@odata.type"] == f"#Microsoft.Dynamics.CRM.{cast}"


def test_option_sets_list_exactly_the_schema_options() -> None:
    """Every choice column's option values and labels come from the schema."""
    for table in TABLES.values():
        for column in table.columns.values():
            if column.type in (AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS):
                definition = option_set(table, column)
                assert set(definition) <= OPTION_SET_PROPERTIES
                labels = {
                    o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"]
                    for o in definition["Options"]
                }
                assert labels == dict(column.options or {}), (table.logical_name, column.name)
            if column.type is AttrType.STATUS:
                states = {o["Value"]: o["State"] for o in option_set(table, column)["Options"]}
                state_values = set(table.columns["statecode"].options or {})
                assert set(states.values()) <= state_values, table.logical_name
