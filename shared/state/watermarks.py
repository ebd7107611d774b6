"""Watermarks: how far each stream has got, and the pure rules for moving it.

A watermark records a stream's phase (``initial`` full copy, then ``incremental`` changes), its
opaque cursor (a Dataverse nextLink/deltaLink or a Marketo paging token: text only the API
client understands), cumulative counters, and a run ``sequence``.

The rules, after Meltano's ``increment_state`` (style anchors §2), only ever move forward:

* :func:`start_run` opens a run: ``sequence`` + 1. Continuation jobs carry that sequence.
* :func:`advance` records a committed page: it requires the run's sequence (a job from an older
  run is stale and gets :class:`StaleRunError`), never moves the phase back from
  ``incremental`` to ``initial``, never clears the cursor, only adds to counters, and never moves
  ``last_success_at`` backwards.
* :func:`record_failure` keeps the cursor (the page will be replayed) and notes the error.
* :func:`reset` is the one way back: a full resync (new sequence, phase ``initial``, no cursor).
* ``run_open`` says a run is under way: :func:`start_run` and :func:`reset` open one, the last
  page of a read (``advance(..., finish=True)``) or :func:`finish_run` closes it. The scheduler
  starts no second run while one is open and recent.

These functions do no I/O; :mod:`shared.state.watermark_store` persists their results with
ETag checks so two workers can never both advance the same watermark.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shared.errors import ConcurrencyConflict
from shared.state import recent
from shared.state.properties import (
    truncate,
)
from shared.state.streams import StreamId

MAX_ERROR_CHARS = 2_000
"""``last_error`` and ``status`` are stored cut to this many characters."""

SCHEMA_VERSION = 1


class Phase(StrEnum):
    """Where a stream is in its life."""

    INITIAL = "initial"
    INCREMENTAL = "incremental"


class StaleRunError(ConcurrencyConflict):
    """A job tried to advance a watermark for a run that is no longer current; drop the job."""


@dataclass(frozen=True)
class RunCounts:
    """Record counters; in a :class:`Watermark` they are cumulative since the last reset."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        if min(self.read, self.written, self.skipped, self.failed) < 0:
            raise ValueError("record counters cannot be negative")

    def __add__(self, other: RunCounts) -> RunCounts:
        return RunCounts(
            self.read + other.read,
            self.written + other.written,
            self.skipped + other.skipped,
            self.failed + other.failed,
        )


@dataclass(frozen=True)
class Watermark:
    """One stream's progress. ``etag`` is the stored row's version (``None``: never saved)."""

    stream: StreamId
    phase: Phase = Phase.INITIAL
    cursor: str | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    total_expected: int | None = None
    """Records expected in the initial phase (for progress), when the source can tell."""
    sequence: int = 0
    step: int = 0
    """Pages (and sweep steps) committed in the current run: a job names the step it was sent
    for, so a redelivered or duplicated job for a step already done is recognised as stale."""
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    status: str = ""
    """A free-form note for operators (e.g. "paused: sandbox refresh detected")."""
    updated_at: datetime | None = None
    run_open: bool = False
    """A run was started and has not reached the end of its read yet."""
    resync: bool = False
    """The initial phase under way is a full resync (after :func:`reset`), not the first copy."""
    fresh_copy: bool = False
    """The initial phase under way is the entity's first copy and started with no ID mapping
    for it: records of its pages were never mapped before this run, so the sync need not look
    their mappings up. Cleared with the phase change and by :func:`reset`."""
    sweep: str | None = None
    """After a full resync: where the check for records deleted while the delta token was stale
    has got to (``""``: not started; a mapping key: continue after it); ``None``: no sweep."""
    creating: tuple[str, ...] = ()
    """Source ids whose creation in the target was under way when this row was last written and
    whose page has not been committed since (:func:`with_creating`): after a crash they may exist
    in the target without a mapping, so the next page looks at them first."""
    recent: str = ""
    """Records read in five-minute buckets over the last hour (:mod:`shared.state.recent`)."""
    resume_cursor: str | None = None
    """After an operator's resync (:func:`reset` with ``keep_cursor``): the cursor the stream
    had before it. The full read's last page continues from it rather than from the read's own
    delta link, so a change made while the read ran comes back whichever moment that link
    stands for (re-reading costs nothing: writes are idempotent, unchanged records unsent).
    Cleared when the initial phase ends."""
    etag: str | None = field(default=None, compare=False)

    @property
    def progress(self) -> tuple[int, int | None]:
        """``(done, total)``: records read so far and the expected total, if known."""
        return self.counts.read, self.total_expected

    def age(self, now: datetime) -> float | None:
        """Seconds since the watermark last advanced (``None`` if it never has)."""
        if self.last_success_at is None:
            return None
        return max(0.0, (now - self.last_success_at).total_seconds())


