"""The ``sync-jobs`` queue as the engine and scheduler see it: send a job, base64 encoded."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.jobs import SYNC_JOBS_QUEUE, SyncJob
from shared.storage import StorageConnection


class StorageJobQueue:
    """Sends job messages to the queue the ``run_sync_job`` trigger listens on."""

    def __init__(self, connection: StorageConnection, queue_name: str = SYNC_JOBS_QUEUE) -> None:
        self.name = queue_name
        self._client: QueueClient = connection.queue_client(queue_name)
        self._poison: QueueClient = connection.queue_client(f"{queue_name}-poison")
        self._ready = False
        self._lock = threading.Lock()
        self.sent = 0

    def _send(self, body: str) -> None:
        with self._lock:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._client.create_queue()
                self._ready = True
        self._client.send_message(body)
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

    async def enqueue(self, job: SyncJob) -> None:
        """Send one job (the SDK call runs off the event loop)."""
        await asyncio.to_thread(self._send, job.to_json())
