"""Pieces of the Marketo transport: the identity call's credentials, a prepared call, and the
small rules of resending and timeouts (one module, so the transport stays readable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import SecretStr

from shared.marketo.responses import Failure

CONNECT_TIMEOUT = 10.0
READ_GRACE = 5.0
"""Seconds added to Marketo's own server-side limit before a read times out."""

CREDENTIALS_EXTENSION = "dmsync.marketo_identity"
"""Request extension that tells :class:`IdentityCredentials` to add the client credentials."""


class IdentityCredentials(httpx.AsyncBaseTransport):
    """Adds ``client_id``/``client_secret`` to the identity request at the last moment."""

    def __init__(self, inner: httpx.AsyncBaseTransport, client_id: str, secret: SecretStr):
        self._inner = inner
        self._client_id = client_id
        self._secret = secret

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get(CREDENTIALS_EXTENSION):
            url = request.url.copy_merge_params(
                {"client_id": self._client_id, "client_secret": self._secret.get_secret_value()}
            )
            request = httpx.Request(
                request.method, url, headers=request.headers, extensions=request.extensions
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True)
class PreparedCall:
    """Everything needed to (re)build one request."""

    method: str
    path: str
    endpoint: str
    params: dict[str, str]
    content: bytes | None
    content_type: str | None
    files: Mapping[str, tuple[str, bytes, str]] | None
    data: Mapping[str, str] | None
    timeout: float
    idempotent: bool
    authenticated: bool
    expect: Literal["json", "text"]


def may_resend(call: PreparedCall, failure: Failure) -> bool:
    """A write is resent only if Marketo certainly did not carry it out."""
    return call.idempotent or not failure.outcome.endswith("_after_send")


def param_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def timeout_for(server_limit: float) -> httpx.Timeout:
    return httpx.Timeout(
        connect=CONNECT_TIMEOUT, read=server_limit + READ_GRACE, write=60.0, pool=60.0
    )
