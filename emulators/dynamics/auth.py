"""An Entra-style token endpoint for client credentials, and bearer-token checks for the Web API.

Serves ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and
``POST /<tenant>/oauth2/v2.0/token`` (reference §7 and design.md "A recipe seen working"), so the
real azure-identity ``ClientSecretCredential`` works against it, and ``CertificateCredential``
too once a certificate is registered (``PUT /_emulator/auth/certificates``): its client
assertion is checked as Entra documents it (:mod:`emulators.dynamics.client_assertion`).
Access tokens are JWT-shaped (HS256, signed with a per-process key) with ``appid``, ``tid``,
``aud``, ``exp``.

Token lifetime runs on the real clock, not the emulator's business clock: azure-identity decides
when to refresh from ``expires_in`` on real time, so advancing the business clock (to age delta
tokens) must not silently invalidate bearer tokens. ``expire_all()`` (control API) forces 401s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from emulators.dynamics.client_assertion import (
    ASSERTION_TYPE,
    AssertionRefused,
    RegisteredCertificates,
)
from emulators.dynamics.config import AuthConfig
from emulators.dynamics.errors import ACCESS_TOKEN_EXPIRED, ODataError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    """What a valid bearer token says."""

    client_id: str
    tenant_id: str
    audience: str
    expires: float


class EntraError(Exception):
    """An OAuth error answered as Entra answers it (``error``, ``error_description``, codes)."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description}",
            "error_codes": [self.aadsts],
        }


class TokenService:
    """Issues and checks access tokens for the configured application."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.lifetime = config.token_lifetime_seconds
        self._key = secrets.token_bytes(32)
        self._generation = 0
        self.issued = 0
        self.certificates = RegisteredCertificates()
        """Certificates uploaded to the app registration (control API)."""

    def __repr__(self) -> str:
        return f"TokenService(client_id={self.config.client_id!r}, lifetime={self.lifetime})"

    def openid_configuration(self, authority: str, tenant: str) -> dict[str, Any]:
        """The discovery document for ``<authority>/<tenant>/v2.0``."""
        self._check_tenant(tenant)
        base = f"{authority}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{authority}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{authority}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "appid"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.config.tenant_id.lower():
            raise EntraError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )

    def issue(
        self, tenant: str, form: dict[str, str], resource_host: str, token_endpoint: str = ""
    ) -> dict[str, Any]:
        """Answer a client-credentials token request (form already parsed): a client secret,
        or a certificate's client assertion (:mod:`emulators.dynamics.client_assertion`)."""
        self._check_tenant(tenant)
        grant = form.get("grant_type")
        if grant != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        if client_id != self.config.client_id:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if "client_assertion" in form:
            self._check_assertion(form, client_id, token_endpoint)
        else:
            secret = form.get("client_secret", "")
            if not hmac.compare_digest(secret.encode(), self.config.client_secret.encode()):
                raise EntraError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID.",
                )
        scope = form.get("scope", "")
        audience = self._audience(scope, resource_host)
        now = time.time()
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.config.tenant_id}/",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.lifetime),
            "appid": client_id,
            "tid": self.config.tenant_id,
            "ver": "1.0",
            "jti": secrets.token_hex(8),
            "gen": self._generation,
        }
        self.issued += 1
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": self._sign(claims),
        }

    def _check_assertion(self, form: dict[str, str], client_id: str, token_endpoint: str) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(
                400,
                "invalid_request",
                900023,  # UNVERIFIED: the code for a wrong assertion type
                f"client_assertion_type must be {ASSERTION_TYPE}.",
            )
        if not self.certificates:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: the application has no "
                "certificate registered.",
            )
        try:
            self.certificates.check(form["client_assertion"], client_id, token_endpoint)
        except AssertionRefused as refused:
            raise EntraError(401, "invalid_client", refused.aadsts, refused.description) from None

    @staticmethod
    def _audience(scope: str, resource_host: str) -> str:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        resource = scopes[0][: -len("/.default")]
        if urlsplit(resource).netloc.lower() != resource_host.lower():
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant.",
            )
        return resource

    def _sign(self, claims: dict[str, Any]) -> str:
        header = _b64(orjson.dumps({"typ": "JWT", "alg": "HS256"}))
        payload = _b64(orjson.dumps(claims))
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def expire_all(self) -> None:
        """Make every token issued so far invalid (they answer 401 from now on)."""
        self._generation += 1

    def verify(self, authorization: str | None) -> TokenClaims:
        """The claims of a valid ``Authorization: Bearer`` header, or a 401 ODataError."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _unauthorized("", "The request is not authenticated: no bearer token was sent.")
        token = authorization[7:].strip()
        parts = token.split(".")
        if len(parts) != 3:
            raise _unauthorized("", "The bearer token is not valid.")
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64(parts[2]), expected)
            claims = orjson.loads(_unb64(parts[1])) if valid else {}
        except (ValueError, orjson.JSONDecodeError):
            valid = False
        if not valid:
            raise _unauthorized("", "The bearer token is not valid.")
        if claims["exp"] <= time.time() or claims.get("gen") != self._generation:
            raise _unauthorized(ACCESS_TOKEN_EXPIRED, "The access token has expired.")
        return TokenClaims(claims["appid"], claims["tid"], claims["aud"], float(claims["exp"]))


def _unauthorized(code: str, message: str) -> ODataError:
    # UNVERIFIED: the exact 401 body. Expired tokens carry AccessTokenExpired (reference §4);
    # missing or invalid ones carry an empty code, as the doc's own error samples do.
    return ODataError(401, code, message)
