"""The request loop: headers, bearer token, concurrency cap, bounded retries, error mapping.

One :class:`DataverseTransport` per client wraps one ``httpx.AsyncClient`` (one connection
pool). For each call it:

1. adds the standard OData headers (reference §0) and the bearer token;
2. waits for a slot in the :class:`~shared.dynamics.limiter.ConcurrencyLimiter`;
3. on **401**, renews the token once and repeats the request once; a second 401 is an
   :class:`~shared.errors.AuthenticationError`;
4. on **429**, waits ``Retry-After`` (or an exponential backoff when absent) and repeats;
5. on **502/503/504**, a timeout or a dropped connection, backs off and repeats, but only when
   repeating cannot apply a write twice: reads, PATCH/PUT/DELETE (idempotent by definition)
   and calls the caller marks idempotent. A POST that may have reached the server surfaces as
   :class:`~shared.errors.TransientServiceError` instead, so "nothing doubled" holds; a POST
   whose connection never opened is repeated;
6. never repeats any other 4xx or 5xx: it maps the response to the taxonomy and raises.

Waits use :func:`shared.retry.next_delay` and the injected clock, so they are bounded by the
:class:`~shared.retry.RetryPolicy` (attempts, and the longest ``Retry-After`` honoured
in-process; a longer demand is raised as ``ThrottledError(retry_after=...)`` for the queue to
wait out) and never real sleeps in tests.
"""

from __future__ import annotations

import json
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx

from shared.clock import Clock
from shared.dynamics.auth import EntraTokenProvider
from shared.dynamics.counters import CallCounters
from shared.dynamics.error_mapping import SYSTEM, map_error, parse_error_body
from shared.dynamics.limiter import RequestLimiter
from shared.dynamics.odata import encode_query
from shared.errors import (
    ApiRequestError,
    ConfigurationError,
    DmsyncError,
    RecordRef,
    ThrottledError,
    TransientServiceError,
)
from shared.retry import RetryPolicy, next_delay, parse_retry_after

logger = logging.getLogger("shared.dynamics")

API_VERSION = "v9.2"
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=120.0)
"""Explicit timeouts. Reads get two minutes: Dataverse itself ends a request at about that."""
DEFAULT_RETRY_POLICY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0)

# Reference §0: sent on every request.
STANDARD_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
TRANSIENT_STATUSES = frozenset({502, 503, 504})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# Failures where the request certainly never reached the server: always safe to repeat.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

ResponseFilter = Callable[[httpx.Response], bool]


def _encode(value: object) -> str:
    """JSON text for a request body value.

    Written out by hand (it is short) so a Decimal keeps every digit: money columns hold up to
    19 significant digits, more than a float carries.
    """
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, float) and math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, float | Decimal):
        raise ValueError("NaN and infinity cannot be sent to Dataverse")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, datetime):
        # Aware values go as UTC "Z"; naive ones as written (the column's behaviour decides).
        text = value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
        return json.dumps(text.replace("+00:00", "Z"))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, uuid.UUID):
        return json.dumps(str(value))
    raise TypeError(f"cannot send a value of type {type(value).__name__} to Dataverse")


def dump_json(body: object) -> bytes:
    """A request body as compact UTF-8 JSON."""
    return _encode(body).encode()


def decode_json(response: httpx.Response, action: str) -> Any:
    """The JSON body of a successful response, or ``None`` when it is empty.

    Raises:
        ApiRequestError: the body is not JSON (a proxy page, a truncated answer).
    """
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ApiRequestError(
            f"Dataverse {action} returned a body that is not JSON",
            system=SYSTEM,
            status=response.status_code,
        ) from None


def request_id(response: httpx.Response) -> str | None:
    """Dataverse's id for a request, for support tickets (reference §4)."""
    value = response.headers.get("REQ_ID") or response.headers.get("x-ms-service-request-id")
    return str(value) if value else None


