"""The request loop: headers, 401 refresh, Retry-After, transient retries, limits, counters."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from shared.clock import ManualClock
from shared.dynamics.transport import dump_json
from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    ConfigurationError,
    ThrottledError,
    TransientServiceError,
)
from shared.retry import RetryPolicy

from .fakes import API, SECRET, FakeCredential, Script, json_response, make_client, odata_error

WHOAMI = {
    "UserId": "00000000-0000-0000-0000-00000000000a",
    "BusinessUnitId": "00000000-0000-0000-0000-00000000000b",
    "OrganizationId": "00000000-0000-0000-0000-00000000000c",
}


def ok() -> httpx.Response:
    return json_response(200, WHOAMI)


async def test_standard_headers_and_bearer_token() -> None:
    """Every request carries the OData headers of the Dataverse docs ("Compose HTTP
    requests and handle errors") and the bearer token."""
    script = Script([ok(), httpx.Response(204)])
    client, _ = make_client(script)
    async with client:
        await client.whoami()
        await client.transport.send("POST", API + "tasks", action="t", body={"a": 1})
    get, post = script.requests
    for request in (get, post):
        assert request.headers["Accept"] == "application/json"
        assert request.headers["OData-MaxVersion"] == "4.0"
        assert request.headers["OData-Version"] == "4.0"
        assert request.headers["If-None-Match"] == "null"
        assert request.headers["Authorization"] == "Bearer token-1"
    assert "Content-Type" not in get.headers
    assert post.headers["Content-Type"] == "application/json"
    assert post.content == b'{"a":1}'
    assert str(get.url) == API + "WhoAmI"


async def test_401_renews_the_token_once_and_repeats() -> None:
    """A rejected token is replaced and the request repeated at once, without a wait."""
    script = Script([odata_error(401, "0x8005F101", "expired"), ok()])
    client, clock = make_client(script)
    async with client:
        who = await client.whoami()
    assert who.user_id == WHOAMI["UserId"]
    assert [r.headers["Authorization"] for r in script.requests] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert client.counters.auth_refreshes == 1
    assert client.counters.retries == 0
    assert clock.sleeps == []


async def test_a_second_401_is_an_authentication_error() -> None:
    """After one renewal, a further 401 stops with AuthenticationError (no secrets in it)."""
    script = Script([odata_error(401, "", "bad token"), odata_error(401, "", "bad token")])
    client, _ = make_client(script)
    async with client:
        with pytest.raises(AuthenticationError) as caught:
            await client.whoami()
    assert caught.value.status == 401
    assert len(script.requests) == 2
    text = f"{caught.value} {caught.value!r} {client!r} {client.tokens!r}"
    assert "token-" not in text
    assert SECRET not in text


async def test_429_waits_the_retry_after_it_was_given() -> None:
    """Retry-After seconds are waited on the injected clock, then the request repeats."""
    script = Script(
        [
            odata_error(429, "0x80072322", "Number of requests exceeded", {"Retry-After": "7"}),
            odata_error(429, "0x80072326", "concurrent", {"Retry-After": "3"}),
            ok(),
        ]
    )
    client, clock = make_client(script)
    async with client:
        await client.whoami()
    assert clock.sleeps == [7.0, 3.0]
    assert client.counters.snapshot() == {
        "requests": 3,
        "retries": 2,
        "throttles": 2,
        "auth_refreshes": 0,
        "batch_operations": 0,
    }


async def test_429_without_retry_after_backs_off_exponentially() -> None:
    """No header: 2^n seconds from the policy's base, with jitter below the ceiling."""
    script = Script([odata_error(429, "0x80072322")] * 3 + [ok()])
    client, clock = make_client(script, policy=RetryPolicy(base_delay=1.0, jitter=0.25))
    async with client:
        await client.whoami()
    assert len(clock.sleeps) == 3
    for n, wait in enumerate(clock.sleeps):
        assert 0.75 * 2**n <= wait <= 2**n


async def test_a_retry_after_beyond_the_clamp_is_raised_not_waited() -> None:
    """A 10-minute demand is surfaced for the queue to wait out; nothing sleeps in-process."""
    script = Script([odata_error(429, "0x80072321", "time", {"Retry-After": "600"})])
    client, clock = make_client(script, policy=RetryPolicy(max_retry_after=120))
    async with client:
        with pytest.raises(ThrottledError) as caught:
            await client.whoami()
    assert caught.value.retry_after == 600.0
    assert caught.value.code == "0x80072321"
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_transient_5xx_is_retried_then_succeeds(status: int) -> None:
    """Gateway and availability errors on a read are repeated with backoff."""
    script = Script([httpx.Response(status), httpx.Response(status), ok()])
    client, clock = make_client(script)
    async with client:
        await client.whoami()
    assert len(script.requests) == 3
    assert len(clock.sleeps) == 2
    assert client.counters.retries == 2


async def test_503_retry_after_is_honoured() -> None:
    """A Retry-After on a 503 is honoured like one on a 429."""
    script = Script([httpx.Response(503, headers={"Retry-After": "4"}), ok()])
    client, clock = make_client(script)
    async with client:
        await client.whoami()
    assert clock.sleeps == [4.0]


async def test_retries_are_bounded() -> None:
    """max_attempts tries in all, then the last error is raised."""
    script = Script([httpx.Response(503)] * 3)
    client, clock = make_client(script, policy=RetryPolicy(max_attempts=3))
    async with client:
        with pytest.raises(TransientServiceError) as caught:
            await client.whoami()
    assert caught.value.status == 503
    assert len(script.requests) == 3
    assert len(clock.sleeps) == 2


async def test_throttling_past_the_attempt_budget_raises_throttled() -> None:
    """A 429 that never lets up ends as ThrottledError carrying the last wait."""
    script = Script([odata_error(429, "0x80072322", headers={"Retry-After": "5"})] * 2)
    client, clock = make_client(script, policy=RetryPolicy(max_attempts=2))
    async with client:
        with pytest.raises(ThrottledError) as caught:
            await client.whoami()
    assert caught.value.retry_after == 5.0
    assert clock.sleeps == [5.0]


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "0x80040203", ApiRequestError),
        (403, "0x80040220", ApiRequestError),
        (404, "0x80040217", ApiRequestError),
        (500, "0x80040216", TransientServiceError),
    ],
)
async def test_other_errors_are_not_retried(status: int, code: str, expected: type) -> None:
    """4xx (but 429) and 500 are raised on the first answer."""
    script = Script([odata_error(status, code)])
    client, clock = make_client(script)
    async with client:
        with pytest.raises(expected) as caught:
            await client.whoami()
    assert caught.value.code == code
    assert len(script.requests) == 1
    assert clock.sleeps == []


