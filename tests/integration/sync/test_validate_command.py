"""``dmsync validate``: each fault names what to fix, exits non-zero, and prints no secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.errors import ConfigurationError
from shared.sync.service import build_runtime
from tests.integration.sync.cli_env import run_cli, set_app_settings
from tests.integration.sync.harness import sync_environment

pytestmark = pytest.mark.integration


def secrets_of(environ: dict[str, str]) -> list[str]:
    """The secret values the output must never show."""
    return [environ["DYNAMICS_CLIENT_SECRET"], environ["MARKETO_CLIENT_SECRET"]]


def lines_with(out: str, mark: str) -> list[str]:
    """The checklist lines starting with ``mark`` (✔, ⚠, ✘, ·)."""
    return [line for line in out.splitlines() if line.startswith(mark)]


def test_a_healthy_setup_passes_every_check(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unique_name: str,
) -> None:
    set_app_settings(monkeypatch, azurite, dyn, mkto)
    code, out, _ = run_cli(capsys, "validate", "--table-prefix", unique_name)
    assert code == 0, out
    assert not lines_with(out, "✘")
    passes = lines_with(out, "✔")
    contact = [line for line in passes if line.startswith("✔ Dynamics table contact:")]
    assert len(contact) == 1, "a healthy table's checks take one line"
    assert "change tracking on" in contact[0]
    assert "the application user can read it" in contact[0]
    for subject in (
        "Dataverse sign-in: token obtained",
        "Marketo sign-in: access token obtained",
        "Marketo fields of entity contact: every mapped field exists",
        "Marketo API budget:",
        "instance default: Dynamics organization: not registered yet",
    ):
        assert any(subject in line for line in passes), (subject, out)
    assert out.rstrip().splitlines()[-1].endswith("0 failed")


def test_change_tracking_off_on_one_table_names_it_and_the_fix(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unique_name: str,
) -> None:
    environ = set_app_settings(monkeypatch, azurite, dyn, mkto)
    dyn.control.set_change_tracking("lead", False)
    try:
        code, out, _ = run_cli(capsys, "validate", "--table-prefix", unique_name)
    finally:
        dyn.control.set_change_tracking("lead", True)
    assert code == 1
    failures = lines_with(out, "✘")
    assert len(failures) == 1, out
    assert "change tracking is not enabled on Dynamics table 'lead'" in failures[0]
    assert 'turn on "Track changes" for lead' in out
    assert all(secret not in out for secret in secrets_of(environ))


def test_a_missing_marketo_custom_field_names_entity_field_and_fix(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unique_name: str,
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        'version = 1\nextends = "default"\n[entity.contact.fields]\nnickname = "mktoNickname__c"\n'
    )
    set_app_settings(monkeypatch, azurite, dyn, mkto, SYNC_MAPPING_FILE=str(mapping))
    code, out, _ = run_cli(capsys, "validate", "--json", "--table-prefix", unique_name)
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    failures = [c for c in report["checks"] if c["status"] == "failed"]
    details = {c["detail"] for c in failures}
    assert "entity 'contact': Marketo field 'mktoNickname__c' does not exist on lead" in details
    # The mapped Dynamics column is missing from the emulator's contact table too.
    assert (
        "entity 'contact': Dynamics column 'nickname' does not exist on table 'contact'" in details
    )
    assert all(c["fix"] for c in failures)
    assert any("Field Management" in c["fix"] for c in failures)


@pytest.mark.parametrize(
    ("setting", "subject", "fix"),
    [
        ("DYNAMICS_CLIENT_SECRET", "Dataverse sign-in", "DYNAMICS_CLIENT_SECRET"),
        ("MARKETO_CLIENT_SECRET", "Marketo sign-in", "MARKETO_CLIENT_SECRET"),
    ],
)
def test_wrong_credentials_name_the_settings_and_print_no_secret(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unique_name: str,
    setting: str,
    subject: str,
    fix: str,
) -> None:
    wrong = "not-the-secret-" + unique_name
    environ = set_app_settings(monkeypatch, azurite, dyn, mkto, **{setting: wrong})
    code, out, err = run_cli(capsys, "validate", "--table-prefix", unique_name)
    assert code == 1
    failures = lines_with(out, "✘")
    assert len(failures) == 1, out
    assert failures[0].startswith(f"✘ {subject}: no ")
    assert fix in out
    assert lines_with(out, "·"), "the checks behind a failed sign-in are marked not checked"
    for secret in [wrong, *secrets_of(environ)]:
        assert secret not in out + err


async def test_the_app_runs_the_same_checklist_at_start_and_logs_each_failure(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    caplog: pytest.LogCaptureFixture,
    unique_name: str,
) -> None:
    dyn.control.set_change_tracking("account", False)
    try:
        with (
            caplog.at_level("ERROR", logger="dmsync.validate"),
            pytest.raises(ConfigurationError, match="dmsync validate lists them") as info,
        ):
            await build_runtime(sync_environment(azurite, dyn, mkto), table_prefix=unique_name)
    finally:
        dyn.control.set_change_tracking("account", True)
    assert "change tracking is not enabled on Dynamics table 'account'" in str(info.value)
    logged = [r for r in caplog.records if r.name == "dmsync.validate"]
    assert [getattr(r, "check", None) for r in logged] == ["dynamics.change_tracking"]
    assert getattr(logged[0], "instance", None) == "default"
