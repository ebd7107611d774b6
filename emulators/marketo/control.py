"""The control API under ``/_emulator/`` (documented in this package's README).

It needs no token, is never rate limited, counted or faulted, and answers plain JSON (errors as
HTTP 400 ``{"error": ...}``). Tests and benchmarks use it to seed and read data, shape limits and
faults, move time, and read usage counters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.marketo.config import LimitSettings
from emulators.marketo.emulator import Emulator
from emulators.marketo.envelope import JSON_MEDIA_TYPE
from emulators.marketo.faults import FaultSettings, GateStage
from emulators.marketo.fields import parse_datetime
from emulators.marketo.instance import VISIT_WEBPAGE
from emulators.marketo.leads import (
    Origin,
    RecordSkip,
    create_lead,
    delete_lead,
    normalize,
    update_lead,
)
from emulators.marketo.seed import SeedError, SeedRequest, seed


class ControlError(Exception):
    """A bad control request (HTTP 400)."""


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON_MEDIA_TYPE)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ControlError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ClockRequest(_Model):
    """``POST /_emulator/clock``: any of these, applied in this order."""

    advance: float | None = Field(default=None, ge=0)
    set: datetime | None = None
    freeze: bool | None = None


class LeadChange(_Model):
    """A change made inside Marketo (a marketer, a flow step, a form) rather than the API."""

    fields: dict[str, Any] = Field(default_factory=dict)
    source: str = "Marketo Flow Action"
    reason: str = "Changed by Marketo user"
    user: str = "marketer@emulator.local"


class NoiseRequest(_Model):
    """``POST /_emulator/activities``: activities of other types (web visits) for one lead."""

    lead_id: int = Field(alias="leadId")
    count: int = Field(default=1, ge=1, le=100_000)
    activity_type_id: int = Field(default=VISIT_WEBPAGE, alias="activityTypeId")


class GateRequest(_Model):
    """``PUT /_emulator/gate``: hold calls at ``stage`` until released."""

    stage: GateStage = "admitted"
    paths: list[str] = Field(default_factory=list)


class BulkRequest(_Model):
    """``PUT /_emulator/bulk``."""

    paused: bool


class SettingsRequest(_Model):
    """``PUT /_emulator/settings``."""

    native_crm_sync: bool | None = Field(default=None, alias="nativeCrmSync")
    token_ttl_seconds: int | None = Field(default=None, ge=1, alias="tokenTtlSeconds")


Handler = Callable[[Emulator, Request], Awaitable[Any]]


def _page(records: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "0"))
    except ValueError:
        raise ControlError("offset and limit must be integers") from None
    chosen = records[offset : offset + limit] if limit > 0 else records[offset:]
    return {"total": len(records), "records": chosen}


async def health(emulator: Emulator, request: Request) -> Any:
    """Liveness, and the instance's identity."""
    return {"status": "ok", "munchkinId": emulator.config.munchkin_id}


async def show_config(emulator: Emulator, request: Request) -> Any:
    """The effective configuration, client secrets left out."""
    data = emulator.config.model_dump(by_alias=True, mode="json")
    data["clients"] = [
        {"client_id": c.client_id, "api_user": c.api_user} for c in emulator.config.clients
    ]
    return data


async def reset(emulator: Emulator, request: Request) -> Any:
    """Back to the starting state; ``{"tokens": false}`` keeps issued tokens valid."""
    body = await _body(request)
    emulator.reset(tokens=bool(body.get("tokens", True)))
    return {"reset": True}


async def seed_records(emulator: Emulator, request: Request) -> Any:
    """Insert records directly (see :mod:`emulators.marketo.seed`)."""
    payload = SeedRequest.model_validate(await _body(request))
    try:
        return seed(emulator.instance, payload)
    except SeedError as exc:
        raise ControlError(str(exc)) from None


async def list_leads(emulator: Emulator, request: Request) -> Any:
    """Every lead as stored (``?offset=&limit=`` page it), lowest id first."""
    leads = emulator.instance.leads.records
    ordered = [leads[key] for key in sorted(leads)]
    return _page(ordered, request)


async def show_lead(emulator: Emulator, request: Request) -> Any:
    """One lead as stored, or 404."""
    lead = emulator.instance.leads.records.get(int(request.path_params["lead_id"]))
    if lead is None:
        return _json({"error": "lead not found"}, 404)
    return lead


async def list_objects(emulator: Emulator, request: Request) -> Any:
    """Every record of one object type (``companies``, ``opportunities/roles``, ...)."""
    store = emulator.instance.objects.get(request.path_params["object_path"])
    if store is None:
        return _json({"error": "unknown object type"}, 404)
    return _page(list(store.records.values()), request)


