"""POST, PATCH (update and upsert) and DELETE on rows, with ``@odata.bind`` lookups, validation,
conditional headers and relationship cascades (reference §3).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from emulators.dynamics.clock import format_datetime
from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import (
    INVALID_OPERATION,
    ODataError,
    bad_request,
    concurrency_mismatch,
    duplicate_key,
    length_exceeded,
    not_found,
    option_out_of_range,
    payload_error,
    unknown_property,
    value_out_of_range,
)
from emulators.dynamics.protocol import (
    ApiRequest,
    ApiResponse,
    Preferences,
    format_key_literal,
    parse_key,
    parse_path,
)
from emulators.dynamics.query_options import parse_select, resolve_key
from emulators.dynamics.reads import context_url
from emulators.dynamics.schema import (
    CHOICE_TYPES,
    EDM_TYPES,
    AttrType,
    Column,
    OnDelete,
    Table,
)
from emulators.dynamics.serialize import AnnotationFilter, RowRenderer, etag
from emulators.dynamics.store import Record, TableData

BIND_SUFFIX = "@odata.bind"
DEFAULT_CURRENCY_ID = "d5f1c4a8-3b2e-4f6a-9c8d-7e1f2a3b4c5d"
API_MARKER = "/api/data/v9.2/"


class RowWriter:
    """Applies one write request to one table."""

    def __init__(self, env: Environment, req: ApiRequest, data: TableData) -> None:
        self.env = env
        self.req = req
        self.data = data
        self.table = data.table
        self.db = env.db

    # -- value conversion -----------------------------------------------------------------------

    def convert(self, column: Column, value: Any) -> Any:
        """A body value in stored form, or the Web API's validation/payload error."""
        if value is None:
            return None
        kind, logical = column.type, self.table.logical_name
        edm = EDM_TYPES[kind]
        if kind in (AttrType.STRING, AttrType.MEMO):
            if not isinstance(value, str):
                raise payload_error(logical, f"Cannot convert a value to target type '{edm}'.")
            if column.max_length is not None and len(value) > column.max_length:
                raise length_exceeded(column.name, logical, column.max_length)
            return value or None  # Dataverse stores an empty string as null
        if kind in (AttrType.INTEGER, AttrType.BIGINT) or kind in CHOICE_TYPES:
            if isinstance(value, bool) or not isinstance(value, int):
                raise payload_error(
                    logical, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
                )
            if kind in CHOICE_TYPES:
                if column.options is not None and value not in column.options:
                    raise option_out_of_range(column.name, logical, value)
                return value
            return self._in_range(column, value)
        if kind in (AttrType.MONEY, AttrType.DECIMAL, AttrType.DOUBLE):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise payload_error(
                    logical, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
                )
            return float(self._in_range(column, value))
        if kind is AttrType.BOOLEAN:
            if not isinstance(value, bool):
                raise payload_error(
                    logical, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
                )
            return value
        if kind is AttrType.DATETIME:
            return self._datetime(column, value)
        if kind is AttrType.UNIQUEIDENTIFIER:
            try:
                return str(uuid.UUID(str(value)))
            except ValueError:
                raise payload_error(
                    logical, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
                ) from None
        raise unknown_property(column.name, logical)

    def _in_range(self, column: Column, value: float) -> float:
        low = column.min_value if column.min_value is not None else float("-inf")
        high = column.max_value if column.max_value is not None else float("inf")
        if not low <= value <= high:
            raise value_out_of_range(column.name, self.table.logical_name, value, low, high)
        return value

    def _datetime(self, column: Column, value: Any) -> str:
        if not isinstance(value, str):
            raise payload_error(
                self.table.logical_name,
                f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.",
            )
        try:
            if len(value) == 10:
                instant = datetime.fromisoformat(value).replace(tzinfo=UTC)
            else:
                instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if instant.tzinfo is None:
                    instant = instant.replace(tzinfo=UTC)
        except ValueError:
            raise payload_error(
                self.table.logical_name,
                f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.",
            ) from None
        if column.date_only:
            return instant.astimezone(UTC).strftime("%Y-%m-%d")
        return format_datetime(instant)

    # -- lookups --------------------------------------------------------------------------------

    def resolve_reference(self, reference: Any, allowed: set[str] | None) -> tuple[str, str]:
        """``/accounts(<id>)``, ``accounts(<id>)``, an absolute URL, a key form or ``$n``."""
        if not isinstance(reference, str):
            raise bad_request("An @odata.bind value must be a string URL.")
        text = reference.strip()
        if text.startswith("$"):
            resolved = self.req.content_ids.get(text[1:])
            if resolved is None:
                raise bad_request(
                    f"Content-ID Reference: '{text}' does not exist in the batch context."
                )
            text = resolved
        if API_MARKER in text:
            text = text.split(API_MARKER, 1)[1]
        path = parse_path(unquote(text).lstrip("/"))
        target = self.db.by_set.get(path.name)
        if target is None or path.key is None or path.rest:
            raise bad_request(
                f"The @odata.bind value '{reference}' is not a valid entity reference."
            )
        logical = target.table.logical_name
        if allowed is not None and logical not in allowed:
            raise bad_request(
                f"The @odata.bind value '{reference}' refers to a '{logical}' record, which this "
                "navigation property cannot reference."
            )
        record_id = resolve_key(target, path.key)
        if record_id is None or record_id not in target.rows:
            raise not_found(logical, record_id or path.key)
        return logical, record_id

    # -- applying a body ------------------------------------------------------------------------

    def apply(self, record: Record, body: dict[str, Any], *, creating: bool) -> None:
        """Write the body's properties and binds into ``record``."""
        table = self.table
        for key, value in body.items():
            if key.startswith("@"):
                continue  # @odata.type and other instance annotations
            if key.endswith(BIND_SUFFIX):
                self._bind(record, key[: -len(BIND_SUFFIX)], value)
                continue
            if "@" in key:
                continue  # property annotations carry no data
            column = table.columns.get(key)
            if column is None or column.is_lookup:
                raise unknown_property(key, table.logical_name)
            if column.read_only:
                continue  # system columns (createdon, versionnumber, fullname) are not writable
            if key == table.primary_id and not creating:
                continue
            record.values[key] = self.convert(column, value)

    def _bind(self, record: Record, nav: str, value: Any) -> None:
        entry = self.table.bind_targets.get(nav)
        if entry is None:
            raise bad_request(
                f"An undeclared property '{nav}' which only has property annotations in the "
                "payload but no property value was found in the payload. In OData, only declared "
                "navigation properties and declared named streams can be represented as "
                "properties without values."
            )
        column, target = entry
        if column.read_only:
            raise bad_request(f"The navigation property '{nav}' cannot be set.")
        name = column.value_name
        if value is None:
            record.values[name] = None
            record.targets.pop(name, None)
            return
        allowed = {"systemuser", "team"} if target == "*" else {target}
        logical, record_id = self.resolve_reference(value, allowed)
        record.values[name] = record_id
        record.targets[name] = logical

    def _finish(self, record: Record) -> None:
        for name, sources in self.table.computed.items():
            parts = [record.values.get(s) for s in sources]
            record.values[name] = " ".join(p for p in parts if p) or None

    # -- operations -----------------------------------------------------------------------------

    def create(
        self,
        body: dict[str, Any],
        record_id: str | None = None,
        key_values: dict[str, Any] | None = None,
    ) -> tuple[str, Record]:
        """Insert a row (POST, or the create half of an upsert)."""
        table = self.table
        if not table.can_create:
            raise ODataError(
                405,
                INVALID_OPERATION,
                f"The 'Create' method does not support entities of type '{table.logical_name}'.",
            )
        now = format_datetime(self.env.clock.now())
        record = Record({}, {})
        for column in table.columns.values():
            if column.default is not None:
                record.values[column.name] = column.default
            elif column.type is AttrType.STATE:
                record.values[column.name] = 0
            elif column.type is AttrType.STATUS and column.options:
                record.values[column.name] = next(iter(column.options))
        self.apply(record, body, creating=True)
        for name, value in (key_values or {}).items():
            if body.get(name) is None:
                record.values[name] = self.convert(table.columns[name], value)
        body_id = record.values.get(table.primary_id)
        new_id = str(body_id or record_id or uuid.uuid4())
        if new_id in self.data.rows:
            raise duplicate_key("Cannot insert duplicate key.")
        record.values[table.primary_id] = new_id
        user = self.req.principal.user_id
        for name in ("createdby", "modifiedby"):
            if name in table.columns:
                record.values[f"_{name}_value"] = user
                record.targets[f"_{name}_value"] = "systemuser"
        if "ownerid" in table.columns and record.values.get("_ownerid_value") is None:
            record.values["_ownerid_value"] = user
            record.targets["_ownerid_value"] = "systemuser"
        if "transactioncurrencyid" in table.columns:
            record.values.setdefault("_transactioncurrencyid_value", DEFAULT_CURRENCY_ID)
            record.targets["_transactioncurrencyid_value"] = "transactioncurrency"
        record.values["createdon"] = now
        record.values["modifiedon"] = now
        self._finish(record)
        with self.db.transaction():
            self.db.write(self.data, new_id, record)
            if table.logical_name == "connection":
                self._create_reciprocal(new_id, record)
        return new_id, record

    def update(self, record_id: str, body: dict[str, Any]) -> Record:
        """Change a row (PATCH, or the update half of an upsert); key columns keep their values."""
        old = self.data.rows[record_id]
        record = old.copy()
        self.apply(record, body, creating=False)
        record.values[self.table.primary_id] = record_id
        record.values["modifiedon"] = format_datetime(self.env.clock.now())
        if "modifiedby" in self.table.columns:
            record.values["_modifiedby_value"] = self.req.principal.user_id
            record.targets["_modifiedby_value"] = "systemuser"
        self._finish(record)
        with self.db.transaction():
            self.db.write(self.data, record_id, record)
            if self.table.logical_name == "connection":
                self._mirror_reciprocal(record_id, record)
        return record

    def delete(self, record_id: str) -> None:
        """Delete a row and apply relationship cascades."""
        if not self.table.can_delete:
            raise ODataError(
                405,
                INVALID_OPERATION,
                "The 'Delete' method does not support entities of type "
                f"'{self.table.logical_name}'.",
            )
        with self.db.transaction():
            self._delete_cascading(self.data, record_id)

    def _delete_cascading(self, data: TableData, record_id: str) -> None:
        if record_id not in data.rows:
            return
        related = data.rows[record_id].values.get("_relatedconnectionid_value")
        self.db.remove(data, record_id)
        logical = data.table.logical_name
        if logical == "connection" and related:
            self._delete_cascading(data, related)
        # The reference index names every row whose lookup points at the deleted one.
        for child_table, child_id, name in sorted(self.db.references.get(record_id, ())):
            other = self.db.data[child_table]
            child_row = other.rows.get(child_id)
            column = other.table.by_value_name.get(name)
            if (
                child_row is None
                or column is None
                or column.read_only
                or column.type is AttrType.OWNER
                or child_row.values.get(name) != record_id
                or child_row.targets.get(name) != logical
            ):
                continue
            if column.on_delete is OnDelete.CASCADE:
                self._delete_cascading(other, child_id)
            else:
                child = child_row.copy()
                child.values[name] = None
                child.targets.pop(name, None)
                self.db.write(other, child_id, child)

    # -- connections: the platform keeps a reciprocal row per connection ----------------------

    def _connection_name(self, record: Record, end: str) -> str | None:
        target = record.targets.get(f"_{end}_value")
        record_id = record.values.get(f"_{end}_value")
        if not target or not record_id:
            return None
        data = self.db.data.get(target)
        row = data.rows.get(record_id) if data else None
        if data is None or row is None:
            return None
        name = row.values.get(data.table.primary_name)
        return name if isinstance(name, str) else None

    def _swapped(self, source: Record, reciprocal_id: str, master_id: str) -> Record:
        values = dict(source.values)
        targets = dict(source.targets)
        for a, b in (("record1id", "record2id"), ("record1roleid", "record2roleid")):
            va, vb = f"_{a}_value", f"_{b}_value"
            values[va], values[vb] = source.values.get(vb), source.values.get(va)
            ta, tb = source.targets.get(vb), source.targets.get(va)
            targets.pop(va, None)
            targets.pop(vb, None)
            if ta:
                targets[va] = ta
            if tb:
                targets[vb] = tb
        values["connectionid"] = reciprocal_id
        values["_relatedconnectionid_value"] = master_id
        targets["_relatedconnectionid_value"] = "connection"
        record = Record(values, targets)
        record.values["name"] = self._connection_name(record, "record2id")
        return record

    def _create_reciprocal(self, master_id: str, master: Record) -> None:
        reciprocal_id = str(uuid.uuid4())
        master.values["ismaster"] = True
        master.values["name"] = self._connection_name(master, "record2id")
        master.values["_relatedconnectionid_value"] = reciprocal_id
        master.targets["_relatedconnectionid_value"] = "connection"
        reciprocal = self._swapped(master, reciprocal_id, master_id)
        reciprocal.values["ismaster"] = False
        self.db.write(self.data, reciprocal_id, reciprocal)

    def _mirror_reciprocal(self, record_id: str, record: Record) -> None:
        related = record.values.get("_relatedconnectionid_value")
        if not related or related not in self.data.rows:
            return
        mirrored = self._swapped(record, related, record_id)
        mirrored.values["ismaster"] = not record.values.get("ismaster")
        mirrored.values["createdon"] = self.data.rows[related].values.get("createdon")
        self.db.write(self.data, related, mirrored)


