"""A locally generated CA (trustme) and a server certificate for the emulator's HTTPS port.

The CA bundle a client must trust is written to ``<directory>/ca.pem``; pass it to httpx as
``verify=`` and to azure-identity (MSAL uses requests) as ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
SERVER_FILE = "server.pem"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA bundle and of the server's key + certificate chain."""

    ca_path: Path
    server_pem: Path


def write_tls_files(directory: Path, hosts: list[str]) -> TlsFiles:
    """Create a fresh CA and a certificate for ``hosts``; write both into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="dmsync Dynamics emulator CA")
    names = list(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))
    cert = ca.issue_cert(*names)
    ca_path = directory / CA_FILE
    server_pem = directory / SERVER_FILE
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    server_pem.chmod(0o600)
    return TlsFiles(ca_path, server_pem)
