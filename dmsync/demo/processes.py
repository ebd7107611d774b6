"""The demo's child processes: Azurite, both emulators and the real Functions host.

Each runs in its own session (process group), so a Ctrl-C on the terminal reaches the demo only,
and the demo stops each group itself: SIGTERM, then SIGKILL if it does not exit in time. The
context managers stop them in reverse order on every way out (success, failure, Ctrl-C, SIGTERM).

The app gets its settings through the environment only, exactly the names it reads in Azure
(design "Interfaces"); a ``local.settings.json`` in the checkout is not read (the host is pointed
at an empty settings file), and app settings already in the caller's environment are dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from emulators.app_settings import emulator_app_settings
from emulators.azurite import AzuriteInstance, run_azurite
from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator
from emulators.process_group import stop_group
from shared.settings import setting_names

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = REPO_ROOT / "function_app.py"
STOP_TIMEOUT = 20.0
"""Seconds a child gets to exit after SIGTERM before it is killed."""
HOST_GRACE_SECONDS = 30
"""The host's grace for running invocations at stop (its default). A job is one page, seconds;
but in about one run in forty a settling storage call (deleting a finished job's message) took
over 10 s. The cause was not found; the storage SDK's retry policy waits 15 s before its first
retry, which would explain it. A shorter grace made the host abandon that invocation and exit 1."""


@dataclass(frozen=True)
class Services:
    """The storage and the two emulated systems the app runs against."""

    azurite: AzuriteInstance
    dynamics: EmulatorHandle
    marketo: RunningMarketo


@contextmanager
def running_services() -> Iterator[Services]:
    """Start a private Azurite and both emulators (as subprocesses); stop them on exit."""
    with ExitStack() as stack:
        azurite = stack.enter_context(run_azurite())
        dynamics = stack.enter_context(run_dynamics_emulator(mode="subprocess"))
        marketo = stack.enter_context(run_marketo_emulator(mode="subprocess"))
        yield Services(azurite, dynamics, marketo)


def app_settings(
    services: Services,
    *,
    schedule: str,
    marketo_calls_per_20s: int,
    instance_id: str,
) -> dict[str, str]:
    """The app settings that point the app at the demo's storage and emulators.

    Dynamics is reached as in Azure with a client secret (see
    :func:`emulators.app_settings.emulator_app_settings`).
    """
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        **emulator_app_settings(services.azurite, services.dynamics, services.marketo),
        "MARKETO_CALLS_PER_20S": str(marketo_calls_per_20s),
        "SYNC_SCHEDULE": schedule,
        "SYNC_INSTANCE_ID": instance_id,
        # The sample organisation's mapping: the shipped default plus its custom entity.
        "SYNC_MAPPING_FILE": str(SAMPLE_ORG_MAPPING),
    }


SAMPLE_ORG_MAPPING = REPO_ROOT / "emulators" / "sample_org_mapping.toml"


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any app setting of its own, plus ``settings``."""
    ours = setting_names()
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ours and not name.startswith("AzureWebJobsStorage")
    }
    return {**inherited, **settings, "PYTHONUNBUFFERED": "1"}


class HostProcess:
    """``dmsync host`` on the repository's ``function_app.py``, logging to a file."""

    def __init__(self, settings: Mapping[str, str], work_dir: Path) -> None:
        self.log_path = work_dir / "host.log"
        self._settings_file = work_dir / "local.settings.json"
        self._settings = dict(settings)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the host; it logs to :attr:`log_path`."""
        # An empty settings file: the app's settings come from the environment only.
        self._settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": {}}))
        command = [
            sys.executable, "-m", "dmsync.cli", "host",
            "--app", str(APP_SCRIPT), "--settings", str(self._settings_file),
            "--grace-seconds", str(HOST_GRACE_SECONDS),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
                command,
                cwd=REPO_ROOT,
                env=child_environment(self._settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        """The host's process id, once started."""
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """``None`` while it runs; its exit status once it has stopped."""
        return self._process.poll() if self._process else None

    def stop(self) -> int | None:
        """Stop the host and wait for it; idempotent.

        SIGTERM to its group, SIGKILL if it is still there after its grace for running
        invocations and :data:`STOP_TIMEOUT` more.

        Returns:
            Its exit status (``None`` if it was never started).
        """
        if self._process is None:
            return None
        stop_group(self._process, timeout=HOST_GRACE_SECONDS + STOP_TIMEOUT)
        return self._process.returncode

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the host's log."""
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines)).rstrip()
        except OSError:
            return ""


@contextmanager
def running_host(settings: Mapping[str, str], work_dir: Path) -> Iterator[HostProcess]:
    """A started host, stopped on exit."""
    host = HostProcess(settings, work_dir)
    try:
        host.start()
        yield host
    finally:
        host.stop()