# --- request handlers ---------------------------------------------------------------------------


def entity_id_url(req: ApiRequest, table: Table, key: str) -> str:
    """``OData-EntityId`` value: ``[Org]/api/data/v9.2/<set>(<key>)``."""
    return f"{req.api_root}/{table.entity_set}({key})"


def _representation(
    env: Environment,
    req: ApiRequest,
    table: Table,
    record: Record,
    status: int,
    options: dict[str, str],
    prefs: Preferences,
) -> ApiResponse:
    select = parse_select(table, options.get("$select"))
    annotations = AnnotationFilter(prefs.include_annotations)
    row = RowRenderer(env.db, table, select, annotations).render(record)
    body = {"@odata.context": context_url(req, table, select, "/$entity"), **row}
    return ApiResponse.json(
        status,
        body,
        {"ETag": etag(record.version), "Preference-Applied": "return=representation"},
    )


def create(
    env: Environment,
    req: ApiRequest,
    data: TableData,
    options: dict[str, str],
    prefs: Preferences,
) -> tuple[ApiResponse, str]:
    """``POST /<set>``: 204 + ``OData-EntityId``, or 201 + body with return=representation."""
    writer = RowWriter(env, req, data)
    record_id, record = writer.create(req.json_body())
    url = entity_id_url(req, data.table, record_id)
    if prefs.return_representation:
        return _representation(env, req, data.table, record, 201, options, prefs), url
    return ApiResponse.empty(204, {"OData-EntityId": url}), url


