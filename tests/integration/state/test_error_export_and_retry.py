"""``dmsync errors export`` round-trips; ``dmsync errors retry`` makes errors due now, including
records whose attempts were used up, and leaves rows the sync changed meanwhile alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dmsync.cli import main
from emulators.azurite import AzuriteInstance
from shared.clock import ManualClock
from shared.jobs import Direction
from shared.state.error_export import read_csv, read_json, rows_of
from shared.state.error_retry import request_retry
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import ErrorRetryPolicy, FailedRecord

pytestmark = pytest.mark.integration

CONTACTS = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)
ACCOUNTS = StreamId("prod", "account", Direction.DYNAMICS_TO_MARKETO)
IDS = [f"0000000{i}-0000-4000-8000-000000000000" for i in range(1, 6)]
AWKWARD = [
    'Email "x@example.com", invalid; see: https://example.com/?a=1&b=2',
    '=HYPERLINK("http://evil.example")',
    "'already quoted",
    "line one\nline two\r\nline three",
    "-1 is not a valid value … ünïcode ✓",
]
POLICY = ErrorRetryPolicy(max_attempts=3, first_delay=timedelta(minutes=5))


@pytest.fixture
def clock() -> ManualClock:
    """The CLI reads with the system clock; the store writes at the real time too."""
    return ManualClock(start=datetime.now(UTC))


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    """A store with a small retry policy (three attempts)."""
    return make_store(error_policy=POLICY)


@pytest.fixture
def dmsync(
    azurite: AzuriteInstance,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """Runs ``dmsync`` in-process on this test's tables."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("SYNC_INSTANCE_ID", "prod")

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, "--table-prefix", unique_name])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def fail(store: StateStore, stream: StreamId, record_id: str, message: str, code: str = "1003"):  # type: ignore[no-untyped-def]
    """Record one failure of ``record_id``."""
    return store.errors.record(
        FailedRecord(stream, "update", code, message, dynamics_id=record_id, marketo_id="42")
    )


def test_export_round_trips_as_csv_and_json(
    store: StateStore,
    clock: ManualClock,
    dmsync: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    for record_id, message in zip(IDS, AWKWARD, strict=True):
        fail(store, CONTACTS, record_id, message)
        clock.advance(7)
    fail(store, CONTACTS, IDS[0], AWKWARD[0])  # a second attempt: attempts 2, first seen kept
    fail(store, ACCOUNTS, IDS[1], "account failure", code="610")
    store.errors.resolve(ACCOUNTS, [IDS[1]])
    expected_open = rows_of(store.errors.list("prod"))
    expected_all = rows_of(store.errors.list("prod", include_resolved=True))
    assert len(expected_open) == 5 and len(expected_all) == 6

    code, out, _ = dmsync("errors", "export")
    assert code == 0
    assert out.splitlines()[0].startswith("instance,entity,direction,operation,")
    assert read_csv(out) == expected_open
    assert "'=HYPERLINK" in out, "a formula-like cell is written as text"

    code, out, _ = dmsync("errors", "export", "--json", "--all")
    assert code == 0
    assert read_json(out) == expected_all
    first = next(r for r in json.loads(out) if r["dynamics_id"] == IDS[0])
    assert first["attempts"] == 2 and first["first_seen"] < first["last_seen"]
    assert {"operation", "direction", "code", "message", "attempts"} <= set(first)

    target = tmp_path / "errors.csv"
    code, out, _ = dmsync("errors", "export", "--csv", "--all", "--output", str(target))
    assert code == 0 and "6 sync errors of prod written to" in out
    with target.open(encoding="utf-8", newline="") as exported:  # as a CSV reader opens it
        assert read_csv(exported.read()) == expected_all


def test_retry_makes_matching_errors_due_now_even_when_attempts_are_used_up(
    store: StateStore, clock: ManualClock, dmsync: Callable[..., tuple[int, str, str]]
) -> None:
    for _ in range(POLICY.max_attempts):
        fail(store, CONTACTS, IDS[0], "rejected", code="1003")
    fail(store, CONTACTS, IDS[1], "rejected", code="1003")
    fail(store, CONTACTS, IDS[2], "other", code="1007")
    fail(store, ACCOUNTS, IDS[3], "rejected", code="1003")
    assert store.errors.due_for_retry(CONTACTS) == [], "nothing is due yet"

    code, out, _ = dmsync("errors", "retry", "--entity", "contact", "--code", "1003")
    assert code == 0, out
    assert "2 sync errors of prod marked for retry now (contact d2m)" in out
    due = {e.dynamics_id for e in store.errors.due_for_retry(CONTACTS)}
    assert due == {IDS[0], IDS[1]}, "the given-up record is offered once more; 1007 is not"
    assert store.errors.due_for_retry(ACCOUNTS) == []

    # A new failure replaces the row: the request is used up, the backoff applies again.
    fail(store, CONTACTS, IDS[0], "rejected again", code="1003")
    assert {e.dynamics_id for e in store.errors.due_for_retry(CONTACTS)} == {IDS[1]}

    code, out, err = dmsync(
        "errors", "retry", IDS[3].upper(), "99999999-0000-4000-8000-000000000000"
    )
    assert code == 0
    assert "1 sync errors of prod marked for retry now (account d2m)" in out
    assert "no open sync error for: 99999999-0000-4000-8000-000000000000" in err
    assert [e.dynamics_id for e in store.errors.due_for_retry(ACCOUNTS)] == [IDS[3]]


def test_a_row_changed_since_it_was_read_is_left_to_the_sync(
    store: StateStore, clock: ManualClock
) -> None:
    fail(store, CONTACTS, IDS[0], "rejected")
    fail(store, CONTACTS, IDS[1], "rejected")
    listed = store.errors.list("prod")
    clock.advance(1)
    fail(store, CONTACTS, IDS[0], "rejected again")  # the sync got there first
    marked = request_retry(store, listed)
    assert [e.dynamics_id for e in marked] == [IDS[1]]
    assert [e.dynamics_id for e in store.errors.due_for_retry(CONTACTS)] == [IDS[1]]
