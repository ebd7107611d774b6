"""Queue-trigger semantics on an in-memory queue and a virtual clock (no real waiting)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading

import azure.functions as func
import pytest

from dmsync.host.host_config import QueueOptions
from dmsync.host.queues import poison_queue_name
from tests.unit.host.builders import index, make_host, make_listener, only_function
from tests.unit.host.fakes import FakeQueues, VirtualClock, settle, until


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def queues(clock: VirtualClock) -> FakeQueues:
    return FakeQueues(clock)


async def test_concurrency_is_bounded_by_batch_size_plus_threshold(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """A batch is fetched only while <= newBatchThreshold run, so at most batch+threshold run.

    batchSize 4, newBatchThreshold 2: 4 start; nothing more is fetched while 4 or 3 run; once
    2 run, 4 more arrive: 6 at once, the exact bound, and never more.
    """
    options = QueueOptions(batch_size=4, new_batch_threshold=2)
    release = asyncio.Semaphore(0)
    entered: list[str] = []
    running = peak = 0

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        nonlocal running, peak
        entered.append(msg.get_body().decode())
        running += 1
        peak = max(peak, running)
        await release.acquire()
        running -= 1

    jobs = queues("AzureWebJobsStorage", "jobs")
    for i in range(12):
        jobs.put(b64(f"m{i}"))
    listener = make_listener(only_function(app), queues, clock, options)
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))

    await until(lambda: len(entered) == 4)
    await clock.advance(1)  # polling is due again, but 4 > threshold: no receive
    assert (len(entered), jobs.receives) == (4, 1)
    release.release()  # 3 running, still above the threshold
    await clock.advance(1)
    assert (len(entered), jobs.receives) == (4, 1)
    release.release()  # 2 running: at the threshold, the next batch comes
    await clock.advance(1)
    await until(lambda: len(entered) == 8)
    assert running == 6 == options.max_concurrent_messages
    while len(jobs.deleted) < 12:
        for _ in range(12):
            release.release()
        await clock.advance(1)
    assert peak == options.max_concurrent_messages
    assert sorted(entered) == sorted(f"m{i}" for i in range(12))
    stopping.set()
    await poller


async def test_lease_is_renewed_at_half_time_while_the_function_runs(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """Each half-lease the message is hidden for a full lease again; it is never redelivered."""
    finish = asyncio.Event()
    calls: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        calls.append(msg.dequeue_count or 0)
        await finish.wait()

    jobs = queues("AzureWebJobsStorage", "jobs")
    message_id = jobs.put(b64("long"))
    listener = make_listener(only_function(app), queues, clock, QueueOptions(), lease_seconds=60)
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: calls == [1])
    await settle()  # the renewal task starts its first half-lease wait at t=0
    await clock.advance(29)
    assert jobs.updates == []
    await clock.advance(1)
    assert jobs.updates == [(message_id, 60)]
    await clock.advance(150)  # well past the first lease: renewed five times by now
    assert jobs.updates == [(message_id, 60)] * 6
    finish.set()
    await until(lambda: jobs.deleted == [message_id])  # deleted with the newest receipt
    assert calls == [1]
    stopping.set()
    await poller


async def test_a_message_received_again_while_running_is_not_run_twice(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """If the lease lapses (e.g. the machine slept), the redelivery only refreshes the receipt."""
    finish = asyncio.Event()
    calls: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        calls.append(msg.dequeue_count or 0)
        await finish.wait()

    jobs = queues("AzureWebJobsStorage", "jobs")
    message_id = jobs.put(b64("x"))
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: calls == [1])
    jobs.messages[message_id].visible_at = clock.now()  # the lease ran out
    await clock.advance(1)
    assert jobs.messages[message_id].dequeue_count == 2  # it was received again...
    assert calls == [1]  # ...but not run again
    finish.set()
    await until(lambda: jobs.deleted == [message_id])  # the newer receipt deletes it
    stopping.set()
    await poller


async def test_failed_message_returns_after_visibility_timeout(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """A failure makes the message visible again after visibilityTimeout, not before."""
    seen: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        seen.append(msg.dequeue_count or 0)
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")

    jobs = queues("AzureWebJobsStorage", "jobs")
    message_id = jobs.put(b64("x"))
    options = QueueOptions(visibility_timeout=30.0)
    listener = make_listener(only_function(app), queues, clock, options)
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: jobs.updates == [(message_id, 30)])
    await clock.advance(29.5)
    assert seen == [1]
    await clock.advance(3)  # past 30 s and the next poll
    await until(lambda: jobs.deleted == [message_id])
    assert seen == [1, 2]
    stopping.set()
    await poller


async def test_poison_after_max_dequeue_count_failures(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """Failing every time: tried maxDequeueCount times, then the text moves to <queue>-poison."""
    seen: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    def work(msg: func.QueueMessage) -> None:
        seen.append(msg.dequeue_count or 0)
        raise ValueError("always")

    jobs = queues("AzureWebJobsStorage", "jobs")
    jobs.put(b64("bad"))
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    for _ in range(2000):  # bounded; a loaded machine may take a while to run the thread
        if "jobs-poison" in queues.queues and queues.queues["jobs-poison"].sent:
            break
        await asyncio.sleep(0.01)  # the sync function runs in a real thread
        await clock.advance(1)
    assert seen == [1, 2, 3, 4, 5]
    assert queues.queues["jobs-poison"].sent == [b64("bad")]
    assert jobs.messages == {}
    stopping.set()
    await poller


async def test_message_already_over_max_dequeue_count_is_poisoned_unrun(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """DequeueCount > maxDequeueCount on receive: straight to poison, the function never runs."""
    calls: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        calls.append("ran")

    jobs = queues("AzureWebJobsStorage", "jobs")
    jobs.put(b64("tired"), dequeue_count=5)  # this receive makes it 6 > 5
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: not jobs.messages)
    assert queues.queues["jobs-poison"].sent == [b64("tired")]
    assert calls == []
    stopping.set()
    await poller


async def test_message_that_is_not_base64_goes_to_poison_unrun(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """With messageEncoding base64, undecodable text is poisoned as is, without invoking."""
    calls: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        calls.append("ran")

    jobs = queues("AzureWebJobsStorage", "jobs")
    jobs.put("this is {not} base64!")
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: not jobs.messages)
    assert queues.queues["jobs-poison"].sent == ["this is {not} base64!"]
    assert calls == []
    stopping.set()
    await poller


async def test_message_encoding_none_passes_text_through(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """messageEncoding none: the stored text is the body."""
    bodies: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: str) -> None:
        bodies.append(msg)

    queues("AzureWebJobsStorage", "jobs").put("plain {text}")
    options = QueueOptions(message_encoding="none")
    listener = make_listener(only_function(app), queues, clock, options)
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: bodies == ["plain {text}"])
    stopping.set()
    await poller


async def test_queue_without_poison_queue_leaves_failures_leased(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """A '-poison' queue has no poison queue: a failed message is neither released nor moved."""
    assert poison_queue_name("jobs-poison") is None
    assert poison_queue_name("q" * 57) is None
    assert poison_queue_name("q" * 56) == "q" * 56 + "-poison"
    calls: list[int] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs-poison", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        calls.append(msg.dequeue_count or 0)
        raise RuntimeError("fails")

    queue = queues("AzureWebJobsStorage", "jobs-poison")
    message_id = queue.put(b64("x"))
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: calls == [1])
    await clock.advance(599)
    assert calls == [1]
    assert queue.updates == [] and message_id in queue.messages
    await clock.advance(5)  # the 10-minute lease ends (and a 2 s poll follows): tried again
    await until(lambda: calls == [1, 2])
    stopping.set()
    await poller


async def test_lost_lease_on_delete_is_ignored(clock: VirtualClock, queues: FakeQueues) -> None:
    """A 404/pop-receipt mismatch on delete is not an error; the listener goes on."""
    jobs = queues("AzureWebJobsStorage", "jobs")
    seen: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        seen.append(msg.get_body().decode())
        jobs.messages.pop(msg.id or "", None)  # someone else deleted it meanwhile

    jobs.put(b64("first"))
    listener = make_listener(only_function(app), queues, clock, QueueOptions())
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await until(lambda: seen == ["first"])
    jobs.put(b64("second"))
    await clock.advance(3)
    await until(lambda: seen == ["first", "second"])
    assert not poller.done()
    stopping.set()
    await poller


async def test_idle_polling_backs_off_to_max_polling_interval(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """Empty polls grow the delay from 100 ms to maxPollingInterval; a batch resets it."""
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        return None

    options = QueueOptions(max_polling_interval=2.0)
    listener = make_listener(only_function(app), queues, clock, options)
    stopping = asyncio.Event()
    poller = asyncio.create_task(listener.run(stopping))
    await settle()
    await clock.advance(20)
    sleeps = list(clock.sleeps)
    assert sleeps[0] == pytest.approx(0.1)
    assert all(b >= a for a, b in itertools.pairwise(sleeps))
    assert sleeps[1] > 0.1 and sleeps[-1] == pytest.approx(2.0)
    before = len(clock.sleeps)
    queues("AzureWebJobsStorage", "jobs").put(b64("x"))
    await clock.advance(2)
    polls = [s for s in clock.sleeps[before:] if s != 300]  # 300: the message's lease renewal
    assert polls[0] == pytest.approx(0.1)  # found a message: back to the minimum
    assert 0.18 <= polls[1] <= 0.22  # then the backoff grows again from the start
    stopping.set()
    await poller


async def test_output_to_a_listened_queue_wakes_its_listener(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """A message this host writes is picked up at once, not after the idle backoff."""
    handled: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="first", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="second", connection="AzureWebJobsStorage")
    async def forward(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set("forwarded")

    @app.queue_trigger(arg_name="msg", queue_name="second", connection="AzureWebJobsStorage")
    async def receive(msg: func.QueueMessage) -> None:
        handled.append(msg.get_body().decode())

    host = make_host(index(app), queues, clock, QueueOptions(max_polling_interval=60.0))
    stop = asyncio.Event()
    running = asyncio.create_task(host.run(stop=stop))
    await clock.advance(300)  # both listeners are now at the 60 s backoff ceiling
    queues.queues["first"].put(b64("go"))
    await clock.advance(60)  # 'first' polls once; 'second' must not wait another minute
    await until(lambda: handled == ["forwarded"])
    stop.set()
    await running


async def test_stop_abandons_unfinished_messages_without_deleting(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """After the grace period an unfinished message is left leased: not deleted, not released."""
    started = asyncio.Event()
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes

    jobs = queues("AzureWebJobsStorage", "jobs")
    message_id = jobs.put(b64("stuck"))
    host = make_host(index(app), queues, clock, QueueOptions())
    stop = asyncio.Event()
    running = asyncio.create_task(host.run(stop=stop, grace_seconds=0.05))
    await started.wait()
    stop.set()
    result = await running
    assert result.abandoned == 1
    assert message_id in jobs.messages and jobs.deleted == [] and jobs.updates == []


async def test_stop_lets_in_flight_messages_finish_within_grace(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """A function still running at stop finishes and its message is deleted."""
    started, finish = asyncio.Event(), asyncio.Event()
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    async def work(msg: func.QueueMessage) -> None:
        started.set()
        await finish.wait()

    jobs = queues("AzureWebJobsStorage", "jobs")
    message_id = jobs.put(b64("almost done"))
    host = make_host(index(app), queues, clock, QueueOptions())
    stop = asyncio.Event()
    running = asyncio.create_task(host.run(stop=stop, grace_seconds=30))
    await started.wait()
    stop.set()
    await settle()
    finish.set()
    result = await running
    assert result.abandoned == 0
    assert jobs.deleted == [message_id]


async def test_plain_functions_share_a_pool_of_the_configured_size(
    clock: VirtualClock, queues: FakeQueues
) -> None:
    """Four messages in flight, but a pool of two threads runs only two plain functions at once."""
    release = threading.Event()
    lock = threading.Lock()
    running = peak = 0
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    def blocking(msg: func.QueueMessage) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(timeout=10)
        with lock:
            running -= 1

    jobs = queues("AzureWebJobsStorage", "jobs")
    for i in range(4):
        jobs.put(b64(f"m{i}"))
    host = make_host(index(app), queues, clock, QueueOptions())  # thread_count=2
    threads_before = {t.ident for t in threading.enumerate()}
    stop = asyncio.Event()
    run = asyncio.create_task(host.run(stop=stop))
    for _ in range(500):
        if running == 2:
            break
        await asyncio.sleep(0.01)
    # Let the loop hand all four messages to the pool: turns of the event loop, not time (the
    # fake queue answers at once). A pool starts a thread per waiting call up to its size,
    # inside submit, so a larger pool would already show more than two new threads here.
    for _ in range(200):
        await asyncio.sleep(0)
    pool_threads = [t for t in threading.enumerate() if t.ident not in threads_before]
    assert len(pool_threads) == 2, [t.name for t in pool_threads]
    assert (running, host.activity.snapshot().open) == (2, 4)
    release.set()
    for _ in range(500):
        if len(jobs.deleted) == 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await run
    assert peak == 2 and len(jobs.deleted) == 4
