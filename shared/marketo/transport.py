"""The request loop: one httpx pool, the governor, the token, response checking and retries.

Every call to Marketo goes through :meth:`MarketoTransport.call`:

1. wait for the :class:`~shared.marketo.governor.Governor` (rate window, concurrency, daily budget);
2. send with ``Authorization: Bearer`` (the query-parameter form is being removed, reference B.1);
3. check the answer: HTTP status, then ``success`` and ``errors`` (reference B.3), never the reason
   phrase;
4. react as :mod:`.error_mapping` says: refresh the token once on 601/602, pause a window on 606,
   back off briefly on 615, retry 604/608/611/713/5xx a bounded number of times, stop for the day
   on 607, raise anything else as the matching :mod:`shared.errors` class.

Writes (``POST`` without ``_method=GET``) are *not* resent after an ambiguous network failure (a
read timeout, a dropped connection): Marketo may have carried them out, and "closely timed upsert
requests can create duplicate records" (reference B.4). They surface as
:class:`~shared.errors.TransientServiceError` and the queue retries the job later, when the first
attempt has certainly finished. A 6xx answer means "not executed", so those are resent.

Timeouts follow Adobe's per-endpoint server time limits (30 s by default, 90 s for Sync Leads ...
given by each API module); our read timeout is that limit plus ``READ_GRACE`` seconds, so
Marketo's own 604 reaches us before we give up.

Secrets: ``client_id``/``client_secret`` are added to the identity request by a transport wrapper
*below* httpx's logging, so httpx's own "HTTP Request: GET <url>" log line never contains them;
every URL we print goes through :func:`~shared.marketo.redaction.redact_url`, and error messages
name the path only (queries may carry e-mail addresses).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    DmsyncError,
    QuotaExhaustedError,
    RetriableError,
)
from shared.http_pool import pool_limits
from shared.marketo.auth import AccessToken, MarketoTokenProvider, TokenGrant
from shared.marketo.encoding import (
    MAX_BODY_BYTES,
    MAX_BULK_BODY_BYTES,
    MAX_URI_CHARS,
    encode_json,
)
from shared.marketo.error_mapping import Action
from shared.marketo.governor import CallGate, concurrency_backoff, rate_limit_pause
from shared.marketo.quota_day import next_quota_reset
from shared.marketo.redaction import redact_text, redact_url
from shared.marketo.responses import Failure, Reply, classify, network_failure
from shared.marketo.stats import OK
from shared.marketo.transport_parts import (
    CREDENTIALS_EXTENSION,
    IdentityCredentials,
    PreparedCall,
    may_resend,
    param_text,
    timeout_for,
)
from shared.retry import RetryPolicy, next_delay
from shared.settings import MarketoSettings

logger = logging.getLogger("shared.marketo")

DEFAULT_TIMEOUT = 30.0
"""Marketo's server-side limit for endpoints without a longer one (DEV leads.md "Timeouts")."""
IDENTITY_PATH = "/identity/oauth/token"
TRANSIENT_POLICY = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=30.0)
"""604/608/611/713/5xx and network failures: 4 tries in all, 2-4-8 s apart (jittered)."""
MAX_THROTTLE_RETRIES = 3
"""Resends after 606/615 before giving up with :class:`~shared.errors.ThrottledError`."""
RATE_PAUSE_JITTER = 2.0
_MESSAGE_LIMIT = 300
# --- the transport ----------------------------------------------------------------------------


Params = Mapping[str, str | int | bool | None]


