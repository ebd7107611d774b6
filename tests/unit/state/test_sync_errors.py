"""Sync error rules: repeats count attempts, backoff, resolution, due-ness, row conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.jobs import Direction
from shared.state.mappings import IdMapping, split_conflicts
from shared.state.streams import StreamId
from shared.state.sync_errors import (
    MAPPING_CONFLICT_CODE,
    MAX_MESSAGE_CHARS,
    ErrorRetryPolicy,
    FailedRecord,
    apply_failure,
    apply_resolution,
    error_keys,
    from_entity,
    normalize_source_id,
    to_entity,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
D2M = StreamId("i1", "contact", Direction.DYNAMICS_TO_MARKETO)
M2D = StreamId("i1", "lead", Direction.MARKETO_TO_DYNAMICS)
POLICY = ErrorRetryPolicy(
    max_attempts=4, first_delay=timedelta(minutes=5), max_delay=timedelta(minutes=15)
)


def _failure(message: str = "Field 'email' invalid", **ids: str) -> FailedRecord:
    return FailedRecord(D2M, "update", "1003", message, **(ids or {"dynamics_id": "{ABC-1}"}))


def test_a_repeat_counts_attempts_and_keeps_first_seen() -> None:
    """Second and third failures add attempts, keep first_seen and back off (capped)."""
    first = apply_failure(None, _failure(), T0, POLICY)
    second = apply_failure(first, _failure("again"), T0 + timedelta(minutes=5), POLICY)
    third = apply_failure(second, _failure(), T0 + timedelta(minutes=20), POLICY)
    assert [e.attempts for e in (first, second, third)] == [1, 2, 3]
    assert third.first_seen == T0 and third.last_seen == T0 + timedelta(minutes=20)
    assert first.next_retry_at == T0 + timedelta(minutes=5)
    assert second.next_retry_at == T0 + timedelta(minutes=15)
    assert third.next_retry_at == T0 + timedelta(minutes=35)  # 20 + capped 15
    assert second.message == "again"


def test_attempts_run_out() -> None:
    """At max_attempts there is no next retry and the record is never due again."""
    error = None
    for minute in range(4):
        error = apply_failure(error, _failure(), T0 + timedelta(minutes=minute), POLICY)
    assert error is not None and error.attempts == 4
    assert error.next_retry_at is None
    assert not error.is_due(T0 + timedelta(days=1), POLICY.max_attempts)


def test_due_only_after_the_retry_time_and_while_unresolved() -> None:
    """Due from next_retry_at on; a resolved error is never due."""
    error = apply_failure(None, _failure(), T0, POLICY)
    assert not error.is_due(T0 + timedelta(minutes=4), POLICY.max_attempts)
    assert error.is_due(T0 + timedelta(minutes=5), POLICY.max_attempts)
    resolved = apply_resolution(error, T0 + timedelta(minutes=6))
    assert not resolved.is_due(T0 + timedelta(hours=1), POLICY.max_attempts)
    assert resolved.last_activity_at == T0 + timedelta(minutes=6)


def test_failing_again_after_resolution_starts_a_new_episode() -> None:
    """A record that succeeded and fails later counts from one again."""
    resolved = apply_resolution(apply_failure(None, _failure(), T0, POLICY), T0)
    again = apply_failure(resolved, _failure(), T0 + timedelta(days=2), POLICY)
    assert (again.attempts, again.first_seen, again.resolved) == (
        1,
        T0 + timedelta(days=2),
        False,
    )


def test_messages_are_truncated() -> None:
    """A huge message (an HTML error page) is cut to the safe length."""
    error = apply_failure(None, _failure("<html>" + "x" * 100_000), T0, POLICY)
    assert len(error.message) == MAX_MESSAGE_CHARS
    assert len(to_entity(error)["message"]) == MAX_MESSAGE_CHARS


def test_rows_are_keyed_by_the_source_side_id() -> None:
    """d2m rows key on the (normalised) Dynamics id, m2d rows on the Marketo id."""
    d2m = apply_failure(None, _failure(marketo_id="77", dynamics_id="{ABC-1}"), T0, POLICY)
    assert d2m.record_id == ("d", "abc-1")
    assert to_entity(d2m)["RowKey"] == "contact!d2m!d!abc-1"
    m2d = apply_failure(
        None, FailedRecord(M2D, "create", "0x80040237", "dup", marketo_id="77"), T0, POLICY
    )
    assert to_entity(m2d)["RowKey"] == "lead!m2d!m!77"
    with pytest.raises(ValueError, match="Marketo record id"):
        _ = FailedRecord(M2D, "create", "x", "y", dynamics_id="abc").record_id
    assert error_keys(D2M, "d", "abc-1") == ("i1", "contact!d2m!d!abc-1")


def test_row_round_trip() -> None:
    """Every field survives the row form, resolved or not."""
    error = apply_failure(None, _failure(dynamics_id="abc-1", marketo_id="12"), T0, POLICY)
    assert from_entity(to_entity(error)) == error
    resolved = apply_resolution(error, T0 + timedelta(hours=1))
    assert from_entity(to_entity(resolved)) == resolved


def test_records_waiting_for_a_dependency_are_never_given_up() -> None:
    """PENDING_CODE rows keep coming back, at most pending_max_delay apart; errors stop."""
    from shared.state.sync_errors import PENDING_CODE

    policy = ErrorRetryPolicy(max_attempts=3, first_delay=timedelta(minutes=1),
                              max_delay=timedelta(hours=6))  # fmt: skip
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_retry_at(3, now, "1003") is None
    for attempts in (3, 10, 500):
        at = policy.next_retry_at(attempts, now, PENDING_CODE)
        assert at is not None
        assert at - now <= policy.pending_max_delay


def test_failures_are_named_by_source_and_target_whichever_vendor_each_is() -> None:
    """A Marketo-sourced (m2d) failure has its Marketo id as source id; the same builder
    gives a d2m failure its Dynamics id; the stored row names direction and both ids."""
    m2d = FailedRecord.from_source(M2D, "create", "0x80040237", "dup", "77", "{ABC-9}")
    assert (m2d.marketo_id, m2d.dynamics_id) == ("77", "{ABC-9}")
    assert (m2d.source_id, m2d.target_id, m2d.record_id) == ("77", "{ABC-9}", ("m", "77"))
    d2m = FailedRecord.from_source(D2M, "update", "1003", "bad", "{ABC-1}", "12")
    assert (d2m.dynamics_id, d2m.marketo_id, d2m.record_id) == ("{ABC-1}", "12", ("d", "abc-1"))
    stored = from_entity(to_entity(apply_failure(None, m2d, T0, POLICY)))
    assert (stored.direction, stored.source_id, stored.target_id) == (
        Direction.MARKETO_TO_DYNAMICS,
        "77",
        "abc-9",
    )
    assert normalize_source_id(M2D, " 77 ") == "77"
    assert normalize_source_id(D2M, "{ABC-1}") == "abc-1"


def test_a_row_written_before_source_ids_reads_with_them() -> None:
    """A row as the first layout wrote it (no new columns: there are none) names its
    direction and source id from its key."""
    old_row = {
        "PartitionKey": "i1",
        "RowKey": "lead!m2d!m!77",
        "schema": 1,
        "operation": "create",
        "code": "0x1",
        "message": "dup",
        "first_seen": T0,
        "last_seen": T0,
        "last_activity_at": T0,
        "attempts": 2,
        "resolved": False,
        "marketo_id": "77",
        "next_retry_at": T0,
    }
    error = from_entity(old_row)
    assert (error.direction, error.source_id, error.target_id, error.attempts) == (
        Direction.MARKETO_TO_DYNAMICS,
        "77",
        None,
        2,
    )


def test_a_mapping_conflict_is_a_per_record_error_of_the_refused_record() -> None:
    """Defect 5: the second of two stakeholder connections resolved to one Marketo record."""
    kept = IdMapping("i1", "opportunity_role", "d-1", "opportunityRole", "7")
    refused = IdMapping("i1", "opportunity_role", "d-2", "opportunityRole", "7")
    _, [conflict] = split_conflicts([kept, refused])
    stream = StreamId("i1", "opportunity_role", Direction.DYNAMICS_TO_MARKETO)
    failure = FailedRecord.for_conflict(stream, conflict)
    assert (failure.code, failure.record_id, failure.target_id) == (
        MAPPING_CONFLICT_CODE,
        ("d", "d-2"),
        "7",
    )
    assert "d-1" in failure.message and "d-2" in failure.message
