"""The ``sync-jobs`` queue as the engine and scheduler see it: send a job, base64 encoded."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import timedelta
from typing import Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.jobs import SYNC_JOBS_QUEUE, SyncJob
from shared.storage import StorageConnection

MAX_DELAY = timedelta(days=7)
"""The longest a queue message may stay invisible (Azure Queue Storage's limit)."""


class JobQueue(Protocol):
    """Where follow-up jobs go (the ``sync-jobs`` queue)."""

    async def enqueue(self, job: SyncJob, delay: timedelta | None = None) -> None:
        """Send one job; with ``delay``, it becomes visible only after that long."""
        ...


class StorageJobQueue:
    """Sends job messages to the queue the ``run_sync_job`` trigger listens on."""

    def __init__(self, connection: StorageConnection, queue_name: str = SYNC_JOBS_QUEUE) -> None:
        self.name = queue_name
        self._client: QueueClient = connection.queue_client(queue_name)
        self._poison: QueueClient = connection.queue_client(f"{queue_name}-poison")
        self._ready = False
        self._lock = threading.Lock()
        self.sent = 0

    def _send(self, body: str, delay: timedelta | None) -> None:
        with self._lock:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._client.create_queue()
                self._ready = True
        if delay is None or delay <= timedelta(0):
            self._client.send_message(body)
        else:
            seconds = int(min(delay, MAX_DELAY).total_seconds() + 0.999)
            self._client.send_message(body, visibility_timeout=seconds)
        self.sent += 1

    def depths(self) -> dict[str, int]:
        """Approximate message counts of the queue and its poison queue (missing counts 0)."""
        found = {}
        for client in (self._client, self._poison):
            try:
                count = client.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:
                count = 0
            found[client.queue_name] = int(count or 0)
        return found

    async def enqueue(self, job: SyncJob, delay: timedelta | None = None) -> None:
        """Send one job (the SDK call runs off the event loop), visible after ``delay``."""
        await asyncio.to_thread(self._send, job.to_json(), delay)
