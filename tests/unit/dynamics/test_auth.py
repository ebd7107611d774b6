"""Tokens: cached, renewed before expiry, rebuilt after a 401; credential failures mapped safely."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from shared.clock import ManualClock
from shared.dynamics import auth
from shared.dynamics.auth import BearerToken, EntraTokenProvider, credential_factory
from shared.errors import AuthenticationError, TransientServiceError

from .fakes import SECRET, FakeCredential, settings

SCOPE = "https://contoso.crm.dynamics.com/.default"


async def test_token_is_cached_until_the_refresh_margin() -> None:
    """One fetch serves every call until `refresh_margin` before expiry; then a new one."""
    clock = ManualClock()
    credential = FakeCredential(clock, lifetime=3600)
    provider = EntraTokenProvider(credential, SCOPE, clock=clock, refresh_margin=300)
    assert await provider.token() == "token-1"
    clock.advance(3299)
    assert await provider.token() == "token-1"
    assert credential.issued == 1
    clock.advance(2)
    assert await provider.token() == "token-2"
    assert credential.issued == 2
    assert credential.scopes == [(SCOPE,), (SCOPE,)]


async def test_refresh_after_401_rebuilds_the_credential_from_a_factory() -> None:
    """A factory is called again so azure-identity's own cache cannot hand back the same token."""
    clock = ManualClock()
    built: list[FakeCredential] = []

    def factory() -> FakeCredential:
        built.append(FakeCredential(clock, prefix=f"cred{len(built) + 1}"))
        return built[-1]

    provider = EntraTokenProvider(factory, SCOPE, clock=clock)
    first = await provider.token()
    assert first == "cred1-1"
    assert await provider.refresh(first) == "cred2-1"
    assert len(built) == 2
    assert await provider.token() == "cred2-1"


async def test_refresh_is_skipped_when_another_caller_already_replaced_the_token() -> None:
    """Two requests rejected with the same token cause one renewal, not two."""
    clock = ManualClock()
    credential = FakeCredential(clock)
    provider = EntraTokenProvider(credential, SCOPE, clock=clock)
    old = await provider.token()
    assert await provider.refresh(old) == "token-2"
    assert await provider.refresh(old) == "token-2"
    assert credential.issued == 2


async def test_credential_rejection_becomes_authentication_error_without_details() -> None:
    """Only the exception type and Entra codes are kept; the service text is not echoed."""
    clock = ManualClock()
    credential = FakeCredential(clock)
    credential.error = ClientAuthenticationError(
        f"AADSTS7000215: Invalid client secret provided. invalid_client. echoed={SECRET}"
    )
    provider = EntraTokenProvider(credential, SCOPE, clock=clock, identity="client id c1")
    with pytest.raises(AuthenticationError) as caught:
        await provider.token()
    text = str(caught.value)
    assert "AADSTS7000215" in text
    assert "invalid_client" in text
    assert "client id c1" in text
    assert SECRET not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_unreachable_token_endpoint_is_transient() -> None:
    """A network failure reaching Entra may pass: it is retriable, not fatal."""
    clock = ManualClock()
    credential = FakeCredential(clock)
    credential.error = ServiceRequestError("connection refused")
    with pytest.raises(TransientServiceError, match="Could not reach the token endpoint"):
        await EntraTokenProvider(credential, SCOPE, clock=clock).token()


def test_token_reprs_hide_the_value() -> None:
    """Neither the token nor the provider shows the bearer value."""
    token = BearerToken("eyJ-secret-token", 1.0)
    assert "eyJ" not in repr(token)
    provider = EntraTokenProvider(FakeCredential(ManualClock()), SCOPE)
    assert "token" not in repr(provider).lower().replace("tokenprovider", "")


class Recorder:
    """Stands in for an azure-identity credential class and records how it was built."""

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls.append((args, kwargs))


def _recorders(monkeypatch: pytest.MonkeyPatch) -> tuple[type[Recorder], type[Recorder]]:
    secret_cls = type("SecretRecorder", (Recorder,), {"calls": []})
    managed_cls = type("ManagedRecorder", (Recorder,), {"calls": []})
    monkeypatch.setattr(auth, "ClientSecretCredential", secret_cls)
    monkeypatch.setattr(auth, "ManagedIdentityCredential", managed_cls)
    return secret_cls, managed_cls


def test_client_secret_with_authority_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret + AZURE_AUTHORITY_HOST: that authority, no instance discovery, the CA trusted."""
    secret_cls, managed_cls = _recorders(monkeypatch)
    factory = credential_factory(
        settings(AZURE_AUTHORITY_HOST="https://127.0.0.1:8443"), ca_bundle="/tmp/ca.pem"
    )
    factory()
    assert secret_cls.calls == [
        (
            ("tenant-1", "client-1", SECRET),
            {
                "authority": "https://127.0.0.1:8443",
                "disable_instance_discovery": True,
                "connection_verify": "/tmp/ca.pem",
            },
        )
    ]
    assert managed_cls.calls == []


def test_client_secret_against_public_entra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an authority host, azure-identity's defaults apply (discovery on)."""
    secret_cls, _ = _recorders(monkeypatch)
    credential_factory(settings())()
    assert secret_cls.calls == [(("tenant-1", "client-1", SECRET), {})]


def test_managed_identity_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DYNAMICS_CLIENT_SECRET: the managed identity with DYNAMICS_CLIENT_ID."""
    secret_cls, managed_cls = _recorders(monkeypatch)
    env = settings()
    env.client_secret = None
    credential_factory(env)()
    assert managed_cls.calls == [((), {"client_id": "client-1"})]
    assert secret_cls.calls == []
