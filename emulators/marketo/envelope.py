"""Marketo's response envelope and error vocabulary (reference B.2/B.3, error-codes.md).

Every REST and bulk response is HTTP 200 with ``requestId`` and ``success``; a whole-request
failure carries ``errors:[{code, message}]`` (codes are quoted integers), a per-record failure is a
``skipped`` result item with ``reasons``. Handlers raise :class:`ApiError` for the former and
return skipped items for the latter.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson
from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json;charset=UTF-8"

# Messages of the response-level codes, worded as error-codes.md lists them.
MESSAGES: dict[str, str] = {
    "413": "Request Entity Too Large",
    "414": "Request-URI Too Long",
    "502": "Bad Gateway",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request time-out",
    "605": "HTTP Method not supported",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "615": "Concurrent access limit reached",
    "718": "ExternalSalesPersonID not found",
}


class ApiError(Exception):
    """A response-level failure: ``success:false`` with one error, nothing was executed."""

    def __init__(self, code: str, message: str | None = None, *, status: int = 200) -> None:
        super().__init__(f"{code}: {message or MESSAGES.get(code, '')}")
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")
        self.status = status


def rate_limit_message(calls: int, window_seconds: float) -> str:
    """606's message: "Max rate limit %s exceeded with in %s secs" (sic, error-codes.md)."""
    return f"Max rate limit '{calls}' exceeded with in '{window_seconds:g}' secs"


def blank(name: str) -> ApiError:
    """701: "%s cannot be blank"."""
    return ApiError("701", f"{name} cannot be blank")


def invalid(message: str) -> ApiError:
    """1003 at response level (e.g. "Too many results match the filter")."""
    return ApiError("1003", message)


class RequestIds:
    """``"e42b#14272d07d78"``-style ids: a per-process counter and the epoch milliseconds."""

    def __init__(self) -> None:
        self._counter = itertools.count(0x1000)

    def next(self) -> str:
        """A fresh request id."""
        return f"{next(self._counter):x}#{int(time.time() * 1000):x}"


def success_body(request_id: str, result: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """``{"requestId", "success": true, "result", ...}``."""
    body: dict[str, Any] = {"requestId": request_id, "success": True}
    if result is not None:
        body["result"] = result
    body.update(extra)
    return body


def error_body(request_id: str, code: str, message: str) -> dict[str, Any]:
    """``{"requestId", "success": false, "errors": [{code, message}]}``."""
    return {
        "requestId": request_id,
        "success": False,
        "errors": [{"code": code, "message": message}],
    }


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    """Serialize with orjson (fast enough for 100k-record control reads)."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_MEDIA_TYPE)
