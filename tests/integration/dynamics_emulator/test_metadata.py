"""Conformance of the definition endpoints with Microsoft Learn, "Query table definitions using the
Web API" and "Retrieve table definitions by name or MetadataId": the exact JSON a client reads
(``value``, ``@odata.context``, ``MetadataId``, ``Options`` with ``Value`` and ``Label``), the
typed casts, and that what the metadata says is what the tables accept.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from emulators.dynamics.option_sets import INDUSTRY, LEAD_STATE, LEAD_STATUS
from emulators.dynamics.runner import EmulatorHandle
from tests.integration.dynamics_emulator.batch_parts import (
    batch_body,
    batch_request,
    parse_batch_response,
    post_batch,
)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CRM = "Microsoft.Dynamics.CRM"


def _get(api: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = api.get(path, params=params or None)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def _error(api: httpx.Client, path: str, **params: str) -> tuple[int, str]:
    response = api.get(path, params=params or None)
    return response.status_code, response.json()["error"]["message"]


def _labels(options: list[dict[str, Any]]) -> dict[int, str]:
    return {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in options}


def test_resolving_a_table_returns_only_the_selected_properties(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """``$select`` + ``$filter`` on EntityDefinitions: a ``value`` list; MetadataId always."""
    body = _get(
        api,
        "EntityDefinitions",
        **{
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute",
            "$filter": "LogicalName eq 'contact'",
        },
    )
    assert body["@odata.context"] == (
        f"{dyn.api_url}/$metadata#EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute)"
    )
    [contact] = body["value"]
    assert set(contact) == {"MetadataId", "LogicalName", "EntitySetName", "PrimaryIdAttribute"}
    assert contact["EntitySetName"] == "contacts"
    assert contact["PrimaryIdAttribute"] == "contactid"
    assert GUID.match(contact["MetadataId"])


def test_entity_by_name_and_by_metadata_id_with_labels(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """``EntityDefinitions(LogicalName='x')`` and ``(MetadataId)``; Label complex types."""
    by_name = _get(
        api, "EntityDefinitions(LogicalName='account')", **{"$select": "DisplayName,EntitySetName"}
    )
    assert by_name["@odata.context"].endswith(
        "$metadata#EntityDefinitions(DisplayName,EntitySetName)/$entity"
    )
    display = by_name["DisplayName"]
    assert display["UserLocalizedLabel"]["Label"] == "Account"
    assert display["UserLocalizedLabel"]["LanguageCode"] == 1033
    assert display["LocalizedLabels"][0]["Label"] == "Account"
    by_id = _get(api, f"EntityDefinitions({by_name['MetadataId']})", **{"$select": "LogicalName"})
    assert by_id["LogicalName"] == "account"
    assert by_id["MetadataId"] == by_name["MetadataId"]
    status, _ = _error(api, f"EntityDefinitions({uuid.uuid4()})")
    assert status == 404


def test_metadata_filters_on_enums_and_managed_properties(api: httpx.Client) -> None:
    """Enum literals carry their type; complex properties filter through ``/Value``."""
    owned = _get(
        api,
        "EntityDefinitions",
        **{
            "$select": "LogicalName",
            "$filter": f"OwnershipType eq {CRM}.OwnershipTypes'UserOwned'",
        },
    )
    names = {e["LogicalName"] for e in owned["value"]}
    assert {"lead", "contact", "account", "opportunity", "new_project"} <= names
    assert "organization" not in names
    trackable = _get(
        api,
        "EntityDefinitions",
        **{"$select": "LogicalName", "$filter": "CanChangeTrackingBeEnabled/Value eq false"},
    )
    assert [e["LogicalName"] for e in trackable["value"]] == ["organization"]
    custom = _get(
        api, "EntityDefinitions", **{"$select": "LogicalName", "$filter": "IsCustomEntity eq true"}
    )
    assert [e["LogicalName"] for e in custom["value"]] == ["new_project"]
    status, message = _error(api, "EntityDefinitions", **{"$filter": "DisplayName eq 'Account'"})
    assert status == 400  # Label properties can't be filtered (doc)
    assert "DisplayName" in message


def test_discovery_with_expanded_attributes_is_not_paged(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """``$expand=Attributes($select=...)`` as a table-discovering connector sends it."""
    response = api.get(
        "EntityDefinitions",
        params={
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,"
            "CanChangeTrackingBeEnabled,ChangeTrackingEnabled",
            "$expand": "Attributes($select=LogicalName,AttributeType)",
        },
        headers={"Prefer": "odata.maxpagesize=1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "@odata.nextLink" not in body  # "There is no paging" (doc)
    assert body["@odata.context"].endswith(
        "#EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute,"
        "CanChangeTrackingBeEnabled,ChangeTrackingEnabled,Attributes(LogicalName,AttributeType))"
    )
    tables = {e["LogicalName"]: e for e in body["value"]}
    assert len(tables) == len(dyn.control.info()["tables"])
    lead = tables["lead"]
    assert lead["CanChangeTrackingBeEnabled"]["Value"] is True
    assert lead["ChangeTrackingEnabled"] is True
    attributes = {a["LogicalName"]: a for a in lead["Attributes"]}
    assert attributes["statuscode"]["AttributeType"] == "Status"
    assert attributes["statuscode"]["@odata.type"] == f"#{CRM}.StatusAttributeMetadata"
    assert set(attributes["emailaddress1"]) == {
        "@odata.type",
        "MetadataId",
        "LogicalName",
        "AttributeType",
    }


def test_expand_attributes_with_nested_filter(api: httpx.Client) -> None:
    """The doc's example: picklist attributes of account through a nested ``$filter``."""
    body = _get(
        api,
        "EntityDefinitions(LogicalName='account')",
        **{
            "$select": "LogicalName",
            "$expand": "Attributes($select=LogicalName;$filter=AttributeType eq "
            f"{CRM}.AttributeTypeCode'Picklist')",
        },
    )
    assert {a["LogicalName"] for a in body["Attributes"]} == {"industrycode", "businesstypecode"}


