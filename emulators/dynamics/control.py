"""The control API under ``/_emulator/`` (no bearer token): seeding, reset, direct row access,
faults, limits, clock, change-tracking expiry, environment copy and request counters.

Every endpoint is listed in ``emulators/dynamics/README.md``.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.dynamics.clock import format_datetime
from emulators.dynamics.config import LimitsConfig
from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import ODataError
from emulators.dynamics.faults import FaultRule
from emulators.dynamics.seed import Seeder, SeedSpec
from emulators.dynamics.serialize import LOOKUP_NAME
from emulators.dynamics.store import Record, TableData

if TYPE_CHECKING:
    from emulators.dynamics.app import Emulator

COPY_VERSION_GAP = 1_000_000
Handler = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    """A bad control request (answered 400/404 with ``{"error": message}``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ControlError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ControlError(400, "body must be a JSON object")
    return parsed


class SeedRequest(BaseModel):
    """``POST /_emulator/seed``."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    records_per_table: int | None = None
    counts: dict[str, int] = {}
    no_sync_share: float = 0.1
    null_sync_share: float = 0.05
    bad_data_share: float = 0.05


def seed_environment(env: Environment, request: SeedRequest, default_seed: int) -> dict[str, int]:
    """Generate rows into ``env`` as the request says."""
    custom = tuple(name for name in env.tables if name.startswith("new_"))
    base = SeedSpec.per_table(request.records_per_table or 0, custom)
    counts = {k: v for k, v in base.counts.items() if request.records_per_table}
    counts.update(request.counts)
    spec = SeedSpec(
        seed=request.seed if request.seed is not None else default_seed,
        counts=counts,
        no_sync_share=request.no_sync_share,
        null_sync_share=request.null_sync_share,
        bad_data_share=request.bad_data_share,
    )
    try:
        rows = Seeder(env, spec).run()
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    except ODataError as exc:  # an alternate-key clash with rows already there
        raise ControlError(409, exc.message) from None
    # Seeded rows live as long as the environment: keep the cyclic GC from rescanning them on
    # every page served (records hold no reference cycles, so refcounting still frees them).
    gc.freeze()
    return rows


def export_record(data: TableData, record: Record) -> dict[str, Any]:
    """A row as the control API returns it: values, versionnumber, lookup target annotations."""
    row = {c.value_name: record.values.get(c.value_name) for c in data.table.columns.values()}
    for name, target in record.targets.items():
        row[f"{name}@{LOOKUP_NAME}"] = target
    row["versionnumber"] = record.version
    return row


def import_record(
    env: Environment, data: TableData, row: dict[str, Any], existing: Record | None
) -> Record:
    """A control-API row (Web API property names) as a record; merges into ``existing``."""
    table = data.table
    record = existing.copy() if existing is not None else Record({}, {})
    now = format_datetime(env.clock.now())
    for key, value in row.items():
        if key.endswith(f"@{LOOKUP_NAME}") and value is not None:
            record.targets[key.split("@", 1)[0]] = str(value)
    for key, value in row.items():
        if "@" in key or key == "versionnumber":
            continue
        column = table.column_for_property(key)
        if column is None:
            raise ControlError(400, f"{table.logical_name} has no property {key!r}")
        record.values[key] = value
        if column.is_lookup:
            if value is None:
                record.targets.pop(key, None)
            elif key not in record.targets and len(column.targets) == 1:
                record.targets[key] = column.targets[0]
            elif key not in record.targets and column.type.value == "Owner":
                record.targets[key] = "systemuser"
            elif key not in record.targets:
                raise ControlError(
                    400, f"{key} is polymorphic: add '{key}@{LOOKUP_NAME}' to name its table"
                )
    record.values.setdefault(table.primary_id, str(uuid.uuid4()))
    record.values[table.primary_id] = str(record.values[table.primary_id]).lower()
    if "createdon" in table.columns:
        record.values.setdefault("createdon", now)
    if "modifiedon" in table.columns and "modifiedon" not in row:
        record.values["modifiedon"] = now
    for name, sources in table.computed.items():
        if name not in row:
            parts = [record.values.get(s) for s in sources]
            record.values[name] = " ".join(p for p in parts if p) or None
    return record


def copy_environment(emulator: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """Replace all data with another environment's, as a sandbox copy/refresh does.

    Record GUIDs come from the source (reference §5); the organization id and the application
    user's id change (our documented choice); the version counter jumps and every delta token
    issued before the copy answers ExpiredVersionStamp.
    """
    env = emulator.env
    source = body.get("source")
    if not isinstance(source, dict):
        raise ControlError(
            400, "body needs 'source': {'seed': ..., 'records_per_table': ...} or {'snapshot': ...}"
        )
    if "snapshot" in source:
        tables = source["snapshot"].get("tables", {})
    else:
        donor = Environment(env.config, env.clock, seed=int(source.get("seed", 1)))
        request = SeedRequest.model_validate({k: v for k, v in source.items()})
        seed_environment(donor, request, int(source.get("seed", 1)))
        tables = {
            name: [export_record(data, donor.db.data[name].rows[i]) for i in data.order]
            for name, data in donor.db.data.items()
        }
    old_version = env.db.current_version
    env.db.clear()
    env.db.bump_version_to(old_version + COPY_VERSION_GAP)
    env.db.version_floor = env.db.current_version
    env.organization_id = str(body.get("organization_id") or uuid.uuid4())
    env.app_user_id = str(uuid.uuid4())
    env.install_identity_rows()
    counts: dict[str, int] = {}
    for name, rows in tables.items():
        if name == "organization" or name not in env.db.data:
            continue
        data = env.db.data[name]
        records: dict[str, Record] = {}
        for row in rows:
            record = import_record(env, data, row, None)
            records[record.values[data.table.primary_id]] = record
        records.pop(env.app_user_id, None)
        env.db.load(data, records)
        counts[name] = len(data.rows)
    emulator.limits.clear()
    return {
        "organization_id": env.organization_id,
        "user_id": env.app_user_id,
        "rows": counts,
        "version_floor": env.db.version_floor,
    }


def control_routes(emulator: Emulator) -> list[Route]:
    """The ``/_emulator/`` routes bound to ``emulator``."""

    def env_of() -> Environment:
        return emulator.env

    def table_data(request: Request) -> TableData:
        name = request.path_params["table"]
        data = env_of().db.data.get(name) or env_of().db.by_set.get(name)
        if data is None:
            raise ControlError(404, f"no table {name!r}")
        return data

    async def info(request: Request) -> Response:
        env = env_of()
        return _json(
            {
                "base_url": emulator.base_url,
                "api_url": f"{emulator.base_url}/api/data/v9.2",
                "ca_path": emulator.ca_path,
                "tenant_id": emulator.config.auth.tenant_id,
                "client_id": emulator.config.auth.client_id,
                "organization_id": env.organization_id,
                "environment_id": env.environment_id,
                "user_id": env.app_user_id,
                "business_unit_id": env.business_unit_id,
                "now": format_datetime(env.clock.now()),
                "version": env.db.current_version,
                "version_floor": env.db.version_floor,
                "tables": {
                    name: {
                        "entity_set": data.table.entity_set,
                        "rows": len(data.rows),
                        "change_tracking": data.table.change_tracking,
                        "alternate_keys": [list(k) for k in data.table.alternate_keys],
                    }
                    for name, data in env.db.data.items()
                },
            }
        )

    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def reset(request: Request) -> Response:
        body = await _body(request)
        env = env_of()
        env.reset()
        emulator.counters.clear()
        emulator.faults.clear(body.get("fault_seed"))
        emulator.limits.configure(emulator.config.limits)
        emulator.limits.clear()
        emulator.tokens.lifetime = emulator.config.auth.token_lifetime_seconds
        emulator.tokens.certificates.clear()
        if body.get("clock", True):
            env.clock.reset()
        return _json({"status": "reset"})

    async def seed(request: Request) -> Response:
        try:
            spec = SeedRequest.model_validate(await _body(request))
        except ValidationError as exc:
            raise ControlError(400, str(exc)) from None
        return _json({"rows": seed_environment(env_of(), spec, emulator.seed)})

    async def list_records(request: Request) -> Response:
        data = table_data(request)
        offset = int(request.query_params.get("offset", 0))
        limit = int(request.query_params.get("limit", 100_000))
        ids = data.order[offset : offset + limit]
        rows = [export_record(data, data.rows[i]) for i in ids]
        return _json({"count": len(data.rows), "records": rows})

    async def put_records(request: Request) -> Response:
        data = table_data(request)
        body = await _body(request)
        rows = body.get("records")
        if not isinstance(rows, list):
            raise ControlError(400, "body needs 'records': [...]")
        replace = body.get("mode", "merge") == "replace"
        env = env_of()
        records: dict[str, Record] = {}
        for row in rows:
            if not isinstance(row, dict):
                raise ControlError(400, "each record must be an object")
            pk = row.get(data.table.primary_id)
            existing = None if replace or pk is None else data.rows.get(str(pk).lower())
            record = import_record(env, data, row, existing)
            records[record.values[data.table.primary_id]] = record
        try:
            env.db.load(data, records)
        except ODataError as exc:  # an alternate-key clash
            raise ControlError(409, exc.message) from None
        return _json({"ids": list(records), "versions": [r.version for r in records.values()]})

    async def get_record(request: Request) -> Response:
        data = table_data(request)
        record = data.rows.get(request.path_params["id"].lower())
        if record is None:
            raise ControlError(404, "no such record")
        return _json(export_record(data, record))

    async def delete_record(request: Request) -> Response:
        data = table_data(request)
        record_id = request.path_params["id"].lower()
        if record_id not in data.rows:
            raise ControlError(404, "no such record")
        env_of().db.remove(data, record_id)
        return _json({"deleted": record_id})

    async def patch_table(request: Request) -> Response:
        data = table_data(request)
        body = await _body(request)
        if "change_tracking" in body:
            data.table.change_tracking = bool(body["change_tracking"])
        return _json({"change_tracking": data.table.change_tracking})

    async def snapshot(request: Request) -> Response:
        env = env_of()
        tables = {
            name: [export_record(data, data.rows[i]) for i in data.order]
            for name, data in env.db.data.items()
            if name != "organization"
        }
        return _json({"tables": tables})

    async def organization(request: Request) -> Response:
        env = env_of()
        data = env.db.data["organization"]
        body = await _body(request)
        record = data.rows[env.organization_id].copy()
        for key in ("expirechangetrackingindays", "name"):
            if key in body:
                record.values[key] = body[key]
        env.db.load(data, {env.organization_id: record})
        return _json(export_record(data, data.rows[env.organization_id]))

    async def clock(request: Request) -> Response:
        env_clock = env_of().clock
        if request.method == "POST":
            body = await _body(request)
            if body.get("reset"):
                env_clock.reset()
            if "set" in body:
                env_clock.set(
                    datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00")),
                    freeze=bool(body.get("freeze")),
                )
            elif body.get("freeze"):
                env_clock.set(env_clock.now(), freeze=True)
            if body.get("unfreeze"):
                env_clock.unfreeze()
            seconds = float(body.get("advance_seconds", 0)) + 86400 * float(
                body.get("advance_days", 0)
            )
            if seconds:
                env_clock.advance(seconds)
        return _json({"now": format_datetime(env_clock.now())})

    async def expire_change_tracking(request: Request) -> Response:
        db = env_of().db
        db.next_version()
        db.version_floor = db.current_version
        return _json({"version_floor": db.version_floor})

    async def change_tracking(request: Request) -> Response:
        env = env_of()
        if request.method == "PUT":
            moment = (await _body(request)).get("delta_link_moment")
            if moment not in ("first_page", "last_page"):
                raise ControlError(400, "delta_link_moment must be 'first_page' or 'last_page'")
            env.delta_link_moment = moment
        return _json({"delta_link_moment": env.delta_link_moment})

    async def environment_copy(request: Request) -> Response:
        return _json(copy_environment(emulator, await _body(request)))

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                rule = FaultRule.model_validate(await _body(request))
            except ValidationError as exc:
                raise ControlError(400, str(exc)) from None
            emulator.faults.add(rule)
            return _json({"rules": emulator.faults.describe()}, 201)
        if request.method == "DELETE":
            seed_value = request.query_params.get("seed")
            emulator.faults.clear(int(seed_value) if seed_value else None)
        return _json({"rules": emulator.faults.describe(), "injected": emulator.faults.injected})

    async def release(request: Request) -> Response:
        emulator.faults.release_held()
        return _json({"released": True})

    async def limits(request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            try:
                settings = LimitsConfig.model_validate(
                    {**emulator.limits.settings.model_dump(), **body}
                )
            except ValidationError as exc:
                raise ControlError(400, str(exc)) from None
            emulator.limits.configure(settings)
        if request.method == "DELETE":
            emulator.limits.clear()
        return _json(
            {
                **emulator.limits.settings.model_dump(),
                "in_flight": emulator.limits.in_flight(),
                "throttled": emulator.limits.throttled,
            }
        )

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.counters.clear()
        return _json({**emulator.counters.snapshot(), "in_flight": emulator.limits.in_flight()})

    async def expire_tokens(request: Request) -> Response:
        emulator.tokens.expire_all()
        return _json({"expired": True})

    async def auth_settings(request: Request) -> Response:
        body = await _body(request)
        if "token_lifetime_seconds" in body:
            emulator.tokens.lifetime = int(body["token_lifetime_seconds"])
        return _json(
            {"token_lifetime_seconds": emulator.tokens.lifetime, "issued": emulator.tokens.issued}
        )

    async def certificates(request: Request) -> Response:
        if request.method == "PUT":
            pem = (await _body(request)).get("certificate_pem")
            if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
                raise ControlError(400, "certificate_pem must be a PEM certificate")
            try:
                thumbprint = emulator.tokens.certificates.add(pem)
            except ValueError as exc:
                raise ControlError(400, f"not a certificate: {exc}") from None
            return _json({"thumbprint": thumbprint})
        emulator.tokens.certificates.clear()
        return _json({"cleared": True})

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except ControlError as exc:
                return _json({"error": str(exc)}, exc.status)
            return response

        return endpoint

    table_path = "/_emulator/tables/{table}"
    spec = [
        ("/_emulator/health", health, ["GET"]),
        ("/_emulator/info", info, ["GET"]),
        ("/_emulator/reset", reset, ["POST"]),
        ("/_emulator/seed", seed, ["POST"]),
        (table_path, patch_table, ["PATCH"]),
        (f"{table_path}/records", list_records, ["GET"]),
        (f"{table_path}/records", put_records, ["PUT", "POST"]),
        (f"{table_path}/records/{{id}}", get_record, ["GET"]),
        (f"{table_path}/records/{{id}}", delete_record, ["DELETE"]),
        ("/_emulator/snapshot", snapshot, ["GET"]),
        ("/_emulator/organization", organization, ["PATCH"]),
        ("/_emulator/clock", clock, ["GET", "POST"]),
        ("/_emulator/change-tracking/expire", expire_change_tracking, ["POST"]),
        ("/_emulator/change-tracking", change_tracking, ["GET", "PUT"]),
        ("/_emulator/environment/copy", environment_copy, ["POST"]),
        ("/_emulator/faults", faults, ["GET", "POST", "DELETE"]),
        ("/_emulator/faults/release", release, ["POST"]),
        ("/_emulator/limits", limits, ["GET", "PUT", "DELETE"]),
        ("/_emulator/requests", requests, ["GET", "DELETE"]),
        ("/_emulator/auth/expire-tokens", expire_tokens, ["POST"]),
        ("/_emulator/auth", auth_settings, ["GET", "PUT"]),
        ("/_emulator/auth/certificates", certificates, ["PUT", "DELETE"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in spec]
