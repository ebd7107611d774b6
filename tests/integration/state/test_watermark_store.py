"""Watermarks on Azurite: persistence, split cursors, and ETag concurrency between workers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import pytest

from shared.errors import ConcurrencyConflict
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.tables import TableKind
from shared.state.watermarks import Phase, RunCounts, StaleRunError, advance, start_run

pytestmark = pytest.mark.integration

STREAM = StreamId("contoso/prod", "contact", Direction.DYNAMICS_TO_MARKETO)


def test_a_new_stream_starts_blank_and_round_trips(store: StateStore) -> None:
    """Never-run streams read as initial with no cursor; saved state reads back identically."""
    blank = store.watermarks.get(STREAM)
    assert (blank.phase, blank.cursor, blank.sequence, blank.etag) == (
        Phase.INITIAL,
        None,
        0,
        None,
    )
    running = store.watermarks.start_run(STREAM)
    cursor = "https://contoso.crm.dynamics.com/api/data/v9.2/contacts?$skiptoken=" + "%3C" * 30_000
    saved = store.watermarks.advance(
        STREAM,
        sequence=running.sequence,
        cursor=cursor,
        counts=RunCounts(read=5_000, written=4_990, skipped=6, failed=4),
        total_expected=3_000_000_000,
    )
    assert len(cursor) > 32_768  # past the service's string property limit
    again = store.watermarks.get(STREAM)
    assert again == saved
    assert again.cursor == cursor
    assert again.etag == saved.etag


def test_a_shorter_cursor_replaces_a_longer_one_entirely(store: StateStore) -> None:
    """REPLACE leaves no stale parts behind when the cursor shrinks."""
    seq = store.watermarks.start_run(STREAM).sequence
    store.watermarks.advance(STREAM, sequence=seq, cursor="a" * 70_000, counts=RunCounts())
    store.watermarks.advance(
        STREAM, sequence=seq, cursor="deltatoken=1", counts=RunCounts(), phase=Phase.INCREMENTAL
    )
    entity = store.tables.client(TableKind.WATERMARKS).get_entity(
        STREAM.partition_key, STREAM.row_key
    )
    assert entity["cursor_parts"] == 1
    assert "cursor_1" not in entity and "cursor_2" not in entity
    assert store.watermarks.get(STREAM).cursor == "deltatoken=1"


def test_two_workers_cannot_both_advance(make_store: Callable[..., StateStore]) -> None:
    """Both read the same version; the first write wins, the second gets ConcurrencyConflict."""
    worker_a, worker_b = make_store(), make_store()
    seq = worker_a.watermarks.start_run(STREAM).sequence
    seen_by_a = worker_a.watermarks.get(STREAM)
    seen_by_b = worker_b.watermarks.get(STREAM)
    worker_a.watermarks.save(
        advance(
            seen_by_a, sequence=seq, cursor="page-a", counts=RunCounts(read=1), now=_now(worker_a)
        )
    )
    with pytest.raises(ConcurrencyConflict):
        worker_b.watermarks.save(
            advance(
                seen_by_b,
                sequence=seq,
                cursor="page-b",
                counts=RunCounts(read=1),
                now=_now(worker_b),
            )
        )
    final = worker_b.watermarks.get(STREAM)
    assert (final.cursor, final.counts.read) == ("page-a", 1)


def test_two_workers_cannot_both_create(make_store: Callable[..., StateStore]) -> None:
    """Both see no row; the first create wins, the second gets ConcurrencyConflict."""
    worker_a, worker_b = make_store(), make_store()
    blank_a, blank_b = worker_a.watermarks.get(STREAM), worker_b.watermarks.get(STREAM)
    worker_a.watermarks.save(start_run(blank_a, _now(worker_a)))
    with pytest.raises(ConcurrencyConflict):
        worker_b.watermarks.save(start_run(blank_b, _now(worker_b)))


def test_racing_threads_never_lose_an_advance(make_store: Callable[..., StateStore]) -> None:
    """Eight workers advance at once, each adding one record: the count equals the winners."""
    seq = make_store().watermarks.start_run(STREAM).sequence
    stores = [make_store() for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def work(store: StateStore) -> None:
        current = store.watermarks.get(STREAM)
        barrier.wait()
        try:
            store.watermarks.save(
                advance(
                    current, sequence=seq, cursor="c", counts=RunCounts(read=1), now=_now(store)
                )
            )
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1  # all read the same version before anyone wrote
    assert stores[0].watermarks.get(STREAM).counts.read == 1


def test_a_stale_job_cannot_advance_after_a_new_run(store: StateStore) -> None:
    """A continuation of run 1 is refused once run 2 has started."""
    first = store.watermarks.start_run(STREAM).sequence
    store.watermarks.start_run(STREAM)
    with pytest.raises(StaleRunError):
        store.watermarks.advance(STREAM, sequence=first, cursor="late", counts=RunCounts())


def test_failures_resets_listing_and_deleting(store: StateStore) -> None:
    """A failure keeps the cursor; reset starts over; list is per instance; delete removes."""
    other = StreamId("contoso/prod", "lead", Direction.MARKETO_TO_DYNAMICS)
    elsewhere = StreamId("fabrikam", "contact", Direction.DYNAMICS_TO_MARKETO)
    seq = store.watermarks.start_run(STREAM).sequence
    store.watermarks.advance(STREAM, sequence=seq, cursor="p1", counts=RunCounts(read=2))
    failed = store.watermarks.record_failure(STREAM, sequence=seq, error="HTTP 503 from Marketo")
    assert (failed.cursor, failed.last_error) == ("p1", "HTTP 503 from Marketo")
    restarted = store.watermarks.reset(STREAM, status="delta token expired")
    assert (restarted.cursor, restarted.phase, restarted.sequence) == (None, Phase.INITIAL, 2)
    store.watermarks.start_run(other)
    store.watermarks.start_run(elsewhere)
    assert {w.stream for w in store.watermarks.list("contoso/prod")} == {STREAM, other}
    assert len(store.watermarks.list()) == 3
    assert store.watermarks.delete_instance("contoso/prod") == 2
    assert [w.stream for w in store.watermarks.list()] == [elsewhere]


def _now(store: StateStore) -> datetime:
    return store.clock.now()
