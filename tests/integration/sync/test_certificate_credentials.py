"""A certificate for the Dataverse app registration: azure-identity's CertificateCredential
against the emulator's token endpoint, which checks the client assertion."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.client import DynamicsClient
from shared.settings import DynamicsSettings, load
from tests.integration.sync.certificates import make_certificate
from tests.integration.sync.cli_env import run_cli, set_app_settings
from tests.integration.sync.harness import sync_environment

pytestmark = pytest.mark.integration


def certificate_settings(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, **certificate: str
) -> dict[str, str]:
    """The app settings with a certificate instead of the client secret."""
    environ = sync_environment(azurite, dyn, mkto, **certificate)
    environ.pop("DYNAMICS_CLIENT_SECRET")
    return environ


@pytest.mark.parametrize("form", ["pem_file", "pkcs12_file_with_password", "key_vault_value"])
async def test_the_app_signs_in_with_a_registered_certificate(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    tmp_path: Path,
    form: str,
) -> None:
    made = make_certificate()
    dyn.control.add_client_certificate(made.certificate_pem)
    if form == "pem_file":
        path = tmp_path / "app.pem"
        path.write_text(made.key_and_certificate_pem)
        settings = {"DYNAMICS_CLIENT_CERTIFICATE_PATH": str(path)}
    elif form == "pkcs12_file_with_password":
        import base64

        path = tmp_path / "app.pfx"
        path.write_bytes(base64.b64decode(made.pkcs12_base64("s3cret-pfx")))
        settings = {
            "DYNAMICS_CLIENT_CERTIFICATE_PATH": str(path),
            "DYNAMICS_CLIENT_CERTIFICATE_PASSWORD": "s3cret-pfx",
        }
    else:  # what a Key Vault reference to a Key Vault certificate resolves to
        settings = {"DYNAMICS_CLIENT_CERTIFICATE": made.pkcs12_base64(None)}
    environ = certificate_settings(azurite, dyn, mkto, **settings)
    client = DynamicsClient(load(DynamicsSettings, environ), verify=environ["REQUESTS_CA_BUNDLE"])
    try:
        who = await client.whoami()
    finally:
        await client.aclose()
    assert who.organization_id


def test_validate_names_the_certificate_when_it_is_not_the_registered_one(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    unique_name: str,
) -> None:
    registered, other = make_certificate("registered"), make_certificate("other")
    dyn.control.add_client_certificate(registered.certificate_pem)
    path = tmp_path / "app.pem"
    path.write_text(other.key_and_certificate_pem)
    environ = set_app_settings(monkeypatch, azurite, dyn, mkto,
                               DYNAMICS_CLIENT_CERTIFICATE_PATH=str(path))  # fmt: skip
    monkeypatch.delenv("DYNAMICS_CLIENT_SECRET")
    code, out, err = run_cli(capsys, "validate", "--table-prefix", unique_name)
    assert code == 1
    [failure] = [line for line in out.splitlines() if line.startswith("✘")]
    assert failure.startswith("✘ Dataverse sign-in: no token")
    assert "AADSTS700027" in failure, "Entra's code for a signature it cannot validate"
    assert "DYNAMICS_CLIENT_CERTIFICATE_PATH" in out
    key_body = other.key_and_certificate_pem.splitlines()[1]
    assert key_body not in out + err
    assert environ["MARKETO_CLIENT_SECRET"] not in out + err

    # Uploading it to the app registration is the fix.
    dyn.control.add_client_certificate(other.certificate_pem)
    code, out, _ = run_cli(capsys, "validate", "--table-prefix", unique_name)
    assert code == 0, out
    assert "✔ Dataverse sign-in: token obtained" in out


def test_two_ways_to_sign_in_at_once_are_refused_by_name(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    environ = sync_environment(azurite, dyn, mkto, DYNAMICS_CLIENT_CERTIFICATE_PATH="/x.pem")
    with pytest.raises(
        Exception, match="DYNAMICS_CLIENT_SECRET and DYNAMICS_CLIENT_CERTIFICATE_PATH are both set"
    ):
        load(DynamicsSettings, environ)
