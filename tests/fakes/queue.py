"""The ``sync-jobs`` queue in memory, delivered the way the Functions host delivers it.

* ``enqueue(job, delay)`` makes the message visible after ``delay`` (on the manual clock);
* a message whose job raised comes back at once, at most :data:`MAX_DEQUEUE` deliveries in
  all, then goes to the poison list (the host's ``maxDequeueCount`` of 5, visibility 0);
* a message whose worker died comes back after the host's receive lease (:data:`RECEIVE_LEASE`);
* the test picks which visible message runs next (any order), can deliver one twice, or lose
  one (a continuation that was never sent).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.clock import ManualClock
from shared.jobs import SyncJob
from tests.fakes.faults import enter, leave

MAX_DEQUEUE = 5
RECEIVE_LEASE = timedelta(minutes=10)


def _failure(call: str) -> BaseException:
    return ConnectionError(f"the queue service did not answer {call}")


@dataclass
class Message:
    job: SyncJob
    visible_at: datetime
    dequeue_count: int = 0
    number: int = 0


class FakeJobQueue:
    """Messages by visibility; nothing runs by itself (the test delivers them)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.messages: list[Message] = []
        self.poison: list[Message] = []
        self.sent = 0
        self._numbers = itertools.count(1)

    async def enqueue(self, job: SyncJob, delay: timedelta | None = None) -> None:
        kind = enter("queue.enqueue", _failure)  # a dead worker sends nothing
        self.sent += 1
        visible = self.clock.now() + (delay or timedelta(0))
        self.messages.append(Message(job, visible, 0, next(self._numbers)))
        leave("queue.enqueue", kind, _failure)

    def visible(self) -> list[Message]:
        now = self.clock.now()
        return sorted((m for m in self.messages if m.visible_at <= now), key=lambda m: m.number)

    def take(self, message: Message) -> Message:
        self.messages.remove(message)
        message.dequeue_count += 1
        return message

    def failed(self, message: Message) -> None:
        """The job raised: back at once, or to poison after the last delivery."""
        if message.dequeue_count >= MAX_DEQUEUE:
            self.poison.append(message)
            return
        message.visible_at = self.clock.now()
        self.messages.append(message)

    def died(self, message: Message) -> None:
        """The worker died with the message: back once the receive lease runs out (a death
        counts as a delivery, as the dequeue count already went up)."""
        if message.dequeue_count >= MAX_DEQUEUE:
            self.poison.append(message)
            return
        message.visible_at = self.clock.now() + RECEIVE_LEASE
        self.messages.append(message)

    def duplicate(self, message: Message) -> None:
        self.messages.append(Message(message.job, self.clock.now(), 0, next(self._numbers)))
