"""Reading Marketo's answers: what a status, a body or a network failure means (pure).

The order follows DEV error-codes.md: the HTTP status first (normally 200; 413/414 and the
identity endpoint's 401 are the documented exceptions), then ``success`` and the first of
``errors`` (reference B.3). The reason phrase is never read. What to *do* about a failure is the
:class:`~shared.marketo.error_mapping.CodeRule` it carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shared.errors import TransientServiceError
from shared.marketo.error_mapping import Action, CodeRule, rule_for_code, rule_for_status


@dataclass(frozen=True)
class Reply:
    """A successful answer: the parsed JSON object, or the text of a file download."""

    body: dict[str, Any] | None
    text: str | None = None


@dataclass(frozen=True)
class Failure:
    """A refused request: the rule that says what to do and what to tell the caller."""

    rule: CodeRule
    outcome: str
    """How the call is counted in the stats: a Marketo code, ``http_<status>`` or a network
    failure kind."""
    code: str | None
    status: int | None
    message: str
    request_id: str | None = None


def _first_error(body: Mapping[str, Any]) -> tuple[str, str]:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return str(errors[0].get("code", "")).strip(), str(errors[0].get("message", ""))
    return "", "success is false and no error was given"


def classify(
    status: int, content: bytes, *, expect: Literal["json", "text"] = "json"
) -> Reply | Failure:
    """Decide what an HTTP answer from Marketo means (reference B.3)."""
    parsed: Any = None
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = None
    body = parsed if isinstance(parsed, dict) else None
    request_id = str(body["requestId"]) if body and "requestId" in body else None
    if not 200 <= status < 300:
        message = _first_error(body)[1] if body and body.get("errors") else f"HTTP {status}"
        return Failure(rule_for_status(status), f"http_{status}", None, status, message, request_id)
    if body is not None and (
        body.get("success") is False or (body.get("errors") and body.get("success") is not True)
    ):
        code, message = _first_error(body)
        return Failure(
            rule_for_code(code), code or "error", code or None, None, message, request_id
        )
    if expect == "text":
        return Reply(body=None, text=content.decode("utf-8", errors="replace"))
    if body is None:
        return Failure(
            CodeRule(Action.RETRY_TRANSIENT, TransientServiceError, "answer is not JSON"),
            "invalid_response",
            None,
            status,
            "the answer was not a JSON object",
        )
    return Reply(body=body)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that happen before the request left: always safe to resend."""


def network_failure(exc: httpx.HTTPError) -> Failure:
    """A failure to talk to Marketo at all; ``*_before_send`` ones are always safe to resend."""
    sent = not isinstance(exc, _NOT_SENT)
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
    outcome = f"{kind}_after_send" if sent else f"{kind}_before_send"
    return Failure(
        CodeRule(Action.RETRY_TRANSIENT, TransientServiceError, f"{kind} ({type(exc).__name__})"),
        outcome,
        None,
        None,
        f"{type(exc).__name__} talking to Marketo",
    )
