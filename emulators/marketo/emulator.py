"""The emulator's services and the path every REST and bulk call takes through them.

Order of checks for one call (each step answers as the real service does, reference B.2/B.3):

1. URI longer than ``max_uri_bytes`` → HTTP 414; body larger than 1 MB (10 MB for bulk import)
   → HTTP 413;
2. access token (``Authorization: Bearer``, or the deprecated ``access_token`` parameter) →
   601 / 602;
3. route and method → 610 / 605;
4. an injected fault, if one is drawn (see :mod:`emulators.marketo.faults`);
5. limits → 607 / 606 / 615 (:mod:`emulators.marketo.limits`);
6. injected latency, the hold gate, then the handler.

A call is counted against the window and the quota only if it succeeds as a whole.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from emulators.marketo.auth import TokenAuthority, TokenCheck
from emulators.marketo.bulk import BulkImporter
from emulators.marketo.call import Call
from emulators.marketo.clock import EmulatorClock, iso_seconds
from emulators.marketo.config import EmulatorConfig
from emulators.marketo.envelope import (
    MESSAGES,
    ApiError,
    RequestIds,
    error_body,
    json_response,
    rate_limit_message,
)
from emulators.marketo.faults import FaultInjector, FaultKind, Gate
from emulators.marketo.instance import Instance
from emulators.marketo.limits import Admission, CallLimits
from emulators.marketo.usage import Usage

logger = logging.getLogger("emulators.marketo")

Handler = Callable[[Call], "dict[str, Any] | Response | Awaitable[dict[str, Any] | Response]"]


@dataclass(frozen=True)
class Endpoint:
    """One operation: its handler and how its route is labelled in usage counters."""

    handler: Handler
    label: str
    bulk: bool = False
    """A bulk import upload: the body limit is ``max_bulk_body_bytes`` (10 MB)."""
    params: Mapping[str, str] = field(default_factory=dict)
    """Fixed path parameters (which object type a shared handler serves)."""


class ConnectionDropped(Exception):
    """Raised after a partial response so the server closes the connection mid-body."""


class _DroppedResponse(Response):
    """Headers promising a body that never fully arrives (the ``drop`` faults)."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json;charset=UTF-8"),
                    (b"content-length", b"4096"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b'{"requestId":"', "more_body": True})
        raise ConnectionDropped


