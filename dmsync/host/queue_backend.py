"""The queue operations the host needs, over azure-storage-queue (Azurite or Azure Storage).

Messages are read and written as the text stored in the queue; the listener decodes base64
itself so that a message that is not valid base64 can be poisoned [reference §3, §9]. The SDK
clients are synchronous, so each call runs in a worker thread of an I/O executor that is kept
apart from the functions' thread pool (a busy function pool must not stall deletes and lease
renewals).

Outcomes the extension treats as "nothing to do" are reported, not raised: a queue that does not
exist reads as empty, and a delete or update answered 404 (message already gone) or 400
``PopReceiptMismatch`` (another receive took the message) returns ``None`` [reference §3].
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

R = TypeVar("R")

POP_RECEIPT_MISMATCH = "PopReceiptMismatch"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as received, with the lease (pop receipt) this receive holds."""

    id: str
    pop_receipt: str
    text: str
    """The message text exactly as stored (base64 unless ``messageEncoding`` is ``none``)."""
    dequeue_count: int
    inserted_on: datetime | None
    expires_on: datetime | None
    next_visible_on: datetime | None


@dataclass(frozen=True)
class LeaseUpdate:
    """The result of changing a message's visibility: the new pop receipt and visible time."""

    pop_receipt: str
    next_visible_on: datetime | None


class QueueBackend(Protocol):
    """One queue."""

    @property
    def name(self) -> str:
        """The queue name."""
        ...

    async def receive(self, max_messages: int, visibility_timeout: int) -> list[ReceivedMessage]:
        """Up to ``max_messages`` visible messages, each hidden for ``visibility_timeout`` s."""
        ...

    async def delete(self, message_id: str, pop_receipt: str) -> bool:
        """Delete the message; ``False`` if it was already gone or the receipt is stale."""
        ...

    async def update_visibility(
        self, message_id: str, pop_receipt: str, visibility_timeout: int
    ) -> LeaseUpdate | None:
        """Hide the message for ``visibility_timeout`` s from now; ``None`` if the lease is lost."""
        ...

    async def send(self, text: str) -> None:
        """Add a message with ``text`` as stored, creating the queue if it does not exist."""
        ...

    async def approximate_count(self) -> int:
        """Messages in the queue, visible or not (0 if the queue does not exist)."""
        ...


def _is_lost_lease(error: HttpResponseError) -> bool:
    """404 (message or queue gone) or 400 PopReceiptMismatch: the message is not ours now."""
    if isinstance(error, ResourceNotFoundError) or error.status_code == 404:
        return True
    code = str(getattr(error, "error_code", None) or "")
    return (
        error.status_code == 400 and POP_RECEIPT_MISMATCH.lower() in code.replace("_", "").lower()
    )


class AzureQueueBackend:
    """:class:`QueueBackend` over a raw (no encode/decode policy) ``QueueClient``."""

    def __init__(self, client: QueueClient, executor: Executor) -> None:
        self._client = client
        self._executor = executor
        self._created = False

    @property
    def name(self) -> str:
        """The queue name."""
        return str(self._client.queue_name)

    async def _call(self, fn: Callable[..., R], *args: object, **kwargs: object) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def receive(self, max_messages: int, visibility_timeout: int) -> list[ReceivedMessage]:
        """See :meth:`QueueBackend.receive`."""

        def receive_all() -> list[ReceivedMessage]:
            pages = self._client.receive_messages(
                messages_per_page=max_messages,
                max_messages=max_messages,
                visibility_timeout=visibility_timeout,
            )
            return [
                ReceivedMessage(
                    id=m.id,
                    pop_receipt=m.pop_receipt or "",
                    text=m.content if isinstance(m.content, str) else str(m.content or ""),
                    dequeue_count=int(m.dequeue_count or 0),
                    inserted_on=m.inserted_on,
                    expires_on=m.expires_on,
                    next_visible_on=m.next_visible_on,
                )
                for m in pages
            ]

        try:
            return await self._call(receive_all)
        except ResourceNotFoundError:
            return []  # the trigger does not create its queue; a missing queue is an empty one

    async def delete(self, message_id: str, pop_receipt: str) -> bool:
        """See :meth:`QueueBackend.delete`."""
        try:
            await self._call(self._client.delete_message, message_id, pop_receipt)
        except HttpResponseError as error:
            if _is_lost_lease(error):
                return False
            raise
        return True

    async def update_visibility(
        self, message_id: str, pop_receipt: str, visibility_timeout: int
    ) -> LeaseUpdate | None:
        """See :meth:`QueueBackend.update_visibility`."""
        try:
            updated = await self._call(
                self._client.update_message,
                message_id,
                pop_receipt,
                visibility_timeout=visibility_timeout,
            )
        except HttpResponseError as error:
            if _is_lost_lease(error):
                return None
            raise
        return LeaseUpdate(
            pop_receipt=updated.pop_receipt or "", next_visible_on=updated.next_visible_on
        )

    async def send(self, text: str) -> None:
        """See :meth:`QueueBackend.send`."""
        if not self._created:
            await self.create_if_missing()
        try:
            await self._call(self._client.send_message, text)
        except ResourceNotFoundError:  # deleted since we created it
            await self.create_if_missing()
            await self._call(self._client.send_message, text)

    async def create_if_missing(self) -> None:
        """Create the queue unless it exists (output and poison queues are created on use)."""
        with contextlib.suppress(ResourceExistsError):
            await self._call(self._client.create_queue)
        self._created = True

    async def approximate_count(self) -> int:
        """See :meth:`QueueBackend.approximate_count`."""
        try:
            properties = await self._call(self._client.get_queue_properties)
        except ResourceNotFoundError:
            return 0
        return int(properties.approximate_message_count or 0)
