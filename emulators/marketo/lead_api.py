"""``/rest/v1/leads*`` and ``/rest/v1/lead/{id}.json`` (reference B.4, leads.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from emulators.marketo import paging
from emulators.marketo.call import Call
from emulators.marketo.envelope import ApiError, blank, invalid, success_body
from emulators.marketo.fields import FieldDef, FieldValueError, coerce
from emulators.marketo.leads import (
    ACTIONS,
    Action,
    api_origin,
    apply_writes,
    delete_lead,
    plan_writes,
    render_lead,
)
from emulators.marketo.schema import LEAD_DEFAULT_FIELDS, LeadSchema

MAX_FILTER_VALUES = 300
MAX_FILTER_MATCHES = 1000  # leads.md: more than 1,000 matches -> 1003


def describe(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/leads/describe.json``: every field with its REST and SOAP names."""
    result = []
    for f in call.instance.lead_schema.fields:
        item: dict[str, Any] = {"id": f.id, "displayName": f.display_name, "dataType": f.data_type}
        if f.length is not None:
            item["length"] = f.length
        read_only = not f.updateable
        item["rest"] = {"name": f.name, "readOnly": read_only}
        item["soap"] = {"name": f.name[:1].upper() + f.name[1:], "readOnly": read_only}
        result.append(item)
    return success_body(call.request_id, result)


def describe2(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/leads/describe2.json``: searchable fields and field metadata."""
    schema = call.instance.lead_schema
    fields = []
    for f in schema.fields:
        item: dict[str, Any] = {
            "name": f.name,
            "displayName": f.display_name,
            "dataType": f.data_type,
        }
        if f.length is not None:
            item["length"] = f.length
        item["updateable"] = f.updateable
        item["crmManaged"] = False
        fields.append(item)
    searchable = [[f.name] for f in schema.searchable]
    return success_body(
        call.request_id, [{"name": "API Lead", "searchableFields": searchable, "fields": fields}]
    )


def resolve_search_field(schema: LeadSchema, name: str | None, parameter: str) -> FieldDef:
    """The lead field named by ``lookupField``/``filterType``.

    Raises:
        ApiError: 701 when blank, 1006 when unknown, 1011 when not searchable.
    """
    if not name:
        raise blank(parameter)
    field = schema.get(name)
    if field is None:
        raise ApiError("1006", f"Field '{name}' not found")
    if not field.searchable or (field.name == "leadPartitionId" and parameter == "lookupField"):
        raise ApiError("1011", f"Field '{name}' not supported")
    return field


def resolve_fields(schema: LeadSchema, names: list[str], default: tuple[str, ...]) -> list[str]:
    """Canonical names of a ``fields`` parameter.

    Raises:
        ApiError: 1003 "Invalid fields [..]" naming every unknown field.
    """
    if not names:
        return list(default)
    resolved: list[str] = []
    unknown: list[str] = []
    for name in names:
        field = schema.get(name)
        if field is None:
            unknown.append(name)
        elif field.name not in resolved:
            resolved.append(field.name)
    if unknown:
        raise invalid(f"Invalid fields [{', '.join(unknown)}]")
    return resolved


async def sync_leads(call: Call) -> dict[str, Any]:
    """``POST /rest/v1/leads.json`` (Sync Leads): up to 300 records, results in input order."""
    instance = call.instance
    body = call.json()
    action = body.get("action") or "createOrUpdate"
    if action not in ACTIONS:
        raise invalid(f"Invalid action '{action}'")
    typed_action: Action = action
    lookup = resolve_search_field(
        instance.lead_schema, body.get("lookupField") or "email", "lookupField"
    )
    partition_id = 1
    partition_name = body.get("partitionName")
    if partition_name and action in ("createOnly", "createOrUpdate"):
        if partition_name not in instance.partitions:
            raise invalid(f"Invalid partitionName '{partition_name}'")
        partition_id = instance.partitions[partition_name]
    records = call.input_list()
    plan = plan_writes(
        instance, records, action=typed_action, lookup=lookup, partition_id=partition_id
    )
    # The time a real sync spends between matching and writing: overlapping upserts of one
    # key both create (leads.md). The gate makes that overlap deterministic in tests.
    await call.emulator.gate.passage("upsert", call.request.url.path)
    if instance.config.upsert_race_seconds > 0:
        await asyncio.sleep(instance.config.upsert_race_seconds)
    results = apply_writes(instance, plan, api_origin("syncLead", call.api_user, call.request_id))
    return success_body(call.request_id, results)


def get_leads(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/leads.json?filterType=&filterValues=`` (also POST ``_method=GET``)."""
    instance = call.instance
    schema = instance.lead_schema
    field = resolve_search_field(schema, call.param("filterType"), "filterType")
    raw_values = call.param_list("filterValues")
    if not raw_values:
        raise blank("filterValues")
    if len(raw_values) > MAX_FILTER_VALUES:
        raise invalid(
            f"Invalid filterValues: {len(raw_values)} values, the maximum is {MAX_FILTER_VALUES}"
        )
    names = resolve_fields(schema, call.param_list("fields"), LEAD_DEFAULT_FIELDS)
    batch_size = call.int_param("batchSize", 300)
    ids: set[int] = set()
    for raw in raw_values:
        try:
            value = coerce(field, raw)
        except FieldValueError:
            raise invalid(f"Invalid filterValues '{raw}' for filterType '{field.name}'") from None
        if value is not None:
            ids.update(instance.leads.find(field, value))
    if len(ids) > MAX_FILTER_MATCHES:
        raise invalid("Too many results match the filter")
    ordered = sorted(ids)
    offset = 0
    token = call.param("nextPageToken")
    if token:
        _, offset = paging.decode(token, "o")
    page = ordered[offset : offset + batch_size]
    leads = instance.leads.records
    result = [render_lead(instance, leads[lead_id], names) for lead_id in page]
    extra: dict[str, Any] = {}
    if offset + batch_size < len(ordered):
        extra["nextPageToken"] = paging.encode("o", offset + batch_size)
        extra["moreResult"] = True
    else:
        extra["moreResult"] = False
    return success_body(call.request_id, result, **extra)


def get_lead(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/lead/{id}.json``: the lead in the first position, or an empty result."""
    instance = call.instance
    names = resolve_fields(instance.lead_schema, call.param_list("fields"), LEAD_DEFAULT_FIELDS)
    lead = instance.leads.records.get(int(call.path_params["lead_id"]))
    return success_body(
        call.request_id, [] if lead is None else [render_lead(instance, lead, names)]
    )


def delete_leads(call: Call) -> dict[str, Any]:
    """``POST /rest/v1/leads/delete.json`` with ``{"input":[{"id":n}]}`` (at most 300)."""
    instance = call.instance
    origin = api_origin("deleteLeads", call.api_user, call.request_id)
    results: list[dict[str, Any]] = []
    for item in call.input_list():
        raw_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str):
            results.append(_skip("1003", "Invalid data: each input item needs an integer id"))
            continue
        try:
            lead_id = int(raw_id)
        except ValueError:
            results.append(_skip("1003", f"Invalid data: id '{raw_id}' is not an integer"))
            continue
        if delete_lead(instance, lead_id, origin):
            results.append({"id": lead_id, "status": "deleted"})
        else:
            results.append({"id": lead_id, **_skip("1004", "Lead not found")})
    return success_body(call.request_id, results)


def _skip(code: str, message: str) -> dict[str, Any]:
    return {"status": "skipped", "reasons": [{"code": code, "message": message}]}
