"""The host's queue and timer semantics against a real Azurite, in-process."""

from __future__ import annotations

import asyncio
import threading
import time
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

from dmsync.host.host_config import QueueOptions
from dmsync.host.runtime import HostOutcome
from dmsync.host.storage_access import StorageAccess
from dmsync.host.timer_status import STATUS_TABLE, ScheduleStatus, TableScheduleStatusStore
from emulators.azurite import AzuriteInstance
from shared.clock import SYSTEM_CLOCK
from shared.storage import StorageConnection
from tests.integration.host.helpers import FAST, azurite_host, b64, raw_texts

pytestmark = pytest.mark.integration

QUEUE = {"connection": "AzureWebJobsStorage"}


@pytest.fixture
def storage(azurite: AzuriteInstance) -> Iterator[StorageAccess]:
    executor = ThreadPoolExecutor(8, thread_name_prefix="test-io")
    yield StorageAccess({"AzureWebJobsStorage": azurite.connection_string}, executor)
    executor.shutdown()


@pytest.fixture
def connection(azurite: AzuriteInstance) -> StorageConnection:
    return StorageConnection.from_connection_string(azurite.connection_string)


async def test_poison_after_the_fifth_failure(
    storage: StorageAccess,
    connection: StorageConnection,
    azurite: AzuriteInstance,
    unique_name: str,
) -> None:
    """Five attempts, dequeue counts 1..5, then the original text sits in <queue>-poison."""
    counts: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", **QUEUE)
    def always_fails(msg: func.QueueMessage) -> None:
        counts.append(msg.dequeue_count or 0)
        raise ValueError("cannot handle this")

    connection.queue_client(unique_name).create_queue()
    connection.queue_client(unique_name).send_message('{"job": "bad"}')
    host = azurite_host(app, storage, {"JOBS": unique_name})
    result = await host.run(until_idle=True, max_seconds=30)
    assert result.outcome is HostOutcome.IDLE
    assert counts == [1, 2, 3, 4, 5]
    assert raw_texts(azurite.connection_string, f"{unique_name}-poison") == [b64('{"job": "bad"}')]
    assert raw_texts(azurite.connection_string, unique_name) == []


async def test_redelivery_after_failure_waits_for_visibility_timeout(
    storage: StorageAccess, connection: StorageConnection, unique_name: str
) -> None:
    """visibilityTimeout 1 s: the retry comes no sooner than 1 s after the failure."""
    deliveries: list[tuple[int, float]] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", **QUEUE)
    async def fails_once(msg: func.QueueMessage) -> None:
        deliveries.append((msg.dequeue_count or 0, time.monotonic()))
        if len(deliveries) == 1:
            raise RuntimeError("transient")

    connection.queue_client(unique_name).create_queue()
    connection.queue_client(unique_name).send_message("retry me")
    options = QueueOptions(visibility_timeout=1.0, max_polling_interval=0.2)
    result = await azurite_host(app, storage, {"JOBS": unique_name}, options).run(
        until_idle=True, max_seconds=30
    )
    assert result.outcome is HostOutcome.IDLE
    assert [count for count, _ in deliveries] == [1, 2]
    assert deliveries[1][1] - deliveries[0][1] >= 0.95  # a lower bound: never flaky


class PollWatchingClock:
    """The real clock, which also notes when a poll loop's pause that began with 4 messages
    open has ended (the pause is created in the listener's own task, inside ``first_of``)."""

    def __init__(self, in_flight: typing.Callable[[], int]) -> None:
        self._in_flight = in_flight
        self.paused_with_four_open = asyncio.Event()

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now()

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic()

    def sleep(self, seconds: float) -> typing.Awaitable[None]:
        task = asyncio.current_task()
        polling = task is not None and task.get_name().startswith("queue:")
        watched = polling and self._in_flight() >= 4

        async def pause() -> None:
            await SYSTEM_CLOCK.sleep(seconds)
            if watched:
                self.paused_with_four_open.set()

        return pause()


