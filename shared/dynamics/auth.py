"""Access tokens for Dataverse: an azure-identity credential behind a small cache.

Which credential (reference §7): a certificate when ``DYNAMICS_CLIENT_CERTIFICATE_PATH`` or
``DYNAMICS_CLIENT_CERTIFICATE`` is set (``CertificateCredential``: it signs a client assertion
with the certificate's private key; many tenants allow no client secrets for application
users), a client secret when ``DYNAMICS_CLIENT_SECRET`` is set (``ClientSecretCredential``);
with ``AZURE_AUTHORITY_HOST`` either talks to that authority and skips instance discovery,
which is how the local emulator's Entra endpoint is reached. Otherwise the managed identity
whose client id is ``DYNAMICS_CLIENT_ID``. Scope: ``<DYNAMICS_URL>/.default``.

The provider hands out the cached token until ``refresh_margin`` seconds before it expires, then
fetches a new one. After a 401 the caller asks for :meth:`EntraTokenProvider.refresh`: that builds a
fresh credential (azure-identity's own cache would otherwise return the rejected token again)
and fetches once more.

azure-identity's synchronous credentials do blocking I/O, so they run in a worker thread. Tokens
are held as :class:`BearerToken`, whose repr never shows the value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential

from shared.clock import SYSTEM_CLOCK, Clock
from shared.errors import AuthenticationError, ConfigurationError, TransientServiceError
from shared.settings import DynamicsSettings

CredentialFactory = Callable[[], TokenCredential]
"""Builds a credential; called again after a 401 to get past azure-identity's token cache."""

DEFAULT_REFRESH_MARGIN = 300.0
"""Seconds before expiry at which a cached token is replaced (tokens last about an hour)."""

_AAD_CODE = re.compile(r"\bAADSTS\d+\b")
_OAUTH_ERROR = re.compile(
    r"\b(invalid_client|invalid_request|unauthorized_client|invalid_scope|invalid_grant)\b"
)


@dataclass(frozen=True)
class BearerToken:
    """An access token and its expiry (Unix seconds); the value is hidden from reprs."""

    value: str = field(repr=False)
    expires_on: float

    def __repr__(self) -> str:
        return f"BearerToken(value='***', expires_on={self.expires_on})"


def credential_factory(
    settings: DynamicsSettings, *, ca_bundle: str | None = None
) -> CredentialFactory:
    """The credential the settings ask for, as a factory (see the module docstring).

    Args:
        settings: the Dynamics settings.
        ca_bundle: a CA file to trust for the token endpoint (the local emulator's HTTPS);
            passed to azure-identity's HTTP pipeline as ``connection_verify``.
    """
    secret = settings.client_secret
    options: dict[str, Any] = {}
    if settings.authority_host:
        options["authority"] = settings.authority_host
        options["disable_instance_discovery"] = True
    if ca_bundle:
        options["connection_verify"] = ca_bundle

    if settings.uses_certificate:
        certificate = certificate_source(settings)

        def build_certificate_credential() -> TokenCredential:
            return CertificateCredential(
                settings.tenant_id, settings.client_id, **certificate, **options
            )

        return build_certificate_credential

    if secret is not None and secret.get_secret_value():

        def build_secret_credential() -> TokenCredential:
            return ClientSecretCredential(
                settings.tenant_id, settings.client_id, secret.get_secret_value(), **options
            )

        return build_secret_credential

    def build_managed_identity() -> TokenCredential:
        return ManagedIdentityCredential(client_id=settings.client_id)

    return build_managed_identity


