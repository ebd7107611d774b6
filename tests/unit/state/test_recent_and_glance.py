"""Records in the last hour (five-minute buckets) and the at-a-glance row. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.jobs import Direction
from shared.state import recent
from shared.state.glance import glance, phase_words
from shared.state.status import build_report
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, RunCounts, Watermark, advance, start_run

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)


def test_buckets_count_the_last_hour_and_drop_older_ones() -> None:
    text = ""
    for minute in range(0, 90, 10):  # 10 records every ten minutes for an hour and a half
        text = recent.record(text, T0 + timedelta(minutes=minute), 10)
    now = T0 + timedelta(minutes=90)
    assert recent.last_hour(text, now) == 60
    assert len(recent.decode(text)) <= 14, "at most an hour's buckets (and one) are kept"
    assert recent.last_hour(text, now + timedelta(hours=2)) == 0
    assert recent.record("garbage;1:x", T0, 0) == "", "malformed parts are dropped"


def test_advance_records_the_page_in_the_watermark() -> None:
    wm = start_run(Watermark(stream=STREAM), T0)
    wm = advance(wm, sequence=1, cursor="n", counts=RunCounts(read=40), now=T0)
    wm = advance(
        wm, sequence=1, cursor="n2", counts=RunCounts(read=60), now=T0 + timedelta(minutes=20)
    )
    assert recent.last_hour(wm.recent, T0 + timedelta(minutes=30)) == 100


def test_the_glance_row_estimates_the_catch_up_at_the_last_hours_pace() -> None:
    wm = start_run(Watermark(stream=STREAM), T0)
    wm = advance(wm, sequence=1, cursor="n", counts=RunCounts(read=250), now=T0,
                 total_expected=1000)  # fmt: skip
    now = T0 + timedelta(minutes=30)
    [status] = build_report("prod", None, [wm], [], {STREAM: 2}, now).streams
    row = glance(status, wm, now)
    assert (row.phase, row.last_hour, row.backlog, row.errors) == ("first copy", 250, 750, 2)
    assert row.catch_up_seconds == 750 * 3600 / 250
    assert row.behind_seconds == 30 * 60
    idle = replace(wm, phase=Phase.INCREMENTAL, run_open=False, recent="")
    [status] = build_report("prod", None, [idle], [], {}, now).streams
    row = glance(status, idle, now)
    assert (row.phase, row.catch_up_seconds, row.behind_seconds) == ("up to date", 0.0, None)


def test_phase_words() -> None:
    wm = start_run(Watermark(stream=STREAM), T0)
    assert phase_words(None) == "not started"
    assert phase_words(wm) == "first copy"
    assert phase_words(replace(wm, resync=True)) == "full resync"
    assert phase_words(replace(wm, sweep="")) == "checking deletes"
    assert phase_words(replace(wm, status="waiting for account")) == "waiting"
    assert (
        phase_words(replace(wm, status="the target's daily API quota is used up"))
        == "quota used up"
    )
    assert phase_words(replace(wm, phase=Phase.INCREMENTAL)) == "catching up"