async def test_concurrency_stays_within_batch_size_plus_threshold(
    storage: StorageAccess, connection: StorageConnection, unique_name: str
) -> None:
    """batchSize 4 / newBatchThreshold 2: 4 run; at 2 left, 4 more come: 6 at most, reached."""
    release = asyncio.Semaphore(0)
    entered: list[str] = []
    running = peak = 0
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", **QUEUE)
    async def held(msg: func.QueueMessage) -> None:
        nonlocal running, peak
        entered.append(msg.get_body().decode())
        running += 1
        peak = max(peak, running)
        await release.acquire()
        running -= 1

    queue = connection.queue_client(unique_name)
    queue.create_queue()
    for i in range(12):
        queue.send_message(f"m{i}")
    # Every receive records how many messages the host held unfinished when it was made; a
    # host that ignored the threshold would fetch while 4 are open, and the log shows it.
    open_at_receive: list[int] = []
    open_queue = storage.queue

    def in_flight() -> int:
        return sum(len(listener.in_flight_tasks()) for listener in host.queue_listeners)

    def recording_queue(connection_name: str, queue_name: str) -> typing.Any:
        backend = open_queue(connection_name, queue_name)
        receive = backend.receive

        async def counted(max_messages: int, visibility_timeout: int) -> typing.Any:
            open_at_receive.append(in_flight())
            return await receive(max_messages, visibility_timeout)

        backend.receive = counted  # type: ignore[method-assign]
        return backend

    storage.queue = recording_queue  # type: ignore[method-assign]
    clock = PollWatchingClock(in_flight)
    options = QueueOptions(batch_size=4, new_batch_threshold=2, max_polling_interval=0.2)
    host = azurite_host(app, storage, {"JOBS": unique_name}, options, clock=clock)
    run = asyncio.create_task(host.run(until_idle=True, max_seconds=30))

    async def wait_for(condition: typing.Callable[[], bool]) -> None:
        for _ in range(1000):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached within 10 s")

    await wait_for(lambda: len(entered) == 4)
    # The poll loop's pause after taking the four has ended, so the loop has decided whether
    # to fetch again (an event, not a guess at how long that takes); a few turns of the event
    # loop let a fetch it decided on reach the queue.
    await asyncio.wait_for(clock.paused_with_four_open.wait(), timeout=30)
    for _ in range(50):
        await asyncio.sleep(0)
    assert open_at_receive and max(open_at_receive) <= options.new_batch_threshold
    assert len(entered) == 4
    release.release()
    release.release()
    await wait_for(lambda: len(entered) == 8)
    assert running == 6 == options.max_concurrent_messages
    for _ in range(12):
        release.release()
    result = await run
    assert result.outcome is HostOutcome.IDLE
    assert peak == 6
    assert sorted(entered) == sorted(f"m{i}" for i in range(12))


async def test_message_over_max_dequeue_count_is_poisoned_without_running(
    storage: StorageAccess,
    connection: StorageConnection,
    azurite: AzuriteInstance,
    unique_name: str,
) -> None:
    """Dequeued five times elsewhere: this host's receive makes it 6 > 5, so it is poisoned."""
    calls: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        calls.append("ran")

    queue = connection.queue_client(unique_name)
    queue.create_queue()
    queue.send_message("worn out")
    for _ in range(5):
        [message] = list(queue.receive_messages(max_messages=1, visibility_timeout=30))
        queue.update_message(message, visibility_timeout=0)
    result = await azurite_host(app, storage, {"JOBS": unique_name}).run(
        until_idle=True, max_seconds=30
    )
    assert result.outcome is HostOutcome.IDLE
    assert calls == []
    assert raw_texts(azurite.connection_string, f"{unique_name}-poison") == [b64("worn out")]


async def test_text_that_is_not_base64_is_poisoned_without_running(
    storage: StorageAccess, azurite: AzuriteInstance, unique_name: str
) -> None:
    """A producer that forgot base64: the message lands in poison, text unchanged."""
    calls: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", **QUEUE)
    def work(msg: func.QueueMessage) -> None:
        calls.append("ran")

    raw = QueueClient.from_connection_string(azurite.connection_string, unique_name)
    raw.create_queue()
    raw.send_message('{"plain": "json"}')
    result = await azurite_host(app, storage, {"JOBS": unique_name}).run(
        until_idle=True, max_seconds=30
    )
    assert result.outcome is HostOutcome.IDLE
    assert calls == []
    assert raw_texts(azurite.connection_string, f"{unique_name}-poison") == ['{"plain": "json"}']


