"""Identity and token handling against the emulator: cache, 601, 602, bad credentials."""

from __future__ import annotations

import logging

import pytest

from emulators.marketo.runner import RunningMarketo
from shared.errors import AuthenticationError
from shared.marketo import MarketoClient
from tests.integration.marketo_client.conftest import ClientFactory

pytestmark = pytest.mark.integration


async def test_one_token_serves_many_calls(client: MarketoClient, mkto: RunningMarketo) -> None:
    """The token is fetched once and sent as a Bearer header on every call."""
    for _ in range(3):
        fields = await client.leads.describe()
    assert "email" in {f.api_name for f in fields}
    usage = mkto.control.usage()
    assert usage.identity_calls == 1
    assert usage.by_endpoint["GET /rest/v1/leads/describe.json"] == 3
    assert client.stats.count(endpoint="identity.token") == 1


async def test_expired_token_602_is_refreshed_and_the_call_resent(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """After the emulator expires every token, the next call meets 602, fetches a new token
    and succeeds on the resend."""
    await client.leads.describe()
    assert mkto.control.expire_tokens() >= 1
    await client.leads.describe()
    assert client.stats.count(endpoint="leads.describe", outcome="602") == 1
    assert client.stats.count(endpoint="leads.describe", outcome="ok") == 2
    assert mkto.control.usage().identity_calls == 2


async def test_unknown_token_601_is_refreshed_and_the_call_resent(
    client: MarketoClient, mkto: RunningMarketo
) -> None:
    """When the emulator forgets its tokens the cached one is invalid (601): refresh, resend."""
    await client.leads.describe()
    mkto.control.reset()  # forgets tokens too
    await client.leads.describe()
    assert client.stats.count(endpoint="leads.describe", outcome="601") == 1
    assert client.stats.count(endpoint="identity.token") == 2


async def test_bad_secret_is_an_authentication_error_that_hides_it(
    make_client: ClientFactory, mkto: RunningMarketo, caplog: pytest.LogCaptureFixture
) -> None:
    """The emulator's 401 becomes AuthenticationError naming the setting, not the value."""
    caplog.set_level(logging.DEBUG)
    client = make_client(secret="not-the-right-secret-42")
    with pytest.raises(AuthenticationError, match="MARKETO_CLIENT_SECRET") as raised:
        await client.leads.describe()
    assert raised.value.status == 401
    for text in (str(raised.value), caplog.text):
        assert "not-the-right-secret-42" not in text
        assert mkto.client_secret not in text
    assert mkto.control.usage().requests == 0  # no REST call was attempted
