"""Watermark rules (forward-only advance, stale runs, reset) and row conversion."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConcurrencyConflict
from shared.jobs import Direction
from shared.state.streams import StreamId
from shared.state.watermarks import (
    MAX_ERROR_CHARS,
    Phase,
    RunCounts,
    StaleRunError,
    Watermark,
    advance,
    from_entity,
    record_failure,
    reset,
    start_run,
    to_entity,
    with_creating,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = StreamId("contoso/prod", "contact", Direction.DYNAMICS_TO_MARKETO)


def _running() -> Watermark:
    return start_run(Watermark(stream=STREAM), T0)


def test_start_run_moves_the_sequence_on() -> None:
    """Each run gets the next sequence and a run time."""
    first = _running()
    second = start_run(first, T0 + timedelta(minutes=1))
    assert (first.sequence, second.sequence) == (1, 2)
    assert second.last_run_at == T0 + timedelta(minutes=1)


def test_advance_commits_cursor_counts_and_success_time() -> None:
    """A page's counters are added, the cursor replaced, the last error cleared."""
    wm = record_failure(_running(), sequence=1, error="timeout", now=T0)
    wm = advance(wm, sequence=1, cursor="next-1", counts=RunCounts(5, 4, 1, 0), now=T0)
    wm = advance(
        wm, sequence=1, cursor="next-2", counts=RunCounts(3, 2, 0, 1), now=T0, total_expected=100
    )
    assert wm.cursor == "next-2"
    assert wm.counts == RunCounts(read=8, written=6, skipped=1, failed=1)
    assert wm.progress == (8, 100)
    assert wm.last_success_at == T0
    assert wm.last_error is None


def test_a_stale_run_cannot_advance() -> None:
    """A continuation of an older run is refused with a ConcurrencyConflict subclass."""
    wm = start_run(_running(), T0)
    with pytest.raises(StaleRunError, match="stale") as caught:
        advance(wm, sequence=1, cursor="c", counts=RunCounts(), now=T0)
    assert isinstance(caught.value, ConcurrencyConflict)
    with pytest.raises(StaleRunError):
        record_failure(wm, sequence=1, error="x", now=T0)


def test_phase_only_moves_forward() -> None:
    """initial → incremental is allowed; back again only by reset."""
    wm = advance(
        _running(), sequence=1, cursor="delta", counts=RunCounts(), now=T0, phase=Phase.INCREMENTAL
    )
    assert wm.phase is Phase.INCREMENTAL
    with pytest.raises(ValueError, match="initial phase"):
        advance(wm, sequence=1, cursor="c", counts=RunCounts(), now=T0, phase=Phase.INITIAL)
    again = reset(wm, now=T0, status="resync: delta token expired")
    assert (again.phase, again.cursor, again.counts, again.sequence) == (
        Phase.INITIAL,
        None,
        RunCounts(),
        2,
    )


def test_the_cursor_is_never_cleared_and_counters_never_shrink() -> None:
    """An empty cursor and negative counters are refused."""
    with pytest.raises(ValueError, match="cursor"):
        advance(_running(), sequence=1, cursor="", counts=RunCounts(), now=T0)
    with pytest.raises(ValueError, match="negative"):
        RunCounts(read=-1)


def test_last_success_never_moves_backwards() -> None:
    """A commit stamped earlier than the last success (clock skew) keeps the later time."""
    wm = advance(_running(), sequence=1, cursor="a", counts=RunCounts(), now=T0)
    earlier = advance(wm, sequence=1, cursor="b", counts=RunCounts(), now=T0 - timedelta(hours=1))
    assert earlier.last_success_at == T0
    assert earlier.age(T0 + timedelta(seconds=90)) == 90


def test_failure_keeps_the_cursor_and_truncates_the_error() -> None:
    """The page will be replayed, so the cursor stays; long errors are cut."""
    wm = advance(_running(), sequence=1, cursor="keep", counts=RunCounts(), now=T0)
    failed = record_failure(wm, sequence=1, error="x" * 10_000, now=T0, counts=RunCounts(failed=2))
    assert failed.cursor == "keep"
    assert failed.counts.failed == 2
    assert failed.last_error is not None and len(failed.last_error) == MAX_ERROR_CHARS