async def test_read_timeouts_are_retried() -> None:
    """A timed-out read is repeated."""
    script = Script([httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), ok()])
    client, clock = make_client(script)
    async with client:
        await client.whoami()
    assert len(script.requests) == 3
    assert len(clock.sleeps) == 2


async def test_a_create_that_may_have_landed_is_not_repeated() -> None:
    """POST + read timeout or 503: surfaced, not retried, so a record is never created twice."""
    for failure in (httpx.ReadTimeout("slow"), httpx.Response(503)):
        script = Script([failure])
        client, _ = make_client(script)
        async with client:
            with pytest.raises(TransientServiceError):
                await client.transport.send("POST", API + "tasks", action="create", body={})
        assert len(script.requests) == 1


async def test_a_create_whose_connection_never_opened_is_repeated() -> None:
    """A connect failure means the POST was never sent: repeating it is safe."""
    script = Script([httpx.ConnectError("refused"), httpx.Response(204)])
    client, _ = make_client(script)
    async with client:
        response = await client.transport.send("POST", API + "tasks", action="create", body={})
    assert response.status_code == 204
    assert len(script.requests) == 2


async def test_timeout_error_text_has_no_url() -> None:
    """Network failures are described by type only."""
    script = Script([httpx.ReadTimeout("https://contoso/api?$deltatoken=abc")] * 2)
    client, _ = make_client(script, policy=RetryPolicy(max_attempts=2))
    async with client:
        with pytest.raises(TransientServiceError) as caught:
            await client.whoami()
    assert "deltatoken" not in str(caught.value)
    assert "timed out (ReadTimeout)" in str(caught.value)


