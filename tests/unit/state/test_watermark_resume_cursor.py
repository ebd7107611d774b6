"""An operator's resync keeps the stream's cursor to go on from after the full read."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.jobs import Direction
from shared.state.streams import StreamId
from shared.state.watermarks import (
    Phase,
    RunCounts,
    Watermark,
    advance,
    from_entity,
    reset,
    start_run,
    to_entity,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)
DELTA = "https://org.example/api/data/v9.2/contacts?$deltatoken=919042!05/01/2026"


def incremental() -> Watermark:
    """A stream past its first copy, its run closed on a delta link."""
    wm = start_run(Watermark(stream=STREAM), T0)
    return advance(
        wm, sequence=1, cursor=DELTA, counts=RunCounts(3, 3, 0, 0), now=T0,
        phase=Phase.INCREMENTAL, finish=True,
    )  # fmt: skip


def test_reset_keeps_the_cursor_only_when_asked() -> None:
    assert reset(incremental(), now=T0).resume_cursor is None, "an expired cursor is not kept"
    kept = reset(incremental(), now=T0, keep_cursor=True)
    assert kept.resume_cursor == DELTA
    assert kept.cursor is None and kept.phase is Phase.INITIAL and kept.resync


def test_a_second_reset_during_the_read_keeps_the_first_cursor() -> None:
    first = reset(incremental(), now=T0, keep_cursor=True)
    midway = advance(first, sequence=first.sequence, cursor="next-page", counts=RunCounts(), now=T0)
    again = reset(midway, now=T0, keep_cursor=True)
    assert again.resume_cursor == DELTA


def test_the_cursor_kept_is_cleared_when_the_initial_phase_ends_and_survives_storage() -> None:
    kept = reset(incremental(), now=T0, keep_cursor=True)
    assert from_entity(to_entity(kept)).resume_cursor == DELTA
    page = advance(kept, sequence=kept.sequence, cursor="next", counts=RunCounts(), now=T0)
    assert page.resume_cursor == DELTA
    done = advance(
        page, sequence=page.sequence, cursor=DELTA, counts=RunCounts(), now=T0,
        phase=Phase.INCREMENTAL,
    )  # fmt: skip
    assert done.resume_cursor is None
    assert from_entity(to_entity(done)).resume_cursor is None
