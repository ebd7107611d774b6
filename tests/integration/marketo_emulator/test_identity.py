"""Identity and access tokens (Marketo developer docs, "Authentication"
and "Error Codes" 601/602; see docs/vendor-facts.md)."""

from __future__ import annotations

import httpx

from emulators.marketo.runner import RunningMarketo
from tests.integration.marketo_emulator.helpers import error_code, ok


def _token_url(mkto: RunningMarketo) -> str:
    return f"{mkto.identity_url}/oauth/token"


def test_get_with_query_credentials_issues_a_bearer_token(mkto: RunningMarketo) -> None:
    response = httpx.get(_token_url(mkto), params=mkto.credentials)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3599  # a 3600 s lifetime, reported as the docs' example
    assert body["scope"] == "dmsync-api@emulator.local"
    assert body["access_token"].endswith(":emu")


def test_post_with_form_credentials_issues_a_token(mkto: RunningMarketo) -> None:
    response = httpx.post(_token_url(mkto), data=mkto.credentials)
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_asking_again_returns_the_same_token_with_its_remaining_lifetime(
    mkto: RunningMarketo,
) -> None:
    mkto.control.freeze_clock()
    first = httpx.get(_token_url(mkto), params=mkto.credentials).json()
    mkto.control.advance_clock(100)
    second = httpx.get(_token_url(mkto), params=mkto.credentials).json()
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 3499


def test_bad_secret_and_unknown_client_are_401(mkto: RunningMarketo) -> None:
    wrong_secret = {**mkto.credentials, "client_secret": "not-it"}
    response = httpx.get(_token_url(mkto), params=wrong_secret)
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "error_description": "Bad client credentials",
    }
    unknown = {**mkto.credentials, "client_id": "nobody"}
    response = httpx.get(_token_url(mkto), params=unknown)
    assert response.status_code == 401
    assert "not-it" not in response.text


def test_missing_or_unsupported_grant_type_is_400(mkto: RunningMarketo) -> None:
    params = {k: v for k, v in mkto.credentials.items() if k != "grant_type"}
    assert httpx.get(_token_url(mkto), params=params).status_code == 400
    params["grant_type"] = "password"
    response = httpx.get(_token_url(mkto), params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_bearer_header_and_access_token_parameter_both_authorize(
    mkto: RunningMarketo, token: str
) -> None:
    url = f"{mkto.base_url}/rest/v1/leads/describe.json"
    ok(httpx.get(url, headers={"Authorization": f"Bearer {token}"}))
    ok(httpx.get(url, params={"access_token": token}))


def test_missing_or_unknown_token_is_601(mkto: RunningMarketo) -> None:
    url = f"{mkto.base_url}/rest/v1/leads/describe.json"
    assert error_code(httpx.get(url)) == "601"
    assert error_code(httpx.get(url, headers={"Authorization": "Bearer nope:emu"})) == "601"


def test_expired_token_is_602_until_a_new_one_is_fetched(
    mkto: RunningMarketo, rest: httpx.Client
) -> None:
    mkto.control.freeze_clock()
    ok(rest.get("/rest/v1/leads/describe.json"))
    mkto.control.advance_clock(3600)
    assert error_code(rest.get("/rest/v1/leads/describe.json")) == "602"
    fresh = httpx.get(_token_url(mkto), params=mkto.credentials).json()
    assert fresh["expires_in"] == 3599
    ok(
        httpx.get(
            f"{mkto.base_url}/rest/v1/leads/describe.json",
            headers={"Authorization": f"Bearer {fresh['access_token']}"},
        )
    )


def test_control_api_expires_every_token_now(mkto: RunningMarketo, rest: httpx.Client) -> None:
    ok(rest.get("/rest/v1/leads/describe.json"))
    assert mkto.control.expire_tokens() == 1
    assert error_code(rest.get("/rest/v1/leads/describe.json")) == "602"
    assert mkto.control.usage().errors["602"] == 1


def test_token_lifetime_is_configurable(mkto: RunningMarketo) -> None:
    mkto.control.set_token_ttl(60)
    body = httpx.get(_token_url(mkto), params=mkto.credentials).json()
    assert body["expires_in"] == 59


def test_identity_calls_do_not_count_against_the_quota(mkto: RunningMarketo, token: str) -> None:
    httpx.get(_token_url(mkto), params=mkto.credentials)
    usage = mkto.control.usage()
    assert usage.identity_calls == 2
    assert usage.counted == 0
