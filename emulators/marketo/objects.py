"""Companies, opportunities, opportunity roles, sales persons and custom objects (reference B.6).

They share one pattern (companies.md, opportunities.md, opportunity-roles.md, sales-persons.md,
custom-objects.md): ``POST /rest/v1/<path>.json`` with ``action`` and ``dedupeBy``,
``POST /rest/v1/<path>/delete.json`` with ``deleteBy``, ``GET /rest/v1/<path>.json`` with
``filterType``/``filterValues`` (or a POST ``_method=GET`` with compound keys) and
``GET /rest/v1/<path>/describe.json``. Every result item carries ``seq``, its input position.
"""

from __future__ import annotations

from typing import Any

from emulators.marketo import paging
from emulators.marketo.call import Call
from emulators.marketo.envelope import ApiError, blank, invalid, success_body
from emulators.marketo.fields import FieldDef, FieldValueError, coerce, lookup_key
from emulators.marketo.instance import Instance
from emulators.marketo.schema import ObjectType
from emulators.marketo.store import ObjectStore, Record

OBJECT_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly")
MAX_FILTER_VALUES = 300


class Skip(Exception):
    """One record skipped with a reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _skipped(seq: int, skip: Skip) -> dict[str, Any]:
    return {
        "seq": seq,
        "status": "skipped",
        "reasons": [{"code": skip.code, "message": skip.message}],
    }


def object_type_of(call: Call) -> tuple[ObjectType, ObjectStore]:
    """The object type a route serves (custom objects by their ``apiName``).

    Raises:
        ApiError: 610 for an unknown custom object.
    """
    path = call.path_params.get("object_path")
    if path is None:
        path = f"customobjects/{call.path_params['api_name']}"
    store = call.instance.objects.get(str(path))
    if store is None:
        raise ApiError("610")
    return store.type, store


def normalize_object(object_type: ObjectType, raw: Any, *, allow_id: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Skip("1003", "Invalid data: each input item must be an object")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = object_type.get(str(key))
        if field is None:
            raise Skip("1006", f"Field '{key}' not found")
        if field.name == object_type.id_field:
            if not allow_id:
                raise Skip(
                    "1003",
                    f"Invalid data: '{field.name}' can only be used with dedupeBy idField",
                )
        elif field.name in ("createdAt", "updatedAt"):
            raise Skip("1003", f"Invalid data: field '{field.name}' is read-only")
        try:
            values[field.name] = coerce(field, value)
        except FieldValueError as exc:
            raise Skip(exc.code, exc.message) from None
    guid = values.get("marketoGUID")
    if isinstance(guid, str):
        values["marketoGUID"] = guid.lower()  # issued in lower case; accept any case back
    return values


def _missing(name: str) -> Skip:
    return Skip("1002", f"Missing value for the required parameter '{name}'")


def _check_parents(instance: Instance, object_type: ObjectType, values: dict[str, Any]) -> None:
    # opportunity-roles.md: "Both the opportunity and lead ... must exist in the destination
    # instance, for record creation to succeed"; custom objects link the same way.
    for link in object_type.parents:
        value = values.get(link.field)
        if value is None:
            continue
        if link.parent == "lead":
            if int(value) not in instance.leads.records:
                raise Skip("1004", f"Lead not found: {link.field} '{value}'")
        elif link.parent == "opportunity":
            if instance.opportunities.by_dedupe((lookup_key(_STRING, value),)) is None:
                raise Skip("1013", f"Opportunity not found: {link.field} '{value}'")
        elif instance.companies.by_dedupe((lookup_key(_STRING, value),)) is None:
            raise Skip("1013", f"Company not found: {link.field} '{value}'")


_STRING = FieldDef(0, "key", "key", "string")


def _check_sales_persons(instance: Instance, object_type: ObjectType, records: list[Any]) -> None:
    """718 for the whole call when a record names an unknown sales person (error-codes.md:
    "A Sync Opportunities call was made with a non-existent ExternalSalesPersonID value")."""
    if not object_type.checks_sales_person:
        return
    for raw in records:
        if not isinstance(raw, dict):
            continue
        for key, value in raw.items():
            if (
                str(key).lower() == "externalsalespersonid"
                and value not in (None, "")
                and instance.sales_persons.by_dedupe((lookup_key(_STRING, str(value)),)) is None
            ):
                raise ApiError("718")


def sync_objects(call: Call) -> dict[str, Any]:
    """``POST /rest/v1/<path>.json``: create/update up to 300 records."""
    object_type, store = object_type_of(call)
    instance = call.instance
    body = call.json()
    action = body.get("action") or "createOrUpdate"
    if action not in OBJECT_ACTIONS:
        raise invalid(f"Invalid action '{action}'")
    dedupe_by = body.get("dedupeBy") or "dedupeFields"
    if dedupe_by not in ("dedupeFields", "idField"):
        raise invalid(f"Invalid dedupeBy '{dedupe_by}'")
    if dedupe_by == "idField" and action != "updateOnly":
        raise invalid("dedupeBy idField is only valid with action updateOnly")
    records = call.input_list()
    if instance.native_crm_sync and object_type.crm_managed:
        refused = Skip("1018", "CRM Enabled")
        return success_body(call.request_id, [_skipped(i, refused) for i in range(len(records))])
    _check_sales_persons(instance, object_type, records)
    seen: set[Any] = set()
    results = []
    for seq, raw in enumerate(records):
        try:
            results.append(
                _sync_one(instance, object_type, store, raw, seq, action, dedupe_by, seen)
            )
        except Skip as skip:
            results.append(_skipped(seq, skip))
    return success_body(call.request_id, results)


def _sync_one(
    instance: Instance,
    object_type: ObjectType,
    store: ObjectStore,
    raw: Any,
    seq: int,
    action: str,
    dedupe_by: str,
    seen: set[Any],
) -> dict[str, Any]:
    values = normalize_object(object_type, raw, allow_id=dedupe_by == "idField")
    if dedupe_by == "idField":
        key_value = values.get(object_type.id_field)
        if key_value is None:
            raise _missing(object_type.id_field)
        seen_key: Any = ("id", key_value)
        existing = key_value if key_value in store.records else None
    else:
        for name in object_type.dedupe_fields:
            if values.get(name) is None:
                raise _missing(name)
        dedupe_key = store.dedupe_key(values)
        seen_key = dedupe_key
        existing = store.by_dedupe(dedupe_key) if dedupe_key is not None else None
    # error-codes.md 1036: "the same externalCompanyId for more than one company".
    if seen_key in seen:
        raise Skip("1036", "Duplicate object found in input")
    seen.add(seen_key)
    if action == "createOnly" and existing is not None:
        raise Skip("1005", f"{object_type.display_name} already exists")
    if action == "updateOnly" and existing is None:
        raise Skip("1004", f"{object_type.display_name} not found")
    _check_parents(instance, object_type, values)
    if existing is None:
        for name in object_type.required:
            if values.get(name) is None:
                raise _missing(name)
        key = store.new_key()
        now = instance.now_iso()
        record: Record = {k: v for k, v in values.items() if v is not None}
        record[object_type.id_field] = key
        record["createdAt"] = now
        record["updatedAt"] = now
        store.insert(record)
        return {"seq": seq, "status": "created", object_type.id_field: key}
    current = store.records[existing]
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == object_type.id_field:
            continue
        field = object_type.get(name)
        assert field is not None
        old = current.get(name)
        same = (
            old is not None
            and value is not None
            and lookup_key(field, old) == lookup_key(field, value)
        ) or (old is None and value is None)
        if same:
            continue
        if not field.updateable:
            raise Skip("1003", f"Invalid data: field '{name}' is not updateable")
        if name in object_type.required and value is None:
            raise _missing(name)
        changes[name] = value
    for name, value in changes.items():
        store.set_value(existing, name, value)
    if changes:
        current["updatedAt"] = instance.now_iso()
    return {"seq": seq, "status": "updated", object_type.id_field: existing}


def delete_objects(call: Call) -> dict[str, Any]:
    """``POST /rest/v1/<path>/delete.json``; a missing record is skipped with 1013."""
    object_type, store = object_type_of(call)
    instance = call.instance
    body = call.json()
    delete_by = body.get("deleteBy") or "dedupeFields"
    if delete_by not in ("dedupeFields", "idField"):
        raise invalid(f"Invalid deleteBy '{delete_by}'")
    records = call.input_list()
    if instance.native_crm_sync and object_type.crm_managed:
        refused = Skip("1018", "CRM Enabled")
        return success_body(call.request_id, [_skipped(i, refused) for i in range(len(records))])
    results = []
    for seq, raw in enumerate(records):
        try:
            values = normalize_object(object_type, raw, allow_id=delete_by == "idField")
            key = _find_key(store, values, delete_by)
            if key is None:
                raise Skip("1013", "Record not found")
            if object_type.path == "salespersons" and _sales_person_in_use(
                instance, store.records[key]
            ):
                raise Skip("1022", "Object in use")
            _delete(instance, object_type, store, key)
            results.append({"seq": seq, object_type.id_field: key, "status": "deleted"})
        except Skip as skip:
            results.append(_skipped(seq, skip))
    return success_body(call.request_id, results)


def _find_key(store: ObjectStore, values: dict[str, Any], by: str) -> Any | None:
    object_type = store.type
    if by == "idField":
        key = values.get(object_type.id_field)
        if key is None:
            raise _missing(object_type.id_field)
        return key if key in store.records else None
    for name in object_type.dedupe_fields:
        if values.get(name) is None:
            raise _missing(name)
    dedupe_key = store.dedupe_key(values)
    return None if dedupe_key is None else store.by_dedupe(dedupe_key)


def _sales_person_in_use(instance: Instance, sales_person: Record) -> bool:
    """sales-persons.md: deletion "is not allowed when in use", e.g. by active leads."""
    external_id = sales_person.get("externalSalesPersonId")
    if external_id is None:
        return False
    lead_field = instance.lead_schema.get("externalSalesPersonId")
    assert lead_field is not None
    if instance.leads.find(lead_field, external_id):
        return True
    for path in ("companies", "opportunities"):
        store = instance.objects[path]
        field = store.type.get("externalSalesPersonId")
        assert field is not None
        if store.find(field, external_id):
            return True
    return False


def _delete(instance: Instance, object_type: ObjectType, store: ObjectStore, key: Any) -> None:
    record = store.delete(key)
    if record is None or object_type.path != "opportunities":
        return
    # An opportunity's roles go with it (they cannot exist without their parent).
    roles = instance.roles
    field = roles.type.get("externalOpportunityId")
    assert field is not None
    for role_key in roles.find(field, record["externalOpportunityId"]):
        roles.delete(role_key)


def query_objects(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/<path>.json?filterType=&filterValues=`` or POST ``_method=GET`` with a
    JSON body (``filterType: dedupeFields`` and an ``input`` array of compound keys)."""
    object_type, store = object_type_of(call)
    body = call.json() if call.request.method == "POST" and call.is_json else {}
    filter_type = body.get("filterType") or call.param("filterType")
    if not filter_type:
        raise blank("filterType")
    raw_fields = body.get("fields") or call.param_list("fields")
    if isinstance(raw_fields, str):
        raw_fields = [part.strip() for part in raw_fields.split(",") if part.strip()]
    names = _resolve_fields(object_type, list(raw_fields))
    batch_size = call.int_param("batchSize", 300)
    keys = _matching_keys(call, object_type, store, str(filter_type), body)
    offset = 0
    token = body.get("nextPageToken") or call.param("nextPageToken")
    if token:
        _, offset = paging.decode(str(token), "o")
    page = keys[offset : offset + batch_size]
    result = []
    for seq, key in enumerate(page):
        record = store.records[key]
        shown = (
            {name: record.get(name) for name in names}
            if names is not None
            else {name: value for name, value in record.items()}
        )
        result.append({"seq": seq, **shown})
    extra: dict[str, Any] = {"moreResult": offset + batch_size < len(keys)}
    if extra["moreResult"]:
        extra["nextPageToken"] = paging.encode("o", offset + batch_size)
    return success_body(call.request_id, result, **extra)


