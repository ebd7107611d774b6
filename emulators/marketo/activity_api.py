"""``/rest/v1/activities/*``: the change feed (reference B.5, activities.md, paging-tokens.md).

Each call scans at most ``batchSize`` activities of *every* type from the token's position and
returns those that pass its filter, so a page can hold fewer items than the batch size while
``moreResult`` is true (activities.md: "In some cases, this API may respond with fewer than 300
activity items, but also have the moreResult attribute set to true"). ``nextPageToken`` is always
returned and points just past the scanned window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulators.marketo import paging
from emulators.marketo.call import Call
from emulators.marketo.envelope import ApiError, blank, invalid, success_body
from emulators.marketo.fields import parse_datetime
from emulators.marketo.instance import (
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    NEW_LEAD,
    VISIT_WEBPAGE,
)
from emulators.marketo.store import Record

ACTIVITY_TYPES: list[dict[str, Any]] = [
    {
        "id": VISIT_WEBPAGE,
        "name": "Visit Webpage",
        "description": "User visits a web page",
        "primaryAttribute": {"name": "Webpage ID", "dataType": "integer"},
        "attributes": [
            {"name": "Client IP Address", "dataType": "string"},
            {"name": "Query Parameters", "dataType": "string"},
            {"name": "Referrer URL", "dataType": "string"},
            {"name": "User Agent", "dataType": "string"},
            {"name": "Webpage URL", "dataType": "string"},
        ],
    },
    {
        "id": NEW_LEAD,
        "name": "New Lead",
        "description": "New person/record is added to the lead database",
        "primaryAttribute": {"name": "Lead ID", "dataType": "integer"},
        "attributes": [
            {"name": "Created Date", "dataType": "date"},
            {"name": "Source Type", "dataType": "string"},
            {"name": "api method name", "dataType": "string"},
            {"name": "modifying user", "dataType": "string"},
            {"name": "request id", "dataType": "string"},
        ],
    },
    {
        "id": CHANGE_DATA_VALUE,
        "name": "Change Data Value",
        "description": "Changed attribute value for a person",
        "primaryAttribute": {"name": "Attribute Name", "dataType": "integer"},
        "attributes": [
            {"name": "New Value", "dataType": "string"},
            {"name": "Old Value", "dataType": "string"},
            {"name": "Reason", "dataType": "string"},
            {"name": "Source", "dataType": "string"},
            {"name": "Lead ID", "dataType": "integer"},
            {"name": "api method name", "dataType": "string"},
            {"name": "modifying user", "dataType": "string"},
            {"name": "request id", "dataType": "string"},
        ],
    },
    {
        "id": DELETE_LEAD,
        "name": "Delete Lead",
        "description": "Delete lead from the lead database",
        "primaryAttribute": {"name": "Lead ID", "dataType": "integer"},
        "attributes": [{"name": "Remove from CRM", "dataType": "boolean"}],
    },
]
_KNOWN_TYPES = {t["id"] for t in ACTIVITY_TYPES}
MAX_LEAD_IDS = 30
MAX_ACTIVITY_TYPE_IDS = 10


def paging_token(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/activities/pagingtoken.json?sinceDatetime=``."""
    raw = call.param("sinceDatetime")
    if not raw:
        raise blank("sinceDatetime")
    since = parse_datetime(raw)
    if since is None:
        raise ApiError("704", "Invalid date format")
    return success_body(
        call.request_id, None, nextPageToken=paging.encode("d", int(since.timestamp() * 1000))
    )