def test_picklists_of_a_table_through_the_typed_cast(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """``/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet(...)``."""
    body = _get(
        api,
        f"EntityDefinitions(LogicalName='account')/Attributes/{CRM}.PicklistAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
    )
    assert body["@odata.context"] == (
        f"{dyn.api_url}/$metadata#EntityDefinitions('account')/Attributes/"
        f"{CRM}.PicklistAttributeMetadata(LogicalName,OptionSet(Options))"
    )
    by_name = {a["LogicalName"]: a for a in body["value"]}
    industry = by_name["industrycode"]
    assert set(industry) == {"MetadataId", "LogicalName", "OptionSet"}
    assert set(industry["OptionSet"]) == {"MetadataId", "Options"}
    assert _labels(industry["OptionSet"]["Options"]) == dict(INDUSTRY)
    option = industry["OptionSet"]["Options"][0]
    assert option["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033
    assert option["Description"] == {"LocalizedLabels": [], "UserLocalizedLabel": None}


def test_option_values_are_what_writes_accept(api: httpx.Client) -> None:
    """The metadata and the validation come from one schema: listed values in, others out."""
    body = _get(
        api,
        f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/"
        f"{CRM}.PicklistAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
    )
    values = [o["Value"] for o in body["OptionSet"]["Options"]]
    assert api.post("accounts", json={"name": "ok", "industrycode": values[-1]}).status_code == 204
    refused = api.post("accounts", json={"name": "bad", "industrycode": max(values) + 1})
    assert refused.status_code == 400


def test_single_picklist_by_name_with_both_option_sets(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """The retrieve-by-name example: ``OptionSet`` and ``GlobalOptionSet`` hold the same options."""
    body = _get(
        api,
        f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/"
        f"{CRM}.PicklistAttributeMetadata",
        **{
            "$select": "LogicalName",
            "$expand": "OptionSet($select=Options),GlobalOptionSet($select=Options)",
        },
    )
    assert body["@odata.context"] == (
        f"{dyn.api_url}/$metadata#EntityDefinitions('account')/Attributes/"
        f"{CRM}.PicklistAttributeMetadata(LogicalName,OptionSet(Options),GlobalOptionSet(Options))"
        "/$entity"
    )
    assert body["LogicalName"] == "industrycode"
    assert body["OptionSet"] == body["GlobalOptionSet"]
    full = _get(
        api,
        f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/"
        f"{CRM}.PicklistAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet"},
    )["OptionSet"]
    assert full["Name"] == "account_industrycode"
    assert full["IsGlobal"] is False
    assert full["OptionSetType"] == "Picklist"


def test_attributes_by_metadata_id_and_the_option_set_path(api: httpx.Client) -> None:
    """The doc's MetadataId walk: entity id, attribute id (typed), then ``.../OptionSet``."""
    [entity] = _get(
        api, "EntityDefinitions", **{"$filter": "LogicalName eq 'account'", "$select": "MetadataId"}
    )["value"]
    entity_id = entity["MetadataId"]
    attributes = _get(
        api,
        f"EntityDefinitions({entity_id})/Attributes",
        **{"$filter": "LogicalName eq 'industrycode'", "$select": "MetadataId"},
    )
    assert attributes["@odata.context"].endswith(
        f"#EntityDefinitions({entity_id})/Attributes(MetadataId)"
    )
    [attribute] = attributes["value"]
    assert attribute == {
        "@odata.type": f"#{CRM}.PicklistAttributeMetadata",
        "MetadataId": attribute["MetadataId"],
    }
    path = f"EntityDefinitions({entity_id})/Attributes({attribute['MetadataId']})"
    typed = _get(api, f"{path}/{CRM}.PicklistAttributeMetadata", **{"$select": "LogicalName"})
    assert typed["LogicalName"] == "industrycode"
    options = _get(
        api, f"{path}/{CRM}.PicklistAttributeMetadata/OptionSet", **{"$select": "Options"}
    )
    assert options["@odata.context"].endswith(
        f"/Attributes({attribute['MetadataId']})/{CRM}.PicklistAttributeMetadata/OptionSet(Options)"
        "/$entity"
    )
    assert set(options) == {"@odata.context", "MetadataId", "Options"}
    assert _labels(options["Options"]) == dict(INDUSTRY)


def test_two_options_column_has_true_and_false_options(api: httpx.Client) -> None:
    """``BooleanAttributeMetadata``: ``TrueOption``/``FalseOption`` and ``DefaultValue``."""
    body = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_synctomkto')/"
        f"{CRM}.BooleanAttributeMetadata",
        **{"$select": "LogicalName,DefaultValue", "$expand": "OptionSet"},
    )
    assert body["DefaultValue"] is True  # the emulator's default sync filter value
    option_set = body["OptionSet"]
    assert option_set["OptionSetType"] == "Boolean"
    assert option_set["TrueOption"]["Value"] == 1
    assert option_set["TrueOption"]["Label"]["UserLocalizedLabel"]["Label"] == "Yes"
    assert option_set["FalseOption"]["Value"] == 0
    assert option_set["FalseOption"]["Label"]["UserLocalizedLabel"]["Label"] == "No"
    donot = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='donotemail')/"
        f"{CRM}.BooleanAttributeMetadata/OptionSet",
    )
    assert donot["TrueOption"]["Label"]["UserLocalizedLabel"]["Label"] == "Do Not Allow"