async def test_async_and_sync_functions_context_and_outputs(
    storage: StorageAccess, connection: StorageConnection, unique_name: str
) -> None:
    """An async function fans out via Out[List[str]] and $return; a sync one consumes in a thread.

    The consumer reads what the output binding wrote with the ordinary base64 client view
    (``msg: str``), so the wire format matches what other producers send.
    """
    consumed: list[tuple[str, str, str]] = []
    fanned_out: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%IN%", **QUEUE)
    @app.queue_output(arg_name="parts", queue_name="%PARTS%", **QUEUE)
    @app.queue_output(arg_name="$return", queue_name="%PARTS%", **QUEUE)
    async def split(
        msg: func.QueueMessage,
        parts: func.Out[typing.List[str]],  # noqa: UP006 - the worker's check needs typing.List
        context: func.Context,
    ) -> str:
        fanned_out.append(context.function_name)
        parts.set(msg.get_body().decode().split(","))
        return "trailer"

    @app.queue_trigger(arg_name="msg", queue_name="%PARTS%", **QUEUE)
    def collect(msg: str, context: func.Context) -> None:
        consumed.append((msg, threading.current_thread().name, context.function_name))

    environ = {"IN": f"{unique_name}-in", "PARTS": f"{unique_name}-parts"}
    connection.queue_client(environ["IN"]).create_queue()
    connection.queue_client(environ["IN"]).send_message("a,b,c")
    result = await azurite_host(app, storage, environ).run(until_idle=True, max_seconds=30)
    assert result.outcome is HostOutcome.IDLE
    assert fanned_out == ["split"]
    assert sorted(body for body, _, _ in consumed) == ["a", "b", "c", "trailer"]
    assert all(thread.startswith("function") for _, thread, _ in consumed)
    assert {name for _, _, name in consumed} == {"collect"}


async def test_output_messages_are_readable_by_a_plain_base64_client(
    storage: StorageAccess, connection: StorageConnection, unique_name: str
) -> None:
    """What an output binding writes decodes with the project's base64 queue client."""
    app = func.FunctionApp()
    done = asyncio.Event()

    @app.queue_trigger(arg_name="msg", queue_name="%IN%", **QUEUE)
    @app.queue_output(arg_name="out", queue_name="%OUT%", **QUEUE)
    def forward(msg: func.QueueMessage, out: func.Out[bytes]) -> None:
        out.set("héllo wörld".encode())

    environ = {"IN": f"{unique_name}-in", "OUT": f"{unique_name}-out"}
    connection.queue_client(environ["IN"]).create_queue()
    connection.queue_client(environ["IN"]).send_message("go")
    host = azurite_host(app, storage, environ)
    run = asyncio.create_task(host.run(stop=done))
    out = storage.queue("AzureWebJobsStorage", environ["OUT"])
    for _ in range(500):
        if await out.approximate_count():  # 0 while the queue does not exist yet
            break
        await asyncio.sleep(0.02)
    done.set()
    assert (await run).outcome is HostOutcome.STOPPED
    [message] = list(connection.queue_client(environ["OUT"]).receive_messages(max_messages=1))
    assert message.content == "héllo wörld"


async def test_table_status_store_makes_a_missed_occurrence_past_due(
    storage: StorageAccess, unique_name: str
) -> None:
    """useMonitor on Azurite: status persists in the host table; a passed Next runs at once."""
    store = TableScheduleStatusStore(lambda: storage.host_table(STATUS_TABLE), unique_name)
    missed = datetime.now(UTC) - timedelta(hours=2)
    await store.write(
        "hourly", ScheduleStatus(last=missed - timedelta(hours=1), next=missed, last_updated=missed)
    )
    assert (await store.read("hourly")) == ScheduleStatus(
        last=missed - timedelta(hours=1), next=missed, last_updated=missed
    )
    runs: list[bool] = []
    app = func.FunctionApp()

    @app.function_name("hourly")
    @app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
    def hourly(timer: func.TimerRequest) -> None:
        runs.append(timer.past_due)

    result = await azurite_host(app, storage, {}, FAST, status_store=store).run(
        until_idle=True, max_seconds=30
    )
    assert result.outcome is HostOutcome.IDLE
    assert runs == [True]
    status = await store.read("hourly")
    assert status is not None and status.last == missed and status.next > datetime.now(UTC)