def _require_run(watermark: Watermark, sequence: int, step: int | None = None) -> None:
    """Raise StaleRunError unless ``sequence`` is the watermark's current run (and ``step``,
    when given, its current step: a late duplicate of an earlier step must not commit)."""
    if sequence != watermark.sequence:
        raise StaleRunError(
            f"watermark {watermark.stream} is at run {watermark.sequence}, "
            f"not {sequence}: this job is stale"
        )
    if step is not None and step != watermark.step:
        raise StaleRunError(
            f"watermark {watermark.stream} is at step {watermark.step} of run {sequence}, "
            f"not {step}: this job is a late duplicate"
        )


def start_run(watermark: Watermark, now: datetime) -> Watermark:
    """Open a new run: the sequence moves on, so jobs of older runs become stale."""
    return replace(
        watermark,
        sequence=watermark.sequence + 1,
        step=0,
        last_run_at=now,
        updated_at=now,
        run_open=True,
    )


def with_sweep(
    watermark: Watermark,
    *,
    sequence: int,
    sweep: str | None,
    now: datetime,
    status: str | None = None,
    finish: bool = False,
    step: int | None = None,
) -> Watermark:
    """Record the sweep's position (``None``: it is over), optionally closing the run.

    Raises:
        StaleRunError: ``sequence`` (or ``step``, when given) is not the current one.
    """
    _require_run(watermark, sequence, step)
    return replace(
        watermark,
        sweep=sweep,
        step=watermark.step + 1,
        run_open=watermark.run_open and not finish,
        resync=watermark.resync and sweep is not None,
        status=watermark.status if status is None else truncate(status, MAX_ERROR_CHARS),
        updated_at=now,
    )


def with_creating(
    watermark: Watermark, *, sequence: int, step: int, ids: tuple[str, ...], now: datetime
) -> Watermark:
    """Note the ids a page is about to create (cleared by the page's :func:`advance`).

    Raises:
        StaleRunError: ``sequence`` or ``step`` is not the current one.
    """
    _require_run(watermark, sequence, step)
    return replace(watermark, creating=ids, updated_at=now)


def finish_run(
    watermark: Watermark, *, sequence: int, now: datetime, status: str | None = None
) -> Watermark:
    """Close the current run without a page (e.g. it waits for its dependencies).

    Raises:
        StaleRunError: ``sequence`` is not the current run.
    """
    _require_run(watermark, sequence)
    return replace(
        watermark,
        run_open=False,
        status=watermark.status if status is None else truncate(status, MAX_ERROR_CHARS),
        updated_at=now,
    )