def test_state_and_status_options_know_each_other(api: httpx.Client) -> None:
    """State options carry DefaultStatus/InvariantName; status options carry their State."""
    state = _get(
        api,
        f"EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='statecode')/"
        f"{CRM}.StateAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
    )["OptionSet"]["Options"]
    status = _get(
        api,
        f"EntityDefinitions(LogicalName='lead')/Attributes/{CRM}.StatusAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
    )["value"][0]["OptionSet"]["Options"]
    assert _labels(state) == dict(LEAD_STATE)
    assert _labels(status) == dict(LEAD_STATUS)
    assert all(o["@odata.type"] == f"#{CRM}.StateOptionMetadata" for o in state)
    assert all(o["@odata.type"] == f"#{CRM}.StatusOptionMetadata" for o in status)
    state_of = {o["Value"]: o["State"] for o in status}
    assert state_of[1] == 0 and state_of[3] == 1 and state_of[4] == 2
    for option in state:
        assert option["InvariantName"] == option["Label"]["UserLocalizedLabel"]["Label"]
        assert state_of[option["DefaultStatus"]] == option["Value"]


def test_string_datetime_and_lookup_casts(api: httpx.Client) -> None:
    """MaxLength/Format, Format/DateTimeBehavior and Targets as their casts expose them."""
    strings = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}.StringAttributeMetadata",
        **{"$select": "LogicalName,MaxLength,Format", "$filter": "MaxLength le 50"},
    )["value"]
    by_name = {a["LogicalName"]: a for a in strings}
    assert by_name["firstname"]["MaxLength"] == 50
    assert "emailaddress1" not in by_name  # 100 > 50
    email = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='emailaddress1')/"
        f"{CRM}.StringAttributeMetadata",
        **{"$select": "MaxLength,Format"},
    )
    assert email["MaxLength"] == 100 and email["Format"] == "Email"
    too_long = api.post("contacts", json={"lastname": "x", "emailaddress1": "a" * 101})
    assert too_long.status_code == 400
    dates = _get(
        api,
        f"EntityDefinitions(LogicalName='opportunity')/Attributes/{CRM}.DateTimeAttributeMetadata",
        **{"$select": "LogicalName,Format,DateTimeBehavior"},
    )["value"]
    by_name = {a["LogicalName"]: a for a in dates}
    assert by_name["estimatedclosedate"]["Format"] == "DateOnly"
    assert by_name["estimatedclosedate"]["DateTimeBehavior"] == {"Value": "DateOnly"}
    assert by_name["createdon"]["Format"] == "DateAndTime"
    assert by_name["createdon"]["DateTimeBehavior"] == {"Value": "UserLocal"}
    lookups = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}.LookupAttributeMetadata",
        **{"$select": "LogicalName,Targets,AttributeType"},
    )["value"]
    by_name = {a["LogicalName"]: a for a in lookups}
    assert by_name["parentcustomerid"]["Targets"] == ["account", "contact"]
    assert by_name["parentcustomerid"]["AttributeType"] == "Customer"
    assert by_name["ownerid"]["Targets"] == ["systemuser", "team"]
    multi = _get(
        api,
        f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}.MultiSelectPicklistAttributeMetadata",
        **{"$select": "LogicalName", "$expand": "OptionSet"},
    )
    assert multi["value"] == []  # no served column is a multi-select choice