async def test_links_to_other_hosts_never_get_the_token() -> None:
    """A stored link naming another host is refused before any request."""
    script = Script([])
    client, _ = make_client(script)
    async with client:
        for link in (
            "https://evil.example.com/api/data/v9.2/contacts?$deltatoken=1",
            "http://contoso.crm.dynamics.com/api/data/v9.2/contacts",
            "https://contoso.crm.dynamics.com:8443/api/data/v9.2/contacts",
            "https://contoso.crm.dynamics.com/other/path",
        ):
            with pytest.raises(ConfigurationError, match="refusing to follow it"):
                client.transport.checked_link(link)
        same = "https://CONTOSO.crm.dynamics.com/api/data/v9.2/contacts?$skiptoken=x"
        assert client.transport.checked_link(same) == same
    assert script.requests == []


async def test_the_concurrency_cap_bounds_requests_in_flight() -> None:
    """With a cap of 3, twenty concurrent calls never have more than 3 requests outstanding."""
    in_flight = 0
    peak = 0

    async def slow(_: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return ok()

    script = Script([slow] * 20)
    client, _ = make_client(script, max_concurrency=3)
    async with client:
        await asyncio.gather(*(client.whoami() for _ in range(20)))
    assert peak == 3
    assert client.limiter.peak_in_flight == 3
    assert client.counters.requests == 20


async def test_default_cap_comes_from_settings() -> None:
    """DYNAMICS_MAX_CONCURRENCY (default 8) sizes the limiter and the connection pool."""
    client, _ = make_client(Script([]))
    async with client:
        assert client.limiter.limit == 8


async def test_token_is_shared_across_concurrent_requests() -> None:
    """Concurrent first calls fetch a single token."""
    clock = ManualClock()
    credential = FakeCredential(clock)
    script = Script([ok() for _ in range(10)])
    client, _ = make_client(script, clock=clock, credential=credential)
    async with client:
        await asyncio.gather(*(client.whoami() for _ in range(10)))
    assert credential.issued == 1


def test_request_bodies_keep_every_digit_and_normalise_times() -> None:
    """Decimals go out exactly; aware date times as UTC 'Z'; UUIDs and dates as text."""
    body = {
        "revenue": Decimal("922337203685477.1234"),
        "when": datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        "birthdate": date(1990, 5, 17),
        "ref": uuid.UUID(int=1),
        "tags": ["a", 1, 2.5, None, True],
        "name": 'Ünal "quoted"',
    }
    assert json.loads(dump_json(body), parse_float=Decimal) == {
        "revenue": Decimal("922337203685477.1234"),
        "when": "2026-03-01T08:00:00Z",
        "birthdate": "1990-05-17",
        "ref": "00000000-0000-0000-0000-000000000001",
        "tags": ["a", 1, Decimal("2.5"), None, True],
        "name": 'Ünal "quoted"',
    }
    with pytest.raises(ValueError, match="NaN"):
        dump_json({"x": float("nan")})
    with pytest.raises(TypeError, match="cannot send a value of type object"):
        dump_json({"x": object()})


async def test_logs_never_carry_tokens_or_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 renewal, a throttle and a failure log their story without a token or secret."""
    caplog.set_level(logging.DEBUG)
    script = Script(
        [
            odata_error(401, "", "expired"),
            odata_error(429, "0x80072322", headers={"Retry-After": "1"}),
            ok(),
        ]
    )
    client, _ = make_client(script)
    async with client:
        await client.whoami()
    assert "retry 1 in 1.0 s after HTTP 429" in caplog.text
    assert "token-" not in caplog.text
    assert SECRET not in caplog.text
    assert "Bearer" not in caplog.text
