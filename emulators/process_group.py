"""Stopping the local services started as subprocesses (Azurite, the emulators, the host).

Each runs in its own process group (``start_new_session=True``), so a signal to the group
reaches whatever the process started too (``npx`` → ``node``, a server's workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from typing import Any


def stop_group(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM to the process's group, then SIGKILL if it has not exited in ``timeout`` s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def drain(process: subprocess.Popen[str]) -> None:
    """Read the process's output to its end, so a full pipe never blocks it (run in a thread)."""
    assert process.stdout is not None
    for _ in process.stdout:
        pass
