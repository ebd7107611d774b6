"""Several processes on one Azurite share one Marketo budget, against one Marketo emulator at
its real limits (100 calls / 20 s, 10 concurrent).

* Three ``dmsync host`` processes with a backlog of two entities, the app's share set to
  10 calls / 20 s and 2 in flight and a daily budget smaller than the backlog needs: no 606 or
  615, the busiest 20 s window (the emulator's own counter) within the share, concurrency within
  its share, and the daily budget reached but never exceeded in total.
* Three processes that only make calls through the shared budget (an endless backlog): one is
  SIGKILLed while it holds calls of the current window; its calls free once its lease and one
  window have passed, and the two others then make a whole share's worth of calls within about
  a window.
  (A killed ``dmsync host`` also strands its stream's job until the stream lease expires: that
  is the engine's business, and it would leave the survivors without work to show the budget
  coming back.)

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
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.app_settings import emulator_app_settings
from emulators.azurite import AzuriteInstance, run_azurite
from emulators.dynamics.runner import EmulatorHandle, run_dynamics_emulator
from emulators.marketo.runner import RunningMarketo, run_marketo_emulator
from emulators.process_group import stop_group
from shared.marketo.shared_governor import marketo_budget
from shared.settings import MarketoSettings, load
from shared.state.store import StateStore
from shared.storage import StorageConnection
from tests.integration.host.process import clean_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
MAPPING = Path(__file__).with_name("independent_streams.toml")
SHARE, CONCURRENCY, DAILY = 10, 2, 25
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
        env=clean_environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )  # fmt: skip


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, state: Callable[[], Any] = lambda: ""
) -> Any:
    """Poll ``check`` until it returns something truthy (bounded); ``state`` for the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {state()}")


def app_settings(
    azurite: AzuriteInstance, dynamics: EmulatorHandle, marketo: RunningMarketo, **extra: str
) -> dict[str, str]:
    return {
        **emulator_app_settings(azurite, dynamics, marketo),
        "SYNC_MAPPING_FILE": str(MAPPING),
        "SYNC_SCHEDULE": "*/5 * * * * *",
        "MARKETO_CALLS_PER_20S": str(SHARE),
        "MARKETO_MAX_CONCURRENCY": str(CONCURRENCY),
        "MARKETO_DAILY_CALL_BUDGET": str(DAILY),
        # One job at a time per host, so that the streams run on several hosts (a host would
        # otherwise take both first messages in one batch).
        "AzureFunctionsJobHost__extensions__queues__batchSize": "1",
        "AzureFunctionsJobHost__extensions__queues__newBatchThreshold": "0",
        **extra,
    }  # fmt: skip


def budget_ledger(azurite: AzuriteInstance, settings: dict[str, str], prefix: str = "dmsync"):  # type: ignore[no-untyped-def]
    spec = marketo_budget(load(MarketoSettings, settings))
    store = StateStore.from_connection(
        StorageConnection.from_connection_string(azurite.connection_string), table_prefix=prefix
    )
    return spec, lambda: store.budgets.read(spec.key)[0]


def test_three_hosts_stay_inside_one_shared_budget(
    services: tuple[AzuriteInstance, EmulatorHandle, RunningMarketo], tmp_path: Path
) -> None:
    azurite, dynamics, marketo = services
    settings = app_settings(azurite, dynamics, marketo)
    _, ledger = budget_ledger(azurite, settings)
    marketo.control.reset_usage()
    hosts = [start_host(settings, tmp_path, i) for i in range(HOSTS)]
    try:
        # A bound, not a measurement: three hosts starting on a loaded 2-core machine need
        # most of a minute before their first calls, then two 20 s windows of this share.
        wait_for("the daily budget to be spent", lambda: ledger().day_used >= DAILY, 300,
                 lambda: (marketo.control.usage(), ledger()))  # fmt: skip
        workers = {n for n, h in ledger().holders.items()}
    finally:
        for process in hosts:
            stop_group(process)
    usage = marketo.control.usage()
    assert usage.errors.get("606", 0) == 0, usage.errors
    assert usage.errors.get("615", 0) == 0, usage.errors
    assert usage.max_calls_in_window <= SHARE
    assert usage.max_concurrency <= CONCURRENCY
    assert DAILY - SHARE <= usage.counted <= DAILY
    print(f"{len(workers)} processes on the row at the end; {usage.counted} calls counted, "
          f"busiest window {usage.max_calls_in_window}")  # fmt: skip


def start_worker(settings: dict[str, str], prefix: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.budget.budget_worker", prefix],
        cwd=REPO_ROOT,
        env=clean_environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )


def test_a_killed_process_frees_its_calls_and_the_others_take_them_back(
    services: tuple[AzuriteInstance, EmulatorHandle, RunningMarketo], tmp_path: Path
) -> None:
    azurite, dynamics, marketo = services
    share = 20
    settings = app_settings(
        azurite, dynamics, marketo, MARKETO_CALLS_PER_20S=str(share),
        MARKETO_MAX_CONCURRENCY="3", MARKETO_DAILY_CALL_BUDGET="50000",
    )  # fmt: skip
    prefix = "w" + uuid.uuid4().hex[:10]
    spec, ledger = budget_ledger(azurite, settings, prefix)
    marketo.control.reset_usage()
    started = time.monotonic()
    workers = [start_worker(settings, prefix, tmp_path / f"w{i}.log") for i in range(HOSTS)]
    try:

        def holding() -> tuple[int, str] | None:
            for name, held in ledger().holders.items():
                for index, process in enumerate(workers):
                    if f"-{process.pid}-" in name and held.open > 0:
                        return index, name
            return None

        victim, victim_name = wait_for("a process holding calls", holding, 180)
        os.kill(workers[victim].pid, signal.SIGKILL)
        workers[victim].wait(10)
        killed_at = time.monotonic() - started

        def victim_holds_nothing() -> bool:
            now, held = time.time(), ledger().holders.get(victim_name)
            return held is None or not (
                held.window_use(now, spec.limits) or held.concurrency_use(now, spec.limits)
            )

        # Lease (10 s) + window (20 s) + margin (1 s) at most; the bound leaves room for a
        # loaded machine (the seconds it took are printed).
        wait_for("the killed process's calls to free", victim_holds_nothing, 90)
        freed_at = time.monotonic() - started
        before = marketo.control.usage()
        marketo.control.reset_usage()
        # A whole share's worth of calls by the two others within about a window.
        wait_for("the others to use the whole share",
                 lambda: marketo.control.usage().counted >= share, 90,
                 lambda: (marketo.control.usage(), ledger()))  # fmt: skip
        refilled_at = time.monotonic() - started
    finally:
        for process in workers:
            stop_group(process)
    after = marketo.control.usage()
    for usage in (before, after):
        assert usage.errors.get("606", 0) == 0, usage.errors
        assert usage.errors.get("615", 0) == 0, usage.errors
        assert usage.max_calls_in_window <= share
        assert usage.max_concurrency <= 3
    assert after.counted >= share
    print(f"killed at {killed_at:.1f} s, its calls free at {freed_at:.1f} s, the others made "
          f"{share} calls by {refilled_at:.1f} s")  # fmt: skip
