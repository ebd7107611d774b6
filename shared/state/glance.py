"""Status at a glance: per stream, the few things a person reads first. Pure.

Phase in words; records read in the last hour; the backlog (records known to wait: the rest of
a copy, links waiting for their record) and how long the stream has been behind; an estimate of
the time to catch up at the last hour's pace; open errors; the last run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.state import recent
from shared.state.status import StreamStatus
from shared.state.watermarks import Phase, Watermark


@dataclass(frozen=True)
class StreamGlance:
    """One row of the at-a-glance table."""

    entity: str
    direction: str
    phase: str
    last_hour: int
    backlog: int | None
    behind_seconds: float | None
    """How long the stream has been behind: since its last committed page, while a run is open."""
    catch_up_seconds: float | None
    """``0``: caught up; ``None``: unknown (no pace in the last hour, or an unknown backlog)."""
    errors: int
    pending: int
    last_run_at: datetime | None
    note: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "entity": self.entity,
            "direction": self.direction,
            "phase": self.phase,
            "records_last_hour": self.last_hour,
            "backlog": self.backlog,
            "behind_seconds": self.behind_seconds,
            "catch_up_seconds": self.catch_up_seconds,
            "open_errors": self.errors,
            "pending_links": self.pending,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "note": self.note,
        }


def phase_words(mark: Watermark | None) -> str:
    """``first copy``, ``full resync``, ``checking deletes``, ``catching up``, ``up to date``,
    ``waiting``, ``quota used up`` or ``not started``."""
    if mark is None or (mark.sequence == 0 and not mark.run_open):
        return "not started"
    if "quota" in mark.status:
        return "quota used up"
    if mark.status.startswith("waiting for"):
        return "waiting"
    if mark.sweep is not None:
        return "checking deletes"
    if mark.phase is Phase.INITIAL:
        return "full resync" if mark.resync else "first copy"
    return "catching up" if mark.run_open else "up to date"


def glance(status: StreamStatus, mark: Watermark | None, now: datetime) -> StreamGlance:
    """The at-a-glance row of one stream."""
    last_hour = recent.last_hour(mark.recent, now) if mark else 0
    backlog = status.backlog
    behind = None
    if mark is not None and mark.run_open:
        since = mark.last_success_at or mark.last_run_at
        behind = max(0.0, (now - since).total_seconds()) if since else None
    if backlog == 0:
        catch_up: float | None = 0.0
    elif backlog is None or last_hour == 0:
        catch_up = None
    else:
        catch_up = backlog * 3600.0 / last_hour
    return StreamGlance(
        entity=status.stream.entity,
        direction=status.stream.direction.value,
        phase=phase_words(mark),
        last_hour=last_hour,
        backlog=backlog,
        behind_seconds=behind,
        catch_up_seconds=catch_up,
        errors=status.open_errors,
        pending=status.pending_links,
        last_run_at=status.last_run_at,
        note=status.last_error or status.note,
    )