def _resolve_fields(object_type: ObjectType, requested: list[Any]) -> list[str] | None:
    if not requested:
        return list(object_type.default_fields) if object_type.default_fields else None
    names: list[str] = []
    unknown: list[str] = []
    for raw in requested:
        field = object_type.get(str(raw))
        if field is None:
            unknown.append(str(raw))
        elif field.name not in names:
            names.append(field.name)
    if unknown:
        raise invalid(f"Invalid fields [{', '.join(unknown)}]")
    return names


def _matching_keys(
    call: Call, object_type: ObjectType, store: ObjectStore, filter_type: str, body: dict[str, Any]
) -> list[Any]:
    if (filter_type == "dedupeFields" and len(object_type.dedupe_fields) > 1) or body.get("input"):
        return _compound_matches(object_type, store, filter_type, body)
    if filter_type == "dedupeFields":
        field_name = object_type.dedupe_fields[0]
    elif filter_type == "idField":
        field_name = object_type.id_field
    else:
        field_name = filter_type
    field = object_type.get(field_name)
    if field is None:
        raise ApiError("1006", f"Field '{filter_type}' not found")
    if (field.name,) not in object_type.searchable_fields:
        raise ApiError("1011", f"Field '{filter_type}' not supported")
    raw_values = body.get("filterValues") or call.param_list("filterValues")
    if isinstance(raw_values, str):
        raw_values = [part.strip() for part in raw_values.split(",") if part.strip()]
    if not raw_values:
        raise blank("filterValues")
    if len(raw_values) > MAX_FILTER_VALUES:
        raise invalid(f"Invalid filterValues: at most {MAX_FILTER_VALUES} values")
    found: list[Any] = []
    seen: set[Any] = set()
    for raw in raw_values:
        try:
            value = coerce(field, raw)
        except FieldValueError:
            raise invalid(f"Invalid filterValues '{raw}' for filterType '{filter_type}'") from None
        if value is None:
            continue
        if field.name == "marketoGUID":
            value = str(value).lower()
        for key in store.find(field, value):
            if key not in seen:
                seen.add(key)
                found.append(key)
    return found


