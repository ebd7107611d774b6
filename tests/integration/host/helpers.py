"""Running the host in-process against the session's Azurite."""

from __future__ import annotations

import base64
from pathlib import Path

import azure.functions as func
from azure.storage.queue import QueueClient

from dmsync.host.function_index import index_functions
from dmsync.host.host_config import QueueOptions
from dmsync.host.runtime import FunctionsHost
from dmsync.host.storage_access import StorageAccess
from dmsync.host.timer_status import MemoryScheduleStatusStore, ScheduleStatusStore
from shared.clock import SYSTEM_CLOCK, Clock

FAST = QueueOptions(max_polling_interval=0.2)
"""Default queue options, but idle polling capped at 200 ms so tests finish quickly."""


def azurite_host(
    app: func.FunctionApp,
    storage: StorageAccess,
    environ: dict[str, str],
    options: QueueOptions = FAST,
    status_store: ScheduleStatusStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> FunctionsHost:
    """A host for ``app`` on Azurite (``environ`` resolves the app's %Setting% references)."""
    indexed = index_functions(app.get_functions(), environ, script=Path(__file__))
    return FunctionsHost(
        indexed,
        queues=storage.queue,
        status_store=status_store or MemoryScheduleStatusStore(),
        queue_options=options,
        thread_count=4,
        clock=clock,
        idle_check_interval=0.05,
    )


def raw_texts(connection_string: str, queue_name: str) -> list[str]:
    """The text of every message in a queue, as stored (peeked, so left in place)."""
    client = QueueClient.from_connection_string(connection_string, queue_name)
    return [m.content for m in client.peek_messages(max_messages=32)]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
