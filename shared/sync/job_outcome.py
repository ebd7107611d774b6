"""What a sync job did: the runner's answer, for logs and tests."""

from __future__ import annotations

from enum import StrEnum


class JobOutcome(StrEnum):
    """What a job did, for logs and tests."""

    ADVANCED = "advanced"
    """A page (or sweep step) was committed and the run continues."""
    CAUGHT_UP = "caught_up"
    """A page was committed and the run is over."""
    RESYNC = "resync"
    """The change cursor had expired; the stream restarts from the beginning."""
    WAITING = "waiting"
    """Initial phase, dependencies not done yet; their completion restarts this stream."""
    BUSY = "busy"
    """Another job holds the stream's lease; this job comes back when the lease ends."""
    STALE = "stale"
    """The job's run or step is over or superseded."""
    INACTIVE = "inactive"
    """The instance is paused or suspended, or the entity is no longer configured."""
    QUOTA = "quota"
    """The target's daily quota is used up; the run resumes after the reset."""
