"""The request loop: every Marketo error path, token refresh, throttling, retries, redaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
import pytest

from shared.clock import ManualClock
from shared.errors import (
    ApiRequestError,
    AuthenticationError,
    DmsyncError,
    QuotaExhaustedError,
    RetriableError,
    ThrottledError,
    TransientServiceError,
)
from shared.marketo import Limits
from shared.marketo.error_mapping import RESPONSE_CODES, Action, rule_for_code, rule_for_status
from shared.marketo.responses import Failure, Reply, classify
from tests.unit.marketo.fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeMarketo,
    fail,
    make_client,
    ok,
)

DESCRIBE = "/rest/v1/leads/describe.json"
FIELD = {"id": 2, "displayName": "Company", "dataType": "string", "rest": {"name": "company"}}


def _not_json() -> httpx.Response:
    return httpx.Response(200, text="<html>gateway</html>")


# answer, exception, code, status, calls made in all (retries included)
ERROR_TABLE = [
    pytest.param(fail("603"), ApiRequestError, "603", None, 1, id="603-access-denied"),
    pytest.param(fail("605"), ApiRequestError, "605", None, 1, id="605-method"),
    pytest.param(fail("609"), ApiRequestError, "609", None, 1, id="609-invalid-json"),
    pytest.param(fail("610"), ApiRequestError, "610", None, 1, id="610-not-found"),
    pytest.param(fail("612"), ApiRequestError, "612", None, 1, id="612-content-type"),
    pytest.param(fail("701"), ApiRequestError, "701", None, 1, id="701-blank"),
    pytest.param(fail("702"), ApiRequestError, "702", None, 1, id="702-no-data"),
    pytest.param(fail("709"), ApiRequestError, "709", None, 1, id="709-business-rule"),
    pytest.param(
        fail("1003", "Invalid fields [site]"),
        ApiRequestError,
        "1003",
        None,
        1,
        id="1003-request-level",
    ),
    pytest.param(fail("1018"), ApiRequestError, "1018", None, 1, id="1018-crm-enabled"),
    pytest.param(fail("799"), ApiRequestError, "799", None, 1, id="unknown-code"),
    pytest.param(fail("1016"), ThrottledError, "1016", None, 1, id="1016-too-many-imports"),
    pytest.param(fail("502"), TransientServiceError, "502", None, 4, id="502-bad-gateway"),
    pytest.param(fail("604"), TransientServiceError, "604", None, 4, id="604-timeout"),
    pytest.param(fail("608"), TransientServiceError, "608", None, 4, id="608-unavailable"),
    pytest.param(fail("611"), TransientServiceError, "611", None, 4, id="611-system-error"),
    pytest.param(fail("614"), TransientServiceError, "614", None, 4, id="614-subscription"),
    pytest.param(fail("713"), TransientServiceError, "713", None, 4, id="713-transient"),
    pytest.param(fail("606"), ThrottledError, "606", None, 4, id="606-rate"),
    pytest.param(fail("615"), ThrottledError, "615", None, 4, id="615-concurrency"),
    pytest.param(fail("607"), QuotaExhaustedError, "607", None, 1, id="607-quota"),
    pytest.param(httpx.Response(413), ApiRequestError, None, 413, 1, id="http-413"),
    pytest.param(httpx.Response(414), ApiRequestError, None, 414, 1, id="http-414"),
    pytest.param(httpx.Response(500), TransientServiceError, None, 500, 4, id="http-500"),
    pytest.param(httpx.Response(503), TransientServiceError, None, 503, 4, id="http-503"),
    pytest.param(httpx.Response(429), ThrottledError, None, 429, 4, id="http-429"),
    pytest.param(_not_json(), TransientServiceError, None, 200, 4, id="not-json"),
]


@pytest.mark.parametrize(("answer", "error", "code", "status", "calls"), ERROR_TABLE)
async def test_error_table(
    answer: httpx.Response,
    error: type[DmsyncError],
    code: str | None,
    status: int | None,
    calls: int,
) -> None:
    """Each response-level code and HTTP status raises its taxonomy class after the bounded
    number of attempts its rule allows, carrying the Marketo code and never a secret."""
    fake = FakeMarketo().on("GET", DESCRIBE, answer)
    async with make_client(fake) as client:
        with pytest.raises(error) as raised:
            await client.leads.describe()
    assert type(raised.value) is error
    assert raised.value.code == code
    assert raised.value.status == status
    assert raised.value.system == "marketo"
    assert len(fake.rest_requests()) == calls
    assert client.stats.count(endpoint="leads.describe") == calls
    text = str(raised.value)
    assert CLIENT_SECRET not in text and fake.current_token not in text
    if error is QuotaExhaustedError:
        assert isinstance(raised.value, QuotaExhaustedError) and raised.value.resets_at


def test_every_listed_code_has_a_consistent_rule() -> None:
    """The table's actions match its exception classes (no retriable code raised as fatal)."""
    retry_actions = {
        Action.WAIT_FOR_WINDOW,
        Action.SHORT_BACKOFF,
        Action.RETRY_TRANSIENT,
        Action.DEFER,
    }
    for code, rule in RESPONSE_CODES.items():
        assert (rule.action in retry_actions) == issubclass(rule.error, RetriableError), code
    assert rule_for_code("601").action is Action.REAUTHENTICATE
    assert rule_for_status(502).action is Action.RETRY_TRANSIENT
    assert rule_for_status(404).action is Action.FAIL