def test_entity_round_trip_with_a_long_cursor_and_big_counters() -> None:
    """Everything survives the row form: keys, a 70K cursor, Int64 counters, times."""
    wm = replace(
        advance(
            _running(),
            sequence=1,
            cursor="https://x/?$skiptoken=" + "z" * 70_000,
            counts=RunCounts(read=3_000_000_000, written=2**33),
            now=T0,
            total_expected=5_000_000_000,
            status="initial load",
        ),
        etag="W/1",
    )
    entity = to_entity(wm)
    assert entity["PartitionKey"] == "contoso.1prod"
    assert entity["RowKey"] == "contact!d2m"
    assert entity["cursor_parts"] == 3
    assert from_entity(entity) == wm


def test_a_never_saved_watermark_round_trips_too() -> None:
    """A fresh watermark has no cursor, no times and no total."""
    wm = Watermark(stream=STREAM)
    assert from_entity(to_entity(wm)) == wm


def test_fresh_copy_lasts_the_initial_phase_only() -> None:
    """Set on a page, kept by later pages and new runs, cleared by the phase change and reset,
    and stored in the row."""
    page1 = advance(_running(), sequence=1, cursor="next-1", counts=RunCounts(), now=T0,
                    fresh_copy=True)  # fmt: skip
    assert page1.fresh_copy
    page2 = advance(page1, sequence=1, cursor="next-2", counts=RunCounts(), now=T0)
    assert page2.fresh_copy
    assert start_run(page2, T0).fresh_copy
    assert from_entity(to_entity(page2)).fresh_copy
    done = advance(page2, sequence=1, cursor="delta", counts=RunCounts(), now=T0,
                   phase=Phase.INCREMENTAL, finish=True)  # fmt: skip
    assert not done.fresh_copy
    assert not advance(done, sequence=1, cursor="delta-2", counts=RunCounts(), now=T0,
                       fresh_copy=True).fresh_copy  # fmt: skip
    assert not reset(page2, now=T0).fresh_copy
    assert not from_entity(
        {k: v for k, v in to_entity(page2).items() if k != "fresh_copy"}
    ).fresh_copy


def test_a_late_duplicate_of_an_earlier_step_cannot_commit() -> None:
    """Defect 6: the run is right but the step is not; the older cursor must not win."""
    wm = advance(_running(), sequence=1, step=0, cursor="page-2", counts=RunCounts(), now=T0)
    with pytest.raises(StaleRunError, match="late duplicate"):
        advance(wm, sequence=1, step=0, cursor="page-2-again", counts=RunCounts(), now=T0)
    assert advance(wm, sequence=1, step=1, cursor="page-3", counts=RunCounts(), now=T0).step == 2


def test_the_sweep_after_a_full_read_starts_in_the_same_write_as_its_last_page() -> None:
    """Defect 2: the sweep is owed as surely as the cursor is committed: one save holds both."""
    wm = reset(_running(), now=T0, status="expired")
    done = advance(wm, sequence=wm.sequence, step=0, cursor="delta", counts=RunCounts(),
                   now=T0, phase=Phase.INCREMENTAL, sweep="")  # fmt: skip
    assert (done.cursor, done.sweep, done.phase, done.run_open) == (
        "delta", "", Phase.INCREMENTAL, True)  # fmt: skip
    assert from_entity(to_entity(done)).sweep == ""
    assert done.resync  # still a resync until its sweep is over


def test_the_note_of_ids_being_created_lasts_until_the_page_commits() -> None:
    """Defect 8: a page notes what it creates before Marketo does; only its commit clears it."""
    wm = _running()
    noted = with_creating(wm, sequence=1, step=0, ids=("a", "b"), now=T0)
    assert from_entity(to_entity(noted)).creating == ("a", "b")
    failed = record_failure(noted, sequence=1, error="storage down", now=T0)
    assert failed.creating == ("a", "b")
    assert advance(failed, sequence=1, cursor="c", counts=RunCounts(), now=T0).creating == ()
    with pytest.raises(StaleRunError):
        with_creating(noted, sequence=1, step=3, ids=("x",), now=T0)
