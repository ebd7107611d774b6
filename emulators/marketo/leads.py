"""Lead writes: validation, matching and the change activities they leave (reference B.4).

Shared by Sync Leads, Bulk Import and the control API. A write is planned (fields validated,
matches found, outcome decided) and then applied; the two steps are separate so that a Sync Leads
call can spend time between them, as the real service does (leads.md: closely timed upserts of
one key "may result" in duplicates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from emulators.marketo.fields import FieldDef, FieldValueError, coerce, lookup_key
from emulators.marketo.instance import CHANGE_DATA_VALUE, DELETE_LEAD, NEW_LEAD, Instance
from emulators.marketo.schema import COMPANY_FIELD_NAMES, LeadSchema
from emulators.marketo.store import Record

Action = Literal["createOrUpdate", "createOnly", "updateOnly", "createDuplicate"]
ACTIONS: tuple[Action, ...] = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
SYSTEM_LEAD_FIELDS = frozenset({"id", "createdAt", "updatedAt"})


@dataclass(frozen=True)
class Origin:
    """Who changed a lead, as the activity attributes record it."""

    source: str
    reason: str
    api_method: str | None
    user: str
    request_id: str | None

    def attributes(self, lead_id: int) -> list[dict[str, Any]]:
        """Attributes of a Change Data Value activity (activities.md example, plus the API
        method, modifying user and request id Marketo adds for API writes)."""
        attrs: list[dict[str, Any]] = [
            {"name": "Reason", "value": self.reason},
            {"name": "Source", "value": self.source},
            {"name": "Lead ID", "value": lead_id},
        ]
        return attrs + self._api_attributes()

    def new_lead_attributes(self, created_date: str) -> list[dict[str, Any]]:
        """Attributes of a New Lead activity."""
        attrs: list[dict[str, Any]] = [
            {"name": "Created Date", "value": created_date},
            {"name": "Source Type", "value": self.source},
        ]
        return attrs + self._api_attributes()

    @cached_property
    def _api_tail(self) -> list[dict[str, Any]]:
        return self._build_api_attributes()

    def _api_attributes(self) -> list[dict[str, Any]]:
        return list(self._api_tail)

    def _build_api_attributes(self) -> list[dict[str, Any]]:
        attrs: list[dict[str, Any]] = []
        if self.api_method:
            attrs.append({"name": "api method name", "value": self.api_method})
        attrs.append({"name": "modifying user", "value": self.user})
        if self.request_id:
            attrs.append({"name": "request id", "value": self.request_id})
        return attrs


def api_origin(api_method: str, user: str, request_id: str) -> Origin:
    """A change made through the REST API."""
    return Origin("Web service API", "Web service API", api_method, user, request_id)


class RecordSkip(Exception):
    """A record that cannot be written: becomes a ``skipped`` result item."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize(
    schema: LeadSchema,
    record: Any,
    *,
    allow_id: bool,
    allow_system: bool = False,
) -> dict[str, Any]:
    """Validated, canonically named values of one input record.

    Raises:
        RecordSkip: 1003 (not an object; ``id`` outside updateOnly; a read-only field),
            1006 (unknown field), 1001 (type mismatch or too long).
    """
    if not isinstance(record, dict):
        raise RecordSkip("1003", "Invalid data: each input item must be an object")
    values: dict[str, Any] = {}
    for key, raw in record.items():
        field = schema.get(str(key))
        if field is None:
            raise RecordSkip("1006", f"Field '{key}' not found")
        if field.name == "id":
            if not allow_id:
                raise RecordSkip(
                    "1003", "Invalid data: 'id' can only be used with action updateOnly"
                )
        elif not field.updateable and not allow_system:
            raise RecordSkip("1003", f"Invalid data: field '{field.name}' is read-only")
        try:
            values[field.name] = coerce(field, raw)
        except FieldValueError as exc:
            raise RecordSkip(exc.code, exc.message) from None
    return values


@dataclass
class PlannedWrite:
    """The outcome decided for one input record."""

    position: int
    lead_id: int | None = None
    create: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    skip: RecordSkip | None = None


@dataclass
class LeadWritePlan:
    """Every record of one request, planned in input order."""

    writes: list[PlannedWrite]
    partition_id: int


def plan_writes(
    instance: Instance,
    records: Iterable[Any],
    *,
    action: Action,
    lookup: FieldDef,
    partition_id: int,
) -> LeadWritePlan:
    """Decide create/update/skip for each record, in order, as if applied one after another."""
    leads = instance.leads
    schema = instance.lead_schema
    pending: dict[Any, list[int]] = {}  # lookup key -> ids created earlier in this request
    created_values: dict[int, dict[str, Any]] = {}
    writes: list[PlannedWrite] = []
    for position, raw in enumerate(records):
        planned = PlannedWrite(position)
        writes.append(planned)
        try:
            values = normalize(schema, raw, allow_id=action == "updateOnly")
            if lookup.name == "id" and action != "updateOnly":
                raise RecordSkip(
                    "1003", "Invalid data: lookupField 'id' can only be used with updateOnly"
                )
            planned.values = values
            key_value = values.get(lookup.name)
            if action == "createDuplicate":
                matches: list[int] = []
            elif key_value is None:
                if action == "updateOnly":
                    raise RecordSkip(
                        "1002", f"Missing value for the required parameter '{lookup.name}'"
                    )
                matches = []
            else:
                key = lookup_key(lookup, key_value)
                matches = sorted(set(leads.find(lookup, key_value)) | set(pending.get(key, [])))
            if action == "createOnly" and matches:
                raise RecordSkip("1005", "Lead already exists")
            if action == "updateOnly" and not matches:
                raise RecordSkip("1004", "Lead not found")
            if len(matches) > 1:
                raise RecordSkip("1007", "Multiple leads match the lookup criteria")
            current = (
                (leads.records.get(matches[0]) or created_values.get(matches[0], {}))
                if matches
                else {}
            )
            _refuse_company_update(instance, values, current)
            if matches:
                planned.lead_id = matches[0]
            else:
                planned.create = True
                planned.lead_id = leads.new_id()
                created_values[planned.lead_id] = values
                if key_value is not None:
                    pending.setdefault(lookup_key(lookup, key_value), []).append(planned.lead_id)
        except RecordSkip as skip:
            planned.skip = skip
            planned.lead_id = None
    return LeadWritePlan(writes, partition_id)


