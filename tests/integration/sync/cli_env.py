"""Run a ``dmsync`` command in this process with the app's settings for the emulators."""

from __future__ import annotations

import pytest

from dmsync.cli import main
from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from tests.integration.sync.harness import sync_environment


def set_app_settings(
    monkeypatch: pytest.MonkeyPatch,
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    **extra: str,
) -> dict[str, str]:
    """Put the app settings in the environment, as an operator's shell would have them."""
    environ = sync_environment(azurite, dyn, mkto, **extra)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``dmsync ARGV`` in-process: exit code, stdout, stderr (plain text: not a terminal)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
