"""Choice-column options from the typed attribute casts, and label/value translation."""

from __future__ import annotations

from typing import Any

import pytest

from shared.dynamics import ChoiceColumn
from shared.errors import ConfigurationError

from .fakes import API, Script, json_response, make_client, odata_error


def _label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _options(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {"Options": [{"Value": v, "Label": _label(t)} for v, t in pairs]}


PICKLISTS = {
    "value": [
        {
            "LogicalName": "industrycode",
            "MetadataId": "1",
            "OptionSet": _options((1, "Accounting"), (7, "Consulting")),
        },
        {  # a label only in LocalizedLabels, and an option without any label
            "LogicalName": "leadsourcecode",
            "OptionSet": {
                "Options": [
                    {"Value": 1, "Label": {"LocalizedLabels": [{"Label": "Web"}]}},
                    {"Value": 2, "Label": {"LocalizedLabels": [], "UserLocalizedLabel": None}},
                ]
            },
        },
    ]
}
EMPTY: dict[str, Any] = {"value": []}
STATES = {"value": [{"LogicalName": "statecode", "OptionSet": _options((0, "Active"))}]}
STATUSES = {"value": [{"LogicalName": "statuscode", "OptionSet": _options((1, "Active"))}]}
BOOLEANS = {
    "value": [
        {
            "LogicalName": "new_synctomkto",
            "OptionSet": {
                "TrueOption": {"Value": 1, "Label": _label("Yes")},
                "FalseOption": {"Value": 0, "Label": _label("No")},
            },
        }
    ]
}


async def test_choice_columns_reads_every_choice_cast() -> None:
    """One typed-cast request per choice type, each expanding only what it needs."""
    script = Script(
        [
            json_response(200, PICKLISTS),
            json_response(200, EMPTY),
            json_response(200, STATES),
            json_response(200, STATUSES),
            json_response(200, BOOLEANS),
        ]
    )
    client, _ = make_client(script)
    async with client:
        columns = await client.choice_columns("account")
    base = API + "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
    assert script.raw_urls() == [
        base + "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select%3DOptions)",
        base + "MultiSelectPicklistAttributeMetadata?$select=LogicalName"
        "&$expand=OptionSet($select%3DOptions)",
        base + "StateAttributeMetadata?$select=LogicalName&$expand=OptionSet($select%3DOptions)",
        base + "StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet($select%3DOptions)",
        base + "BooleanAttributeMetadata?$select=LogicalName"
        "&$expand=OptionSet($select%3DTrueOption,FalseOption)",
    ]
    assert columns["industrycode"] == ChoiceColumn(
        "industrycode", "Picklist", {1: "Accounting", 7: "Consulting"}
    )
    assert columns["leadsourcecode"].options == {1: "Web"}
    assert columns["statecode"].attribute_type == "State"
    assert columns["statuscode"].options == {1: "Active"}
    assert columns["new_synctomkto"].options == {1: "Yes", 0: "No"}


def test_translation_between_labels_and_values() -> None:
    """Labels match ignoring case and spaces; Two Options give bools; unknowns give None."""
    industry = ChoiceColumn("industrycode", "Picklist", {1: "Accounting", 7: "Consulting"})
    assert industry.value(" consulting ") == 7
    assert industry.value("Plumbing") is None
    assert industry.value(None) is None
    assert industry.label(1) == "Accounting"
    assert industry.label(99) is None and industry.label(None) is None
    flag = ChoiceColumn("new_synctomkto", "Boolean", {1: "Yes", 0: "No"})
    assert flag.value("no") is False and flag.value("YES") is True
    assert flag.label(True) == "Yes" and flag.label(False) == "No"


async def test_unknown_table_is_a_configuration_error() -> None:
    """A 404 on the first cast names the table; a bad name is refused before any request."""
    script = Script([odata_error(404, "0x80040217", "Could not find entity")])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ConfigurationError, match="no table with the logical name 'new_x'"):
            await client.choice_columns("new_x")
        with pytest.raises(ConfigurationError, match="not a valid Dataverse table name"):
            await client.choice_columns("x') or (1 eq 1")
    assert len(script.requests) == 1
