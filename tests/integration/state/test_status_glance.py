"""``dmsync status``: the at-a-glance table, drawn with rich in a terminal (a pseudo-terminal
here) and as plain columns when the output is a pipe; ``--json`` carries the same rows."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dmsync.cli import main
from emulators.azurite import AzuriteInstance
from shared.clock import ManualClock
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import FailedRecord
from shared.state.watermarks import Phase, RunCounts

pytestmark = pytest.mark.integration

CONTACTS = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)
ACCOUNTS = StreamId("prod", "account", Direction.DYNAMICS_TO_MARKETO)


@pytest.fixture
def clock() -> ManualClock:
    """Written at the real time minus an hour and a half; the CLI reads with the system clock."""
    return ManualClock(start=datetime.now(UTC) - timedelta(minutes=90))


def prepare(store: StateStore, clock: ManualClock) -> None:
    """Contacts: a first copy 250 of 1000 in, 200 of them in the last hour, one error.
    Accounts: up to date."""
    seq = store.watermarks.start_run(CONTACTS).sequence
    store.watermarks.advance(CONTACTS, sequence=seq, cursor="n1",
                             counts=RunCounts(read=50), total_expected=1000)  # fmt: skip
    clock.advance(45 * 60)  # 45 minutes ago: inside the last hour from here on
    for page in range(4):
        store.watermarks.advance(CONTACTS, sequence=seq, cursor=f"n{page + 2}",
                                 counts=RunCounts(read=50))  # fmt: skip
        clock.advance(60)
    store.errors.record(FailedRecord(CONTACTS, "update", "1003", "bad", dynamics_id="d-1"))
    seq = store.watermarks.start_run(ACCOUNTS).sequence
    store.watermarks.advance(ACCOUNTS, sequence=seq, cursor="delta", counts=RunCounts(read=10),
                             phase=Phase.INCREMENTAL, finish=True)  # fmt: skip


def test_plain_text_when_not_a_terminal_and_json_for_scripts(
    store: StateStore,
    clock: ManualClock,
    azurite: AzuriteInstance,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prepare(store, clock)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    capsys.readouterr()
    assert main(["status", "prod", "--table-prefix", unique_name]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out, "no escape codes in a pipe"
    lines = out.splitlines()
    assert lines[0] == "instance prod (not registered)"
    assert lines[1].split() == ["ENTITY", "DIR", "PHASE", "LAST", "HOUR", "BACKLOG", "BEHIND",
                                "CATCH-UP", "ERRORS", "LAST", "RUN", "NOTE"]  # fmt: skip
    contact = next(line for line in lines if line.startswith("contact"))
    assert "first copy" in contact
    assert " 200 " in contact, "records in the last hour"
    assert " 750 " in contact, "the rest of the copy"
    assert " ~3h45m " in contact, "750 left at 200 an hour"
    account = next(line for line in lines if line.startswith("account"))
    assert "up to date" in account and "caught up" in account

    capsys.readouterr()
    assert main(["status", "prod", "--json", "--table-prefix", unique_name]) == 0
    [report] = json.loads(capsys.readouterr().out)
    rows = {row["entity"]: row for row in report["glance"]}
    assert rows["contact"]["records_last_hour"] == 200
    assert rows["contact"]["backlog"] == 750
    assert rows["contact"]["catch_up_seconds"] == pytest.approx(750 * 3600 / 200)
    assert rows["contact"]["open_errors"] == 1
    assert rows["account"]["phase"] == "up to date" and rows["account"]["catch_up_seconds"] == 0


def run_in_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run a command with a pseudo-terminal as its stdout; everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_rich_table_in_a_terminal(
    store: StateStore,
    clock: ManualClock,
    azurite: AzuriteInstance,
    unique_name: str,
    make_store: Callable[..., StateStore],
) -> None:
    prepare(store, clock)
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "COLUMNS": "160"}
    out = run_in_terminal(
        [sys.executable, "-m", "dmsync.cli", "status", "prod", "--table-prefix", unique_name], env
    )
    assert "\x1b[" in out, "colour and styles in a terminal"
    assert "┃" in out or "│" in out, "a drawn table"
    assert "instance prod (not registered)" in out
    assert "first copy" in out and "~3h45m" in out and "caught up" in out
