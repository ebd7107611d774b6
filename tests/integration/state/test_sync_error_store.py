"""Sync errors on Azurite: repeats, retries, resolution, queries by time, purge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from shared.clock import ManualClock
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import MAX_MESSAGE_CHARS, ErrorRetryPolicy, FailedRecord
from tests.integration.state.conftest import RequestLog

pytestmark = pytest.mark.integration

CONTACTS = StreamId("i1", "contact", Direction.DYNAMICS_TO_MARKETO)
LEADS = StreamId("i1", "lead", Direction.MARKETO_TO_DYNAMICS)
POLICY = ErrorRetryPolicy(
    max_attempts=3, first_delay=timedelta(minutes=5), max_delay=timedelta(hours=1)
)


def _contact_failure(dynamics_id: str, message: str = "1003 Field invalid") -> FailedRecord:
    return FailedRecord(CONTACTS, "upsert", "1003", message, dynamics_id=dynamics_id)


def test_a_repeat_increments_attempts_and_keeps_first_seen(
    store: StateStore, clock: ManualClock
) -> None:
    """The same record failing again is one row with two attempts and its first time."""
    first = store.errors.record(_contact_failure("{D-1}"))
    clock.advance(600)
    again = store.errors.record(_contact_failure("d-1", "x" * 50_000))
    assert (again.attempts, again.first_seen, again.last_seen) == (2, first.first_seen, clock.now())
    assert len(again.message) == MAX_MESSAGE_CHARS
    assert store.errors.get(CONTACTS, "D-1") == again
    assert len(store.errors.list("i1")) == 1


def test_due_for_retry_respects_time_and_attempts(
    make_store: Callable[..., StateStore], clock: ManualClock
) -> None:
    """Records become due at their retry time and drop out once attempts run out."""
    store = make_store(error_policy=POLICY)
    store.errors.record_many([_contact_failure("d-1"), _contact_failure("d-2")])
    store.errors.record(FailedRecord(LEADS, "create", "0x1", "dup", marketo_id="77"))
    assert store.errors.due_for_retry(CONTACTS) == []
    clock.advance(300)
    assert {e.dynamics_id for e in store.errors.due_for_retry(CONTACTS)} == {"d-1", "d-2"}
    assert [e.marketo_id for e in store.errors.due_for_retry(LEADS)] == ["77"]
    assert len(store.errors.due_for_retry(CONTACTS, limit=1)) == 1
    store.errors.record(_contact_failure("d-1"))  # attempt 2: next retry in 10 minutes
    store.errors.record(_contact_failure("d-2"))
    store.errors.record(_contact_failure("d-2"))  # attempt 3: out of attempts
    clock.advance(600)
    assert [e.dynamics_id for e in store.errors.due_for_retry(CONTACTS)] == ["d-1"]
    assert len(store.errors.list("i1", entity="contact")) == 2  # still listed


def test_resolve_closes_errors_and_counts_stay_right(store: StateStore, clock: ManualClock) -> None:
    """Resolved errors leave the open lists and counts; unknown ids are ignored."""
    store.errors.record_many([_contact_failure(f"d-{i}") for i in range(3)])
    store.errors.record(FailedRecord(LEADS, "update", "0x2", "locked", marketo_id="9"))
    assert store.errors.open_record_ids(CONTACTS) == {"d-0", "d-1", "d-2"}
    clock.advance(60)
    assert store.errors.resolve(CONTACTS, ["D-0", "d-1", "never-failed"]) == 2
    assert store.errors.open_record_ids(CONTACTS) == {"d-2"}
    assert store.errors.count_open("i1") == {CONTACTS: 1, LEADS: 1}
    everything = store.errors.list("i1", include_resolved=True)
    assert len(everything) == 4
    resolved = [e for e in everything if e.resolved]
    assert {e.resolved_at for e in resolved} == {clock.now()}


def test_resolving_a_big_batch_costs_one_query_plus_the_open_rows(
    store: StateStore, clock: ManualClock, request_log: RequestLog
) -> None:
    """A page of 500 successes with 2 open errors: one listing query and one transaction, not a
    failed transaction per id without an error row; resolved rows are not touched again."""
    store.errors.record_many([_contact_failure("d-7"), _contact_failure("d-300")])
    store.errors.record(_contact_failure("d-9"))
    store.errors.resolve(CONTACTS, ["d-9"])
    clock.advance(60)
    request_log.clear()
    succeeded = [f"D-{i}" for i in range(500)]
    assert store.errors.resolve(CONTACTS, succeeded) == 2
    assert request_log.count("GET") == 1
    assert request_log.count("POST", "$batch") == 1
    assert len(request_log.requests) == 2
    assert store.errors.open_record_ids(CONTACTS) == set()
    first_resolution = store.errors.get(CONTACTS, "d-9")
    assert first_resolution is not None and first_resolution.resolved_at == clock.now() - (
        timedelta(seconds=60)
    )
    request_log.clear()
    assert store.errors.resolve(CONTACTS, succeeded) == 0
    assert request_log.requests == [request_log.requests[0]]  # the listing query only


def test_queries_by_instance_entity_and_time_range(store: StateStore, clock: ManualClock) -> None:
    """since/until select by last failure time; other instances never show; newest first."""
    start = clock.now()
    store.errors.record(_contact_failure("d-old"))
    clock.advance(3600)
    store.errors.record(_contact_failure("d-new"))
    store.errors.record(FailedRecord(LEADS, "update", "0x2", "locked", marketo_id="9"))
    store.errors.record(
        FailedRecord(StreamId("i2", "contact", CONTACTS.direction), "u", "c", "m", dynamics_id="z")
    )
    recent = store.errors.list("i1", since=start + timedelta(minutes=30))
    assert {e.record_id[1] for e in recent} == {"d-new", "9"}
    assert [e.dynamics_id for e in store.errors.list("i1", until=start + timedelta(minutes=1))] == [
        "d-old"
    ]
    contacts = store.errors.list("i1", entity="contact")
    assert [e.dynamics_id for e in contacts] == ["d-new", "d-old"]
    assert [e.dynamics_id for e in store.errors.list("i1", entity="contact", limit=1)] == ["d-new"]


def test_purge_deletes_only_resolved_rows_past_retention(
    make_store: Callable[..., StateStore], clock: ManualClock
) -> None:
    """With 30 days' retention a resolved 31-day-old error goes, a fresh one stays, in all
    instances; an unresolved one stays however old (its record never reached Marketo)."""
    store = make_store(error_retention_days=30)
    store.errors.record(_contact_failure("d-old"))
    store.errors.record(_contact_failure("d-stuck"))
    other = StreamId("i2", "lead", LEADS.direction)
    store.errors.record(FailedRecord(other, "u", "c", "m", marketo_id="5"))
    store.errors.resolve(CONTACTS, ["d-old"])
    store.errors.resolve(other, ["5"])
    clock.advance(timedelta(days=31).total_seconds())
    store.errors.record(_contact_failure("d-new"))
    assert store.errors.purge() == 2
    kept = sorted(e.dynamics_id or "" for e in store.errors.list("i1", include_resolved=True))
    assert kept == ["d-new", "d-stuck"]
    assert store.errors.list("i2", include_resolved=True) == []
    store.errors.resolve(CONTACTS, ["d-new"])
    assert store.errors.purge(older_than_days=0) == 0  # last activity is now, not before it
    clock.advance(1)
    assert store.errors.purge(older_than_days=0) == 1


def test_a_batch_of_150_failures_is_two_transactions(
    store: StateStore, request_log: RequestLog
) -> None:
    """One instance is one partition: 150 new rows are two transactions after the reads."""
    store.errors.list("i1")  # creates the table
    request_log.clear()
    store.errors.record_many([_contact_failure(f"d-{i:03d}") for i in range(150)])
    assert request_log.count("POST", "$batch") == 2
    assert request_log.count("GET") == 11  # ceil(150 / 14) lookups for existing rows
    assert len(store.errors.open_record_ids(CONTACTS)) == 150


def test_concurrent_repeats_never_lose_an_attempt(
    make_store: Callable[..., StateStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """B read the row before A's repeat landed; B's write conflicts, B re-reads, attempts = 3."""
    a, b = make_store(), make_store()
    a.errors.record(_contact_failure("d-1"))
    stale = b.errors._read(b.errors._client(), [("i1", "contact!d2m!d!d-1")])
    real_read = b.errors._read
    calls: list[int] = []

    def read_stale_first(client, keys):  # type: ignore[no-untyped-def]
        calls.append(1)
        return dict(stale) if len(calls) == 1 else real_read(client, keys)

    a.errors.record(_contact_failure("d-1"))
    monkeypatch.setattr(b.errors, "_read", read_stale_first)
    result = b.errors.record(_contact_failure("d-1"))
    assert len(calls) == 2
    assert result.attempts == 3
    assert a.errors.get(CONTACTS, "d-1") == result


def test_a_marketo_sourced_error_is_kept_and_resolved_by_its_marketo_id(
    store: StateStore, clock: ManualClock
) -> None:
    """m2d: recorded by source id (a Marketo id) with its Dynamics target, listed with both,
    due by source id, resolved by source id; the d2m row of the same record is another row."""
    store.errors.record(FailedRecord.from_source(LEADS, "create", "0x1", "dup", " 77 ", "{AB-1}"))
    store.errors.record(_contact_failure("ab-1"))
    assert store.errors.open_record_ids(LEADS) == {"77"}
    [error] = store.errors.list("i1", entity="lead")
    assert (error.direction, error.source_id, error.target_id) == (
        Direction.MARKETO_TO_DYNAMICS,
        "77",
        "ab-1",
    )
    clock.advance(300)
    assert [e.source_id for e in store.errors.due_for_retry(LEADS)] == ["77"]
    assert store.errors.resolve(LEADS, ["77"]) == 1
    assert store.errors.count_open("i1") == {CONTACTS: 1}