def _check_if_match(req: ApiRequest, record: Record | None) -> None:
    if_match = req.header("if-match")
    if if_match and if_match.strip() != "*" and record is not None:
        tags = [t.strip() for t in if_match.split(",")]
        if etag(record.version) not in tags:
            raise concurrency_mismatch()


def upsert(
    env: Environment,
    req: ApiRequest,
    data: TableData,
    key: str,
    options: dict[str, str],
    prefs: Preferences,
) -> tuple[ApiResponse, str]:
    """``PATCH /<set>(<key>)``: update, or create when absent (reference §3 upsert rules)."""
    table = data.table
    parsed = parse_key(key)
    record_id = resolve_key(data, key)
    existing = data.rows.get(record_id) if record_id else None
    if_match = req.header("if-match")
    if_none_match = (req.header("if-none-match") or "").strip()
    body = req.json_body()
    writer = RowWriter(env, req, data)
    if existing is not None and record_id is not None:
        if if_none_match == "*":
            raise duplicate_key()
        _check_if_match(req, existing)
        if isinstance(parsed, dict):
            body = {k: v for k, v in body.items() if k not in parsed}  # keys can't change
        record = writer.update(record_id, body)
        status = 200
    else:
        if if_match:
            raise not_found(table.logical_name, record_id or key)
        key_values = parsed if isinstance(parsed, dict) else None
        explicit = parsed if isinstance(parsed, str) else None
        record_id, record = writer.create(body, record_id=explicit, key_values=key_values)
        status = 201
    if isinstance(parsed, dict):
        key_text = ",".join(f"{k}={format_key_literal(v)}" for k, v in parsed.items())
    else:
        key_text = record_id
    url = entity_id_url(req, table, key_text)
    if prefs.return_representation:
        return _representation(env, req, table, record, status, options, prefs), url
    return ApiResponse.empty(204, {"OData-EntityId": url}), url


def delete(env: Environment, req: ApiRequest, data: TableData, key: str) -> ApiResponse:
    """``DELETE /<set>(<key>)``: 204, 404 when absent, 412 on an ETag mismatch."""
    record_id = resolve_key(data, key)
    record = data.rows.get(record_id) if record_id else None
    if record is None or record_id is None:
        raise not_found(data.table.logical_name, record_id or key)
    _check_if_match(req, record)
    RowWriter(env, req, data).delete(record_id)
    return ApiResponse.empty(204)
