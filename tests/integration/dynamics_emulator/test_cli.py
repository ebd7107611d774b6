"""``dmsync emulator dynamics``: one stdout line, the CA bundle on disk, metadata and ``$expand``
served, a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from emulators.dynamics.config import DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_cli_prints_one_line_serves_https_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The command's contract in the README (`dmsync emulator`), with the documented default
    credentials."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dmsync.cli", "emulator", "dynamics", "--port", "0",
         "--ca-dir", str(tmp_path), "--records", "3"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on https://127.0.0.1:")
        base_url = line.removeprefix("listening on ")
        ca_path = tmp_path / "ca.pem"
        assert ca_path.exists()
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_path))) as http:
            token = http.post(
                f"{base_url}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
                data={
                    "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": "emulator-client-secret",
                    "grant_type": "client_credentials",
                    "scope": f"{base_url}/.default",
                },
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            accounts = http.get(
                f"{base_url}/api/data/v9.2/accounts",
                params={"$select": "name", "$expand": "primarycontactid($select=fullname)"},
                headers=auth,
            ).json()["value"]
            picklists = http.get(
                f"{base_url}/api/data/v9.2/EntityDefinitions(LogicalName='contact')/Attributes/"
                "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
                headers=auth,
            ).json()["value"]
        assert len(accounts) == 3
        assert all("primarycontactid" in account for account in accounts)
        assert {p["LogicalName"] for p in picklists} >= {"preferredcontactmethodcode"}
        assert all(p["OptionSet"]["Options"] for p in picklists)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert stdout == ""  # nothing after the one line
    assert str(ca_path) in stderr
    assert "emulator-client-secret" not in stderr
