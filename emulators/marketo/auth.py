"""OAuth 2.0 client credentials and access tokens (reference B.1, authentication.md).

One live token per client: asking again before it expires returns the same token with its
remaining lifetime; after expiry a new one is issued. A call with an unknown token fails with 601,
with an expired one with 602.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass

from emulators.marketo.clock import EmulatorClock
from emulators.marketo.config import ApiClient


@dataclass
class Token:
    """An issued access token (its value is never logged or shown by the control API)."""

    value: str
    client_id: str
    api_user: str
    expires_at: float


class CredentialError(Exception):
    """The identity endpoint's 401: ``error``/``error_description`` as an OAuth server sends."""

    def __init__(self, error: str, description: str, status: int = 401) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class TokenCheck(Exception):
    """A token that does not authorize a call: code 601 (invalid) or 602 (expired)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenAuthority:
    """Issues and checks tokens against the configured clients."""

    def __init__(self, clients: tuple[ApiClient, ...], ttl_seconds: int, clock: EmulatorClock):
        self._clients = {client.client_id: client for client in clients}
        self._ttl = ttl_seconds
        self._clock = clock
        self._tokens: dict[str, Token] = {}
        self._current: dict[str, Token] = {}

    @property
    def ttl_seconds(self) -> int:
        """Lifetime of a newly issued token."""
        return self._ttl

    @ttl_seconds.setter
    def ttl_seconds(self, value: int) -> None:
        self._ttl = value

    def issue(
        self, grant_type: str | None, client_id: str | None, client_secret: str | None
    ) -> tuple[Token, int]:
        """The client's live token (or a new one) and its remaining whole seconds.

        Raises:
            CredentialError: missing/unsupported grant type or bad client credentials.
        """
        if not grant_type:
            raise CredentialError("invalid_request", "Missing grant type", status=400)
        if grant_type != "client_credentials":
            raise CredentialError(
                "unsupported_grant_type", f"Unsupported grant type: {grant_type}", status=400
            )
        client = self._clients.get(client_id or "")
        if client is None:
            raise CredentialError("unauthorized", "No client with requested id")
        expected = client.client_secret.get_secret_value().encode()
        if not hmac.compare_digest(expected, (client_secret or "").encode()):
            raise CredentialError("unauthorized", "Bad client credentials")
        now = self._clock.time()
        token = self._current.get(client.client_id)
        if token is None or token.expires_at <= now:
            token = Token(
                value=f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
                f"{secrets.token_hex(2)}-{secrets.token_hex(6)}:emu",
                client_id=client.client_id,
                api_user=client.api_user,
                expires_at=now + self._ttl,
            )
            self._current[client.client_id] = token
            self._tokens[token.value] = token
        # A fresh token reports 3599 for a 3600 s lifetime, as the docs' example shows.
        remaining = max(0, math.ceil(token.expires_at - now) - 1)
        return token, remaining

    def check(self, value: str | None) -> Token:
        """The token that authorizes a call.

        Raises:
            TokenCheck: 601 for a missing or unknown token, 602 for an expired one.
        """
        token = self._tokens.get(value or "")
        if token is None:
            raise TokenCheck("601")
        if token.expires_at <= self._clock.time():
            raise TokenCheck("602")
        return token

    def expire_all(self) -> int:
        """Make every issued token expired now; returns how many were live."""
        now = self._clock.time()
        live = 0
        for token in self._tokens.values():
            if token.expires_at > now:
                live += 1
                token.expires_at = now
        self._current.clear()
        return live

    def clear(self) -> None:
        """Forget every token (after a reset they answer 601)."""
        self._tokens.clear()
        self._current.clear()