def _refuse_company_update(
    instance: Instance, values: dict[str, Any], current: dict[str, Any]
) -> None:
    """1021: a lead linked to a company record takes its company fields from that record
    (leads.md: "Updating Company fields using Sync Leads endpoint is not supported")."""
    if not COMPANY_FIELD_NAMES.intersection(values):
        return
    external_id = values.get("externalCompanyId", current.get("externalCompanyId"))
    if external_id is not None and instance.company_of({"externalCompanyId": external_id}):
        raise RecordSkip("1021", "Company update not allowed")


def apply_writes(instance: Instance, plan: LeadWritePlan, origin: Origin) -> list[dict[str, Any]]:
    """Carry out a plan; one result item per input record, in input order."""
    results: list[dict[str, Any]] = []
    for planned in plan.writes:
        if planned.skip is not None:
            results.append(_skipped(planned.skip))
            continue
        assert planned.lead_id is not None
        if planned.create:
            create_lead(instance, planned.lead_id, planned.values, plan.partition_id, origin)
            results.append({"id": planned.lead_id, "status": "created"})
        elif planned.lead_id not in instance.leads.records:
            results.append(_skipped(RecordSkip("1004", "Lead not found")))
        else:
            update_lead(instance, planned.lead_id, planned.values, origin)
            results.append({"id": planned.lead_id, "status": "updated"})
    return results


def _skipped(skip: RecordSkip) -> dict[str, Any]:
    return {"status": "skipped", "reasons": [{"code": skip.code, "message": skip.message}]}


def create_lead(
    instance: Instance,
    lead_id: int,
    values: dict[str, Any],
    partition_id: int,
    origin: Origin | None,
) -> Record:
    """Store a new lead and log its New Lead activity (``origin=None``: no activity)."""
    now = instance.now_iso()
    record: Record = {k: v for k, v in values.items() if v is not None and k != "id"}
    record.setdefault("createdAt", now)
    record.setdefault("updatedAt", now)
    record.setdefault("leadPartitionId", partition_id)
    record["id"] = lead_id
    instance.leads.insert(record)
    if origin is not None:
        instance.record_activity(
            lead_id,
            NEW_LEAD,
            primary_id=lead_id,
            attributes=origin.new_lead_attributes(now[:10]),
            fields=[],
        )
    return record


def update_lead(
    instance: Instance, lead_id: int, values: dict[str, Any], origin: Origin | None
) -> list[str]:
    """Apply changed values; one Change Data Value activity per changed field.

    A write that changes nothing leaves ``updatedAt`` and the activity log alone.
    Returns the names of the fields that changed.
    """
    leads = instance.leads
    record = leads.records[lead_id]
    changed: list[str] = []
    attributes = origin.attributes(lead_id) if origin is not None else []
    for name, value in values.items():
        if name in SYSTEM_LEAD_FIELDS:
            continue
        old = record.get(name)
        if old == value and type(old) is type(value):
            continue
        leads.set_value(lead_id, name, value)
        changed.append(name)
        if origin is not None:
            field = instance.lead_schema.get(name)
            assert field is not None
            instance.record_activity(
                lead_id,
                CHANGE_DATA_VALUE,
                primary_id=field.id,
                primary_value=field.display_name,
                attributes=attributes,
                fields=[
                    {
                        "id": field.id,
                        "name": field.name,
                        "newValue": activity_value(value),
                        "oldValue": activity_value(old),
                    }
                ],
            )
    if changed:
        record["updatedAt"] = instance.now_iso()
    return changed


def activity_value(value: Any) -> str | None:
    """How a Change Data Value activity shows a value: as text (``"true"`` for booleans)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def delete_lead(instance: Instance, lead_id: int, origin: Origin | None) -> bool:
    """Remove a lead and its opportunity roles; log a Delete Lead activity (type 37)."""
    record = instance.leads.delete(lead_id)
    if record is None:
        return False
    roles = instance.roles
    lead_field = roles.type.get("leadId")
    assert lead_field is not None
    for key in roles.find(lead_field, lead_id):
        roles.delete(key)
    if origin is not None:
        name = " ".join(str(record[part]) for part in ("firstName", "lastName") if record.get(part))
        instance.record_activity(
            lead_id,
            DELETE_LEAD,
            primary_id=lead_id,
            primary_value=name or record.get("email") or str(lead_id),
            attributes=[],
        )
    return True


def render_lead(instance: Instance, lead: Record, names: Iterable[str]) -> dict[str, Any]:
    """The requested fields of a lead, nulls included (leads.md: a requested field that is not
    returned "is implied to be null"; returning it as null says the same)."""
    view = instance.lead_view(lead)
    return {name: view.get(name) for name in names}