def _origin(change: LeadChange) -> Origin:
    return Origin(change.source, change.reason, None, change.user, None)


async def create_lead_inside(emulator: Emulator, request: Request) -> Any:
    """A lead created inside Marketo (form fill, list import): logs New Lead."""
    change = LeadChange.model_validate(await _body(request))
    instance = emulator.instance
    try:
        values = normalize(instance.lead_schema, change.fields, allow_id=False, allow_system=True)
    except RecordSkip as exc:
        raise ControlError(f"{exc.code} {exc.message}") from None
    lead_id = instance.leads.new_id()
    create_lead(instance, lead_id, values, 1, _origin(change))
    return {"id": lead_id}


async def change_lead(emulator: Emulator, request: Request) -> Any:
    """A change made inside Marketo: logs one Change Data Value activity per changed field;
    read-only fields (Sales Insight values) may be set this way."""
    change = LeadChange.model_validate(await _body(request))
    instance = emulator.instance
    lead_id = int(request.path_params["lead_id"])
    if lead_id not in instance.leads.records:
        return _json({"error": "lead not found"}, 404)
    try:
        values = normalize(instance.lead_schema, change.fields, allow_id=False, allow_system=True)
    except RecordSkip as exc:
        raise ControlError(f"{exc.code} {exc.message}") from None
    changed = update_lead(instance, lead_id, values, _origin(change))
    return {"id": lead_id, "changed": changed}


async def delete_lead_inside(emulator: Emulator, request: Request) -> Any:
    """A lead deleted inside Marketo (Delete Person flow step): logs Delete Lead (37)."""
    change = LeadChange.model_validate(await _body(request))
    lead_id = int(request.path_params["lead_id"])
    if not delete_lead(emulator.instance, lead_id, _origin(change)):
        return _json({"error": "lead not found"}, 404)
    return {"id": lead_id, "deleted": True}


async def add_activities(emulator: Emulator, request: Request) -> Any:
    """Activities of other types, which the change feed scans past but does not return."""
    noise = NoiseRequest.model_validate(await _body(request))
    instance = emulator.instance
    for _ in range(noise.count):
        instance.record_activity(
            noise.lead_id,
            noise.activity_type_id,
            primary_id=1,
            primary_value="emulator/landing.html",
            attributes=[{"name": "Webpage URL", "value": "/landing.html"}],
        )
    return {"activities": len(instance.activities)}


async def list_activities(emulator: Emulator, request: Request) -> Any:
    """The raw activity log in order (``?offset=&limit=``)."""
    return _page(emulator.instance.activities.items, request)


async def usage(emulator: Emulator, request: Request) -> Any:
    """Counters: calls per endpoint, errors per code, peaks of concurrency and window."""
    limits = emulator.limits
    return emulator.usage.snapshot(limits.in_flight, limits.calls_in_window(), limits.used_today())


async def reset_usage(emulator: Emulator, request: Request) -> Any:
    """Zero the counters and the limit windows (data stays)."""
    emulator.reset_usage()
    return {"reset": True}


async def limits(emulator: Emulator, request: Request) -> Any:
    """``GET``: the limits in force; ``PUT``: change some of them (counters restart)."""
    if request.method == "PUT":
        merged = emulator.limits.settings.model_dump() | await _body(request)
        emulator.limits.reset(LimitSettings.model_validate(merged))
    return emulator.limits.settings.model_dump()


async def faults(emulator: Emulator, request: Request) -> Any:
    """``GET``: fault settings; ``PUT``: replace them; ``DELETE``: no faults."""
    if request.method == "PUT":
        try:
            emulator.faults.configure(FaultSettings.model_validate(await _body(request)))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ControlError(str(exc)) from None
    elif request.method == "DELETE":
        emulator.faults.clear()
    return {**emulator.faults.settings.model_dump(), "pendingNext": emulator.faults.pending}


async def gate(emulator: Emulator, request: Request) -> Any:
    """``GET``: how many calls wait; ``PUT``: close the gate at a stage."""
    if request.method == "PUT":
        spec = GateRequest.model_validate(await _body(request))
        emulator.gate.close(spec.stage, spec.paths)
    return {"stage": emulator.gate.stage, "waiting": emulator.gate.waiting}


async def release_gate(emulator: Emulator, request: Request) -> Any:
    """Let held calls go."""
    emulator.gate.release()
    return {"stage": None, "waiting": emulator.gate.waiting}


