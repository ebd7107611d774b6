"""Table metadata for mapping checks, and the identity reads behind sandbox-refresh detection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.dynamics.metadata import require_change_tracking, require_columns
from shared.errors import ApiRequestError, ConfigurationError

from .fakes import API, Script, json_response, make_client, odata_error

ORG = "00000000-0000-0000-0000-0000000000c0"


def entity(logical: str = "contact", tracking: bool = True) -> dict[str, object]:
    return {
        "LogicalName": logical,
        "EntitySetName": f"{logical}s",
        "PrimaryIdAttribute": f"{logical}id",
        "ChangeTrackingEnabled": tracking,
        "MetadataId": "608861bc-50a4-4c5f-a02c-21fe1943e2cf",
    }


ATTRIBUTES = {
    "value": [
        {"LogicalName": "contactid", "AttributeType": "Uniqueidentifier"},
        {"LogicalName": "firstname", "AttributeType": "String"},
        {"LogicalName": "parentcustomerid", "AttributeType": "Customer"},
        {"LogicalName": "ownerid", "AttributeType": "Owner"},
    ]
}


async def test_table_definition() -> None:
    """Entity set, primary key, tracking flag and columns from two metadata reads."""
    script = Script([json_response(200, entity()), json_response(200, ATTRIBUTES)])
    client, _ = make_client(script)
    async with client:
        definition = await client.table_definition("contact")
    assert script.raw_urls() == [
        API + "EntityDefinitions(LogicalName='contact')"
        "?$select=LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled",
        API + "EntityDefinitions(LogicalName='contact')/Attributes"
        "?$select=LogicalName,AttributeType",
    ]
    table = definition.table
    assert (table.logical_name, table.entity_set, table.id_attribute) == (
        "contact",
        "contacts",
        "contactid",
    )
    assert definition.change_tracking_enabled is True
    assert definition.attributes["parentcustomerid"] == "Customer"
    require_change_tracking(definition)
    require_columns(definition, ["firstname", "_parentcustomerid_value", "_ownerid_value"])
    with pytest.raises(ConfigurationError, match="no column\\(s\\) _nope_value, lastnme"):
        require_columns(definition, ["firstname", "lastnme", "_nope_value"])


async def test_unknown_table_is_a_configuration_error() -> None:
    """A 404 on the definition names the table as a configuration problem."""
    script = Script([odata_error(404, "0x80040217", "Could not find entity")])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(ConfigurationError, match="no table with the logical name 'new_thing'"):
            await client.table_definition("new_thing")
        with pytest.raises(ConfigurationError, match="not a valid Dataverse table name"):
            await client.table_definition("contact') or (1 eq 1")
    assert len(script.requests) == 1


async def test_tracking_off_is_reported() -> None:
    """A table without change tracking cannot be read by delta."""
    script = Script([json_response(200, entity(tracking=False)), json_response(200, {"value": []})])
    client, _ = make_client(script)
    async with client:
        definition = await client.table_definition("contact")
    with pytest.raises(ConfigurationError, match="Change tracking is off for Dynamics table"):
        require_change_tracking(definition)


async def test_whoami() -> None:
    """GET WhoAmI gives user, business unit and organization."""
    body = {
        "@odata.context": f"{API}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": "00000000-0000-0000-0000-0000000000b0",
        "UserId": "00000000-0000-0000-0000-0000000000a0",
        "OrganizationId": ORG,
    }
    script = Script([json_response(200, body), json_response(200, {"UserId": "x"})])
    client, _ = make_client(script)
    async with client:
        who = await client.whoami()
        with pytest.raises(ApiRequestError, match="no BusinessUnitId"):
            await client.whoami()
    assert str(script.requests[0].url) == API + "WhoAmI"
    assert who.organization_id == ORG
    assert who.business_unit_id.endswith("b0")


async def test_organization_row() -> None:
    """The single organizations row: id, name, change-tracking retention, creation time."""
    body = {
        "value": [
            {
                "@odata.etag": 'W/"1"',
                "organizationid": ORG,
                "name": "Contoso",
                "expirechangetrackingindays": 7,
                "createdon": "2023-04-07T21:59:01Z",
            }
        ]
    }
    script = Script([json_response(200, body)])
    client, _ = make_client(script)
    async with client:
        org = await client.organization()
    assert script.raw_urls() == [
        API + "organizations?$select=organizationid,name,expirechangetrackingindays,createdon"
    ]
    assert org.organization_id == ORG
    assert org.name == "Contoso"
    assert org.expire_change_tracking_in_days == 7
    assert org.created_on == datetime(2023, 4, 7, 21, 59, 1, tzinfo=UTC)


async def test_current_organization() -> None:
    """RetrieveCurrentOrganization's Detail carries the environment id."""
    body = {
        "Detail": {
            "OrganizationId": ORG,
            "FriendlyName": "Contoso",
            "OrganizationVersion": "9.2.24031.00194",
            "EnvironmentId": "Default-00000000-0000-0000-0000-0000000000e0",
            "TenantId": "00000000-0000-0000-0000-0000000000f0",
            "UrlName": "contoso",
            "UniqueName": "unq0000",
            "State": "Enabled",
        }
    }
    script = Script([json_response(200, body)])
    client, _ = make_client(script)
    async with client:
        detail = await client.current_organization()
    assert script.raw_urls() == [
        API + "RetrieveCurrentOrganization(AccessType="
        "Microsoft.Dynamics.CRM.EndpointAccessType'Default')"
    ]
    assert detail.environment_id == "Default-00000000-0000-0000-0000-0000000000e0"
    assert detail.unique_name == "unq0000"
    assert detail.version == "9.2.24031.00194"
    assert detail.raw["State"] == "Enabled"
