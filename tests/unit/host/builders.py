"""Builders shared by the host's unit tests."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import azure.functions as func

from dmsync.host.activity import Activity
from dmsync.host.function_index import FunctionSpec, IndexedApp, index_functions
from dmsync.host.host_config import QueueOptions
from dmsync.host.invoker import Invoker
from dmsync.host.outputs import OutputWriter
from dmsync.host.queues import QueueListener, poison_queue_name
from dmsync.host.runtime import FunctionsHost
from dmsync.host.timer_status import MemoryScheduleStatusStore
from tests.unit.host.fakes import FakeQueues, VirtualClock

HERE = Path(__file__)


def index(app: func.FunctionApp, environ: dict[str, str] | None = None) -> IndexedApp:
    """Index an app built inside a test (``get_functions`` is called once, here)."""
    return index_functions(app.get_functions(), environ or {}, script=HERE)


def only_function(app: func.FunctionApp, environ: dict[str, str] | None = None) -> FunctionSpec:
    """The single function of ``app``."""
    [spec] = index(app, environ).functions
    return spec


def make_listener(
    spec: FunctionSpec,
    queues: FakeQueues,
    clock: VirtualClock,
    options: QueueOptions,
    *,
    lease_seconds: int = 600,
    activity: Activity | None = None,
) -> QueueListener:
    """A queue listener on fake queues, with a real invoker and a small thread pool."""
    writer = OutputWriter(queues, options.message_encoding)
    invoker = Invoker(thread_pool=ThreadPoolExecutor(2), outputs=writer, clock=clock)
    trigger = spec.trigger
    queue_name = trigger.queue_name  # type: ignore[union-attr]
    poison = poison_queue_name(queue_name)
    return QueueListener(
        spec,
        queue=queues("AzureWebJobsStorage", queue_name),
        poison_queue=queues("AzureWebJobsStorage", poison) if poison else None,
        options=options,
        invoker=invoker,
        activity=activity or Activity(),
        clock=clock,
        lease_seconds=lease_seconds,
        rng=random.Random(7),
    )


def make_host(
    app: IndexedApp, queues: FakeQueues, clock: VirtualClock, options: QueueOptions
) -> FunctionsHost:
    """A host on fake queues and an in-memory status store."""
    return FunctionsHost(
        app,
        queues=queues,
        status_store=MemoryScheduleStatusStore(),
        queue_options=options,
        thread_count=2,
        clock=clock,
        rng=random.Random(7),
    )
