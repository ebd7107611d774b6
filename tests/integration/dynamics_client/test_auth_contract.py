"""Authentication against the emulator's Entra endpoint with the real ClientSecretCredential."""

from __future__ import annotations

import logging
import random

import pytest

from emulators.dynamics.runner import EmulatorHandle
from shared.clock import ManualClock
from shared.dynamics import DynamicsClient
from shared.errors import AuthenticationError

from .conftest import settings_for

pytestmark = pytest.mark.integration


async def test_real_credential_token_is_accepted_and_cached(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """One token request serves several calls; WhoAmI names the emulator's app user."""
    who = await client.whoami()
    await client.whoami()
    info = emulator.control.info()
    assert who.user_id == info["user_id"]
    assert who.organization_id == info["organization_id"]
    assert client.tokens.fetches == 1
    assert emulator.control.requests()["token_requests"] == 1


async def test_a_wrong_secret_is_an_authentication_error_without_the_secret(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """Entra's AADSTS7000215 comes back as AuthenticationError; the secret appears nowhere."""
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-secret-9f8e7d"
    settings = settings_for(emulator, DYNAMICS_CLIENT_SECRET=wrong)
    async with DynamicsClient(settings, verify=emulator.ca_path) as dynamics:
        with pytest.raises(AuthenticationError) as caught:
            await dynamics.whoami()
    assert "AADSTS7000215" in str(caught.value)
    assert emulator.client_id in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(settings)):
        assert wrong not in text
        assert emulator.client_secret not in text


async def test_revoked_tokens_are_renewed_once(
    emulator: EmulatorHandle, client: DynamicsClient
) -> None:
    """After the service starts rejecting our token, one renewal and one repeat succeed."""
    await client.whoami()
    emulator.control.expire_tokens()
    await client.whoami()
    assert client.counters.auth_refreshes == 1
    assert client.tokens.fetches == 2
    assert client.counters.requests == 3


async def test_a_token_rejected_after_renewal_is_an_authentication_error(
    emulator: EmulatorHandle, clock: ManualClock
) -> None:
    """When even a fresh token is refused (401 twice), the call stops with AuthenticationError."""
    emulator.control.set_token_lifetime(0)
    async with DynamicsClient(
        settings_for(emulator), verify=emulator.ca_path, clock=clock, rng=random.Random(1)
    ) as dynamics:
        with pytest.raises(AuthenticationError) as caught:
            await dynamics.whoami()
    assert caught.value.status == 401
    assert caught.value.code == "0x8005F101"
    assert dynamics.counters.requests == 2
    assert dynamics.counters.auth_refreshes == 1
    assert clock.sleeps == []
