"""Test doubles for the host's unit tests: an in-memory queue and a virtual clock.

``FakeQueue`` follows the Azure queue semantics (azure-storage-queue
"QueueClient class"; docs/vendor-facts.md): a receive hides
each message for the visibility timeout, bumps its dequeue count and issues a new pop receipt
(older receipts stop working); delete/update with a stale receipt or a gone message fail (the
backend reports ``False``/``None``, as the Azure backend does for 404/PopReceiptMismatch).

``VirtualClock`` moves only when the test calls :meth:`VirtualClock.advance`; sleepers wake in
deadline order. Nothing spins and nothing waits for real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dmsync.host.queue_backend import LeaseUpdate, ReceivedMessage


class VirtualClock:
    """A :class:`~shared.clock.Clock` whose time moves only on :meth:`advance`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return 1000.0 + self._elapsed

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        target = self._elapsed + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._elapsed = max(self._elapsed, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self._elapsed = target
        await settle()


async def settle(rounds: int = 50) -> None:
    """Let every ready task run (a bounded number of event-loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], rounds: int = 2000) -> None:
    """Run the event loop until ``condition`` holds (bounded; fails the test otherwise)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@dataclass
class StoredMessage:
    id: str
    text: str
    dequeue_count: int = 0
    pop_receipt: str | None = None
    visible_at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    inserted_on: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))


class FakeQueue:
    """An in-memory queue with Azure Storage queue semantics (see the module docstring)."""

    def __init__(self, name: str, clock: VirtualClock) -> None:
        self._name = name
        self._clock = clock
        self.messages: dict[str, StoredMessage] = {}
        self.sent: list[str] = []
        self.deleted: list[str] = []
        self.updates: list[tuple[str, int]] = []
        """(message id, visibility timeout) of every successful update."""
        self.receives = 0

    @property
    def name(self) -> str:
        return self._name

    def put(self, text: str, *, dequeue_count: int = 0) -> str:
        """Add a message directly (as another producer would); returns its id."""
        message = StoredMessage(id=str(uuid.uuid4()), text=text, dequeue_count=dequeue_count)
        self.messages[message.id] = message
        return message.id

    async def receive(self, max_messages: int, visibility_timeout: int) -> list[ReceivedMessage]:
        await asyncio.sleep(0)
        self.receives += 1
        now = self._clock.now()
        batch = [m for m in self.messages.values() if m.visible_at <= now][:max_messages]
        received = []
        for message in batch:
            message.dequeue_count += 1
            message.pop_receipt = uuid.uuid4().hex
            message.visible_at = now + timedelta(seconds=visibility_timeout)
            received.append(
                ReceivedMessage(
                    id=message.id,
                    pop_receipt=message.pop_receipt,
                    text=message.text,
                    dequeue_count=message.dequeue_count,
                    inserted_on=message.inserted_on,
                    expires_on=message.inserted_on + timedelta(days=7),
                    next_visible_on=message.visible_at,
                )
            )
        return received

    async def delete(self, message_id: str, pop_receipt: str) -> bool:
        await asyncio.sleep(0)
        message = self.messages.get(message_id)
        if message is None or message.pop_receipt != pop_receipt:
            return False
        del self.messages[message_id]
        self.deleted.append(message_id)
        return True

    async def update_visibility(
        self, message_id: str, pop_receipt: str, visibility_timeout: int
    ) -> LeaseUpdate | None:
        await asyncio.sleep(0)
        message = self.messages.get(message_id)
        if message is None or message.pop_receipt != pop_receipt:
            return None
        message.pop_receipt = uuid.uuid4().hex
        message.visible_at = self._clock.now() + timedelta(seconds=visibility_timeout)
        self.updates.append((message_id, visibility_timeout))
        return LeaseUpdate(pop_receipt=message.pop_receipt, next_visible_on=message.visible_at)

    async def send(self, text: str) -> None:
        await asyncio.sleep(0)
        self.sent.append(text)
        self.put(text)

    async def approximate_count(self) -> int:
        return len(self.messages)


class FakeQueues:
    """A queue factory for :class:`~dmsync.host.runtime.FunctionsHost`: one FakeQueue per name."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.queues: dict[str, FakeQueue] = {}

    def __call__(self, connection: str, queue_name: str) -> FakeQueue:
        if queue_name not in self.queues:
            self.queues[queue_name] = FakeQueue(queue_name, self._clock)
        return self.queues[queue_name]
