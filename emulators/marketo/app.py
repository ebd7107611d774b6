"""Wiring: the REST, bulk, identity and control routes of one emulator as a Starlette app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators.marketo import activity_api, bulk_api, lead_api, objects, stats_api
from emulators.marketo.auth import CredentialError
from emulators.marketo.config import EmulatorConfig, default_config
from emulators.marketo.control import control_routes
from emulators.marketo.emulator import Emulator, Endpoint, Handler
from emulators.marketo.envelope import JSON_MEDIA_TYPE

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_STANDARD_OBJECTS = ("companies", "opportunities", "opportunities/roles", "salespersons")


def _ops(**handlers: Handler) -> dict[str, Endpoint]:
    return {method.upper(): Endpoint(handler, "") for method, handler in handlers.items()}


def api_table() -> list[tuple[str, dict[str, Endpoint]]]:
    """Every REST and bulk route: path pattern → method → endpoint."""
    table: list[tuple[str, dict[str, Endpoint]]] = [
        (
            "/rest/v1/leads.json",
            # DELETE with a JSON body of ids: absent from today's docs and swagger, but Marketo
            # accepts it and clients in the wild use it; served as Delete Leads.
            _ops(get=lead_api.get_leads, post=lead_api.sync_leads, delete=lead_api.delete_leads),
        ),
        ("/rest/v1/lead/{lead_id:int}.json", _ops(get=lead_api.get_lead)),
        ("/rest/v1/leads/describe.json", _ops(get=lead_api.describe)),
        ("/rest/v1/leads/describe2.json", _ops(get=lead_api.describe2)),
        ("/rest/v1/leads/delete.json", _ops(post=lead_api.delete_leads)),
        (
            "/rest/v1/activities/pagingtoken.json",
            _ops(get=activity_api.paging_token),
        ),
        (
            "/rest/v1/activities/leadchanges.json",
            _ops(get=activity_api.lead_changes),
        ),
        (
            "/rest/v1/activities/deletedleads.json",
            _ops(get=activity_api.deleted_leads),
        ),
        (
            "/rest/v1/activities/types.json",
            _ops(get=activity_api.activity_types),
        ),
        ("/rest/v1/activities.json", _ops(get=activity_api.lead_activities)),
        ("/rest/v1/customobjects.json", _ops(get=objects.list_custom_objects)),
        (
            "/rest/v1/customobjects/{api_name}.json",
            _ops(get=objects.query_objects, post=objects.sync_objects),
        ),
        (
            "/rest/v1/customobjects/{api_name}/delete.json",
            _ops(post=objects.delete_objects),
        ),
        (
            "/rest/v1/customobjects/{api_name}/describe.json",
            _ops(get=objects.describe_object),
        ),
        ("/rest/v1/stats/usage.json", _ops(get=stats_api.usage_today)),
        (
            "/rest/v1/stats/usage/last7days.json",
            _ops(get=stats_api.usage_last7days),
        ),
        ("/rest/v1/stats/errors.json", _ops(get=stats_api.errors_today)),
        (
            "/rest/v1/stats/errors/last7days.json",
            _ops(get=stats_api.errors_last7days),
        ),
        (
            "/bulk/v1/leads.json",
            {"POST": Endpoint(bulk_api.import_leads, "", bulk=True)},
        ),
        (
            "/bulk/v1/leads/batch/{batch_id:int}.json",
            _ops(get=bulk_api.import_status),
        ),
        (
            "/bulk/v1/leads/batch/{batch_id:int}/failures.json",
            _ops(get=bulk_api.import_failures),
        ),
        (
            "/bulk/v1/leads/batch/{batch_id:int}/warnings.json",
            _ops(get=bulk_api.import_warnings),
        ),
    ]
    for path in _STANDARD_OBJECTS:
        params = {"object_path": path}
        table[0:0] = [
            (
                f"/rest/v1/{path}.json",
                {
                    "GET": Endpoint(objects.query_objects, "", params=params),
                    "POST": Endpoint(objects.sync_objects, "", params=params),
                },
            ),
            (
                f"/rest/v1/{path}/delete.json",
                {"POST": Endpoint(objects.delete_objects, "", params=params)},
            ),
            (
                f"/rest/v1/{path}/describe.json",
                {"GET": Endpoint(objects.describe_object, "", params=params)},
            ),
        ]
    # Usage counters name each operation by its path template ("POST /rest/v1/leads.json").
    return [
        (
            path,
            {
                method: replace(endpoint, label=re.sub(r"\{(\w+):\w+\}", r"{\1}", path))
                for method, endpoint in ops.items()
            },
        )
        for path, ops in table
    ]


def _api_route(emulator: Emulator, path: str, endpoints: Mapping[str, Endpoint]) -> Route:
    async def endpoint(request: Request) -> Response:
        return await emulator.handle_api(request, endpoints)

    return Route(path, endpoint, methods=_ALL_METHODS)


def _identity_endpoint(emulator: Emulator) -> Callable[[Request], Awaitable[Response]]:
    async def identity(request: Request) -> Response:
        """``GET|POST /identity/oauth/token`` (authentication.md): credentials in the query
        string or a form body."""
        emulator.usage.identity_calls += 1
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        try:
            token, expires_in = emulator.tokens.issue(
                params.get("grant_type"), params.get("client_id"), params.get("client_secret")
            )
        except CredentialError as exc:
            error = {"error": exc.error, "error_description": exc.description}
            return Response(orjson.dumps(error), exc.status, media_type=JSON_MEDIA_TYPE)
        body = {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": token.api_user,
        }
        return Response(orjson.dumps(body), media_type=JSON_MEDIA_TYPE)

    return identity


def build_app(config: EmulatorConfig | None = None) -> tuple[Starlette, Emulator]:
    """A ready-to-serve app and the emulator behind it."""
    emulator = Emulator(config or default_config())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        emulator.bulk.start()
        try:
            yield
        finally:
            emulator.stopping().set()
            await emulator.bulk.stop()

    routes: list[BaseRoute] = [
        Route("/identity/oauth/token", _identity_endpoint(emulator), methods=["GET", "POST"]),
        *control_routes(emulator),
    ]
    routes.extend(_api_route(emulator, path, ops) for path, ops in api_table())
    # Anything else under /rest or /bulk is 610 "Requested resource not found" (after auth).
    routes.append(_api_route(emulator, "/rest/{rest:path}", {}))
    routes.append(_api_route(emulator, "/bulk/{rest:path}", {}))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emulator = emulator
    return app, emulator
