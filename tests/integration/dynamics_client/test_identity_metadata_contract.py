"""Metadata for mapping checks, and the identity signals of a sandbox refresh."""

from __future__ import annotations

import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.dynamics import DynamicsClient
from shared.dynamics.metadata import require_change_tracking, require_columns
from shared.errors import ConfigurationError, DeltaTokenExpiredError

from .conftest import CONTACTS

pytestmark = pytest.mark.integration


async def test_table_definitions(client: DynamicsClient) -> None:
    """Standard and custom tables: entity set, key, tracking, columns (lookups as _x_value)."""
    contact = await client.table_definition("contact")
    assert contact.table == CONTACTS
    assert contact.change_tracking_enabled is True
    require_change_tracking(contact)
    require_columns(
        contact, ["firstname", "emailaddress1", "_ownerid_value", "_parentcustomerid_value"]
    )
    with pytest.raises(ConfigurationError, match="no column\\(s\\) emailadress1"):
        require_columns(contact, ["emailadress1"])
    opportunity = await client.table_definition("opportunity")
    assert opportunity.table.entity_set == "opportunities"
    custom = await client.table_definition("new_project")
    assert (custom.table.entity_set, custom.table.id_attribute) == ("new_projects", "new_projectid")


async def test_an_unknown_table_is_a_configuration_error(client: DynamicsClient) -> None:
    """A mapping naming a table Dataverse lacks fails at start with the name."""
    with pytest.raises(ConfigurationError, match="no table with the logical name 'new_missing'"):
        await client.table_definition("new_missing")


async def test_identity_matches_the_environment(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """WhoAmI, organizations and RetrieveCurrentOrganization agree with the environment."""
    info = emulator.control.info()
    who = await client.whoami()
    organization = await client.organization()
    detail = await client.current_organization()
    assert (who.user_id, who.business_unit_id) == (info["user_id"], info["business_unit_id"])
    assert who.organization_id == organization.organization_id == detail.organization_id
    assert detail.environment_id == info["environment_id"]
    assert organization.name and organization.created_on is not None


async def test_an_environment_copy_changes_the_signals_and_expires_tokens(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """After a sandbox refresh the organization and user ids differ and deltas must restart."""
    emulator.control.seed(counts={"contact": 2})
    before_who = await client.whoami()
    delta = None
    async for page in client.iter_pages(CONTACTS, ["firstname"]):
        delta = page.delta_link
    assert delta is not None
    emulator.control.copy_environment(source_seed=5, records_per_table=0)
    after_who = await client.whoami()
    assert after_who.organization_id != before_who.organization_id
    assert after_who.user_id != before_who.user_id
    with pytest.raises(DeltaTokenExpiredError):
        await client.read_page(CONTACTS, ["firstname"], delta_link=delta)


async def test_choice_columns_come_from_the_option_set_metadata(client: DynamicsClient) -> None:
    """Picklist, state, status and Two Options columns with the labels Dataverse shows."""
    account = await client.choice_columns("account")
    assert account["industrycode"].value("Consulting") == 7
    assert account["industrycode"].label(16) == "Financial"
    assert account["statecode"].options == {0: "Active", 1: "Inactive"}
    assert account["statuscode"].attribute_type == "Status"
    assert account["new_synctomkto"].value("No") is False
    lead = await client.choice_columns("lead")
    assert lead["statecode"].options == {0: "Open", 1: "Qualified", 2: "Disqualified"}
    assert lead["leadsourcecode"].label(8) == "Web"
    assert "firstname" not in lead
    with pytest.raises(ConfigurationError, match="no table with the logical name 'new_missing'"):
        await client.choice_columns("new_missing")
