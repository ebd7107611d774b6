"""Assertions on Marketo's envelope, shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx


def ok(response: httpx.Response) -> dict[str, Any]:
    """The body of a call that succeeded as a whole (HTTP 200, ``success: true``)."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True, body
    assert isinstance(body["requestId"], str) and body["requestId"]
    return body


def error_code(response: httpx.Response, status: int = 200) -> str:
    """The single response-level error code of a failed call (``success: false``)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False, body
    assert body["requestId"]
    assert len(body["errors"]) == 1
    code: str = body["errors"][0]["code"]
    assert isinstance(code, str)
    return code


def reason(item: dict[str, Any]) -> str:
    """The reason code of a skipped result item."""
    assert item["status"] == "skipped", item
    code: str = item["reasons"][0]["code"]
    return code


def sync_leads(client: httpx.Client, records: list[dict[str, Any]], **options: Any) -> list[Any]:
    """``POST /rest/v1/leads.json``; returns the result items."""
    result: list[Any] = ok(client.post("/rest/v1/leads.json", json={**options, "input": records}))[
        "result"
    ]
    return result
