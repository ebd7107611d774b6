"""The queue-trigger listener: one per queue function, with the storage extension's semantics.

From the extension's QueueListener/QueueProcessor [reference §3]:

* poll: receive up to ``batchSize`` messages, each leased (hidden) for ``lease_seconds``
  (10 minutes), and start them all at once; fetch the next batch only when at most
  ``newBatchThreshold`` are still in flight, so at most ``batchSize + newBatchThreshold`` run
  at once; wait 100 ms after a batch and back off (randomized, exponential, up to
  ``maxPollingInterval``) while the queue is empty;
* while a function runs, renew its message's lease at half-time;
* before invoking, a message whose dequeue count is already over ``maxDequeueCount``, or whose
  text does not decode (``messageEncoding`` base64), goes straight to the poison queue;
* success: delete. Failure at ``maxDequeueCount``: copy the text to ``<queue>-poison``
  (created if missing) and delete. Earlier failures: make the message visible again after
  ``visibilityTimeout``. A queue that cannot have a poison queue (its name ends in ``-poison``
  or is too long for the suffix) leaves failed messages invisible until their lease ends;
* a lost lease (404 or pop-receipt mismatch on delete/update) is not an error.

One host never runs the same message twice at once: a message received again while its first
delivery is still running (its lease ran out) only hands its new pop receipt to the running
delivery. On stop, receiving ends; messages still running keep their lease and are never
deleted unless they finish.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from dmsync.host.activity import Activity
from dmsync.host.bindings import queue_message
from dmsync.host.function_index import FunctionSpec, QueueTrigger
from dmsync.host.host_config import MIN_POLLING_INTERVAL, QueueOptions
from dmsync.host.invoker import Invoker
from dmsync.host.message_codec import MessageDecodeError, decode_message_text
from dmsync.host.polling import PollingBackoff
from dmsync.host.queue_backend import QueueBackend, ReceivedMessage
from dmsync.host.waiting import first_of
from shared.clock import Clock

logger = logging.getLogger("dmsync.host")

DEFAULT_LEASE_SECONDS = 600
"""How long a received message stays hidden; renewed at half-time while its function runs."""

POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63


def poison_queue_name(queue_name: str) -> str | None:
    """``<queue>-poison``, or ``None`` when the queue cannot have one [reference §3]."""
    if queue_name.endswith(POISON_SUFFIX) or len(queue_name) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return queue_name + POISON_SUFFIX


@dataclass
class HeldMessage:
    """A message this listener holds a lease on."""

    message: ReceivedMessage
    pop_receipt: str
    renewals: int = 0
    stop_renewal: asyncio.Event = field(default_factory=asyncio.Event)


class QueueListener:
    """Polls one queue for one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        queue: QueueBackend,
        poison_queue: QueueBackend | None,
        options: QueueOptions,
        invoker: Invoker,
        activity: Activity,
        clock: Clock,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(spec.trigger, QueueTrigger):
            raise TypeError(f"{spec.name} is not a queue-triggered function")
        self.spec = spec
        self.queue = queue
        self.poison_queue = poison_queue
        self._options = options
        self._invoker = invoker
        self._activity = activity
        self._clock = clock
        self._lease_seconds = max(1, int(lease_seconds))
        self._backoff = PollingBackoff(MIN_POLLING_INTERVAL, options.max_polling_interval, rng)
        self._wake = asyncio.Event()
        self._held: dict[str, HeldMessage] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def in_flight_tasks(self) -> list[asyncio.Task[None]]:
        """The tasks processing messages now."""
        return list(self._tasks)

    def notify(self) -> None:
        """A message was just added to this queue by this host: poll now, not after backoff."""
        self._backoff.reset()
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll until ``stopping`` is set; messages in flight keep running (see :meth:`abandon`)."""
        while not stopping.is_set():
            await self._wait_for_capacity(stopping)
            if stopping.is_set():
                break
            self._wake.clear()
            try:
                batch = await self.queue.receive(self._options.batch_size, self._lease_seconds)
            except Exception as error:
                logger.warning("receiving from queue %s failed: %s", self.queue.name, error)
                batch = []
            if stopping.is_set():
                await self._release(batch)
                break
            for message in batch:
                self._accept(message)
            delay = self._backoff.after_poll(found_messages=bool(batch))
            await first_of(self._clock.sleep(delay), self._wake.wait(), stopping.wait())

    async def abandon(self) -> int:
        """Stop waiting for unfinished messages (they keep their lease and are not deleted).

        Returns:
            How many messages were abandoned.
        """
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def _wait_for_capacity(self, stopping: asyncio.Event) -> None:
        while len(self._tasks) > self._options.new_batch_threshold and not stopping.is_set():
            stop_wait = asyncio.ensure_future(stopping.wait())
            try:
                await asyncio.wait({*self._tasks, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
                await asyncio.gather(stop_wait, return_exceptions=True)

    def _accept(self, message: ReceivedMessage) -> None:
        held = self._held.get(message.id)
        if held is not None:
            # Its lease ran out while it was still running and this receive got it again: the
            # new receipt supersedes the old one; the running delivery settles it.
            logger.warning(
                "message %s on %s was received again while still running; not run twice",
                message.id,
                self.queue.name,
            )
            held.pop_receipt = message.pop_receipt
            return
        held = HeldMessage(message=message, pop_receipt=message.pop_receipt)
        self._held[message.id] = held
        self._activity.begin()
        task = asyncio.create_task(self._process(held), name=f"{self.spec.name}:{message.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, batch: list[ReceivedMessage]) -> None:
        """Make messages received during stop visible again at once, unprocessed."""
        for message in batch:
            try:
                await self.queue.update_visibility(message.id, message.pop_receipt, 0)
            except Exception as error:
                logger.warning("releasing message %s failed: %s", message.id, error)

    async def _process(self, held: HeldMessage) -> None:
        message = held.message
        try:
            max_dequeue = self._options.max_dequeue_count
            if message.dequeue_count > max_dequeue:
                await self._poison(
                    held, f"its dequeue count {message.dequeue_count} is over {max_dequeue}"
                )
                return
            try:
                body = decode_message_text(message.text, self._options.message_encoding)
            except MessageDecodeError as error:
                await self._poison(held, str(error))
                return
            succeeded = await self._invoke(held, body)
            await self._settle(held, succeeded)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # A storage call failed while settling: the message keeps its lease and reappears.
            logger.error("settling message %s on %s failed: %s", message.id, self.queue.name, error)
        finally:
            self._held.pop(message.id, None)
            self._activity.end()

    async def _invoke(self, held: HeldMessage, body: bytes) -> bool:
        message = held.message
        details = {"message_id": message.id, "dequeue_count": message.dequeue_count}
        if self.spec.trigger_input == "str":
            try:
                value: Any = body.decode("utf-8")
            except UnicodeDecodeError:
                logger.error(
                    "Executed 'Functions.%s' (Failed) message_id=%s: the body is not UTF-8 "
                    "text, but the trigger parameter is annotated str",
                    self.spec.name,
                    message.id,
                )
                return False
        elif self.spec.trigger_input == "bytes":
            value = body
        else:
            value = queue_message(
                message_id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=held.pop_receipt,
            )
        renewal = asyncio.create_task(self._renew(held))
        try:
            result = await self._invoker.invoke(self.spec, value, details=details)
        except asyncio.CancelledError:
            renewal.cancel()
            raise
        held.stop_renewal.set()
        await renewal  # an update in flight must land first: its receipt is the current one
        return result.succeeded

    async def _renew(self, held: HeldMessage) -> None:
        """Keep the message hidden while its function runs: renew at half the lease."""
        message = held.message
        while True:
            await first_of(self._clock.sleep(self._lease_seconds / 2), held.stop_renewal.wait())
            if held.stop_renewal.is_set():
                return
            receipt = held.pop_receipt
            try:
                update = await self.queue.update_visibility(
                    message.id, receipt, self._lease_seconds
                )
            except Exception as error:
                logger.warning("renewing the lease of message %s failed: %s", message.id, error)
                continue
            if update is None:
                if held.pop_receipt != receipt:
                    continue  # received again meanwhile; renew the newer lease
                logger.warning("lost the lease of message %s on %s", message.id, self.queue.name)
                return
            held.pop_receipt = update.pop_receipt
            held.renewals += 1

    async def _settle(self, held: HeldMessage, succeeded: bool) -> None:
        message = held.message
        if succeeded:
            await self.queue.delete(message.id, held.pop_receipt)
            return
        if self.poison_queue is None:
            # No poison queue possible: leave the message invisible until its lease ends rather
            # than retry it in a tight loop (the extension does the same).
            return
        if message.dequeue_count >= self._options.max_dequeue_count:
            await self._poison(held, f"it failed {message.dequeue_count} times")
            return
        await self.queue.update_visibility(
            message.id, held.pop_receipt, int(self._options.visibility_timeout)
        )

    async def _poison(self, held: HeldMessage, reason: str) -> None:
        message = held.message
        if self.poison_queue is None:
            logger.warning(
                "message %s on %s should be poisoned (%s) but the queue can have no poison "
                "queue; it stays invisible until its lease ends",
                message.id,
                self.queue.name,
                reason,
            )
            return
        await self.poison_queue.send(message.text)
        await self.queue.delete(message.id, held.pop_receipt)
        logger.warning(
            "message %s moved from %s to %s because %s",
            message.id,
            self.queue.name,
            self.poison_queue.name,
            reason,
        )
