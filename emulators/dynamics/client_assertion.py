"""Checking a certificate client assertion (``private_key_jwt``), as Entra does for an app
registration that holds a certificate.

Microsoft identity platform, "Certificate credentials" (learn.microsoft.com/entra/
identity-platform/certificate-credentials): the token request carries
``client_assertion_type = urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and
``client_assertion``, a JWT whose header has ``alg`` (RS256 with ``x5t``, the certificate's
SHA-1 thumbprint, in the older form; PS256 with ``x5t#S256``, its SHA-256 thumbprint, in the
current page) and whose claims are ``aud`` (the token endpoint), ``iss`` and ``sub`` (the client
id), ``exp``, ``nbf``, ``jti`` (unique) and optionally ``iat``, signed with the certificate's
private key (PSS padding for PS256).

UNVERIFIED (not in the page): the AADSTS codes and wording of each refusal; the clock skew Entra
allows (five minutes here); whether a ``jti`` seen before is refused (it is here, within the
assertion's lifetime).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW_SECONDS = 300


class AssertionRefused(Exception):
    """Why an assertion is not accepted: ``(AADSTS code, description)``."""

    def __init__(self, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.aadsts = aadsts
        self.description = description


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RegisteredCertificates:
    """The certificates uploaded to the app registration, by thumbprint."""

    def __init__(self) -> None:
        self._by_sha1: dict[str, x509.Certificate] = {}
        self._by_sha256: dict[str, x509.Certificate] = {}
        self._seen_jti: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, pem: str) -> str:
        """Register a public certificate (PEM); returns its SHA-1 thumbprint (hex)."""
        certificate = x509.load_pem_x509_certificate(pem.encode())
        der = certificate.public_bytes(serialization.Encoding.DER)
        with self._lock:
            self._by_sha1[_b64(hashlib.sha1(der).digest())] = certificate  # noqa: S324 (x5t is SHA-1)
            self._by_sha256[_b64(hashlib.sha256(der).digest())] = certificate
        return hashlib.sha1(der).hexdigest().upper()  # noqa: S324

    def clear(self) -> None:
        """Forget every certificate (emulator reset)."""
        with self._lock:
            self._by_sha1.clear()
            self._by_sha256.clear()
            self._seen_jti.clear()

    def __bool__(self) -> bool:
        return bool(self._by_sha1)

    def check(self, assertion: str, client_id: str, token_endpoint: str) -> None:
        """Accept ``assertion`` or raise :class:`AssertionRefused` saying why."""
        parts = assertion.split(".")
        if len(parts) != 3:
            raise AssertionRefused(50027, "Invalid JWT token. The token is malformed.")
        try:
            header: dict[str, Any] = orjson.loads(_unb64(parts[0]))
            claims: dict[str, Any] = orjson.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            raise AssertionRefused(50027, "Invalid JWT token. The token is malformed.") from None
        certificate = self._certificate_for(header)
        self._verify_signature(header, f"{parts[0]}.{parts[1]}".encode(), signature, certificate)
        self._check_claims(claims, client_id, token_endpoint)

    def _certificate_for(self, header: dict[str, Any]) -> x509.Certificate:
        # Base64url with or without its "=" padding (MSAL sends it padded).
        sha256 = str(header.get("x5t#S256", "")).rstrip("=")
        sha1 = str(header.get("x5t", "")).rstrip("=")
        with self._lock:
            found = self._by_sha256.get(sha256) or self._by_sha1.get(sha1)
        if found is None:
            raise AssertionRefused(
                700027,
                "Client assertion failed signature validation. The key was not found: the "
                "certificate's thumbprint is not registered for the application.",
            )
        return found

    @staticmethod
    def _verify_signature(
        header: dict[str, Any], signed: bytes, signature: bytes, certificate: x509.Certificate
    ) -> None:
        key = certificate.public_key()
        algorithm = header.get("alg")
        if not isinstance(key, rsa.RSAPublicKey) or algorithm not in ("RS256", "PS256"):
            raise AssertionRefused(
                700027, f"Client assertion algorithm {algorithm!r} is not supported."
            )
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if algorithm == "RS256"
            else padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
            )
        )
        try:
            key.verify(signature, signed, pad, hashes.SHA256())
        except InvalidSignature:
            raise AssertionRefused(
                700027, "Client assertion failed signature validation."
            ) from None

    def _check_claims(self, claims: dict[str, Any], client_id: str, token_endpoint: str) -> None:
        now = time.time()
        if claims.get("aud") != token_endpoint:
            raise AssertionRefused(
                7000216,
                f"The client assertion's audience {claims.get('aud')!r} is not the token "
                f"endpoint {token_endpoint!r}.",
            )
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AssertionRefused(
                700021, "The client assertion's issuer and subject must be the client id."
            )
        expires, not_before = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(expires, int | float) or expires + CLOCK_SKEW_SECONDS < now:
            raise AssertionRefused(700024, "Client assertion is not within its valid time range.")
        if isinstance(not_before, int | float) and not_before - CLOCK_SKEW_SECONDS > now:
            raise AssertionRefused(700024, "Client assertion is not within its valid time range.")
        jti = claims.get("jti")
        if not jti:
            raise AssertionRefused(700022, "The client assertion has no jti claim.")
        with self._lock:
            self._seen_jti = {
                k: v for k, v in self._seen_jti.items() if v + CLOCK_SKEW_SECONDS >= now
            }
            if str(jti) in self._seen_jti:
                raise AssertionRefused(
                    7000222, "The client assertion was already used (jti replay)."
                )
            self._seen_jti[str(jti)] = float(expires)