class MarketoTransport:
    """One httpx pool and one token for a Marketo instance, every call through the governor."""

    def __init__(
        self,
        settings: MarketoSettings,
        *,
        governor: CallGate,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        transient_policy: RetryPolicy = TRANSIENT_POLICY,
        max_throttle_retries: int = MAX_THROTTLE_RETRIES,
        rng: random.Random | None = None,
        token_refresh_margin: float = 60.0,
    ) -> None:
        pool = max(1, governor.limits.max_concurrency) + 1  # +1: a token fetch during a call
        inner = transport or httpx.AsyncHTTPTransport(
            limits=pool_limits(pool),
            retries=0,
        )
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            transport=IdentityCredentials(inner, settings.client_id, settings.client_secret),
            headers={"Accept": "application/json", "User-Agent": "dmsync-marketo/1"},
            timeout=timeout_for(DEFAULT_TIMEOUT),
            follow_redirects=False,
        )
        self.governor = governor
        self.clock = clock
        self._policy = transient_policy
        self._max_throttle_retries = max_throttle_retries
        self._rng = rng or random.Random()
        self.tokens = MarketoTokenProvider(
            self._fetch_token, clock, refresh_margin=token_refresh_margin
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # -- public calls

    async def call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        endpoint: str,
        params: Params | None = None,
        json_body: Any = None,
        encoded_body: bytes | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
        server_timeout: float = DEFAULT_TIMEOUT,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Send one request and return Marketo's JSON answer once it says ``success``.

        Args:
            method: ``GET`` or ``POST``.
            path: below the base URL, e.g. ``/rest/v1/leads.json``.
            endpoint: the label the call is counted under in the stats.
            params: query parameters; ``None`` values are left out.
            json_body: a JSON body (serialised here), or ``encoded_body`` already serialised.
            files: multipart files (bulk import), with ``data`` as the other form fields.
            server_timeout: Marketo's server-side time limit for this endpoint, in seconds.
            idempotent: whether resending after an ambiguous network failure is safe; by
                default only reads are.

        Raises:
            AuthenticationError, ThrottledError, TransientServiceError, QuotaExhaustedError,
            ApiRequestError: as :mod:`.error_mapping` decides.
        """
        call = self._prepare(
            method,
            path,
            endpoint,
            params,
            json_body,
            encoded_body,
            files,
            data,
            server_timeout,
            idempotent,
            expect="json",
        )
        reply = await self._exchange(call)
        assert reply.body is not None
        return reply.body

    async def call_text(
        self, path: str, *, endpoint: str, server_timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """``GET`` a file Marketo answers as text (bulk failures/warnings), checked the same way."""
        call = self._prepare(
            "GET", path, endpoint, None, None, None, None, None, server_timeout, True, expect="text"
        )
        reply = await self._exchange(call)
        return reply.text or ""

    # -- building

    def _prepare(
        self,
        method: str,
        path: str,
        endpoint: str,
        params: Params | None,
        json_body: Any,
        encoded_body: bytes | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        data: Mapping[str, str] | None,
        timeout: float,
        idempotent: bool | None,
        *,
        expect: Literal["json", "text"],
        authenticated: bool = True,
    ) -> PreparedCall:
        query = {k: param_text(v) for k, v in (params or {}).items() if v is not None}
        content = (
            encoded_body
            if encoded_body is not None
            else (encode_json(json_body) if json_body is not None else None)
        )
        content_type = "application/json" if content is not None else None
        safe_to_resend = (method == "GET") if idempotent is None else idempotent
        if (
            method == "GET"
            and len(str(self._client.base_url)) + len(path) + len(str(httpx.QueryParams(query))) + 1
            > MAX_URI_CHARS
        ):
            # Reference B.2: a URI over 8 KB gets 414; POST the query as a form with _method=GET.
            content = str(httpx.QueryParams(query)).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
            query = {"_method": "GET"}
            method = "POST"
        limit = MAX_BULK_BODY_BYTES if files else MAX_BODY_BYTES
        size = (
            len(content) if content is not None else sum(len(f[1]) for f in (files or {}).values())
        )
        if size > limit:
            raise ApiRequestError(
                f"Marketo {method} {path}: request body of {size} bytes is over the "
                f"{limit}-byte limit; it was not sent",
                system="marketo",
                status=413,
            )
        return PreparedCall(
            method,
            path,
            endpoint,
            query,
            content,
            content_type,
            files,
            data,
            timeout,
            safe_to_resend,
            authenticated,
            expect,
        )

    def _build(self, call: PreparedCall, token: AccessToken | None) -> httpx.Request:
        headers = {"Content-Type": call.content_type} if call.content_type else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.value}"
        extensions = {CREDENTIALS_EXTENSION: True} if call.path == IDENTITY_PATH else None
        return self._client.build_request(
            call.method,
            call.path,
            params=call.params,
            content=call.content,
            files=call.files,
            data=call.data,
            headers=headers,
            timeout=timeout_for(call.timeout),
            extensions=extensions,
        )

    # -- the loop

    async def _exchange(self, call: PreparedCall) -> Reply:
        refreshed = False
        throttles = 0
        transient_failures = 0
        while True:
            token = await self.tokens.get() if call.authenticated else None
            result = await self._send_once(call, token)
            if isinstance(result, Reply):
                return result
            action = result.rule.action
            if action is Action.REAUTHENTICATE and call.authenticated and not refreshed and token:
                logger.info(
                    "Marketo %s: token refused (%s); fetching a new one",
                    call.endpoint,
                    result.outcome,
                )
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if action in (Action.WAIT_FOR_WINDOW, Action.SHORT_BACKOFF):
                throttles += 1
                if throttles > self._max_throttle_retries:
                    raise self._error(call, result, retry_after=self.governor.limits.window_seconds)
                await self._back_off_throttled(call, result, throttles)
                continue
            if action is Action.RETRY_TRANSIENT:
                transient_failures += 1
                delay = next_delay(transient_failures, self._policy, None, self._rng)
                if delay is None or not may_resend(call, result):
                    raise self._error(call, result)
                logger.warning(
                    "Marketo %s: %s (%s); retry %d in %.1f s",
                    call.endpoint,
                    result.rule.meaning,
                    result.outcome,
                    transient_failures,
                    delay,
                )
                await self.clock.sleep(delay)
                continue
            if action is Action.STOP_FOR_THE_DAY:
                resets_at = next_quota_reset(self.clock.now())
                self.governor.stop_until(resets_at)
                logger.error("Marketo daily quota reached (607); calls stop until %s", resets_at)
                raise QuotaExhaustedError(
                    self._message(call, result),
                    resets_at=resets_at,
                    system="marketo",
                    code=result.code,
                    status=result.status,
                )
            raise self._error(call, result)

    async def _back_off_throttled(self, call: PreparedCall, result: Failure, attempt: int) -> None:
        if result.rule.action is Action.WAIT_FOR_WINDOW:
            pause = rate_limit_pause(
                self.governor.limits.window_seconds, self._rng, RATE_PAUSE_JITTER
            )
            # Everyone waits: the shared window is full, whoever filled it (reference B.2).
            self.governor.pause(pause)
            logger.warning(
                "Marketo %s: rate limit hit (%s), all calls pause %.1f s",
                call.endpoint,
                result.outcome,
                pause,
            )
        else:
            delay = concurrency_backoff(attempt, self._rng)
            logger.warning(
                "Marketo %s: concurrency limit hit (%s), retry in %.1f s",
                call.endpoint,
                result.outcome,
                delay,
            )
            await self.clock.sleep(delay)

    async def _send_once(self, call: PreparedCall, token: AccessToken | None) -> Reply | Failure:
        request = self._build(call, token)
        result: Reply | Failure
        async with self.governor.slot():
            try:
                response = await self._client.send(request)
            except httpx.HTTPError as exc:
                result = network_failure(exc)
            else:
                result = classify(response.status_code, response.content, expect=call.expect)
        outcome = OK if isinstance(result, Reply) else result.outcome
        self.governor.stats.record(call.endpoint, outcome)
        logger.debug("Marketo %s %s -> %s", call.method, redact_url(request.url), outcome)
        return result

    # -- identity

    async def _fetch_token(self) -> TokenGrant:
        call = self._prepare(
            "GET",
            IDENTITY_PATH,
            "identity.token",
            {"grant_type": "client_credentials"},
            None,
            None,
            None,
            None,
            DEFAULT_TIMEOUT,
            True,
            expect="json",
            authenticated=False,
        )
        try:
            body = (await self._exchange(call)).body
        except AuthenticationError:
            raise AuthenticationError(
                "Marketo rejected the client credentials (check MARKETO_CLIENT_ID and "
                "MARKETO_CLIENT_SECRET)",
                system="marketo",
                status=401,
            ) from None
        token = body.get("access_token") if body else None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(
                "Marketo's identity endpoint answered without an access_token", system="marketo"
            )
        try:
            expires_in = float(body.get("expires_in", 3600)) if body else 3600.0
        except (TypeError, ValueError):
            expires_in = 3600.0
        scope = body.get("scope") if body else None
        return TokenGrant(token, expires_in, scope if isinstance(scope, str) else None)

    # -- errors

    def _message(self, call: PreparedCall, failure: Failure) -> str:
        text = redact_text(failure.message)[:_MESSAGE_LIMIT]
        what = f"{failure.code} {text}" if failure.code else text
        rid = f" (requestId {failure.request_id})" if failure.request_id else ""
        return f"Marketo {call.method} {call.path} failed: {what}{rid}"

    def _error(
        self, call: PreparedCall, failure: Failure, *, retry_after: float | None = None
    ) -> DmsyncError:
        message = self._message(call, failure)
        cls = failure.rule.error
        if issubclass(cls, RetriableError):
            return cls(
                message,
                retry_after=retry_after,
                system="marketo",
                code=failure.code,
                status=failure.status,
            )
        return cls(message, system="marketo", code=failure.code, status=failure.status)
