"""Start a Marketo emulator for a test or a benchmark and always stop it.

``mode="thread"`` serves from a background thread of this process (fast to start: tests);
``mode="subprocess"`` runs ``dmsync emulator marketo`` in a child process, so a benchmark measures
the sync's CPU time without the emulator's. Both pick a free port on 127.0.0.1.

>>> with run_marketo_emulator() as mkto:                     # doctest: +SKIP
...     token = httpx.get(f"{mkto.base_url}/identity/oauth/token", params=mkto.credentials)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from emulators.marketo.app import build_app
from emulators.marketo.config import EmulatorConfig, config_to_json, default_config
from emulators.marketo.control_client import MarketoControl
from emulators.marketo.serve import base_url, bind, make_server
from emulators.process_group import drain, stop_group
from shared.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"^listening on (http://\S+)\s*$")


@dataclass(frozen=True)
class RunningMarketo:
    """A running emulator: where it is, how to authenticate, and its control client."""

    base_url: str
    """``http://127.0.0.1:<port>``: REST at ``/rest``, bulk at ``/bulk``, identity at
    ``/identity`` (what ``MARKETO_BASE_URL`` takes)."""
    client_id: str
    client_secret: str = field(repr=False)
    munchkin_id: str
    control: MarketoControl = field(repr=False)

    @property
    def identity_url(self) -> str:
        """The identity base (``<base>/identity``)."""
        return f"{self.base_url}/identity"

    @property
    def credentials(self) -> dict[str, str]:
        """Query parameters of a client-credentials token request."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


@contextmanager
def run_marketo_emulator(
    config: EmulatorConfig | None = None,
    *,
    mode: Literal["thread", "subprocess"] = "thread",
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
) -> Iterator[RunningMarketo]:
    """Run an emulator for the duration of the ``with`` block.

    Raises:
        ConfigurationError: if it does not start within ``startup_timeout`` seconds.
    """
    config = config or default_config()
    runner = _run_in_thread if mode == "thread" else _run_in_subprocess
    with runner(config, host, startup_timeout) as url:
        client = config.clients[0]
        control = MarketoControl(url)
        try:
            yield RunningMarketo(
                base_url=url,
                client_id=client.client_id,
                client_secret=client.client_secret.get_secret_value(),
                munchkin_id=config.munchkin_id,
                control=control,
            )
        finally:
            control.close()


@contextmanager
def _run_in_thread(config: EmulatorConfig, host: str, timeout: float) -> Iterator[str]:
    app, emulator = build_app(config)
    sock = bind(host, 0)
    server = make_server(app, emulator)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="marketo-emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(f"the Marketo emulator did not start within {timeout} s")
            time.sleep(0.01)
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def _run_in_subprocess(config: EmulatorConfig, host: str, timeout: float) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dmsync-marketo-") as folder:
        config_file = Path(folder) / "config.json"
        config_file.write_text(config_to_json(config), encoding="utf-8")
        os.chmod(config_file, 0o600)  # it holds the client secret
        command = [
            sys.executable, "-m", "dmsync.cli", "emulator", "marketo",
            "--host", host, "--port", "0", "--config", str(config_file),
        ]  # fmt: skip
        process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
            command,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            url = _wait_for_url(process, timeout)
            threading.Thread(target=drain, args=(process,), daemon=True).start()
            yield url
        finally:
            stop_group(process)


def _wait_for_url(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip())
            match = _LISTENING.match(line)
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        stop_group(process)
        raise ConfigurationError(
            f"the Marketo emulator did not start within {timeout} s: {' | '.join(seen[-5:])}"
        )
    return found[0]
