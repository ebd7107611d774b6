"""The access token: fetched from the identity endpoint, cached, refreshed before it expires.

Facts (reference B.1; DEV authentication.md):

* ``GET <base>/identity/oauth/token?grant_type=client_credentials&client_id=..&client_secret=..``
  answers ``{"access_token", "token_type": "bearer", "expires_in": 3599, "scope"}``;
* a token lives 3,600 s; asking again before it expires returns the *same* token with its
  remaining lifetime;
* 601 (invalid) and 602 (expired) on a REST call mean: fetch a token and resend.

The provider refreshes ``refresh_margin`` seconds before the expiry it was told (so a call never
leaves with a token about to lapse), fetches once for all concurrent callers, and on 601/602 drops
only the token that was refused (a caller holding an older token cannot discard a newer one).
Because an early fetch returns the same token with its short remaining life, a token that arrives
with less than twice the margin left is used until a few seconds before it expires instead of
being fetched again on every call.
The credentials themselves never pass through here: the fetch function owns them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.clock import Clock


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and the monotonic time after which it must not be used."""

    value: str
    expires_at: float
    refresh_at: float
    """The monotonic time from which a fresh token is fetched before use."""
    scope: str | None = None
    """The API user the token belongs to (``stats/usage.json`` reports per user)."""

    def __repr__(self) -> str:  # the token value is a credential: never print it
        return f"AccessToken(expires_at={self.expires_at:.0f}, scope={self.scope!r})"


@dataclass(frozen=True)
class TokenGrant:
    """What the identity endpoint answered."""

    access_token: str
    expires_in: float
    scope: str | None = None

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in}, scope={self.scope!r})"


FetchToken = Callable[[], Awaitable[TokenGrant]]


_SHORT_LIFE_LEAD = 5.0
"""Seconds before expiry at which a short-lived (re-issued) token is given up."""


def refresh_lead(lifetime: float, margin: float) -> float:
    """Seconds before expiry at which to fetch again, for a token that lives ``lifetime``."""
    if lifetime > 2 * margin:
        return margin
    return min(_SHORT_LIFE_LEAD, lifetime / 2)


def needs_refresh(token: AccessToken | None, now: float) -> bool:
    """True when there is no token or its refresh time has come."""
    return token is None or now >= token.refresh_at


class MarketoTokenProvider:
    """Hands out a valid access token, fetching one only when needed."""

    def __init__(self, fetch: FetchToken, clock: Clock, *, refresh_margin: float = 60.0) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times a token was requested from the identity endpoint."""

    @property
    def current(self) -> AccessToken | None:
        """The cached token, if any (it may be about to expire)."""
        return self._token

    @property
    def current_scope(self) -> str | None:
        """The API user the last token was issued to."""
        return self._token.scope if self._token else None

    async def get(self) -> AccessToken:
        """A token that is not due for refresh (see the module notes)."""
        token = self._token
        if not needs_refresh(token, self._clock.monotonic()):
            assert token is not None
            return token
        async with self._lock:
            token = self._token  # another caller may have fetched while we waited
            if needs_refresh(token, self._clock.monotonic()):
                token = await self._fetch_now()
            assert token is not None
            return token

    def invalidate(self, refused: AccessToken) -> None:
        """Forget ``refused`` (Marketo answered 601/602 to it) so the next :meth:`get` fetches."""
        if self._token is not None and self._token.value == refused.value:
            self._token = None

    async def _fetch_now(self) -> AccessToken:
        requested_at = self._clock.monotonic()
        grant = await self._fetch()
        self.fetches += 1
        # Count the lifetime from when we asked, not when the answer came: never optimistic.
        lifetime = max(0.0, grant.expires_in)
        expires_at = requested_at + lifetime
        self._token = AccessToken(
            value=grant.access_token,
            expires_at=expires_at,
            refresh_at=expires_at - refresh_lead(lifetime, self._margin),
            scope=grant.scope,
        )
        return self._token
