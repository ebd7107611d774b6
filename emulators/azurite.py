"""Start and stop a private Azurite (the npm package pinned in package.json) for tests and demos.

Each instance gets its own temporary data folder and free ports (Azurite is asked for port 0
and reports the ones it bound), runs with ``--skipApiVersionCheck`` (the Python SDKs speak a
newer storage API version than Azurite 3.35 knows), ``--disableTelemetry`` and ``--loose``, and
is always stopped, with its folder removed, when the context exits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from emulators.process_group import drain, stop_group
from shared.errors import ConfigurationError
from shared.storage import azurite_connection_string

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)"
)


@dataclass(frozen=True)
class AzuriteInstance:
    """A running Azurite: its ports and the connection string that reaches it."""

    host: str
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        """The explicit account connection string (``AzureWebJobsStorage``) for this instance."""
        return azurite_connection_string(
            self.host, self.queue_port, self.table_port, self.blob_port
        )


@contextmanager
def run_azurite(
    host: str = "127.0.0.1", startup_timeout: float = 30.0
) -> Iterator[AzuriteInstance]:
    """Run Azurite for the duration of the ``with`` block.

    Raises:
        ConfigurationError: if ``npm ci`` has not installed Azurite, or it does not start.
    """
    if not AZURITE_BIN.exists():
        raise ConfigurationError(
            f"Azurite is not installed at {AZURITE_BIN}: run `npm ci` (or `make setup`) first"
        )
    data_dir = Path(tempfile.mkdtemp(prefix="dmsync-azurite-"))
    command = [
        str(AZURITE_BIN),
        "--location", str(data_dir),
        "--blobHost", host, "--queueHost", host, "--tableHost", host,
        "--blobPort", "0", "--queuePort", "0", "--tablePort", "0",
        "--skipApiVersionCheck", "--disableTelemetry", "--loose",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a stop reaches node and any children it spawned
    )
    try:
        ports = _wait_for_ports(process, startup_timeout)
        # Keep draining stdout so Azurite never blocks on a full pipe.
        threading.Thread(target=drain, args=(process,), daemon=True).start()
        yield AzuriteInstance(host, ports["Blob"], ports["Queue"], ports["Table"])
    finally:
        stop_group(process)
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_for_ports(process: subprocess.Popen[str], timeout: float) -> dict[str, int]:
    ports: dict[str, int] = {}
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while len(ports) < 3:
        if time.monotonic() > deadline:
            raise ConfigurationError(f"Azurite did not start within {timeout:.0f} s: {seen[-5:]}")
        line = process.stdout.readline()
        if not line:
            raise ConfigurationError(f"Azurite exited during start-up: {' | '.join(seen[-5:])}")
        seen.append(line.strip())
        match = _LISTENING.search(line)
        if match:
            ports[match.group(1)] = int(match.group(2))
    return ports