def certificate_source(settings: DynamicsSettings) -> dict[str, Any]:
    """``CertificateCredential``'s certificate arguments: a file path, or the certificate's
    bytes from ``DYNAMICS_CLIENT_CERTIFICATE`` (PEM text, else base64 PKCS12: how a Key Vault
    certificate's secret reads), and the password if one is set.

    Raises:
        ConfigurationError: the file is missing, or the value is neither PEM nor base64.
    """
    arguments: dict[str, Any] = {}
    if settings.client_certificate_password is not None:
        arguments["password"] = settings.client_certificate_password.get_secret_value()
    if settings.client_certificate_path:
        path = Path(settings.client_certificate_path)
        if not path.is_file():
            raise ConfigurationError(
                f"DYNAMICS_CLIENT_CERTIFICATE_PATH names {path}, which is not a readable file"
            )
        arguments["certificate_path"] = str(path)
        return arguments
    assert settings.client_certificate is not None
    text = settings.client_certificate.get_secret_value().strip()
    if text.startswith("-----BEGIN"):
        arguments["certificate_data"] = text.encode()
        return arguments
    try:
        arguments["certificate_data"] = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "DYNAMICS_CLIENT_CERTIFICATE is neither PEM text nor base64 PKCS12 (a Key Vault "
            "certificate's secret is base64 PKCS12)"
        ) from None
    return arguments


def _describe_failure(exc: BaseException) -> str:
    """Safe words about a credential failure: its type and Entra's error codes, nothing else."""
    text = str(exc)
    parts = [type(exc).__name__]
    parts += sorted(set(_OAUTH_ERROR.findall(text)))
    parts += sorted(set(_AAD_CODE.findall(text)))
    return ", ".join(parts)


class EntraTokenProvider:
    """Caches one bearer token per scope and refreshes it before it expires.

    Args:
        credential: a credential, or a factory that builds one (preferred: a 401 then gets a
            genuinely new token).
        scope: the OAuth scope, ``<environment url>/.default``.
        clock: the time source deciding when a token is due for renewal.
        refresh_margin: renew this many seconds before expiry.
        identity: who we authenticate as, for error messages (client id, tenant).
    """

    def __init__(
        self,
        credential: TokenCredential | CredentialFactory,
        scope: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        identity: str = "the configured client",
    ) -> None:
        if isinstance(credential, TokenCredential):
            fixed = credential
            self._factory: CredentialFactory = lambda: fixed
            self._rebuild = False
        else:
            self._factory = credential
            self._rebuild = True
        self._credential: TokenCredential | None = None
        self._scope = scope
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._identity = identity
        self._token: BearerToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many tokens were requested from the credential."""

    def __repr__(self) -> str:
        return f"EntraTokenProvider(scope={self._scope!r}, identity={self._identity!r})"

    def _fresh(self, token: BearerToken | None) -> bool:
        if token is None:
            return False
        return token.expires_on - self._refresh_margin > self._clock.now().timestamp()

    async def token(self) -> str:
        """A bearer token valid for at least ``refresh_margin`` more seconds (if one is issued)."""
        token = self._token
        if self._fresh(token):
            assert token is not None
            return token.value
        async with self._lock:
            if not self._fresh(self._token):
                self._token = await self._fetch()
            assert self._token is not None
            return self._token.value

    async def refresh(self, rejected: str) -> str:
        """A new token after the service rejected ``rejected`` with 401.

        If another request already replaced that token, the replacement is returned instead of
        fetching yet another.
        """
        async with self._lock:
            if self._token is not None and self._token.value != rejected:
                return self._token.value
            if self._rebuild:
                self._close_credential()
            self._token = await self._fetch()
            return self._token.value

    async def _fetch(self) -> BearerToken:
        if self._credential is None:
            self._credential = self._factory()
        credential = self._credential
        self.fetches += 1
        try:
            access = await asyncio.to_thread(credential.get_token, self._scope)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientServiceError(
                f"Could not reach the token endpoint for {self._identity}: "
                f"{_describe_failure(exc)}",
                system="dynamics",
            ) from None
        except (AzureError, ValueError, ssl.SSLError, OSError) as exc:
            raise AuthenticationError(
                f"Could not get a Dataverse access token for {self._identity}: "
                f"{_describe_failure(exc)}",
                system="dynamics",
            ) from None
        return BearerToken(access.token, float(access.expires_on))

    def _close_credential(self) -> None:
        credential, self._credential = self._credential, None
        close = getattr(credential, "close", None)
        if callable(close):
            close()

    def close(self) -> None:
        """Release the credential's HTTP resources."""
        self._close_credential()
        self._token = None
