"""Service protection (requests and concurrency) and injected faults."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from emulators.dynamics.runner import EmulatorHandle

from .conftest import ODATA_HEADERS


def test_request_limit_answers_429_with_retry_after_until_the_window_slides(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Over the window's budget: 429, 0x80072322, the documented message, Retry-After seconds."""
    dyn.control.set_limits(requests_per_window=5, window_seconds=300)
    remaining = [
        int(api.get("WhoAmI").headers["x-ms-ratelimit-burst-remaining-xrm-requests"])
        for _ in range(5)
    ]
    assert remaining == [4, 3, 2, 1, 0]
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 5 over time window of 300 seconds.",
    }
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300
    dyn.control.advance_clock(seconds=301)
    assert api.get("WhoAmI").status_code == 200
    assert dyn.control.limits()["throttled"]["requests"] == 1


def test_limits_are_on_by_default_at_the_documented_numbers(dyn: EmulatorHandle) -> None:
    """6,000 requests / 300 s and 52 concurrent requests unless a test changes them."""
    settings = dyn.control.limits()
    assert settings["enabled"] is True
    assert (
        settings["requests_per_window"],
        settings["window_seconds"],
        settings["concurrent_requests"],
    ) == (6000, 300, 52)


def test_a_batch_counts_as_one_request(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Dataverse docs, "Service protection API limits": batching avoids the number-of-requests
    limit."""
    dyn.control.set_limits(requests_per_window=2)
    boundary = "batch_x"
    part = (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n\r\n\r\n"
    )
    body = f"--{boundary}\r\n{part}" * 10 + f"--{boundary}--\r\n"
    batch = api.post(
        "$batch",
        content=body.encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    assert batch.status_code == 200
    assert api.get("WhoAmI").status_code == 200
    assert api.get("WhoAmI").status_code == 429


def test_concurrency_limit_answers_429_immediately(dyn: EmulatorHandle, token: str) -> None:
    """Requests held in flight count against the concurrency limit: the next one gets 0x80072326."""
    dyn.control.set_limits(concurrent_requests=2)
    dyn.control.add_fault(
        path_prefix="/api/data/v9.2/accounts", sequence=["timeout", "timeout"], hang_seconds=60
    )
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    errors: list[type[BaseException]] = []

    def hold() -> None:
        with dyn.http_client(timeout=60) as http:
            try:
                http.get(f"{dyn.api_url}/accounts", headers=headers)
            except httpx.HTTPError as exc:
                errors.append(type(exc))

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(500):  # bounded wait for both requests to be in flight
        if dyn.control.limits()["in_flight"] == 2:
            break
        time.sleep(0.01)
    assert dyn.control.limits()["in_flight"] == 2
    with dyn.http_client() as http:
        third = http.get(f"{dyn.api_url}/WhoAmI", headers=headers)
    assert third.status_code == 429
    assert third.json()["error"] == {
        "code": "0x80072326",
        "message": "Number of concurrent requests exceeded the limit of 2.",
    }
    assert int(third.headers["Retry-After"]) >= 1
    dyn.control.release_held()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [httpx.RemoteProtocolError, httpx.RemoteProtocolError]
    with dyn.http_client() as http:
        assert http.get(f"{dyn.api_url}/WhoAmI", headers=headers).status_code == 200


def test_fault_sequence_gives_429_500_503_in_order_on_the_matching_prefix(
    dyn: EmulatorHandle, api: httpx.Client
) -> None:
    """Exact faults per path prefix; other paths are untouched."""
    dyn.control.add_fault(
        path_prefix="/api/data/v9.2/contacts", sequence=["429", "500", "503"], retry_after_seconds=7
    )
    assert api.get("accounts").status_code == 200
    first = api.get("contacts")
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert first.json()["error"]["code"] == "0x80072322"
    assert api.get("contacts").status_code == 500
    assert api.get("contacts").status_code == 503
    assert api.get("contacts").status_code == 200
    assert dyn.control.faults()["injected"] == {"429": 1, "500": 1, "503": 1}


def test_dropped_connection_and_timeout(dyn: EmulatorHandle, token: str) -> None:
    """``drop`` closes the connection mid-response; ``timeout`` holds past the client's timeout."""
    dyn.control.add_fault(
        path_prefix="/api/data/v9.2/leads", sequence=["drop", "timeout"], hang_seconds=30
    )
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    # The drop is waited for with a generous timeout (a loaded machine must not turn it into a
    # timeout); the hang lasts 30 s, so a 0.3 s read timeout always fires on it.
    with dyn.http_client(timeout=30) as http, pytest.raises(httpx.RemoteProtocolError):
        http.get(f"{dyn.api_url}/leads", headers=headers)
    with dyn.http_client(timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
        http.get(f"{dyn.api_url}/leads", headers=headers)
    dyn.control.release_held()


def test_random_faults_are_deterministic_for_a_seed(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """The same seed and rule give the same fault pattern."""

    def pattern() -> list[int]:
        dyn.control.clear_faults(seed=11)
        dyn.control.add_fault(rates={"500": 0.3, "503": 0.2})
        return [api.get("WhoAmI").status_code for _ in range(30)]

    first, second = pattern(), pattern()
    assert first == second
    assert {200, 500, 503} <= set(first)


def test_latency_and_method_filter(dyn: EmulatorHandle, api: httpx.Client) -> None:
    """Latency delays matching requests; a methods list limits a rule to those methods."""
    dyn.control.add_fault(methods=["POST"], sequence=["500"], latency_ms=60)
    assert api.get("accounts").status_code == 200
    started = time.monotonic()
    assert api.post("accounts", json={"name": "x"}).status_code == 500
    assert time.monotonic() - started >= 0.06
    assert api.post("accounts", json={"name": "x"}).status_code == 204