def activity_types(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/activities/types.json``."""
    return success_body(call.request_id, ACTIVITY_TYPES)


def _start_position(call: Call) -> int:
    token = call.param("nextPageToken")
    if not token:
        raise blank("nextPageToken")
    kind, value = paging.decode(token, "da")
    if kind == "d":
        return call.instance.activities.position_at(value / 1000.0)
    return value


def _lead_filter(call: Call) -> set[int] | None:
    if call.param("listId"):
        raise ApiError("1013", "Static list not found")
    raw = call.param_list("leadIds")
    if not raw:
        return None
    if len(raw) > MAX_LEAD_IDS:
        raise invalid(f"Invalid leadIds: at most {MAX_LEAD_IDS} ids")
    try:
        return {int(value) for value in raw}
    except ValueError:
        raise invalid("Invalid leadIds: ids must be integers") from None


def _scan(call: Call, keep: Callable[[Record], Record | None]) -> dict[str, Any]:
    start = _start_position(call)
    batch_size = call.int_param("batchSize", 300)
    lead_ids = _lead_filter(call)
    log = call.instance.activities
    result: list[Record] = []
    for _, activity in log.slice(start, batch_size):
        if lead_ids is not None and activity["leadId"] not in lead_ids:
            continue
        shown = keep(activity)
        if shown is not None:
            result.append(shown)
    next_position = max(start, min(len(log), start + batch_size))
    return success_body(
        call.request_id,
        result,
        nextPageToken=paging.encode("a", next_position),
        moreResult=next_position < len(log),
    )


def lead_changes(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/activities/leadchanges.json``: New Lead (12) and Change Data Value (13)
    activities; ``fields`` (required) limits which field changes are returned."""
    requested = call.param_list("fields")
    if not requested:
        raise blank("fields")
    schema = call.instance.lead_schema
    unknown = [name for name in requested if schema.get(name) is None]
    if unknown:
        raise invalid(f"Invalid fields [{', '.join(unknown)}]")
    wanted = {name.lower() for name in requested}

    def keep(activity: Record) -> Record | None:
        type_id = activity["activityTypeId"]
        if type_id == NEW_LEAD:
            return _change_view(activity, [])
        if type_id != CHANGE_DATA_VALUE:
            return None
        changes = [f for f in activity.get("fields", ()) if f["name"].lower() in wanted]
        return _change_view(activity, changes) if changes else None

    return _scan(call, keep)


def _change_view(activity: Record, fields: list[dict[str, Any]]) -> Record:
    return {
        "id": activity["id"],
        "marketoGUID": activity["marketoGUID"],
        "leadId": activity["leadId"],
        "activityDate": activity["activityDate"],
        "activityTypeId": activity["activityTypeId"],
        "fields": fields,
        "attributes": activity["attributes"],
    }


def deleted_leads(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/activities/deletedleads.json``: Delete Lead (37) activities."""

    def keep(activity: Record) -> Record | None:
        if activity["activityTypeId"] != DELETE_LEAD:
            return None
        return _activity_view(activity)

    return _scan(call, keep)


def lead_activities(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/activities.json?activityTypeIds=`` (at most 10 types)."""
    raw = call.param_list("activityTypeIds")
    if not raw:
        raise blank("activityTypeIds")
    if len(raw) > MAX_ACTIVITY_TYPE_IDS:
        raise invalid(f"Invalid activityTypeIds: at most {MAX_ACTIVITY_TYPE_IDS} types")
    try:
        types = {int(value) for value in raw}
    except ValueError:
        raise invalid("Invalid activityTypeIds: ids must be integers") from None
    unknown = types - _KNOWN_TYPES
    if unknown:
        raise invalid(f"Invalid activityTypeIds {sorted(unknown)}")

    def keep(activity: Record) -> Record | None:
        if activity["activityTypeId"] not in types:
            return None
        return _activity_view(activity)

    return _scan(call, keep)


def _activity_view(activity: Record) -> Record:
    view: Record = {
        "id": activity["id"],
        "marketoGUID": activity["marketoGUID"],
        "leadId": activity["leadId"],
        "activityDate": activity["activityDate"],
        "activityTypeId": activity["activityTypeId"],
    }
    if activity.get("primaryAttributeValueId") is not None:
        view["primaryAttributeValueId"] = activity["primaryAttributeValueId"]
    if activity.get("primaryAttributeValue") is not None:
        view["primaryAttributeValue"] = activity["primaryAttributeValue"]
    attributes = list(activity["attributes"])
    if activity["activityTypeId"] == CHANGE_DATA_VALUE:
        change = activity["fields"][0]
        attributes = [
            {"name": "New Value", "value": change["newValue"]},
            {"name": "Old Value", "value": change["oldValue"]},
            *attributes,
        ]
    view["attributes"] = attributes
    return view