def test_global_option_set_definitions(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """List, by Name and by MetadataId; an attribute's GlobalOptionSet is the same definition."""
    listed = _get(api, "GlobalOptionSetDefinitions", **{"$select": "Name"})
    assert listed["@odata.context"] == f"{dyn.api_url}/$metadata#GlobalOptionSetDefinitions(Name)"
    names = {s["Name"] for s in listed["value"]}
    assert "connectionrole_category" in names
    by_name = _get(api, "GlobalOptionSetDefinitions(Name='connectionrole_category')")
    assert by_name["IsGlobal"] is True
    assert by_name["@odata.type"] == f"#{CRM}.OptionSetMetadata"
    assert _labels(by_name["Options"])[1000] == "Stakeholder"
    by_id = _get(api, f"GlobalOptionSetDefinitions({by_name['MetadataId']})")
    assert by_id["Name"] == "connectionrole_category"
    used = _get(
        api,
        f"EntityDefinitions(LogicalName='connectionrole')/Attributes(LogicalName='category')/"
        f"{CRM}.PicklistAttributeMetadata",
        **{"$expand": "GlobalOptionSet($select=Name,Options)"},
    )["GlobalOptionSet"]
    assert used["MetadataId"] == by_name["MetadataId"]
    assert used["Options"] == by_name["Options"]
    status, _ = _error(api, "GlobalOptionSetDefinitions", **{"$filter": "Name eq 'x'"})
    assert status == 400  # "this path does not support the use of the $filter" (doc)
    status, _ = _error(api, "GlobalOptionSetDefinitions(Name='no_such_set')")
    assert status == 404


def test_alternate_keys_are_entity_key_metadata(api: httpx.Client) -> None:
    """``EntityDefinitions(...)/Keys`` lists the configured alternate keys."""
    keys = _get(api, "EntityDefinitions(LogicalName='contact')/Keys")["value"]
    assert [k["KeyAttributes"] for k in keys] == [["emailaddress1"]]
    assert _get(api, "EntityDefinitions(LogicalName='lead')/Keys")["value"] == []


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        # AttributeMetadata has only the common properties; MaxLength needs the String cast.
        (
            "EntityDefinitions(LogicalName='contact')/Attributes",
            {"$select": "LogicalName,MaxLength"},
            "Could not find a property named 'MaxLength'",
        ),
        (
            "EntityDefinitions(LogicalName='contact')/Attributes",
            {"$expand": "OptionSet"},
            "Could not find a property named 'OptionSet'",
        ),
        (
            f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}.EnumAttributeMetadata",
            {},
            "can't be cast",
        ),
        ("EntityDefinitions", {"$top": "1"}, "$top"),
        (
            f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}.StringAttributeMetadata",
            {"$expand": "OptionSet"},
            "Could not find a property named 'OptionSet'",
        ),
    ],
)
def test_refusals(api: httpx.Client, path: str, params: dict[str, str], fragment: str) -> None:
    """Requests the docs rule out are 400s that name the problem."""
    response = api.get(path, params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_a_cast_the_attribute_is_not_is_404(api: httpx.Client) -> None:
    """An attribute addressed with a cast to a type it is not an instance of."""
    response = api.get(
        f"EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='firstname')/"
        f"{CRM}.PicklistAttributeMetadata"
    )
    assert response.status_code == 404


def test_metadata_gets_inside_a_batch(api: httpx.Client) -> None:
    """A connector's ``$batch`` of typed-attribute GETs gets one 200 part with ``value`` each."""
    boundary = f"batch_{uuid.uuid4()}"
    tables = ["lead", "contact", "account", "opportunity"]
    parts: list[str | list[str]] = [
        batch_request(
            "GET",
            f"/api/data/v9.2/EntityDefinitions(LogicalName='{t}')/Attributes/"
            f"{CRM}.DateTimeAttributeMetadata?$select=LogicalName,Format,DateTimeBehavior",
        )
        for t in tables
    ]
    parts.append(
        batch_request(
            "GET",
            f"EntityDefinitions(LogicalName='lead')/Attributes/{CRM}.PicklistAttributeMetadata"
            "?$select=LogicalName&$expand=OptionSet($select=Options)",
        )
    )
    response = post_batch(api, batch_body(parts, boundary), boundary)
    assert response.status_code == 200
    answers = parse_batch_response(response)
    assert [p.status for p in answers] == [200] * 5
    bodies = [json.loads(p.body) for p in answers]
    for body in bodies[:4]:
        names = {a["LogicalName"] for a in body["value"]}
        assert {"createdon", "modifiedon"} <= names
    assert "estimatedclosedate" in {a["LogicalName"] for a in bodies[3]["value"]}
    picklists = {a["LogicalName"] for a in bodies[4]["value"]}
    assert picklists == {"preferredcontactmethodcode", "leadsourcecode", "leadqualitycode"}


def test_many_to_one_relationships_name_the_bind_properties(api: httpx.Client) -> None:
    """``ManyToOneRelationships`` as clients read it to find the ``@odata.bind`` name; every
    advertised navigation property binds and expands (one relationship list behind both)."""
    relations = _get(
        api,
        "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships",
        **{
            "$select": "SchemaName,ReferencingAttribute,ReferencedEntity,"
            "ReferencingEntityNavigationPropertyName"
        },
    )["value"]
    by_nav = {r["ReferencingEntityNavigationPropertyName"]: r for r in relations}
    assert by_nav["parentcustomerid_account"]["ReferencedEntity"] == "account"
    assert by_nav["parentcustomerid_account"]["SchemaName"] == "contact_customer_accounts"
    assert by_nav["parentcustomerid_contact"]["ReferencingAttribute"] == "parentcustomerid"
    assert by_nav["ownerid"]["ReferencedEntity"] == "owner"
    account = api.post("accounts", json={"name": "Bound"})
    assert account.status_code == 204
    account_url = account.headers["OData-EntityId"]
    account_id = account_url.rsplit("(", 1)[1].rstrip(")")
    created = api.post(
        "contacts", json={"lastname": "B", "parentcustomerid_account@odata.bind": account_url}
    )
    assert created.status_code == 204, created.text
    served = {"account", "contact", "systemuser", "team"}
    expandable = [n for n, r in by_nav.items() if r["ReferencedEntity"] in served]
    response = api.get("contacts", params={"$expand": ",".join(expandable)})
    assert response.status_code == 200, response.text
    [row] = response.json()["value"]
    assert row["parentcustomerid_account"]["accountid"] == account_id


def test_one_to_many_relationships_and_relationship_definitions(api: httpx.Client) -> None:
    """The referenced side: each collection-valued navigation property expands; the doc's
    RelationshipDefinitions queries (cast + ``$filter`` on ReferencedEntity, by SchemaName)."""
    one_to_many = _get(
        api,
        "EntityDefinitions(LogicalName='account')/OneToManyRelationships",
        **{"$select": "SchemaName,ReferencingEntity,ReferencedEntityNavigationPropertyName"},
    )["value"]
    names = {r["SchemaName"] for r in one_to_many}
    assert {"contact_customer_accounts", "opportunity_customer_accounts"} <= names
    navs = [r["ReferencedEntityNavigationPropertyName"] for r in one_to_many]
    expanded = api.get("accounts", params={"$expand": ",".join(navs[:15])})
    assert expanded.status_code == 200, expanded.text
    cast = _get(
        api,
        f"RelationshipDefinitions/{CRM}.OneToManyRelationshipMetadata",
        **{"$select": "SchemaName", "$filter": "ReferencedEntity eq 'account'"},
    )["value"]
    assert {r["SchemaName"] for r in cast} == names
    one = _get(api, "RelationshipDefinitions(SchemaName='contact_customer_accounts')")
    assert one["@odata.type"] == f"#{CRM}.OneToManyRelationshipMetadata"
    assert one["CascadeConfiguration"]["Delete"] == "Cascade"  # parental, as the emulator does
    assert _get(api, f"RelationshipDefinitions({one['MetadataId']})")["SchemaName"] == (
        "contact_customer_accounts"
    )
    base = api.get("RelationshipDefinitions", params={"$select": "ReferencedEntity"})
    assert base.status_code == 400  # only RelationshipMetadataBase properties without the cast
    assert (
        _get(api, "EntityDefinitions(LogicalName='account')/ManyToManyRelationships")["value"] == []
    )