def advance(
    watermark: Watermark,
    *,
    sequence: int,
    cursor: str,
    counts: RunCounts,
    now: datetime,
    phase: Phase | None = None,
    total_expected: int | None = None,
    status: str | None = None,
    finish: bool = False,
    fresh_copy: bool | None = None,
    step: int | None = None,
    sweep: str | None = None,
) -> Watermark:
    """Commit a page: the new cursor, the page's counters, and possibly a phase change.

    Call it only after every record before ``cursor`` was written or logged as a sync error.

    Args:
        watermark: the current (stored) watermark.
        sequence: the run the caller belongs to (from :func:`start_run` or its job message).
        cursor: where the next page starts; never empty (use :func:`reset` to start over).
        counts: this page's counters, added to the totals.
        now: the commit time.
        phase: the new phase, if it changes (``initial`` → ``incremental`` only).
        total_expected: a new expected total, if known.
        status: a new operator note, if any.
        finish: this page ends the run's read (its cursor is a delta link).
        fresh_copy: set or clear :attr:`Watermark.fresh_copy` (``None`` keeps it); it never
            outlives the initial phase.
        step: the step the caller's job was sent for; a late duplicate of an earlier step is
            refused (``None``: not checked).
        sweep: start the delete sweep in the same write (``""``): it is then owed as surely as
            the cursor is committed (``None``: no sweep starts).

    Raises:
        StaleRunError: ``sequence`` (or ``step``) is not the current one.
        ValueError: an empty cursor or a backwards phase change.
    """
    _require_run(watermark, sequence, step)
    if not cursor:
        raise ValueError("advance needs a cursor; use reset to read the stream from the start")
    new_phase = phase or watermark.phase
    if watermark.phase is Phase.INCREMENTAL and new_phase is Phase.INITIAL:
        raise ValueError("a watermark never goes back to the initial phase except by reset")
    last_success = now
    if watermark.last_success_at is not None and watermark.last_success_at > now:
        last_success = watermark.last_success_at
    return replace(
        watermark,
        phase=new_phase,
        cursor=cursor,
        counts=watermark.counts + counts,
        total_expected=watermark.total_expected if total_expected is None else total_expected,
        last_success_at=last_success,
        last_error=None,
        status=watermark.status if status is None else truncate(status, MAX_ERROR_CHARS),
        updated_at=now,
        run_open=watermark.run_open and not finish,
        # A resync stays one until the sweep that follows its read is over (status says so).
        resync=watermark.resync and (new_phase is Phase.INITIAL or sweep is not None),
        fresh_copy=(watermark.fresh_copy if fresh_copy is None else fresh_copy)
        and new_phase is Phase.INITIAL,
        step=watermark.step + 1,
        sweep=watermark.sweep if sweep is None else sweep,
        creating=(),
        resume_cursor=watermark.resume_cursor if new_phase is Phase.INITIAL else None,
        recent=recent.record(watermark.recent, now, counts.read),
    )


def record_failure(
    watermark: Watermark,
    *,
    sequence: int,
    error: str,
    now: datetime,
    counts: RunCounts | None = None,
) -> Watermark:
    """Note a failed run: the cursor stays where it was (the page is replayed).

    Raises:
        StaleRunError: ``sequence`` is not the current run.
    """
    _require_run(watermark, sequence)
    return replace(
        watermark,
        counts=watermark.counts + (counts or RunCounts()),
        last_error=truncate(error, MAX_ERROR_CHARS),
        updated_at=now,
    )


def reset(
    watermark: Watermark, *, now: datetime, status: str = "", keep_cursor: bool = False
) -> Watermark:
    """Start the stream over (a full resync): phase ``initial``, no cursor, zero counters.

    The sequence moves on, so any job still in flight for the old run is stale. With
    ``keep_cursor`` (an operator's resync of a stream whose cursor is still good) the old
    cursor is kept as :attr:`Watermark.resume_cursor`; a resync already under way keeps the one
    it kept. An expired cursor is never kept.
    """
    kept = None
    if keep_cursor:
        incremental = watermark.phase is Phase.INCREMENTAL
        kept = watermark.cursor if incremental else watermark.resume_cursor
    return replace(
        watermark,
        resume_cursor=kept,
        phase=Phase.INITIAL,
        cursor=None,
        counts=RunCounts(),
        total_expected=None,
        sequence=watermark.sequence + 1,
        step=0,
        last_error=None,
        status=truncate(status, MAX_ERROR_CHARS),
        updated_at=now,
        run_open=True,
        fresh_copy=False,
        resync=True,
    )


# The row conversion lives beside this module; importable from here as before.
from shared.state.watermark_rows import from_entity, to_entity  # noqa: E402

__all__ = [
    "MAX_ERROR_CHARS",
    "Phase",
    "RunCounts",
    "StaleRunError",
    "Watermark",
    "advance",
    "finish_run",
    "from_entity",
    "record_failure",
    "reset",
    "start_run",
    "to_entity",
    "with_creating",
    "with_sweep",
]
