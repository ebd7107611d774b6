"""The queue message for one unit of sync work, versioned.

A message names *which stream* to advance (instance, entity, direction), not the data or the
cursor: the cursor lives in the watermark row, so a replayed or duplicated message simply
continues from whatever was last committed. That keeps messages tiny (the queue limit is 64 KiB
after base64) and makes replays harmless.

Unknown versions and malformed bodies raise :class:`~shared.errors.InvalidMessageError`; the
trigger lets it propagate, so after ``maxDequeueCount`` attempts the message lands in the
poison queue instead of crash-looping.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidMessageError

SYNC_JOBS_QUEUE = "sync-jobs"
"""The queue the timer fills and the worker drains (its poison queue is ``sync-jobs-poison``)."""

CURRENT_VERSION = 1


class Direction(StrEnum):
    """Which way records move."""

    DYNAMICS_TO_MARKETO = "d2m"
    MARKETO_TO_DYNAMICS = "m2d"


class JobReason(StrEnum):
    """Why a job was enqueued (for logs and status)."""

    SCHEDULE = "schedule"
    CONTINUATION = "continuation"
    RESYNC = "resync"
    MANUAL = "manual"
    BACKFILL = "backfill"
    """A step of an operator's back-fill of one field (:mod:`shared.sync.backfill_jobs`)."""


class SyncJobV1(BaseModel):
    """Advance one stream (instance, entity, direction) by one unit of work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=64)
    instance_id: str = Field(min_length=1, max_length=128)
    entity: str = Field(min_length=1, max_length=64)
    direction: Direction
    reason: JobReason = JobReason.SCHEDULE
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sequence: int = Field(default=0, ge=0)
    """The watermark's run sequence when enqueued; lets the worker drop stale continuations."""
    step: int = Field(default=0, ge=0)
    """The step of that run this job is for (0: the run's first page); a job for a step already
    committed is a duplicate and is dropped."""

    def to_json(self) -> str:
        """The message body (JSON text; the queue client base64-encodes it)."""
        return self.model_dump_json()

    def continuation(self, sequence: int, step: int = 0) -> SyncJobV1:
        """The follow-up job for the same stream, for ``step`` of run ``sequence``."""
        return self.model_copy(
            update={
                "job_id": uuid.uuid4().hex,
                "reason": JobReason.CONTINUATION,
                "created_at": datetime.now(UTC),
                "sequence": sequence,
                "step": step,
            }
        )


SyncJob = SyncJobV1
"""The current job message model."""


def parse_job(body: bytes | str) -> SyncJob:
    """Parse a queue message body into a job.

    Raises:
        InvalidMessageError: the body is not JSON, not an object, of an unknown version,
            or fails validation; the message says which.
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessageError(f"sync job message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidMessageError("sync job message must be a JSON object")
    version = data.get("version")
    if version != CURRENT_VERSION:
        raise InvalidMessageError(
            f"sync job message has unknown version {version!r}; "
            f"this build understands version {CURRENT_VERSION}"
        )
    try:
        return SyncJobV1.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise InvalidMessageError(f"sync job message is malformed: {problems}") from None
