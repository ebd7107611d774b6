"""A run's activity as the scheduler sees it: idle, running, or quiet (its job died)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.state.leases import Lease
from shared.state.streams import StreamId
from shared.state.watermarks import Watermark
from shared.sync.runs import RunActivity, SyncOptions, quiet_in, run_activity

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STREAM = StreamId("i", "contact", "d2m")
OPTIONS = SyncOptions()


def mark(*, open_: bool, updated: datetime | None = T0) -> Watermark:
    return Watermark(STREAM, run_open=open_, updated_at=updated, last_run_at=T0)


def lease(expires: datetime, renewed: datetime) -> Lease:
    return Lease(STREAM, "w", "t", acquired_at=T0, expires_at=expires, renewed_at=renewed)


def test_a_closed_run_is_idle() -> None:
    assert run_activity(mark(open_=False), None, T0, OPTIONS) is RunActivity.IDLE


def test_a_live_lease_means_running_however_old_the_watermark() -> None:
    now = T0 + timedelta(hours=1)
    live = lease(now + timedelta(seconds=5), now)
    assert run_activity(mark(open_=True), live, now, OPTIONS) is RunActivity.RUNNING


def test_an_open_run_goes_quiet_after_quiet_after_without_a_sign_of_life() -> None:
    """Recovery: a killed worker's run is nudged within minutes, not after 15."""
    just_before = T0 + OPTIONS.quiet_after - timedelta(seconds=1)
    assert run_activity(mark(open_=True), None, just_before, OPTIONS) is RunActivity.RUNNING
    at = T0 + OPTIONS.quiet_after
    assert run_activity(mark(open_=True), None, at, OPTIONS) is RunActivity.QUIET


def test_an_expired_lease_counts_from_its_last_renewal() -> None:
    """A worker that renewed its lease 10 s ago and died is not quiet yet."""
    renewed = T0 + timedelta(minutes=10)
    dead = lease(renewed + OPTIONS.lease_duration, renewed)
    soon = renewed + timedelta(seconds=40)
    assert run_activity(mark(open_=True), dead, soon, OPTIONS) is RunActivity.RUNNING
    later = renewed + OPTIONS.quiet_after
    assert run_activity(mark(open_=True), dead, later, OPTIONS) is RunActivity.QUIET


def test_a_run_whose_job_failed_waits_for_the_queue_retry_before_a_nudge() -> None:
    """A failed attempt's message comes back after the queue's retry delay; nudging sooner
    would only multiply the attempts of a stream that keeps failing."""
    failed = Watermark(STREAM, run_open=True, updated_at=T0, last_error="Marketo 502")
    soon = T0 + OPTIONS.quiet_after
    assert run_activity(failed, None, soon, OPTIONS) is RunActivity.RUNNING
    later = T0 + OPTIONS.quiet_after + OPTIONS.queue_retry_delay
    assert run_activity(failed, None, later, OPTIONS) is RunActivity.QUIET


def test_the_queue_retry_delay_is_host_json_s_visibility_timeout() -> None:
    import json
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[3] / "host.json").read_text())
    hours, minutes, seconds = host["extensions"]["queues"]["visibilityTimeout"].split(":")
    shipped = timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))
    assert shipped == OPTIONS.queue_retry_delay


def test_quiet_in_counts_down_to_the_moment_a_run_goes_quiet() -> None:
    """The timer sends a delayed nudge for that moment when it falls before its next tick."""
    open_run = mark(open_=True)
    assert quiet_in(open_run, None, T0, OPTIONS) == OPTIONS.quiet_after
    later = T0 + timedelta(seconds=50)
    assert quiet_in(open_run, None, later, OPTIONS) == OPTIONS.quiet_after - timedelta(seconds=50)
    live = lease(later + timedelta(seconds=20), later)
    assert quiet_in(open_run, live, later, OPTIONS) is None  # a job holds the stream
