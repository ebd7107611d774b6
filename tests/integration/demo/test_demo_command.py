"""``dmsync demo --scale small``: the whole demo end to end, and it leaves no process behind.

Each run gets a marker variable in its environment; every process it starts inherits it, so a
scan of ``/proc`` afterwards finds any it left running (and never another test's processes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
MARKER = "DMSYNC_DEMO_TEST_RUN"
DEMO = [sys.executable, "-m", "dmsync.cli", "demo", "--scale", "small"]


def marked_processes(value: str) -> list[int]:
    """Live processes whose environment carries ``MARKER=value``."""
    needle = f"{MARKER}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_marked(value: str) -> None:
    """Last resort after a failed test: end whatever still carries the marker, so a failure
    never leaves servers behind for the rest of the run (or for other engineers)."""
    for pid in marked_processes(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


_MARKERS: list[str] = []


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Whatever a test of this module started is ended when it finishes, even on failure."""
    yield
    while _MARKERS:
        stop_marked(_MARKERS.pop())


def marked_environment() -> tuple[str, dict[str, str]]:
    """A fresh marker value and the environment that carries it."""
    value = uuid.uuid4().hex
    _MARKERS.append(value)
    return value, {**os.environ, MARKER: value}


DEMO_WORST_CASE = 90 + 60 + 120 + 90
"""Seconds: the small scale's initial-sync budget, its changes' usual time plus one queue
retry (host.json visibilityTimeout, ``dmsync.demo.scenario.changes_budget``), and set-up and
reconciliation. A run usually takes well under a minute; this only bounds a stuck one."""


@pytest.mark.timeout(DEMO_WORST_CASE + 60)
def test_small_demo_syncs_changes_and_reconciles() -> None:
    """Exit 0, every change arrived, the reconciliation holds, nothing left running."""
    value, env = marked_environment()
    result = subprocess.run(
        [*DEMO, "--seed", "7"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=DEMO_WORST_CASE, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = result.stdout
    assert "initial sync done in" in out
    assert "all 11 changes arrived" in out
    for kind in ("create", "update", "delete", "filter", "owner"):
        assert f"landed {kind}" in out
    assert "RESULT: the reconciliation holds" in out
    assert "stopped everything the demo started" in out
    assert marked_processes(value) == []


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    """SIGINT once the host runs: exit 130, and the host, emulators and Azurite are gone."""
    value, env = marked_environment()
    demo = subprocess.Popen(
        [*DEMO, "--log-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    host_started = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            seen.append(line)
            if "host started" in line:
                host_started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert host_started.wait(60), "".join(seen)
        running = marked_processes(value)
        for _ in range(100):  # the host's process may still be starting under load
            if len(running) >= 5:
                break
            time.sleep(0.2)
            running = marked_processes(value)
        assert len(running) >= 5, running  # the demo, Azurite, two emulators, the host
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 130, "".join(seen)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # let the demo stop its children itself first
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        stop_marked(value)
    reader.join(10)
    assert any("interrupted: everything the demo started has been stopped" in s for s in seen)
    assert marked_processes(value) == []


def test_a_host_that_cannot_start_fails_the_demo_and_leaves_nothing(tmp_path: Path) -> None:
    """A schedule the host refuses: exit 1, the host's own error shown, everything stopped."""
    value, env = marked_environment()
    command = [*DEMO, "--schedule", "every minute", "--log-dir", str(tmp_path)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "the host exited with status 2" in result.stdout
    assert "is not an NCRONTAB expression" in result.stdout
    assert "DEMO FAILED: the host stopped during the initial sync" in result.stdout
    assert marked_processes(value) == []