async def clock(emulator: Emulator, request: Request) -> Any:
    """``GET``: emulated time; ``POST``: advance, set and/or freeze it."""
    emulator_clock = emulator.clock
    if request.method == "POST":
        spec = ClockRequest.model_validate(await _body(request))
        try:
            if spec.advance is not None:
                emulator_clock.advance(spec.advance)
            if spec.set is not None:
                moment = spec.set if spec.set.tzinfo else parse_datetime(spec.set.isoformat())
                assert moment is not None
                emulator_clock.set(moment)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        if spec.freeze is True:
            emulator_clock.freeze()
        elif spec.freeze is False:
            emulator_clock.unfreeze()
    return {
        "now": emulator_clock.now().isoformat(),
        "epoch": emulator_clock.time(),
        "frozen": emulator_clock.frozen,
        "quotaDay": emulator.limits.today(),
    }


async def expire_tokens(emulator: Emulator, request: Request) -> Any:
    """Every issued token expires now: the next call with one answers 602."""
    return {"expired": emulator.tokens.expire_all()}


async def bulk(emulator: Emulator, request: Request) -> Any:
    """``GET``: import jobs; ``PUT {"paused": bool}``: stop or restart the worker."""
    importer = emulator.bulk
    if request.method == "PUT":
        importer.paused = BulkRequest.model_validate(await _body(request)).paused
    return {
        "paused": importer.paused,
        "jobs": [job.status_item() for job in importer.jobs.values()],
    }


async def bulk_step(emulator: Emulator, request: Request) -> Any:
    """Run worker steps now (``{"steps": n}``, default 1), paused or not."""
    body = await _body(request)
    steps = body.get("steps", 1)
    if not isinstance(steps, int) or steps < 1:
        raise ControlError("steps must be a positive integer")
    for _ in range(steps):
        emulator.bulk.step()
    return {"jobs": [job.status_item() for job in emulator.bulk.jobs.values()]}


async def settings(emulator: Emulator, request: Request) -> Any:
    """``PUT``: switch native CRM sync mode (1018) or the lifetime of new tokens."""
    if request.method == "PUT":
        spec = SettingsRequest.model_validate(await _body(request))
        if spec.native_crm_sync is not None:
            emulator.instance.native_crm_sync = spec.native_crm_sync
        if spec.token_ttl_seconds is not None:
            emulator.tokens.ttl_seconds = spec.token_ttl_seconds
    return {
        "nativeCrmSync": emulator.instance.native_crm_sync,
        "tokenTtlSeconds": emulator.tokens.ttl_seconds,
    }


_ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/health", health, ["GET"]),
    ("/config", show_config, ["GET"]),
    ("/reset", reset, ["POST"]),
    ("/seed", seed_records, ["POST"]),
    ("/leads", list_leads, ["GET"]),
    ("/leads/{lead_id:int}", show_lead, ["GET"]),
    ("/leads/create", create_lead_inside, ["POST"]),
    ("/leads/{lead_id:int}/change", change_lead, ["POST"]),
    ("/leads/{lead_id:int}/delete", delete_lead_inside, ["POST"]),
    ("/objects/{object_path:path}", list_objects, ["GET"]),
    ("/activities", list_activities, ["GET"]),
    ("/activities", add_activities, ["POST"]),
    ("/usage", usage, ["GET"]),
    ("/usage/reset", reset_usage, ["POST"]),
    ("/limits", limits, ["GET", "PUT"]),
    ("/faults", faults, ["GET", "PUT", "DELETE"]),
    ("/gate", gate, ["GET", "PUT"]),
    ("/gate/release", release_gate, ["POST"]),
    ("/clock", clock, ["GET", "POST"]),
    ("/tokens/expire", expire_tokens, ["POST"]),
    ("/bulk", bulk, ["GET", "PUT"]),
    ("/bulk/step", bulk_step, ["POST"]),
    ("/settings", settings, ["GET", "PUT"]),
]


def control_routes(emulator: Emulator) -> list[Route]:
    """Starlette routes for the control API."""
    routes = []
    for path, handler, methods in _ROUTES:
        routes.append(Route(f"/_emulator{path}", _endpoint(emulator, handler), methods=methods))
    return routes


def _endpoint(emulator: Emulator, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(emulator, request)
        except ControlError as exc:
            return _json({"error": str(exc)}, 400)
        except ValidationError as exc:
            return _json(
                {
                    "error": exc.errors(
                        include_url=False, include_input=False, include_context=False
                    )
                },
                400,
            )
        return result if isinstance(result, Response) else _json(result)

    return endpoint