class _DropFilter(logging.Filter):
    """Keeps uvicorn from logging the deliberate drops as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


logging.getLogger("uvicorn.error").addFilter(_DropFilter())

_IMMEDIATE_FAULTS: dict[FaultKind, tuple[str, int]] = {
    "606": ("606", 200),
    "615": ("615", 200),
    "611": ("611", 200),
    "608": ("608", 200),
    "502": ("502", 502),
}


class Emulator:
    """Everything one running emulator holds, and the API call pipeline."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock()
        self.instance = Instance(config, self.clock)
        self.tokens = TokenAuthority(config.clients, config.token_ttl_seconds, self.clock)
        self.limits = CallLimits(config.limits, self.clock, config.timezone)
        self.usage = Usage()
        self.faults = FaultInjector()
        self.gate = Gate()
        self.bulk = BulkImporter(self.instance, config.bulk)
        self.request_ids = RequestIds()
        self.started_at = iso_seconds(self.clock.time())
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None

    def reset(self, *, tokens: bool = True) -> None:
        """Back to the starting state: data, counters, limits, faults, clock (and tokens)."""
        self.clock.reset()
        self.instance.reset()
        if tokens:
            self.tokens.clear()
        self.tokens.ttl_seconds = self.config.token_ttl_seconds
        self.limits.reset(self.config.limits)
        self.usage = Usage()
        self.faults.clear()
        self.gate.release()
        self.bulk.reset()
        if self._wake is not None:  # end injected hangs still in progress
            self._wake.set()
            self._wake = None

    def reset_usage(self) -> None:
        """Zero the usage counters and the limit windows; data and settings stay."""
        self.usage = Usage()
        self.limits.reset(self.limits.settings)

    def stopping(self) -> asyncio.Event:
        """Set when the server shuts down (ends injected hangs early)."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    # --- the pipeline -------------------------------------------------------------------------

    async def handle_api(self, request: Request, endpoints: Mapping[str, Endpoint]) -> Response:
        """Run one REST or bulk call through every check, then its handler."""
        request_id = self.request_ids.next()
        day = self.limits.today()
        settings = self.limits.settings
        query = request.scope.get("query_string", b"")
        uri_bytes = len(request.scope.get("raw_path") or b"") + (len(query) + 1 if query else 0)
        if uri_bytes > settings.max_uri_bytes:
            # error-codes.md: "414 will be returned when the URI of a GET request exceeds 8KB".
            return self._error(request_id, "414", day, status=414)
        get_via_post = (
            request.method == "POST" and request.query_params.get("_method", "").upper() == "GET"
        )
        method = "GET" if get_via_post or request.method == "HEAD" else request.method
        endpoint = endpoints.get(method)
        limit = (
            settings.max_bulk_body_bytes if endpoint and endpoint.bulk else settings.max_body_bytes
        )
        declared = request.headers.get("content-length", "")
        body = (
            None
            if declared.isdigit() and int(declared) > limit
            else await _read_capped(request, limit)
        )
        if (
            body is not None
            and method == "POST"
            and "GET" in endpoints
            and _form_says_get(request, body)
        ):
            # ``_method=GET`` inside the form body rather than the URL: not in today's docs
            # (they put it in the query string), but Marketo serves it and widely used clients
            # send it so (UNVERIFIED against the docs; see the README).
            get_via_post, method, endpoint = True, "GET", endpoints["GET"]
        self.usage.request(f"{method} {endpoint.label if endpoint else request.url.path}")
        if body is None:
            return self._error(request_id, "413", day, status=413)
        try:
            token = self.tokens.check(await _token_of(request))
        except TokenCheck as exc:
            return self._error(request_id, exc.code, day)
        if endpoint is None:
            return self._error(request_id, "605" if endpoints else "610", day)
        fault = self.faults.pick(request.url.path)
        if fault in _IMMEDIATE_FAULTS:
            self.usage.faults[fault] += 1
            code, status = _IMMEDIATE_FAULTS[fault]
            message = (
                rate_limit_message(settings.rate_calls, settings.rate_window_seconds)
                if code == "606"
                else MESSAGES[code]
            )
            return self._error(request_id, code, day, message=message, status=status)
        if fault == "drop":
            self.usage.faults[fault] += 1
            return _DroppedResponse()
        try:
            admission = self.limits.admit()
        except ApiError as exc:
            return self._error(request_id, exc.code, day, message=exc.message)
        self.usage.admitted(admission.concurrent, admission.calls_in_window)
        call = Call(self, request, request_id, token.api_user, body, get_via_post=get_via_post)
        call.path_params.update(endpoint.params)
        try:
            response, counted = await self._admitted(call, endpoint, fault, admission)
        except BaseException:
            self.limits.finish(admission, counted=False)
            raise
        self.limits.finish(admission, counted=counted)
        if counted:
            self.usage.count(f"{method} {endpoint.label}", admission.day, token.api_user)
        return response

    async def _admitted(
        self, call: Call, endpoint: Endpoint, fault: FaultKind | None, admission: Admission
    ) -> tuple[Response, bool]:
        path = call.request.url.path
        try:
            latency = self.faults.latency(path)
            if latency > 0:
                await asyncio.sleep(latency)
            if fault == "timeout":
                self.usage.faults[fault] += 1
                await self._hang()
                return self._error(call.request_id, "604", admission.day), False
            await self.gate.passage("admitted", path)
            outcome = endpoint.handler(call)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except ApiError as exc:
            return self._error(call.request_id, exc.code, admission.day, message=exc.message), False
        except (asyncio.CancelledError, ConnectionDropped):
            raise
        except Exception:
            logger.exception("unexpected error in %s", endpoint.label)
            return self._error(call.request_id, "611", admission.day), False
        if isinstance(outcome, Response):
            counted = True
            response = outcome
        else:
            counted = outcome.get("success") is True
            if counted:
                self.usage.reasons(outcome.get("result") or [])
            else:
                for error in outcome.get("errors", ()):
                    self.usage.error(str(error.get("code")), admission.day)
            response = json_response(outcome)
        if fault == "drop_after":
            self.usage.faults[fault] += 1
            return _DroppedResponse(), counted
        return response, counted

    async def _hang(self) -> None:
        """Wait ``hang_seconds``, or until a reset or shutdown ends the wait."""
        if self._wake is None:
            self._wake = asyncio.Event()
        waits = [
            asyncio.ensure_future(self.stopping().wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(
                waits,
                timeout=self.faults.settings.hang_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waits:
                waiter.cancel()

    def _error(
        self,
        request_id: str,
        code: str,
        day: str,
        *,
        message: str | None = None,
        status: int = 200,
    ) -> Response:
        self.usage.error(code, day)
        return json_response(
            error_body(request_id, code, message or MESSAGES.get(code, "Error")), status
        )


def _form_says_get(request: Request, body: bytes) -> bool:
    """A form-encoded body that carries ``_method=GET``."""
    content_type = request.headers.get("content-type", "").lower()
    if "application/x-www-form-urlencoded" not in content_type:
        return False
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return any(k == "_method" and v.upper() == "GET" for k, v in pairs)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The whole body, or ``None`` once it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later form parsing reads the cached body
    return body


async def _token_of(request: Request) -> str | None:
    """``Authorization: Bearer``, else the ``access_token`` query or form parameter (still
    accepted, though authentication.md announces its removal)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.query_params.get("access_token"):
        return request.query_params["access_token"]
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form()
        except HTTPException:
            return None
        field = form.get("access_token")
        return field if isinstance(field, str) else None
    return None