def _compound_matches(
    object_type: ObjectType, store: ObjectStore, filter_type: str, body: dict[str, Any]
) -> list[Any]:
    if filter_type != "dedupeFields":
        raise invalid("An input array of keys requires filterType dedupeFields")
    keys = body.get("input")
    if not isinstance(keys, list) or not keys:
        raise blank("input")
    if len(keys) > MAX_FILTER_VALUES:
        raise invalid(f"Invalid input: at most {MAX_FILTER_VALUES} keys")
    found: list[Any] = []
    for raw in keys:
        try:
            values = normalize_object(object_type, raw, allow_id=False)
        except Skip as skip:
            raise invalid(f"Invalid input: {skip.message}") from None
        dedupe_key = store.dedupe_key(values)
        if dedupe_key is None:
            missing = [n for n in object_type.dedupe_fields if values.get(n) is None]
            raise invalid(f"Invalid input: missing {', '.join(missing)}")
        key = store.by_dedupe(dedupe_key)
        if key is not None and key not in found:
            found.append(key)
    return found


def describe_object(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/<path>/describe.json``."""
    object_type, _ = object_type_of(call)
    return success_body(call.request_id, [describe_type(call.emulator.started_at, object_type)])


def describe_type(created_at: str, object_type: ObjectType) -> dict[str, Any]:
    """The describe document of one object type."""
    fields = []
    for f in object_type.fields:
        item: dict[str, Any] = {
            "name": f.name,
            "displayName": f.display_name,
            "dataType": f.data_type,
        }
        if f.length is not None:
            item["length"] = f.length
        item["updateable"] = f.updateable
        fields.append(item)
    described: dict[str, Any] = {
        "name": object_type.name,
        "displayName": object_type.display_name,
        "description": object_type.description,
        "createdAt": created_at,
        "updatedAt": created_at,
        "idField": object_type.id_field,
        "dedupeFields": list(object_type.dedupe_fields),
        "searchableFields": [list(group) for group in object_type.searchable_fields],
        "fields": fields,
    }
    if object_type.path.startswith("customobjects/"):
        described["relationships"] = list(object_type.relationships)
    return described


def list_custom_objects(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/customobjects.json[?names=]``."""
    wanted = {name.lower() for name in call.param_list("names")}
    result = []
    for path, object_type in call.instance.object_types.items():
        if not path.startswith("customobjects/"):
            continue
        if wanted and object_type.name.lower() not in wanted:
            continue
        described = describe_type(call.emulator.started_at, object_type)
        del described["fields"]
        result.append(described)
    return success_body(call.request_id, result)
