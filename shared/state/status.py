"""What an operator asks first, per instance and stream. Pure: built from rows already read.

A stream appears if it has a watermark, a lease or an open sync error. The lease holder is
shown only while the lease is unexpired (an expired lease is a dead worker's leftover).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.state.instances import Instance
from shared.state.leases import Lease
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, RunCounts, Watermark


@dataclass(frozen=True)
class StreamStatus:
    """One stream's state as the status command shows it."""

    stream: StreamId
    phase: Phase | None
    """``None``: the stream has not run yet."""
    watermark_age_seconds: float | None
    """Seconds since the watermark last advanced."""
    counts: RunCounts
    progress_done: int
    progress_total: int | None
    sequence: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    note: str
    lease_holder: str | None
    lease_expires_at: datetime | None
    open_errors: int
    pending_links: int = 0
    """Records waiting for a linked record to reach Marketo (not errors)."""

    @property
    def backlog(self) -> int | None:
        """Records known to be waiting: the rest of an initial copy, plus pending links.

        Changes not yet read from a delta are unknown until read (``None`` only when the
        initial total is unknown)."""
        if self.phase is Phase.INITIAL or self.phase is None:
            if self.progress_total is None:
                return None
            return max(0, self.progress_total - self.progress_done) + self.pending_links
        return self.pending_links

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 strings)."""
        return {
            "instance": self.stream.instance_id,
            "entity": self.stream.entity,
            "direction": self.stream.direction.value,
            "phase": self.phase.value if self.phase else None,
            "watermark_age_seconds": self.watermark_age_seconds,
            "records_read": self.counts.read,
            "records_written": self.counts.written,
            "records_skipped": self.counts.skipped,
            "records_failed": self.counts.failed,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "sequence": self.sequence,
            "last_run_at": _iso(self.last_run_at),
            "last_success_at": _iso(self.last_success_at),
            "last_error": self.last_error,
            "note": self.note,
            "lease_holder": self.lease_holder,
            "lease_expires_at": _iso(self.lease_expires_at),
            "open_errors": self.open_errors,
            "pending_links": self.pending_links,
            "backlog": self.backlog,
        }


@dataclass(frozen=True)
class InstanceReport:
    """An instance and its streams."""

    instance_id: str
    instance: Instance | None
    """``None`` when sync state exists for an id that has no instance row."""
    streams: list[StreamStatus] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        instance = self.instance
        return {
            "instance": self.instance_id,
            "registered": instance is not None,
            "status": instance.status.value if instance else None,
            "status_reason": instance.status_reason if instance else None,
            "integrated_with_dynamics": instance.integrated_with_dynamics if instance else None,
            "streams": [s.to_json() for s in self.streams],
        }


def build_report(
    instance_id: str,
    instance: Instance | None,
    watermarks: Iterable[Watermark],
    leases: Iterable[Lease],
    open_errors: Mapping[StreamId, int],
    now: datetime,
    pending_links: Mapping[StreamId, int] | None = None,
) -> InstanceReport:
    """Join one instance's watermarks, leases and open error counts by stream."""
    by_stream = {w.stream: w for w in watermarks}
    live_leases = {lease.stream: lease for lease in leases if not lease.is_expired(now)}
    pending = pending_links or {}
    streams = sorted(set(by_stream) | set(live_leases) | set(open_errors) | set(pending))
    rows = []
    for stream in streams:
        watermark = by_stream.get(stream)
        lease = live_leases.get(stream)
        rows.append(
            StreamStatus(
                stream=stream,
                phase=watermark.phase if watermark else None,
                watermark_age_seconds=watermark.age(now) if watermark else None,
                counts=watermark.counts if watermark else RunCounts(),
                progress_done=watermark.progress[0] if watermark else 0,
                progress_total=watermark.progress[1] if watermark else None,
                sequence=watermark.sequence if watermark else 0,
                last_run_at=watermark.last_run_at if watermark else None,
                last_success_at=watermark.last_success_at if watermark else None,
                last_error=watermark.last_error if watermark else None,
                note=watermark.status if watermark else "",
                lease_holder=lease.owner if lease else None,
                lease_expires_at=lease.expires_at if lease else None,
                open_errors=open_errors.get(stream, 0),
                pending_links=pending.get(stream, 0),
            )
        )
    return InstanceReport(instance_id=instance_id, instance=instance, streams=rows)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
