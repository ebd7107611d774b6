"""Entra-style token endpoint and bearer checks, including the real azure-identity credential."""

from __future__ import annotations

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from emulators.dynamics.runner import EmulatorHandle

from .conftest import ODATA_HEADERS


def test_real_client_secret_credential_gets_a_token_the_web_api_accepts(
    dyn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-identity's ClientSecretCredential works with a local Entra-style endpoint
    (the recipe in docs/vendor-facts.md)."""
    for name, value in dyn.azure_identity_env().items():
        monkeypatch.setenv(name, value)
    credential = ClientSecretCredential(
        dyn.tenant_id, dyn.client_id, dyn.client_secret, disable_instance_discovery=True
    )
    access = credential.get_token(dyn.scope)
    assert access.expires_on > 0
    with dyn.http_client() as http:
        response = http.get(
            f"{dyn.api_url}/WhoAmI",
            headers={**ODATA_HEADERS, "Authorization": f"Bearer {access.token}"},
        )
    assert response.status_code == 200
    assert response.json()["UserId"] == dyn.control.info()["user_id"]


def test_wrong_secret_is_rejected_by_azure_identity(
    dyn: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad secret surfaces as ClientAuthenticationError with Entra's AADSTS code."""
    for name, value in dyn.azure_identity_env().items():
        monkeypatch.setenv(name, value)
    credential = ClientSecretCredential(
        dyn.tenant_id, dyn.client_id, "not-the-secret", disable_instance_discovery=True
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(dyn.scope)


def test_openid_configuration_lists_the_endpoints(dyn: EmulatorHandle) -> None:
    """Discovery returns token_endpoint, authorization_endpoint and issuer for the tenant."""
    with dyn.http_client() as http:
        document = http.get(
            f"{dyn.base_url}/{dyn.tenant_id}/v2.0/.well-known/openid-configuration"
        ).json()
        unknown = http.get(f"{dyn.base_url}/other-tenant/v2.0/.well-known/openid-configuration")
    assert document["token_endpoint"] == dyn.token_url
    assert document["authorization_endpoint"].endswith(f"/{dyn.tenant_id}/oauth2/v2.0/authorize")
    assert document["issuer"] == f"{dyn.base_url}/{dyn.tenant_id}/v2.0"
    assert unknown.status_code == 400


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"client_id": "someone-else"}, 400, "unauthorized_client"),
        ({"scope": "https://elsewhere.example/.default"}, 400, "invalid_resource"),
        ({"scope": "user.read"}, 400, "invalid_scope"),
    ],
)
def test_token_endpoint_rejects_bad_requests(
    dyn: EmulatorHandle, change: dict[str, str], status: int, error: str
) -> None:
    """Grant, client and scope are checked the way Entra checks them."""
    form = {
        "client_id": dyn.client_id,
        "client_secret": dyn.client_secret,
        "grant_type": "client_credentials",
        "scope": dyn.scope,
        **change,
    }
    with dyn.http_client() as http:
        response = http.post(dyn.token_url, data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_missing_and_garbage_tokens_get_401(dyn: EmulatorHandle) -> None:
    """No bearer token, or one we did not sign, is a 401 with an OData error body."""
    with dyn.http_client() as http:
        missing = http.get(f"{dyn.api_url}/accounts", headers=ODATA_HEADERS)
        garbage = http.get(
            f"{dyn.api_url}/accounts", headers={**ODATA_HEADERS, "Authorization": "Bearer a.b.c"}
        )
    for response in (missing, garbage):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
        assert "message" in response.json()["error"]


def test_expired_tokens_get_401_and_a_new_token_works(dyn: EmulatorHandle, token: str) -> None:
    """After a forced expiry the old token answers AccessTokenExpired; a fresh one works."""
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    with dyn.http_client() as http:
        assert http.get(f"{dyn.api_url}/WhoAmI", headers=headers).status_code == 200
        dyn.control.expire_tokens()
        expired = http.get(f"{dyn.api_url}/WhoAmI", headers=headers)
        fresh = dyn.fetch_token(http)
        again = http.get(
            f"{dyn.api_url}/WhoAmI", headers={**ODATA_HEADERS, "Authorization": f"Bearer {fresh}"}
        )
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "0x8005F101"
    assert again.status_code == 200


def test_token_lifetime_is_configurable(dyn: EmulatorHandle) -> None:
    """``expires_in`` follows the configured lifetime, so clients exercise refresh."""
    dyn.control.set_token_lifetime(120)
    with dyn.http_client() as http:
        response = http.post(
            dyn.token_url,
            data={
                "client_id": dyn.client_id,
                "client_secret": dyn.client_secret,
                "grant_type": "client_credentials",
                "scope": dyn.scope,
            },
        )
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120


def test_basic_client_authentication_is_accepted(dyn: EmulatorHandle) -> None:
    """client_secret_basic (HTTP Basic) works as well as client_secret_post."""
    with dyn.http_client() as http:
        response = http.post(
            dyn.token_url,
            data={"grant_type": "client_credentials", "scope": dyn.scope},
            auth=httpx.BasicAuth(dyn.client_id, dyn.client_secret),
        )
    assert response.status_code == 200