def test_classify_reads_success_not_the_status_line() -> None:
    """HTTP 200 with success false is a failure; success true is a reply."""
    failure = classify(200, b'{"success":false,"errors":[{"code":"610","message":"x"}]}')
    assert isinstance(failure, Failure) and failure.code == "610" and failure.status is None
    reply = classify(200, b'{"success":true,"result":[]}')
    assert isinstance(reply, Reply) and reply.body == {"success": True, "result": []}
    assert isinstance(classify(200, b"a,b\r\n1,2\r\n", expect="text"), Reply)


@pytest.mark.parametrize("code", ["601", "602"])
async def test_token_refreshed_once_on_601_602_then_the_call_is_resent(code: str) -> None:
    """A refused token is dropped, a new one fetched, and the call resent with it."""
    fake = FakeMarketo().on("GET", DESCRIBE, fail(code), ok([FIELD]))
    async with make_client(fake) as client:
        fields = await client.leads.describe()
    assert [f.api_name for f in fields] == ["company"]
    rest = fake.rest_requests()
    assert [r.headers["Authorization"] for r in rest] == ["Bearer token-1", "Bearer token-2"]
    assert fake.tokens_issued == 2


async def test_a_second_601_after_refresh_is_an_authentication_error() -> None:
    """Refresh happens once per call: a token refused twice stops with AuthenticationError."""
    fake = FakeMarketo().on("GET", DESCRIBE, fail("601"))
    async with make_client(fake) as client:
        with pytest.raises(AuthenticationError):
            await client.leads.describe()
    assert len(fake.rest_requests()) == 2
    assert fake.tokens_issued == 2


async def test_token_is_cached_and_refreshed_shortly_before_expiry() -> None:
    """One token serves many calls; the next is fetched when less than a minute is left."""
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    fake = FakeMarketo().on("GET", DESCRIBE, ok([FIELD]))
    async with make_client(fake, clock=clock) as client:
        for _ in range(3):
            await client.leads.describe()
        assert fake.tokens_issued == 1
        clock.advance(3599 - 61)
        await client.leads.describe()
        assert fake.tokens_issued == 1
        clock.advance(2)
        await client.leads.describe()
        assert fake.tokens_issued == 2
    assert all("access_token" not in str(r.url) for r in fake.rest_requests())


async def test_a_reissued_short_lived_token_is_used_until_just_before_it_expires() -> None:
    """Asking early returns the same token with its short remaining life (Marketo
    developer docs, "Authentication"); it is
    used until 5 s before expiry rather than fetched again for every call."""
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    fake = FakeMarketo().on("GET", DESCRIBE, ok([FIELD]))
    fake.token_lifetime = 30
    async with make_client(fake, clock=clock) as client:
        await client.leads.describe()
        clock.advance(20)
        await client.leads.describe()
        assert fake.tokens_issued == 1
        clock.advance(6)
        await client.leads.describe()
        assert fake.tokens_issued == 2


async def test_concurrent_callers_share_one_token_fetch() -> None:
    """Five calls started together cause one identity request."""
    fake = FakeMarketo().on("GET", DESCRIBE, ok([FIELD]))
    async with make_client(fake) as client:
        await asyncio.gather(*(client.leads.describe() for _ in range(5)))
    assert fake.tokens_issued == 1