class DataverseTransport:
    """Sends Dataverse Web API requests with auth, limits and retries (see module docstring)."""

    def __init__(
        self,
        *,
        environment_url: str,
        http: httpx.AsyncClient,
        tokens: EntraTokenProvider,
        clock: Clock,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        limiter: RequestLimiter,
        counters: CallCounters,
        api_version: str = API_VERSION,
        rng: random.Random | None = None,
    ) -> None:
        self.environment_url = environment_url.rstrip("/")
        self.api_root = f"{self.environment_url}/api/data/{api_version}/"
        self._origin = httpx.URL(self.environment_url)
        self._http = http
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._limiter = limiter
        self.counters = counters
        self._rng = rng

    def __repr__(self) -> str:
        return f"DataverseTransport(api_root={self.api_root!r})"

    # --- URLs ---------------------------------------------------------------------------------

    def url(self, resource: str, query: Mapping[str, str] | None = None) -> str:
        """The absolute URL of ``resource`` (relative to the API root) with an encoded query."""
        url = self.api_root + resource.lstrip("/")
        return f"{url}?{encode_query(query)}" if query else url

    def checked_link(self, link: str) -> str:
        """``link`` unchanged, once it is known to point at this environment's Web API.

        Next and delta links are opaque and used as given (reference §1, §2); but a stored link
        that names another host must never receive our bearer token.

        Raises:
            ConfigurationError: the link is not under this environment's ``/api/data/``.
        """
        try:
            url = httpx.URL(link)
        except (httpx.InvalidURL, TypeError):
            raise ConfigurationError("A stored Dataverse paging link is not a URL") from None
        same_origin = (
            url.scheme == self._origin.scheme
            and url.host.lower() == self._origin.host.lower()
            and (url.port or _default_port(url.scheme))
            == (self._origin.port or _default_port(self._origin.scheme))
        )
        if not same_origin or not url.path.startswith("/api/data/"):
            raise ConfigurationError(
                f"A stored Dataverse paging link points at {url.scheme}://{url.host} instead of "
                f"the configured DYNAMICS_URL ({self.environment_url}); refusing to follow it"
            )
        return link

    # --- sending ------------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        body: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        record: RecordRef | None = None,
        accept: ResponseFilter | None = None,
    ) -> httpx.Response:
        """Send one logical call and return its successful response.

        Args:
            method: the HTTP method.
            url: the absolute URL (from :meth:`url` or :meth:`checked_link`).
            action: what the call does, in words, for error messages and logs.
            body: a JSON body; ``content`` sends raw bytes instead (set the Content-Type).
            content: a raw body.
            headers: extra headers (``Prefer``, ``If-Match``, ...).
            idempotent: whether a repeat cannot change the outcome; default by method.
            record: the record the call is about (data failures become RecordErrors).
            accept: a predicate letting a non-2xx response through to the caller (a 404 on a
                delete that may be missing, a ``$batch`` 400 that carries per-part results).

        Raises:
            DmsyncError: the mapped failure once retries are spent or not allowed.
        """
        method = method.upper()
        repeatable = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        extra = dict(headers or {})
        payload = content
        if body is not None:
            payload = dump_json(body)
            extra.setdefault("Content-Type", "application/json")
        refreshed = False
        attempt = 0
        while True:
            token = await self._tokens.token()
            request = self._http.build_request(
                method,
                url,
                content=payload,
                headers={**STANDARD_HEADERS, **extra, "Authorization": f"Bearer {token}"},
            )
            error: DmsyncError
            retry_after: float | None = None
            try:
                async with self._limiter.slot():
                    self.counters.requests += 1
                    response = await self._http.send(request)
            except httpx.TransportError as exc:
                error = TransientServiceError(
                    f"Dataverse {action} failed: {_transport_failure(exc)}", system=SYSTEM
                )
                retriable = repeatable or isinstance(exc, _NOT_SENT)
            else:
                if response.is_success or (accept is not None and accept(response)):
                    return response
                if response.status_code == 401 and not refreshed:
                    # One renewal and one repeat (the token may have been revoked or rotated).
                    refreshed = True
                    self.counters.auth_refreshes += 1
                    await self._tokens.refresh(token)
                    continue
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), self._clock.now()
                )
                error = map_error(
                    response.status_code,
                    parse_error_body(response.content),
                    action=action,
                    record=record,
                    retry_after=retry_after,
                    request_id=request_id(response),
                )
                if response.status_code == 429:
                    self.counters.throttles += 1
                retriable = isinstance(error, ThrottledError) or (
                    repeatable
                    and isinstance(error, TransientServiceError)
                    and response.status_code in TRANSIENT_STATUSES
                )
            if not retriable:
                raise error
            attempt += 1
            delay = next_delay(attempt, self._policy, retry_after, self._rng)
            if delay is None:
                raise error
            self.counters.retries += 1
            logger.warning(
                "Dataverse %s: retry %d in %.1f s after %s",
                action,
                attempt,
                delay,
                f"HTTP {error.status}" if error.status else "a network failure",
            )
            await self._clock.sleep(delay)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _transport_failure(exc: httpx.TransportError) -> str:
    """Words for a network failure; httpx messages can carry URLs, so only the type is kept."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"connection failed ({type(exc).__name__})"
