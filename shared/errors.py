"""The project's exception taxonomy, classified by what the caller should do.

::

    DmsyncError                      root; never carries a secret in its message
    ├── RetriableError               try the same work again later (the queue retries it)
    │   ├── ThrottledError           the service asked us to slow down (429, 606, 615)
    │   ├── TransientServiceError    5xx, timeouts, dropped connections, 604/608/611/713
    │   ├── ConcurrencyConflict      an ETag / lease lost to another worker
    │   │   └── LeaseLostError       this job's stream lease passed to another worker: stop writing
    │   └── LeaseHeldError           another job for the same stream is running
    ├── ResumeLaterError             nothing can be done before ``resumes_at``; stop and come back
    │   └── QuotaExhaustedError      a daily budget is used up (Marketo 607)
    ├── FatalError                   retrying the same work will not help; stop and report
    │   ├── ConfigurationError       a setting or configuration file is wrong (names it)
    │   ├── AuthenticationError      credentials rejected (after one refresh)
    │   ├── InvalidMessageError      a queue message cannot be parsed or has an unknown version
    │   └── ApiRequestError          a request the service rejected for good (4xx, 6xx, 7xx)
    ├── RecordError                  one record failed; log it as a sync error, go on with the batch
    └── ResyncRequiredError          a change cursor is no longer valid; read everything again
        └── DeltaTokenExpiredError   Dataverse 0x80044352 (ExpiredVersionStamp)

Every error may carry ``system`` (``"dynamics"``, ``"marketo"``, ``"storage"``), the service's
own ``code`` (a Dataverse hex code such as ``0x80040217``, a Marketo code such as ``"606"``)
and the HTTP ``status``. Messages are written by us from safe parts; callers must never put a
token, secret or connection string into one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class DmsyncError(Exception):
    """Root of every error this project raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.code = code
        self.status = status

    def __str__(self) -> str:
        details = [
            part
            for part in (
                self.system,
                f"code {self.code}" if self.code else None,
                f"HTTP {self.status}" if self.status else None,
            )
            if part
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message


# --- retriable ------------------------------------------------------------------------------


class RetriableError(DmsyncError):
    """The same work may succeed later. ``retry_after`` is the server's wait, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        system: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, system=system, code=code, status=status)
        self.retry_after = retry_after


class ThrottledError(RetriableError):
    """The service refused the call because of a rate or concurrency limit."""


class TransientServiceError(RetriableError):
    """A server-side or network failure that is expected to pass."""


class ConcurrencyConflict(RetriableError):
    """Another writer changed the row first (ETag mismatch); re-read and try again."""


class LeaseLostError(ConcurrencyConflict):
    """This job's stream lease expired and may belong to another worker now: write nothing more."""


class LeaseHeldError(RetriableError):
    """Another job holds the lease for this (instance, entity, direction)."""


# --- resume later ---------------------------------------------------------------------------


class ResumeLaterError(DmsyncError):
    """Nothing can be done before ``resumes_at`` (``None``: not known); retrying sooner only
    burns budget. The work is parked, not failed."""

    def __init__(
        self,
        message: str,
        *,
        resumes_at: datetime | None = None,
        system: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, system=system, code=code, status=status)
        self.resumes_at = resumes_at


class QuotaExhaustedError(ResumeLaterError):
    """A daily API budget is used up; work resumes after ``resets_at``."""

    def __init__(
        self,
        message: str,
        *,
        resets_at: datetime | None = None,
        system: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, resumes_at=resets_at, system=system, code=code, status=status)
        self.resets_at = resets_at


# --- fatal ----------------------------------------------------------------------------------


class FatalError(DmsyncError):
    """Retrying the same work will fail the same way."""


class ConfigurationError(FatalError):
    """A setting or configuration file is missing or malformed; the message names it."""


class AuthenticationError(FatalError):
    """The service rejected our credentials."""


class InvalidMessageError(FatalError):
    """A queue message body is malformed or of an unknown version."""


class ApiRequestError(FatalError):
    """The service rejected a request in a way that retrying will not change."""


# --- per record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordRef:
    """Which record an error is about: the ids on either side that are known."""

    entity: str
    dynamics_id: str | None = None
    marketo_id: str | None = None


class RecordError(DmsyncError):
    """One record failed; the rest of its batch goes on and the record is retried later."""

    def __init__(
        self,
        message: str,
        *,
        record: RecordRef,
        system: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, system=system, code=code, status=status)
        self.record = record


# --- resync ---------------------------------------------------------------------------------


class ResyncRequiredError(DmsyncError):
    """The change cursor is no longer usable; the stream must be read from the start."""


class DeltaTokenExpiredError(ResyncRequiredError):
    """Dataverse answered 0x80044352: the delta token is older than change tracking keeps."""
