"""Make an app registration certificate for tests: an RSA key and a self-signed certificate."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class AppCertificate:
    """A key and its certificate in the forms the app reads."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> str:
        """The public part, as uploaded to the app registration."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_and_certificate_pem(self) -> str:
        """Private key and certificate in one PEM file (what CertificateCredential reads)."""
        key = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return key + self.certificate_pem

    def pkcs12_base64(self, password: str | None) -> str:
        """Base64 PKCS12, as a Key Vault certificate's secret reads."""
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        blob = pkcs12.serialize_key_and_certificates(
            b"dmsync", self.key, self.certificate, None, encryption
        )
        return base64.b64encode(blob).decode()


def make_certificate(name: str = "dmsync-test") -> AppCertificate:
    """A fresh 2048-bit RSA key and a self-signed certificate valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return AppCertificate(key, certificate)