async def test_bad_credentials_raise_authentication_error_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Identity 401 names the settings to check and never shows the secret, in the error or
    in any log line (httpx's own request log included)."""
    caplog.set_level(logging.DEBUG)
    fake = FakeMarketo()
    async with make_client(fake, MARKETO_CLIENT_SECRET="wrong-secret-123") as client:
        with pytest.raises(AuthenticationError) as raised:
            await client.leads.describe()
    assert "MARKETO_CLIENT_SECRET" in str(raised.value)
    for text in [str(raised.value), repr(raised.value), caplog.text]:
        assert "wrong-secret-123" not in text
        assert CLIENT_ID not in text
    assert fake.rest_requests() == []


async def test_credentials_reach_marketo_but_no_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """The identity request carries client_id/client_secret; logs show neither, nor the token."""
    caplog.set_level(logging.DEBUG)
    fake = FakeMarketo().on("GET", DESCRIBE, ok([FIELD]))
    async with make_client(fake) as client:
        await client.leads.describe()
    identity = fake.requests[0]
    assert identity.url.params["client_secret"] == CLIENT_SECRET
    assert identity.url.params["grant_type"] == "client_credentials"
    assert "HTTP Request" in caplog.text  # httpx logged the calls...
    assert CLIENT_SECRET not in caplog.text  # ...without the credentials
    assert CLIENT_ID not in caplog.text
    assert fake.current_token not in caplog.text
    assert repr(client.transport.tokens.current).count("token-1") == 0


async def test_606_pauses_everyone_for_a_window_then_succeeds() -> None:
    """After a 606 the governor admits nothing for a full window (plus jitter); then the call
    is resent and succeeds. The throttle is counted."""
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    fake = FakeMarketo().on("GET", DESCRIBE, fail("606"), ok([FIELD]))
    async with make_client(fake, clock=clock) as client:
        started = clock.monotonic()
        await client.leads.describe()
        assert clock.monotonic() - started >= 20.0
        assert client.stats.count(outcome="606") == 1
        assert client.stats.throttled == 1
        assert client.stats.count(endpoint="leads.describe", outcome="ok") == 1


async def test_615_backs_off_briefly_then_succeeds() -> None:
    """A 615 waits about a second (not a whole window) before resending."""
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    fake = FakeMarketo().on("GET", DESCRIBE, fail("615"), ok([FIELD]))
    async with make_client(fake, clock=clock) as client:
        await client.leads.describe()
    assert [s for s in clock.sleeps if s > 0] and 0.5 <= max(clock.sleeps) <= 1.0


async def test_607_stops_all_further_calls_without_sending_them() -> None:
    """After a 607 the next call is refused locally until the Central-time midnight."""
    clock = ManualClock(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    fake = FakeMarketo().on("GET", DESCRIBE, fail("607"))
    async with make_client(fake, clock=clock) as client:
        with pytest.raises(QuotaExhaustedError) as first:
            await client.leads.describe()
        with pytest.raises(QuotaExhaustedError) as second:
            await client.leads.describe()
    assert first.value.resets_at == datetime(2026, 7, 2, 5, 0, tzinfo=UTC)
    assert second.value.resets_at == first.value.resets_at
    assert len(fake.rest_requests()) == 1
    assert client.stats.snapshot()["quota_exceeded"] == 1


async def test_transient_error_then_success() -> None:
    """A 604 is resent after a backoff and the answer returned."""
    fake = FakeMarketo().on("GET", DESCRIBE, fail("604"), fail("713"), ok([FIELD]))
    async with make_client(fake) as client:
        assert len(await client.leads.describe()) == 1
    assert len(fake.rest_requests()) == 3


async def test_reads_are_resent_after_a_read_timeout() -> None:
    """A GET that timed out is safe to resend."""
    answers = [httpx.ReadTimeout("slow"), ok([FIELD])]

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake = FakeMarketo().on("GET", DESCRIBE, flaky)
    async with make_client(fake) as client:
        assert len(await client.leads.describe()) == 1
    assert client.stats.count(outcome="timeout_after_send") == 1


async def test_writes_are_not_resent_after_an_ambiguous_failure() -> None:
    """A sync that timed out after sending may have been applied: it is raised, not resent."""

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    fake = FakeMarketo().on("POST", "/rest/v1/leads.json", timeout)
    async with make_client(fake) as client:
        with pytest.raises(TransientServiceError):
            await client.leads.sync([{"email": "a@example.com"}])
    assert len(fake.rest_requests()) == 1


async def test_writes_are_resent_when_the_connection_never_opened() -> None:
    """A connect error means nothing was sent: the write is resent."""
    answers: list[Exception | httpx.Response] = [
        httpx.ConnectError("refused"),
        ok([{"id": 1, "status": "created"}]),
    ]

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake = FakeMarketo().on("POST", "/rest/v1/leads.json", flaky)
    async with make_client(fake) as client:
        outcomes = await client.leads.sync([{"email": "a@example.com"}])
    assert [o.status for o in outcomes] == ["created"]


async def test_long_queries_become_post_with_method_get() -> None:
    """A query URI over 8 KB is sent as POST ``_method=GET`` with the query as a form body."""
    guids = [f"{i:08d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(300)]
    fake = FakeMarketo().on("POST", "/rest/v1/leads.json", ok([{"id": 1}]))
    async with make_client(fake) as client:
        found = await client.leads.get_by_filter("externalPersonId", guids)
    assert found == [{"id": 1}]
    (request,) = fake.rest_requests()
    assert request.url.params["_method"] == "GET"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = httpx.QueryParams(request.content.decode())
    assert form["filterValues"].split(",") == guids
    assert form["filterType"] == "externalPersonId"


async def test_oversized_single_body_is_refused_before_sending() -> None:
    """A non-batched body over 1 MB raises ApiRequestError (413) without a request."""
    fake = FakeMarketo()
    async with make_client(fake) as client:
        with pytest.raises(ApiRequestError) as raised:
            await client.transport.call(
                "POST", "/rest/v1/leads.json", endpoint="x", json_body={"input": "x" * 1_000_001}
            )
    assert raised.value.status == 413
    assert fake.requests == []


@pytest.mark.parametrize(
    ("call", "read_timeout"),
    [
        ("sync_leads", 95.0),
        ("query_leads", 65.0),
        ("describe", 35.0),
        ("sync_custom", 125.0),
        ("sync_companies", 65.0),
    ],
)
async def test_per_endpoint_timeouts(call: str, read_timeout: float) -> None:
    """Read timeouts are Adobe's server limits (90 s Sync Leads, 60 s queries and object syncs,
    120 s custom objects, 30 s otherwise) plus a 5 s grace."""
    fake = (
        FakeMarketo()
        .on("POST", "/rest/v1/leads.json", ok([{"id": 1, "status": "created"}]))
        .on("GET", "/rest/v1/leads.json", ok([]))
        .on("GET", DESCRIBE, ok([FIELD]))
        .on("POST", "/rest/v1/customobjects/car_c.json", ok([{"seq": 0, "status": "created"}]))
        .on("POST", "/rest/v1/companies.json", ok([{"seq": 0, "status": "created"}]))
    )
    async with make_client(fake) as client:
        if call == "sync_leads":
            await client.leads.sync([{"email": "a@example.com"}])
        elif call == "query_leads":
            await client.leads.get_by_filter("email", ["a@example.com"])
        elif call == "describe":
            await client.leads.describe()
        elif call == "sync_custom":
            await client.custom_object("car_c").sync([{"vin": "1"}])
        else:
            await client.companies.sync([{"externalCompanyId": "c1"}])
    (request,) = fake.rest_requests()
    assert request.extensions["timeout"]["read"] == read_timeout
    assert request.extensions["timeout"]["connect"] == 10.0


async def test_stats_snapshot_counts_per_endpoint_and_outcome() -> None:
    """Calls are counted per endpoint and outcome, identity calls included."""
    fake = FakeMarketo().on("GET", DESCRIBE, fail("606"), ok([FIELD]))
    async with make_client(fake, limits=Limits(calls_per_window=100)) as client:
        await client.leads.describe()
        snapshot = client.stats.snapshot()
    assert snapshot["calls"] == 3
    assert snapshot["throttled"] == 1
    assert snapshot["by_endpoint"] == {
        "identity.token": {"ok": 1},
        "leads.describe": {"606": 1, "ok": 1},
    }


async def test_daily_usage_is_read_for_our_api_user_and_fed_to_the_governor() -> None:
    """stats/usage.json gives per-user counts; ours (the token's scope) raises the governor's
    count so a restarted process does not believe it has the whole budget left."""
    usage = [
        {
            "date": "2026-03-02",
            "total": 900,
            "users": [
                {"userId": "someone-else@example.com", "count": 500},
                {"userId": "api-user@example.com", "count": 400},
            ],
        }
    ]
    fake = FakeMarketo().on("GET", "/rest/v1/stats/usage.json", ok(usage))
    async with make_client(fake, limits=Limits(daily_budget=1_000)) as client:
        assert await client.daily_usage() == 400
        assert client.governor.daily_used >= 400


async def test_identity_answer_without_a_token_is_an_authentication_error() -> None:
    """A 200 from the identity endpoint that lacks access_token cannot be used."""
    fake = FakeMarketo()
    fake.identity_answer = httpx.Response(200, json={"token_type": "bearer"})
    async with make_client(fake) as client:
        with pytest.raises(AuthenticationError, match="access_token"):
            await client.leads.describe()
