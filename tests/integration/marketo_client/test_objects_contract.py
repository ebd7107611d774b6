"""Companies, opportunities, roles, sales persons and a custom object against the emulator,
through the one generic object implementation."""

from __future__ import annotations

import pytest

from emulators.marketo.runner import RunningMarketo
from shared.errors import ApiRequestError
from shared.marketo import MarketoClient

pytestmark = pytest.mark.integration


async def test_the_documented_sync_order_with_outcomes(client: MarketoClient) -> None:
    """Sales person → company → lead → opportunity → role (Adobe, "Marketo Sales Insight for
    Non-Native MS Dynamics Integrations"), each answered with seq, status and id or
    marketoGUID."""
    (person,) = await client.sales_persons.sync(
        [{"externalSalesPersonId": "u1", "email": "owner@example.com", "firstName": "O"}]
    )
    (company,) = await client.companies.sync(
        [{"externalCompanyId": "acc-1", "company": "Contoso", "externalSalesPersonId": "u1"}]
    )
    (lead,) = await client.leads.sync(
        [{"email": "buyer@example.com", "externalCompanyId": "acc-1"}]
    )
    (opportunity,) = await client.opportunities.sync(
        [{"externalOpportunityId": "opp-1", "name": "Deal", "externalCompanyId": "acc-1"}]
    )
    (role,) = await client.opportunity_roles.sync(
        [{"externalOpportunityId": "opp-1", "leadId": lead.marketo_id, "role": "Buyer"}]
    )
    assert person.status == company.status == opportunity.status == role.status == "created"
    assert person.seq == 0 and isinstance(person.marketo_id, int)
    assert isinstance(company.marketo_id, int)
    assert opportunity.marketo_guid and role.marketo_guid
    found = await client.opportunity_roles.query_by_keys(
        [{"externalOpportunityId": "opp-1", "leadId": lead.marketo_id, "role": "Buyer"}]
    )
    assert [r["marketoGUID"] for r in found] == [role.marketo_guid]


async def test_object_skips_1036_1013_1002(client: MarketoClient) -> None:
    """A key repeated in one request → 1036 for the repeat; a role whose opportunity is missing
    → 1013; an opportunity without a name → 1002; delete of a missing record → 1013."""
    companies = await client.companies.sync(
        [
            {"externalCompanyId": "dup", "company": "First"},
            {"externalCompanyId": "dup", "company": "Second"},
            {"externalCompanyId": "solo", "company": "Solo"},
        ]
    )
    assert [(o.status, o.reason_codes) for o in companies] == [
        ("created", ()),
        ("skipped", ("1036",)),
        ("created", ()),
    ]
    (lead,) = await client.leads.sync([{"email": "r@example.com"}])
    (role,) = await client.opportunity_roles.sync(
        [{"externalOpportunityId": "no-such-opp", "leadId": lead.marketo_id, "role": "X"}]
    )
    assert role.reason_codes == ("1013",)
    (nameless,) = await client.opportunities.sync([{"externalOpportunityId": "o-2"}])
    assert nameless.reason_codes == ("1002",)
    deleted = await client.companies.delete(
        [{"externalCompanyId": "solo"}, {"externalCompanyId": "never"}]
    )
    assert [(o.status, o.reason_codes) for o in deleted] == [
        ("deleted", ()),
        ("skipped", ("1013",)),
    ]


async def test_unknown_sales_person_fails_the_call_with_718(client: MarketoClient) -> None:
    """A response-level 718 is an ApiRequestError carrying the code."""
    with pytest.raises(ApiRequestError) as raised:
        await client.companies.sync(
            [{"externalCompanyId": "c", "company": "C", "externalSalesPersonId": "nobody"}]
        )
    assert raised.value.code == "718"


async def test_native_crm_sync_makes_standard_objects_read_only(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """With a native CRM sync on, company writes are skipped with 1018 "CRM Enabled"."""
    mkto.control.set_native_crm_sync(True)
    (outcome,) = await client.companies.sync([{"externalCompanyId": "c", "company": "C"}])
    assert outcome.status == "skipped" and outcome.reason_codes == ("1018",)


async def test_custom_object_sync_query_delete_describe(client: MarketoClient) -> None:
    """customobjects/project_c through the same implementation: describe names the dedupe
    field; sync, query and delete by it."""
    project = client.custom_object("project_c")
    described = await project.describe()
    assert described.dedupe_fields == ["dynamicsProjectId"]
    assert {"projectName", "budget"} <= described.field_names()
    await client.companies.sync([{"externalCompanyId": "acc-9", "company": "Fabrikam"}])
    synced = await project.sync(
        [
            {"dynamicsProjectId": "p-1", "projectName": "Alpha", "externalCompanyId": "acc-9"},
            {"dynamicsProjectId": "p-2", "projectName": "Beta", "externalCompanyId": "missing"},
        ]
    )
    assert [(o.status, o.reason_codes) for o in synced] == [
        ("created", ()),
        ("skipped", ("1013",)),
    ]
    found = await project.query("dynamicsProjectId", ["p-1"], fields=["projectName"])
    assert [f["projectName"] for f in found] == ["Alpha"]
    (deleted,) = await project.delete([{"dynamicsProjectId": "p-1"}])
    assert deleted.status == "deleted" and deleted.marketo_guid == synced[0].marketo_guid
