"""The back-fill's pure rules: a step commits once, a lost job is nudged, its row round-trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.jobs import Direction, JobReason
from shared.state.backfills import (
    Backfill,
    BackfillCounts,
    advance,
    from_entity,
    restart,
    to_entity,
)
from shared.state.leases import Lease
from shared.state.streams import StreamId
from shared.state.watermarks import StaleRunError
from shared.sync.backfill_jobs import quiet_backfill_job
from shared.sync.runs import SyncOptions

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = StreamId("prod", "contact", Direction.DYNAMICS_TO_MARKETO)


def requested() -> Backfill:
    return restart(None, Backfill(STREAM, "jobtitle", modified_since=T0), T0)


def test_a_step_commits_once_and_the_last_one_closes_the_request() -> None:
    first = advance(requested(), sequence=1, step=0, position="p1",
                    counts=BackfillCounts(sent=4, empty=1, scanned=5), now=T0)  # fmt: skip
    with pytest.raises(StaleRunError):
        advance(first, sequence=1, step=0, position="p1", counts=BackfillCounts(), now=T0)
    done = advance(first, sequence=1, step=1, position=None,
                   counts=BackfillCounts(sent=2, scanned=2), now=T0)  # fmt: skip
    assert not done.open and done.finished_at == T0
    assert done.counts == BackfillCounts(sent=6, empty=1, scanned=7)
    with pytest.raises(StaleRunError):
        advance(done, sequence=1, step=2, position=None, counts=BackfillCounts(), now=T0)
    again = restart(done, Backfill(STREAM, "jobtitle"), T0)
    assert (again.sequence, again.step, again.position, again.counts) == (
        2,
        0,
        "",
        BackfillCounts(),
    )


def test_the_row_round_trips() -> None:
    row = advance(requested(), sequence=1, step=0, position="pk\trk",
                  counts=BackfillCounts(3, 1, 2, 1, 7), now=T0)  # fmt: skip
    assert from_entity(to_entity(row)) == row
    done = advance(row, sequence=1, step=1, position=None, counts=BackfillCounts(), now=T0)
    assert from_entity(to_entity(done)) == done


def test_an_open_request_nothing_moved_gets_a_job_for_its_step() -> None:
    options = SyncOptions(quiet_after=timedelta(seconds=90))
    backfill = advance(requested(), sequence=1, step=0, position="p",
                       counts=BackfillCounts(), now=T0)  # fmt: skip
    assert quiet_backfill_job(backfill, None, T0 + timedelta(seconds=30), options) is None
    job = quiet_backfill_job(backfill, None, T0 + timedelta(seconds=91), options)
    assert job is not None
    assert (job.reason, job.sequence, job.step) == (JobReason.BACKFILL, 1, 1)
    held = Lease(STREAM, "worker", "token", T0, T0 + timedelta(minutes=10))
    assert quiet_backfill_job(backfill, held, T0 + timedelta(seconds=91), options) is None
    done = advance(backfill, sequence=1, step=1, position=None, counts=BackfillCounts(), now=T0)
    assert quiet_backfill_job(done, None, T0 + timedelta(hours=1), options) is None
