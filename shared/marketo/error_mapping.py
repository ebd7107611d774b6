"""Marketo's error codes as data: what each means and what the client does about it.

Marketo reports a failed request three ways (reference B.3; DEV error-codes.md):

* an HTTP status: normally only 413 (body over 1 MB) and 414 (URI over 8 KB); the identity
  endpoint answers 401 for bad credentials; gateways may answer 5xx;
* HTTP 200 with ``success:false`` and ``errors:[{code, message}]``: a *response-level* code
  (6xx/7xx, sometimes a 1xxx such as 1003 "Too many results match the filter"); the request
  was not carried out;
* HTTP 200 with ``success:true`` and per-record ``status:"skipped"``: those are not errors of
  the request and are returned to the caller as :class:`~shared.marketo.models.RecordOutcome`.

The tables below are the single place that decides the reaction to a code; the request loop
(:mod:`.transport`) only follows the :class:`Action`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    DmsyncError,
    QuotaExhaustedError,
    ThrottledError,
    TransientServiceError,
)


class Action(Enum):
    """What the request loop does when it meets a code."""

    REAUTHENTICATE = "refresh the access token once, then resend once"
    WAIT_FOR_WINDOW = "pause every caller for a rate window (plus jitter), then resend"
    SHORT_BACKOFF = "back off briefly, then resend"
    RETRY_TRANSIENT = "resend with exponential backoff, a bounded number of times"
    STOP_FOR_THE_DAY = "stop all calls until the quota resets and raise QuotaExhaustedError"
    DEFER = "do not resend now; raise a retriable error so the queue tries later"
    FAIL = "raise: resending the same request cannot succeed"


@dataclass(frozen=True)
class CodeRule:
    """The client's reaction to one Marketo code or HTTP status."""

    action: Action
    error: type[DmsyncError]
    meaning: str


_AUTH = Action.REAUTHENTICATE
_TRANSIENT = Action.RETRY_TRANSIENT

RESPONSE_CODES: dict[str, CodeRule] = {
    # 6xx: "the request failed completely and was not executed" (DEV error-codes.md).
    "502": CodeRule(_TRANSIENT, TransientServiceError, "bad gateway (retry with backoff)"),
    "601": CodeRule(_AUTH, AuthenticationError, "access token invalid"),
    "602": CodeRule(_AUTH, AuthenticationError, "access token expired"),
    "603": CodeRule(Action.FAIL, ApiRequestError, "access denied (API user lacks permission)"),
    "604": CodeRule(_TRANSIENT, TransientServiceError, "request timed out on the server"),
    "605": CodeRule(Action.FAIL, ApiRequestError, "HTTP method not supported"),
    "606": CodeRule(Action.WAIT_FOR_WINDOW, ThrottledError, "rate limit (100 calls / 20 s)"),
    "607": CodeRule(Action.STOP_FOR_THE_DAY, QuotaExhaustedError, "daily quota reached"),
    "608": CodeRule(_TRANSIENT, TransientServiceError, "API temporarily unavailable"),
    "609": CodeRule(Action.FAIL, ApiRequestError, "invalid JSON body"),
    "610": CodeRule(Action.FAIL, ApiRequestError, "requested resource not found"),
    "611": CodeRule(_TRANSIENT, TransientServiceError, "system error"),
    "612": CodeRule(Action.FAIL, ApiRequestError, "invalid content type"),
    "613": CodeRule(Action.FAIL, ApiRequestError, "invalid multipart request"),
    "614": CodeRule(_TRANSIENT, TransientServiceError, "subscription unreachable (temporary)"),
    "615": CodeRule(Action.SHORT_BACKOFF, ThrottledError, "concurrent access limit (10)"),
    "616": CodeRule(Action.FAIL, ApiRequestError, "invalid subscription type"),
    # 7xx: the request was wrongly parameterised or found nothing.
    "701": CodeRule(Action.FAIL, ApiRequestError, "a required value is blank"),
    "702": CodeRule(Action.FAIL, ApiRequestError, "no data found"),
    "703": CodeRule(Action.FAIL, ApiRequestError, "feature not enabled for the subscription"),
    "704": CodeRule(Action.FAIL, ApiRequestError, "invalid date format"),
    "709": CodeRule(Action.FAIL, ApiRequestError, "business rule violation"),
    "710": CodeRule(Action.FAIL, ApiRequestError, "parent folder not found"),
    "711": CodeRule(Action.FAIL, ApiRequestError, "incompatible folder type"),
    "713": CodeRule(_TRANSIENT, TransientServiceError, "transient error (wait and retry)"),
    "718": CodeRule(Action.FAIL, ApiRequestError, "externalSalesPersonId not found"),
    "719": CodeRule(_TRANSIENT, TransientServiceError, "lock wait timeout"),
    # 1xxx at response level: the whole request was refused.
    "1003": CodeRule(Action.FAIL, ApiRequestError, "invalid data or too many matches"),
    "1006": CodeRule(Action.FAIL, ApiRequestError, "field not found"),
    "1011": CodeRule(Action.FAIL, ApiRequestError, "field not supported for lookup"),
    "1013": CodeRule(Action.FAIL, ApiRequestError, "object not found"),
    "1016": CodeRule(Action.DEFER, ThrottledError, "too many imports queued (10)"),
    "1018": CodeRule(Action.FAIL, ApiRequestError, "refused: a native CRM sync is enabled"),
    "1019": CodeRule(Action.DEFER, ThrottledError, "an import to this list is in progress"),
    "1029": CodeRule(Action.DEFER, ThrottledError, "too many jobs queued or export quota used"),
    "1035": CodeRule(Action.FAIL, ApiRequestError, "unsupported filter type"),
}
"""Response-level ``errors[].code`` → reaction. Codes not listed fail with ApiRequestError."""

HTTP_STATUSES: dict[int, CodeRule] = {
    401: CodeRule(_AUTH, AuthenticationError, "unauthorized"),
    413: CodeRule(Action.FAIL, ApiRequestError, "request body over the 1 MB limit"),
    414: CodeRule(Action.FAIL, ApiRequestError, "request URI over the 8 KB limit"),
    429: CodeRule(Action.WAIT_FOR_WINDOW, ThrottledError, "too many requests"),
}
"""Non-200 HTTP statuses → reaction. Other 5xx retry as transient; other 4xx fail."""

_UNKNOWN_CODE = CodeRule(Action.FAIL, ApiRequestError, "request refused")
_SERVER_ERROR = CodeRule(_TRANSIENT, TransientServiceError, "server error")
_CLIENT_ERROR = CodeRule(Action.FAIL, ApiRequestError, "request refused")


def rule_for_code(code: str) -> CodeRule:
    """The reaction to a response-level Marketo ``code``."""
    return RESPONSE_CODES.get(code.strip(), _UNKNOWN_CODE)


def rule_for_status(status: int) -> CodeRule:
    """The reaction to a non-200 HTTP ``status``."""
    if status in HTTP_STATUSES:
        return HTTP_STATUSES[status]
    return _SERVER_ERROR if status >= 500 else _CLIENT_ERROR
