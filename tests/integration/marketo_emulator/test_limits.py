"""Instance limits: 606, 615, 607, 413, 414, and the usage they leave (Marketo
developer docs, "REST API" and "Error Codes"; see docs/vendor-facts.md)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok, sync_leads

DESCRIBE = "/rest/v1/leads/describe2.json"


def test_the_101st_call_in_20_seconds_is_606_until_the_window_slides(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    mkto.control.freeze_clock()
    for _ in range(100):
        ok(rest.get(DESCRIBE))
    refused = rest.get(DESCRIBE)
    assert error_code(refused) == "606"
    assert (
        refused.json()["errors"][0]["message"] == "Max rate limit '100' exceeded with in '20' secs"
    )
    mkto.control.advance_clock(19.9)
    assert error_code(rest.get(DESCRIBE)) == "606"
    mkto.control.advance_clock(0.2)
    ok(rest.get(DESCRIBE))
    usage = mkto.control.usage()
    assert usage.max_calls_in_window == 100
    assert usage.errors == {"606": 2}
    assert usage.counted == 101


def test_the_window_is_shared_by_every_client_of_the_instance(
    rest: httpx.Client, mkto: RunningMarketo, token: str
) -> None:
    mkto.control.freeze_clock()
    mkto.control.set_limits(rate_calls=4)
    with httpx.Client(base_url=mkto.base_url, params={"access_token": token}) as other:
        for client in (rest, other, rest, other):
            ok(client.get(DESCRIBE))
        assert error_code(other.get(DESCRIBE)) == "606"
    assert error_code(rest.get(DESCRIBE)) == "606"


def test_failed_calls_do_not_count(rest: httpx.Client, mkto: RunningMarketo) -> None:
    """Marketo developer docs, "Error Codes": a response-level error "is not counted against
    your daily quota, or your rate limit"."""
    mkto.control.freeze_clock()
    mkto.control.set_limits(rate_calls=3)
    for _ in range(5):
        assert (
            error_code(
                rest.get("/rest/v1/leads.json", params={"filterType": "bogus", "filterValues": "x"})
            )
            == "1006"
        )
    for _ in range(3):
        ok(rest.get(DESCRIBE))
    assert error_code(rest.get(DESCRIBE)) == "606"
    usage = mkto.control.usage()
    assert usage.counted == 3 and usage.used_today == 3
    assert usage.record_reasons == {}


def test_the_eleventh_concurrent_call_is_615(mkto: RunningMarketo, token: str) -> None:
    mkto.control.hold("admitted")
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> httpx.Response:
        return httpx.get(f"{mkto.base_url}{DESCRIBE}", headers=headers, timeout=30)

    with ThreadPoolExecutor(10) as pool:
        held = [pool.submit(call) for _ in range(10)]
        for _ in range(1000):
            if mkto.control.waiting() == 10:
                break
            time.sleep(0.01)
        assert mkto.control.waiting() == 10
        assert error_code(call()) == "615"
        mkto.control.release()
        assert all(f.result(timeout=30).json()["success"] for f in held)
    usage = mkto.control.usage()
    assert usage.max_concurrency == 10
    assert usage.errors == {"615": 1}


def test_daily_quota_is_607_until_midnight_us_central(
    rest: httpx.Client, mkto: RunningMarketo, token: str
) -> None:
    # January 10th 05:59 UTC is 23:59 CST on the 9th: the quota day ends a minute later.
    year = mkto.control.now().year + 1
    mkto.control.set_token_ttl(800 * 86_400)
    mkto.control.expire_tokens()
    identity = httpx.get(f"{mkto.identity_url}/oauth/token", params=mkto.credentials)
    rest.headers["Authorization"] = f"Bearer {identity.json()['access_token']}"
    mkto.control.set_clock(datetime(year, 1, 10, 5, 59, tzinfo=UTC))
    mkto.control.freeze_clock()
    mkto.control.set_limits(daily_quota=3)
    for _ in range(3):
        ok(rest.get(DESCRIBE))
    mkto.control.advance_clock(30)
    assert error_code(rest.get(DESCRIBE)) == "607"
    assert rest.get(DESCRIBE).json()["errors"][0]["message"] == "Daily quota reached"
    mkto.control.advance_clock(31)  # 06:00:01 UTC = 00:00:01 CST
    ok(rest.get(DESCRIBE))
    days = ok(rest.get("/rest/v1/stats/usage/last7days.json"))["result"]
    assert [(day["date"], day["total"]) for day in days[:2]] == [
        (f"{year}-01-10", 1),
        (f"{year}-01-09", 3),
    ]


def test_limits_can_be_switched_off(rest: httpx.Client, mkto: RunningMarketo) -> None:
    mkto.control.freeze_clock()
    mkto.control.set_limits(enabled=False, rate_calls=1)
    for _ in range(5):
        ok(rest.get(DESCRIBE))
    assert mkto.control.limits()["enabled"] is False
    assert mkto.control.usage().max_calls_in_window == 5


def test_bodies_over_1_mb_are_413_and_uris_over_8_kb_are_414(
    rest: httpx.Client, mkto: RunningMarketo
) -> None:
    padding = "x" * 250
    records = [{"email": f"big{i}@example.com", "address": padding * 15} for i in range(300)]
    response = rest.post("/rest/v1/leads.json", json={"input": records})
    assert error_code(response, status=413) == "413"
    assert len(sync_leads(rest, records[:100])) == 100  # the same records, under 1 MB
    long_query = {
        "filterType": "email",
        "filterValues": ",".join(f"user{i}@example.com" for i in range(450)),
    }
    assert error_code(rest.get("/rest/v1/leads.json", params=long_query), status=414) == "414"
    assert mkto.control.usage().errors == {"413": 1, "414": 1}


def test_usage_and_error_stats_endpoints(rest: httpx.Client, mkto: RunningMarketo) -> None:
    sync_leads(rest, [{"email": "u@example.com"}])
    error_code(rest.get("/rest/v1/nothing.json"))
    (usage,) = ok(rest.get("/rest/v1/stats/usage.json"))["result"]
    assert usage["total"] == 1
    assert usage["users"] == [{"userId": "dmsync-api@emulator.local", "count": 1}]
    (errors,) = ok(rest.get("/rest/v1/stats/errors.json"))["result"]
    assert errors["errors"] == [{"errorCode": "610", "count": 1}]
    assert len(ok(rest.get("/rest/v1/stats/errors/last7days.json"))["result"]) == 7
    counters = mkto.control.usage()
    assert counters.by_endpoint["POST /rest/v1/leads.json"] == 1
    assert counters.counted_by_endpoint["GET /rest/v1/stats/usage.json"] == 1
