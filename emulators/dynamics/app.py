"""The ASGI application: the Web API, the Entra-style token endpoints and the control API.

Request path for the Web API: count → bearer check (401) → service protection (429) → injected
faults → handler (or ``$batch``) → response with ``REQ_ID``/``x-ms-service-request-id``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulators.dynamics.auth import EntraError, TokenService
from emulators.dynamics.batch import execute_batch
from emulators.dynamics.clock import EmulatorClock
from emulators.dynamics.config import API_PATH, EmulatorConfig
from emulators.dynamics.counters import RequestCounters, resource_of
from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import GENERIC_SQL_ERROR, ODataError
from emulators.dynamics.faults import Decision, FaultInjector
from emulators.dynamics.limits import ServiceProtection
from emulators.dynamics.protocol import ApiRequest, ApiResponse, Principal
from emulators.dynamics.webapi import WebApi


class _DropNoise(logging.Filter):
    """Keep uvicorn quiet about the connections we drop on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropNoise())


class DroppedConnection(Response):
    """Sends headers and part of a body, then returns: the server closes the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json; odata.metadata=minimal"),
                    (b"content-length", b"65536"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b'{"value":[', "more_body": True})


class Emulator:
    """One emulator instance: an environment plus auth, limits, faults and counters."""

    def __init__(self, config: EmulatorConfig | None = None, seed: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.seed = seed
        self.clock = EmulatorClock()
        self.env = Environment(self.config, self.clock, seed)
        self.api = WebApi(self.env)
        self.tokens = TokenService(self.config.auth)
        self.limits = ServiceProtection(self.config.limits, self.clock)
        self.faults = FaultInjector(seed)
        self.counters = RequestCounters()
        self.base_url = ""
        self.ca_path = ""

    def asgi(self) -> Starlette:
        """The Starlette application serving everything."""
        from emulators.dynamics.control import control_routes

        routes = [
            Route(API_PATH, self.webapi, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
            Route(
                API_PATH + "/{rest:path}",
                self.webapi,
                methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
            ),
            *control_routes(self),
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    # -- Entra ----------------------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        """OpenID discovery for a tenant."""
        authority = f"{request.url.scheme}://{request.headers.get('host', '')}"
        try:
            document = self.tokens.openid_configuration(authority, request.path_params["tenant"])
        except EntraError as exc:
            return _json(exc.status, exc.body())
        return _json(200, document)

    async def token(self, request: Request) -> Response:
        """Client-credentials token request (form-encoded; client_secret_post or _basic)."""
        self.counters.token()
        body = await request.body()
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:]).decode()
            except ValueError:
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
            form.setdefault("client_id", client_id)
            form.setdefault("client_secret", secret)
        try:
            host = request.headers.get("host", "")
            tenant = request.path_params["tenant"]
            payload = self.tokens.issue(
                tenant, form, host, f"{request.url.scheme}://{host}/{tenant}/oauth2/v2.0/token"
            )
        except EntraError as exc:
            return _json(exc.status, exc.body())
        return _json(200, payload, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    # -- Web API --------------------------------------------------------------------------------

    async def webapi(self, request: Request) -> Response:
        """Every ``/api/data/v9.2/...`` request."""
        method = request.method
        path = request.url.path
        sub = path[len(API_PATH) :].lstrip("/")
        resource = resource_of(sub)
        self.counters.request(method, path, resource)
        request_id = str(uuid.uuid4())
        try:
            claims = self.tokens.verify(request.headers.get("authorization"))
        except ODataError as exc:
            host = request.headers.get("host", "")
            challenge = (
                f"Bearer authorization_uri=https://{host}/{self.config.auth.tenant_id}"
                f"/oauth2/authorize, resource_id=https://{host}/"
            )
            return self._respond(
                ApiResponse.error(exc), request_id, {"WWW-Authenticate": challenge}
            )
        client = claims.client_id
        try:
            self.limits.acquire(client)
        except ODataError as exc:
            return self._respond(ApiResponse.error(exc), request_id)
        try:
            decision = self.faults.decide(method, path)
            if decision.latency_ms:
                await asyncio.sleep(decision.latency_ms / 1000)
            if decision.kind is not None:
                return await self._fault(decision, request_id)
            body = await request.body()
            req = ApiRequest(
                method=method,
                path=sub,
                query=request.url.query,
                headers=request.headers,
                body=body,
                base_url=f"{request.url.scheme}://{request.headers.get('host', '')}",
                principal=Principal(client, self.env.app_user_id),
            )
            if resource == "$batch" and method == "POST":
                response = execute_batch(self.api, req, self.counters.batch_part)
            else:
                response, _ = self.api.handle(req)
        finally:
            self.limits.release(client)
        remaining = {
            "x-ms-ratelimit-burst-remaining-xrm-requests": str(self.limits.remaining(client))
        }
        return self._respond(response, request_id, remaining)

    async def _fault(self, decision: Decision, request_id: str) -> Response:
        kind, rule = decision.kind, decision.rule
        assert rule is not None
        if kind == "429":
            settings = self.limits.settings
            error = ODataError(
                429,
                "0x80072322",
                f"Number of requests exceeded the limit of {settings.requests_per_window} over "
                f"time window of {settings.window_seconds} seconds.",
                {"Retry-After": str(rule.retry_after_seconds)},
            )
            return self._respond(ApiResponse.error(error), request_id)
        if kind == "500":
            error = ODataError(500, GENERIC_SQL_ERROR, "Generic SQL error.")
            return self._respond(ApiResponse.error(error), request_id)
        if kind == "503":
            error = ODataError(503, "0x80040216", "The service is temporarily unavailable.")
            return self._respond(ApiResponse.error(error), request_id)
        if kind == "timeout":
            event = self.faults.release_event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=rule.hang_seconds)
        return DroppedConnection()

    def _respond(
        self, response: ApiResponse, request_id: str, extra: dict[str, str] | None = None
    ) -> Response:
        self.counters.status(response.status)
        headers = {
            **response.headers,
            "REQ_ID": request_id,
            "x-ms-service-request-id": request_id,
            **(extra or {}),
        }
        content_type = headers.pop("Content-Type", None)
        return Response(response.body, response.status, headers, media_type=content_type)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")
