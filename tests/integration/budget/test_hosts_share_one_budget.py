"""Three ``dmsync host`` processes on one Azurite share one Marketo budget.

Against one Marketo emulator at its real limits (100 calls / 20 s, 10 concurrent), with a
backlog of several entities, the app's share set to 10 calls / 20 s and 2 in flight and a small
daily budget: no 606 or 615, the busiest 20 s window (the emulator's own counter) within the
share, concurrency within its share, and the daily budget never exceeded in total. One host is
killed with SIGKILL while it holds calls; the others get its part back: once its entry has left
the budget row, they fill the whole share in one window between them.

Waits are bounded polls for a state (never sleeps standing in for a check); the assertions are
on counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.app_settings import emulator_app_settings
from emulators.azurite import AzuriteInstance, run_azurite
from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator
from emulators.process_group import stop_group
from shared.budget.rules import Ledger
from shared.marketo.shared_governor import marketo_budget
from shared.settings import MarketoSettings, load
from shared.state.store import StateStore
from shared.storage import StorageConnection

REPO_ROOT = Path(__file__).resolve().parents[3]
MAPPING = Path(__file__).with_name("independent_streams.toml")
SHARE, CONCURRENCY, DAILY = 10, 2, 50
HOSTS = 3


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[AzuriteInstance, EmulatorHandle, RunningMarketo]]:
    """A private Azurite (the hosts use the default tables and queue) and both emulators."""
    with (
        run_azurite() as azurite,
        run_dynamics_emulator(mode="subprocess", seed=11) as dynamics,
        run_marketo_emulator(mode="subprocess") as marketo,
    ):
        # About 26,000 records: some 90 Marketo calls, several windows of this share.
        dynamics.control.seed(
            counts={"systemuser": 5, "team": 2, "account": 11_000, "contact": 15_000}, seed=11
        )
        yield azurite, dynamics, marketo


def start_host(settings: dict[str, str], workdir: Path, index: int) -> subprocess.Popen[bytes]:
    settings_file = workdir / f"host{index}.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    os.chmod(settings_file, 0o600)
    log = (workdir / f"host{index}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "dmsync.cli", "host", "--app", str(REPO_ROOT / "function_app.py"),
         "--settings", str(settings_file)],
        cwd=REPO_ROOT,
        env={**os.environ, **settings, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )  # fmt: skip


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_hosts_stay_inside_one_shared_budget(
    services: tuple[AzuriteInstance, EmulatorHandle, RunningMarketo], tmp_path: Path
) -> None:
    azurite, dynamics, marketo = services
    settings = {
        **emulator_app_settings(azurite, dynamics, marketo),
        "SYNC_MAPPING_FILE": str(MAPPING),
        "SYNC_SCHEDULE": "*/5 * * * * *",
        "MARKETO_CALLS_PER_20S": str(SHARE),
        "MARKETO_MAX_CONCURRENCY": str(CONCURRENCY),
        "MARKETO_DAILY_CALL_BUDGET": str(DAILY),
    }
    spec = marketo_budget(load(MarketoSettings, settings))
    key, limits = spec.key, spec.limits
    store = StateStore.from_connection(
        StorageConnection.from_connection_string(azurite.connection_string)
    )

    def ledger() -> Ledger:
        return store.budgets.read(key)[0]

    marketo.control.reset_usage()
    started = time.monotonic()
    hosts = [start_host(settings, tmp_path, i) for i in range(HOSTS)]
    try:
        # Kill a host while it holds calls of the current window and another host holds some
        # too: both run a job, so the other stream is not behind the killed host's stream
        # lease (a killed job's stream waits for its lease, the engine's business).
        def holding_host() -> tuple[int, str] | None:
            holding = [name for name, h in ledger().holders.items() if h.open > 0]
            if len(holding) < 2:
                return None
            for index, process in enumerate(hosts):
                if f"-{process.pid}-" in holding[0]:
                    return index, holding[0]
            return None

        victim, victim_name = wait_for("a host holding calls", holding_host, 60)
        os.kill(hosts[victim].pid, signal.SIGKILL)
        killed_at = time.monotonic() - started
        hosts[victim].wait(10)

        # What it held frees once its lease and one window (and the skew margin) have passed
        # ...
        def victim_holds_nothing() -> bool:
            now, row = time.time(), ledger()
            held = row.holders.get(victim_name)
            return held is None or not (
                held.window_use(now, limits) or held.concurrency_use(now, limits)
            )

        wait_for("the killed host's calls to free", victim_holds_nothing, 45)
        freed_at = time.monotonic() - started
        # ... and the two others then fill the whole share of a window between them.
        before_kill_expired = marketo.control.usage()
        marketo.control.reset_usage()
        wait_for(
            "the survivors to fill a window",
            lambda: marketo.control.usage().max_calls_in_window >= SHARE,
            30,
        )
        refilled = marketo.control.usage().max_calls_in_window
        refilled_at = time.monotonic() - started
        # The daily budget runs out; every host stops calling for the day.
        wait_for("the daily budget to be spent", lambda: ledger().day_used >= DAILY, 60)
    finally:
        for process in hosts:
            if process.poll() is None:
                stop_group(process)
    after = marketo.control.usage()
    for usage in (before_kill_expired, after):
        assert usage.errors.get("606", 0) == 0, usage.errors
        assert usage.errors.get("615", 0) == 0, usage.errors
        assert usage.max_calls_in_window <= SHARE
        assert usage.max_concurrency <= CONCURRENCY
    # The survivors regained the killed host's part: a full window between the two of them.
    assert refilled == SHARE
    # The emulator counted every call of the day (its counters restart at reset_usage).
    counted = before_kill_expired.counted + after.counted
    assert counted <= DAILY
    assert counted >= DAILY - SHARE  # the budget was really spent, not left unused
    print(
        f"killed at {killed_at:.1f} s, its calls free at {freed_at:.1f} s, window refilled "
        f"at {refilled_at:.1f} s; {counted} calls counted, busiest windows "
        f"{before_kill_expired.max_calls_in_window} and {after.max_calls_in_window}"
    )
