"""Test doubles for the Dataverse client: a scripted HTTP handler and a counting credential."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from shared.clock import ManualClock
from shared.dynamics import DynamicsClient
from shared.retry import RetryPolicy
from shared.settings import DynamicsSettings, load

ENV_URL = "https://contoso.crm.dynamics.com"
API = f"{ENV_URL}/api/data/v9.2/"
SECRET = "s3cr3t-value-that-must-never-leak"

Reply = httpx.Response | Exception | Callable[[httpx.Request], Any]


def settings(**overrides: str) -> DynamicsSettings:
    """Dynamics settings for the fake environment."""
    env = {
        "DYNAMICS_URL": ENV_URL,
        "DYNAMICS_TENANT_ID": "tenant-1",
        "DYNAMICS_CLIENT_ID": "client-1",
        "DYNAMICS_CLIENT_SECRET": SECRET,
        **overrides,
    }
    return load(DynamicsSettings, env)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response as Dataverse sends it."""
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json; odata.metadata=minimal",
            "OData-Version": "4.0",
            **(headers or {}),
        },
    )


def odata_error(
    status: int, code: str, message: str = "failed", headers: dict[str, str] | None = None
) -> httpx.Response:
    """An OData error response."""
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


class Script:
    """Answers requests with scripted replies, in order, and records every request.

    A reply may be a response, an exception to raise, or a function of the request (sync or
    async). More requests than replies fail the test loudly.
    """

    def __init__(self, replies: Iterable[Reply] = ()) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            result = reply(request)
            if hasattr(result, "__await__"):
                result = await result
            assert isinstance(result, httpx.Response)
            return result
        return reply

    def raw_urls(self) -> list[str]:
        """Each request's URL exactly as it went on the wire."""
        return [
            f"{r.url.scheme}://{r.url.netloc.decode()}{r.url.raw_path.decode()}"
            for r in self.requests
        ]


class FakeCredential:
    """A TokenCredential issuing ``token-1``, ``token-2``, ... valid for ``lifetime`` seconds."""

    def __init__(self, clock: ManualClock, lifetime: float = 3600.0, prefix: str = "token") -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.prefix = prefix
        self.issued = 0
        self.scopes: list[tuple[str, ...]] = []
        self.error: Exception | None = None

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        self.issued += 1
        expires = int(self.clock.now().timestamp() + self.lifetime)
        return AccessToken(f"{self.prefix}-{self.issued}", expires)


def make_client(
    script: Script,
    *,
    clock: ManualClock | None = None,
    credential: Any = None,
    policy: RetryPolicy | None = None,
    max_concurrency: int | None = None,
) -> tuple[DynamicsClient, ManualClock]:
    """A client over the script, with a manual clock and a seeded jitter source."""
    clock = clock or ManualClock()
    client = DynamicsClient(
        settings(),
        credential=credential or FakeCredential(clock),
        transport=httpx.MockTransport(script),
        clock=clock,
        retry_policy=policy or RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0),
        max_concurrency=max_concurrency,
        rng=random.Random(7),
    )
    return client, clock
