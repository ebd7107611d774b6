"""Who we are and which environment we talk to: the signals behind sandbox-refresh detection.

Reference §5: ``WhoAmI`` gives the user, business unit and organization ids; the single
``organizations`` row gives the organization's id, name, creation time and how many days change
tracking keeps deletes; ``RetrieveCurrentOrganization`` gives the environment's platform ids. An
environment copy keeps record GUIDs but may change some of these, so the caller compares several.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.dynamics.models import OrganizationDetail, OrganizationInfo, WhoAmI
from shared.dynamics.transport import DataverseTransport, decode_json
from shared.errors import ApiRequestError


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _required(body: dict[str, Any], name: str, action: str) -> str:
    value = _text(body.get(name))
    if value is None:
        raise ApiRequestError(f"Dataverse {action} returned no {name}", system="dynamics")
    return value


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


async def _get(transport: DataverseTransport, resource: str, action: str, **query: str) -> Any:
    response = await transport.send("GET", transport.url(resource, query or None), action=action)
    return decode_json(response, action)


async def whoami(transport: DataverseTransport) -> WhoAmI:
    """``GET WhoAmI``: the application user, its business unit and the organization."""
    body = await _get(transport, "WhoAmI", "WhoAmI")
    if not isinstance(body, dict):
        raise ApiRequestError("Dataverse WhoAmI returned no object", system="dynamics")
    return WhoAmI(
        user_id=_required(body, "UserId", "WhoAmI"),
        business_unit_id=_required(body, "BusinessUnitId", "WhoAmI"),
        organization_id=_required(body, "OrganizationId", "WhoAmI"),
    )


async def organization(transport: DataverseTransport) -> OrganizationInfo:
    """The ``organizations`` row (there is exactly one)."""
    action = "organization read"
    body = await _get(
        transport,
        "organizations",
        action,
        **{"$select": "organizationid,name,expirechangetrackingindays,createdon"},
    )
    rows = body.get("value") if isinstance(body, dict) else None
    if not rows or not isinstance(rows[0], dict):
        raise ApiRequestError("Dataverse returned no organizations row", system="dynamics")
    row = rows[0]
    days = row.get("expirechangetrackingindays")
    return OrganizationInfo(
        organization_id=_required(row, "organizationid", action),
        name=_text(row.get("name")),
        expire_change_tracking_in_days=days if isinstance(days, int) else None,
        created_on=_datetime(row.get("createdon")),
    )


async def current_organization(transport: DataverseTransport) -> OrganizationDetail:
    """``RetrieveCurrentOrganization``: environment id, unique name, tenant and version."""
    action = "RetrieveCurrentOrganization"
    body = await _get(
        transport,
        "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')",
        action,
    )
    detail = body.get("Detail") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        raise ApiRequestError(f"Dataverse {action} returned no Detail", system="dynamics")
    return OrganizationDetail(
        organization_id=_required(detail, "OrganizationId", action),
        friendly_name=_text(detail.get("FriendlyName")),
        unique_name=_text(detail.get("UniqueName")),
        url_name=_text(detail.get("UrlName")),
        environment_id=_text(detail.get("EnvironmentId")),
        tenant_id=_text(detail.get("TenantId")),
        version=_text(detail.get("OrganizationVersion")),
        raw=detail,
    )
