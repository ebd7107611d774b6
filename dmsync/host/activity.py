"""What the host is busy with, so ``--until-idle`` can tell when nothing is left to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActivitySnapshot:
    """A moment's view: how much work has ever started, and how much is still open."""

    started: int
    """Work items begun since the host started (never decreases)."""
    open: int
    """Work items begun and not yet settled (messages held, timer invocations running)."""


class Activity:
    """Counters updated on the host's event loop (no locking needed).

    A work item is a received message from receive until it is deleted, poisoned or released,
    or a timer invocation from start to end. If two snapshots around a look at the queues are
    equal and show nothing open, no work ran in between, so empty queues mean truly idle.
    """

    def __init__(self) -> None:
        self._started = 0
        self._open = 0

    def begin(self) -> None:
        """A work item starts."""
        self._started += 1
        self._open += 1

    def end(self) -> None:
        """A work item is settled."""
        self._open -= 1

    def snapshot(self) -> ActivitySnapshot:
        """The current counters."""
        return ActivitySnapshot(started=self._started, open=self._open)
