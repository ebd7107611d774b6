"""The Dataverse emulator checks a certificate client assertion as Entra documents it."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from emulators.dynamics.client_assertion import AssertionRefused, RegisteredCertificates
from tests.integration.sync.certificates import AppCertificate, make_certificate

CLIENT = "0b9e3c7a-5f41-4d2e-8c6b-1a2f3e4d5c6b"
ENDPOINT = "https://127.0.0.1:9443/tenant/oauth2/v2.0/token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(made: AppCertificate, *, alg: str = "RS256", tamper: bool = False,
              **claims: Any) -> str:  # fmt: skip
    der = made.certificate.public_bytes(serialization.Encoding.DER)
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if alg == "RS256":
        header["x5t"] = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode()  # noqa: S324
    else:
        header["x5t#S256"] = b64(hashlib.sha256(der).digest())
    now = int(time.time())
    body = {"aud": ENDPOINT, "iss": CLIENT, "sub": CLIENT, "jti": str(uuid.uuid4()),
            "nbf": now, "exp": now + 600, **claims}  # fmt: skip
    signed = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(body))}"
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    )
    signature = made.key.sign(signed.encode(), pad, hashes.SHA256())
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    return f"{signed}.{b64(signature)}"


@pytest.fixture(scope="module")
def made() -> AppCertificate:
    return make_certificate()


@pytest.fixture
def registered(made: AppCertificate) -> RegisteredCertificates:
    certificates = RegisteredCertificates()
    certificates.add(made.certificate_pem)
    return certificates


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_a_well_formed_assertion_is_accepted(
    registered: RegisteredCertificates, made: AppCertificate, alg: str
) -> None:
    registered.check(assertion(made, alg=alg), CLIENT, ENDPOINT)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"tamper": True}, 700027),
        ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 7000216),
        ({"iss": "someone-else"}, 700021),
        ({"exp": int(time.time()) - 3600}, 700024),
        ({"nbf": int(time.time()) + 3600}, 700024),
        ({"jti": ""}, 700022),
    ],
)
def test_each_fault_is_refused(
    registered: RegisteredCertificates, made: AppCertificate, changes: dict[str, Any], code: int
) -> None:
    with pytest.raises(AssertionRefused) as refused:
        registered.check(assertion(made, **changes), CLIENT, ENDPOINT)
    assert refused.value.aadsts == code


def test_an_unregistered_certificate_and_a_replay_are_refused(
    registered: RegisteredCertificates, made: AppCertificate
) -> None:
    with pytest.raises(AssertionRefused, match="not registered"):
        registered.check(assertion(make_certificate("other")), CLIENT, ENDPOINT)
    once = assertion(made)
    registered.check(once, CLIENT, ENDPOINT)
    with pytest.raises(AssertionRefused, match="already used"):
        registered.check(once, CLIENT, ENDPOINT)
