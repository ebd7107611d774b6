"""Dataverse errors (HTTP status + OData error body) mapped onto the project's taxonomy.

The body is ``{"error": {"code": "0x...", "message": "..."}}`` (reference §4). The hex code is
kept in ``.code`` (normalised to ``0x`` + upper-case hex, so ``-2147204270`` and ``0x80044352``
compare equal) and the status in ``.status``; the message names what we were doing and quotes
Dataverse's message, truncated. Request headers (and so the bearer token) never reach it.

The rules, first match wins:

====================================================  =====================================
condition                                             error
====================================================  =====================================
code ``0x80044352`` (ExpiredVersionStamp)             DeltaTokenExpiredError
status 429, or a service-protection code              ThrottledError (with ``retry_after``)
status 401, or ``0x8005F101`` (AccessTokenExpired)    AuthenticationError
code ``0x80060882`` (ConcurrencyVersionMismatch)      ConcurrencyConflict
a record-level failure about a known record           RecordError
status 408 or 5xx                                     TransientServiceError
anything else (other 4xx: 403, 405, ...)              ApiRequestError
====================================================  =====================================

A "record-level failure" is status 400/404/409/412/413/422, or one of the codes that are about
the row's data (duplicate, validation, plug-in, not found) whatever the status, on a request
that addressed a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    ConcurrencyConflict,
    DeltaTokenExpiredError,
    DmsyncError,
    RecordError,
    RecordRef,
    ThrottledError,
    TransientServiceError,
)

SYSTEM = "dynamics"
MAX_MESSAGE_CHARS = 300

# Codes from reference §1, §3 and §4 (PAD compose-http-requests-handle-errors.md, api-limits.md).
EXPIRED_VERSION_STAMP = "0x80044352"
OBJECT_DOES_NOT_EXIST = "0x80040217"
DUPLICATE_RECORD = "0x80040237"
DUPLICATE_DETECTED = "0x80040333"
VALIDATION_FAILED = "0x80044331"
PLUGIN_FAILED = "0x80040265"
ACCESS_TOKEN_EXPIRED = "0x8005F101"  # noqa: S105 - an error code, not a secret
CONCURRENCY_VERSION_MISMATCH = "0x80060882"
THROTTLE_REQUESTS = "0x80072322"
THROTTLE_EXECUTION_TIME = "0x80072321"
THROTTLE_CONCURRENCY = "0x80072326"

THROTTLE_CODES = frozenset({THROTTLE_REQUESTS, THROTTLE_EXECUTION_TIME, THROTTLE_CONCURRENCY})
RECORD_CODES = frozenset(
    {OBJECT_DOES_NOT_EXIST, DUPLICATE_RECORD, DUPLICATE_DETECTED, VALIDATION_FAILED, PLUGIN_FAILED}
)
RECORD_STATUSES = frozenset({400, 404, 409, 412, 413, 422})


@dataclass(frozen=True)
class ODataError:
    """The ``error`` object of a response body; both parts may be missing."""

    code: str | None
    message: str | None


def normalize_code(code: object) -> str | None:
    """``0x`` + upper-case hex for a Dataverse code given as hex or as a signed decimal."""
    if code is None:
        return None
    text = str(code).strip()
    if not text:
        return None
    if text.lower().startswith("0x"):
        return "0x" + text[2:].upper()
    try:
        number = int(text)
    except ValueError:
        return text
    return f"0x{number & 0xFFFFFFFF:08X}"


def parse_error_body(body: bytes | str) -> ODataError:
    """Read an OData error body; anything unreadable gives an error with no code or message."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return ODataError(None, text.strip() or None)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return ODataError(None, None)
    message = error.get("message")
    return ODataError(
        normalize_code(error.get("code")), message if isinstance(message, str) else None
    )


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def map_error(
    status: int | None,
    error: ODataError,
    *,
    action: str,
    record: RecordRef | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> DmsyncError:
    """The taxonomy error for a failed Dataverse call.

    Args:
        status: the HTTP status (of the part, inside a ``$batch``), or None if there was none.
        error: the parsed OData error body.
        action: what we were doing, in words, e.g. ``"upsert contacts(emailaddress1='a@b.c')"``.
        record: the record the request was about, if any (makes data failures RecordErrors).
        retry_after: the server's requested wait in seconds (``Retry-After``).
        request_id: Dataverse's ``REQ_ID`` / ``x-ms-service-request-id``, for support.
    """
    code = error.code
    detail = truncate(error.message.strip()) if error.message else "no error message"
    message = f"Dataverse {action} failed: {detail}"
    if request_id:
        message += f" [request {truncate(request_id, 64)}]"
    if code == EXPIRED_VERSION_STAMP:
        return DeltaTokenExpiredError(message, system=SYSTEM, code=code, status=status)
    if status == 429 or code in THROTTLE_CODES:
        return ThrottledError(
            message, retry_after=retry_after, system=SYSTEM, code=code, status=status
        )
    if status == 401 or code == ACCESS_TOKEN_EXPIRED:
        return AuthenticationError(message, system=SYSTEM, code=code, status=status)
    if code == CONCURRENCY_VERSION_MISMATCH:
        return ConcurrencyConflict(
            message, retry_after=retry_after, system=SYSTEM, code=code, status=status
        )
    if record is not None and (status in RECORD_STATUSES or code in RECORD_CODES):
        return RecordError(message, record=record, system=SYSTEM, code=code, status=status)
    if status is not None and (status == 408 or status >= 500):
        return TransientServiceError(
            message, retry_after=retry_after, system=SYSTEM, code=code, status=status
        )
    return ApiRequestError(message, system=SYSTEM, code=code, status=status)
