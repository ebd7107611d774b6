"""Functions: ``WhoAmI``, ``RetrieveCurrentOrganization`` and the service document (§5)."""

from __future__ import annotations

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import bad_request
from emulators.dynamics.protocol import ApiRequest, ApiResponse, ResourcePath


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
    for name in ("EntityDefinitions", "GlobalOptionSetDefinitions", "RelationshipDefinitions"):
        value.append({"name": name, "kind": "EntitySet", "url": name})
    return ApiResponse.json(200, {"@odata.context": f"{req.api_root}/$metadata", "value": value})
