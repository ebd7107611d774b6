"""``dmsync host`` as a process: signals, time limits, load errors."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from emulators.azurite import AzuriteInstance
from shared.storage import StorageConnection
from tests.integration.host.process import clean_environment, run_host, start_host

pytestmark = pytest.mark.integration

HOST_JSON = '{"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:00:00.200"}}}'


def write_app(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(
        "import azure.functions as func\n\napp = func.FunctionApp()\n" + textwrap.dedent(body)
    )
    (folder / "host.json").write_text(HOST_JSON)
    return folder


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not reached within {timeout} s")


def test_sigterm_finishes_what_it_can_and_leaves_the_rest_leased(
    azurite: AzuriteInstance, unique_name: str, tmp_path: Path
) -> None:
    """On SIGTERM the host stops receiving; an invocation that ends within the grace is
    completed (its message deleted); one that does not is abandoned, its message is not
    deleted, and it is delivered again once its lease runs out."""
    markers = tmp_path / "markers"
    markers.mkdir()
    app = write_app(
        tmp_path / "app",
        """
        import os, pathlib, time

        @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", connection="AzureWebJobsStorage")
        def work(msg: func.QueueMessage) -> None:
            markers = pathlib.Path(os.environ["MARKERS"])
            body = msg.get_body().decode()
            (markers / body).write_text("started")
            if body == "quick":
                deadline = time.monotonic() + 20
                while not (markers / "release").exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
            else:
                time.sleep(60)  # never finishes within the grace period
        """,
    )
    queue = StorageConnection.from_connection_string(azurite.connection_string).queue_client(
        unique_name
    )
    queue.create_queue()
    queue.send_message("quick")
    queue.send_message("stuck")
    env = clean_environment(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "JOBS": unique_name,
            "MARKERS": str(markers),
        }
    )
    process = start_host(["--app", str(app), "--grace-seconds", "3", "--message-lease", "2"], env)
    try:
        wait_until(lambda: (markers / "quick").exists() and (markers / "stuck").exists())
        process.send_signal(signal.SIGTERM)
        (markers / "release").write_text("go")
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "SIGTERM received" in stderr and "1 invocation(s) abandoned" in stderr
    assert "Executed 'Functions.work' (Succeeded" in stderr  # "quick" finished in the grace

    raw = QueueClient.from_connection_string(azurite.connection_string, unique_name)
    assert raw.get_queue_properties().approximate_message_count == 1  # "stuck" was kept
    redelivered: list[tuple[str, int]] = []

    def stuck_is_visible_again() -> bool:
        redelivered.extend(
            (m.content, m.dequeue_count) for m in queue.receive_messages(max_messages=1)
        )
        return bool(redelivered)

    wait_until(stuck_is_visible_again)
    assert redelivered == [("stuck", 2)]


def test_until_idle_with_max_seconds_fails_when_not_idle_in_time(tmp_path: Path) -> None:
    """A timer that cannot fire within the bound: exit 1 and say what was pending."""
    app = write_app(
        tmp_path / "app",
        """
        @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", use_monitor=False)
        def yearly(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    status, stderr = run_host(
        ["--app", str(app), "--until-idle", "--max-seconds", "1"], clean_environment()
    )
    assert status == 1
    assert "dmsync host: not idle after 1 s: timer yearly has not fired yet" in stderr


def test_max_seconds_alone_ends_a_run_cleanly(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", use_monitor=False)
        def yearly(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    status, stderr = run_host(["--app", str(app), "--max-seconds", "0.5"], clean_environment())
    assert status == 0, stderr
    assert "host stopped (time-limit)" in stderr


def test_load_error_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
        def work(message: func.QueueMessage) -> None:
            pass
        """,
    )
    status, stderr = run_host(["--app", str(app)], clean_environment())
    assert status == 2
    assert "dmsync host: error: cannot load the work function: parameters ['message']" in stderr


def test_local_settings_supply_setting_references(tmp_path: Path) -> None:
    """An unknown %Setting% names the setting; the settings file can supply it."""
    app = write_app(
        tmp_path / "app",
        """
        @app.timer_trigger(
            arg_name="timer", schedule="%TICK%", run_on_startup=True, use_monitor=False
        )
        def tick(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    status, stderr = run_host(["--app", str(app), "--until-idle"], clean_environment())
    assert status == 2 and "refers to app setting %TICK%, which is not set" in stderr
    (app / "local.settings.json").write_text('{"Values": {"TICK": "0 0 0 1 1 *"}}')
    status, stderr = run_host(
        ["--app", str(app), "--until-idle", "--max-seconds", "30"], clean_environment()
    )
    assert status == 0, stderr
    assert "Executed 'Functions.tick' (Succeeded" in stderr


def test_sigint_stops_an_idle_host_with_status_0(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        @app.timer_trigger(
            arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True, use_monitor=False
        )
        def tick(timer: func.TimerRequest) -> None:
            pass
        """,
    )
    process = start_host(["--app", str(app)], clean_environment())
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "Executed 'Functions.tick'" in line:
                break
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
