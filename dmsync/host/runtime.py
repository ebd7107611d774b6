"""The host: start every timer and queue listener, decide when to stop, shut down cleanly.

It stops when told to (a signal), when ``max_seconds`` have passed, or, with ``until_idle``,
once every timer function has fired at least once and every queue the app listens on or writes
to is empty with nothing in flight. Stopping ends receiving and timer scheduling at once; work
in flight gets ``grace_seconds`` to finish, then is abandoned: its messages are not deleted and
reappear when their lease ends (at-least-once delivery).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from dmsync.host.activity import Activity
from dmsync.host.function_index import IndexedApp, QueueTrigger
from dmsync.host.host_config import QueueOptions
from dmsync.host.invoker import Invoker
from dmsync.host.outputs import OutputWriter
from dmsync.host.queue_backend import QueueBackend
from dmsync.host.queues import DEFAULT_LEASE_SECONDS, QueueListener, poison_queue_name
from dmsync.host.timer_status import ScheduleStatusStore
from dmsync.host.timers import TimerListener
from dmsync.host.waiting import first_of
from shared.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger("dmsync.host")

QueueFactory = Callable[[str, str], QueueBackend]
"""(connection name, queue name) → the queue; must return the same object for the same pair."""


class HostOutcome(StrEnum):
    """Why the host stopped."""

    IDLE = "idle"
    STOPPED = "stopped"
    TIME_LIMIT = "time-limit"
    FAILED = "failed"


@dataclass(frozen=True)
class HostResult:
    """How a run ended."""

    outcome: HostOutcome
    abandoned: int = 0
    """Invocations still running when the grace period ended (their messages stay leased)."""
    detail: str = ""
    """What was still pending (time limit) or what failed."""


class FunctionsHost:
    """Runs an indexed app's timer and queue functions."""

    def __init__(
        self,
        app: IndexedApp,
        *,
        queues: QueueFactory,
        status_store: ScheduleStatusStore,
        queue_options: QueueOptions,
        thread_count: int,
        clock: Clock = SYSTEM_CLOCK,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        idle_check_interval: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.activity = Activity()
        self._queues = queues
        self._status_store = status_store
        self._options = queue_options
        self._thread_count = thread_count
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._idle_check_interval = idle_check_interval
        self._rng = rng or random.Random()
        self.timer_listeners: list[TimerListener] = []
        self.queue_listeners: list[QueueListener] = []

    def _notify_listeners(self, connection: str, queue_name: str) -> None:
        target = self._queues(connection, queue_name)
        for listener in self.queue_listeners:
            if listener.queue is target:
                listener.notify()

    def _build(self, invoker: Invoker) -> None:
        self.timer_listeners = [
            TimerListener(
                spec,
                invoker=invoker,
                status_store=self._status_store,
                activity=self.activity,
                clock=self._clock,
            )
            for spec in self.app.timer_functions
        ]
        self.queue_listeners = []
        for spec in self.app.queue_functions:
            assert isinstance(spec.trigger, QueueTrigger)
            poison_name = poison_queue_name(spec.trigger.queue_name)
            self.queue_listeners.append(
                QueueListener(
                    spec,
                    queue=self._queues(spec.trigger.connection, spec.trigger.queue_name),
                    poison_queue=(
                        self._queues(spec.trigger.connection, poison_name)
                        if poison_name is not None
                        else None
                    ),
                    options=self._options,
                    invoker=invoker,
                    activity=self.activity,
                    clock=self._clock,
                    lease_seconds=self._lease_seconds,
                    rng=self._rng,
                )
            )

    def watched_queues(self) -> list[QueueBackend]:
        """Every queue the app listens on or writes to (poison queues excluded), once each."""
        seen: dict[int, QueueBackend] = {}
        for spec in self.app.functions:
            pairs = [(o.connection, o.queue_name) for o in spec.outputs]
            if isinstance(spec.trigger, QueueTrigger):
                pairs.append((spec.trigger.connection, spec.trigger.queue_name))
            for connection, name in pairs:
                queue = self._queues(connection, name)
                seen.setdefault(id(queue), queue)
        return list(seen.values())

    async def pending_work(self) -> str:
        """What keeps the host from being idle, in words ('' when idle)."""
        reasons = [
            f"timer {t.spec.name} has not fired yet" for t in self.timer_listeners if not t.fired
        ]
        snapshot = self.activity.snapshot()
        if snapshot.open:
            reasons.append(f"{snapshot.open} invocation(s) or message(s) in flight")
        for queue in self.watched_queues():
            try:
                count = await queue.approximate_count()
            except Exception as error:
                reasons.append(f"queue {queue.name} cannot be read ({error})")
                continue
            if count:
                reasons.append(f"queue {queue.name} holds {count} message(s)")
        return "; ".join(reasons)

    async def is_idle(self) -> bool:
        """Every timer fired once, nothing in flight, every watched queue empty.

        The activity counters are read before and after the queues are counted: if they are
        unchanged and nothing was open, no invocation could have added a message meanwhile.
        """
        before = self.activity.snapshot()
        if before.open or not all(t.fired for t in self.timer_listeners):
            return False
        for queue in self.watched_queues():
            try:
                if await queue.approximate_count():
                    return False
            except Exception as error:
                logger.warning("counting messages on %s failed: %s", queue.name, error)
                return False
        return self.activity.snapshot() == before

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        force_stop: asyncio.Event | None = None,
        until_idle: bool = False,
        max_seconds: float | None = None,
        grace_seconds: float = 30.0,
    ) -> HostResult:
        """Run until stopped, idle (with ``until_idle``) or out of time.

        Args:
            stop: set it to stop (the command sets it on SIGINT/SIGTERM).
            force_stop: set it to end the grace period at once (a second signal).
            until_idle: stop once idle (see :meth:`is_idle`).
            max_seconds: stop after this many seconds on the host's clock.
            grace_seconds: how long in-flight work may take to finish after stopping.
        """
        stop = stop or asyncio.Event()
        force_stop = force_stop or asyncio.Event()
        pool = ThreadPoolExecutor(self._thread_count, thread_name_prefix="function")
        writer = OutputWriter(self._queues, self._options.message_encoding, self._notify_listeners)
        self._build(Invoker(thread_pool=pool, outputs=writer, clock=self._clock))
        stopping = asyncio.Event()
        timer_tasks = [
            asyncio.create_task(t.run(stopping), name=f"timer:{t.spec.name}")
            for t in self.timer_listeners
        ]
        poll_tasks = [
            asyncio.create_task(q.run(stopping), name=f"queue:{q.spec.name}")
            for q in self.queue_listeners
        ]
        logger.info(
            "host started: %d timer and %d queue function(s) from %s",
            len(self.timer_listeners),
            len(self.queue_listeners),
            self.app.script,
        )
        try:
            result = await self._supervise(
                [*timer_tasks, *poll_tasks], stop, until_idle, max_seconds
            )
        finally:
            stopping.set()
            abandoned = await self._shut_down(timer_tasks, poll_tasks, grace_seconds, force_stop)
            pool.shutdown(wait=False, cancel_futures=True)
        logger.info("host stopped (%s)", result.outcome.value)
        return HostResult(result.outcome, abandoned, result.detail)

    async def _supervise(
        self,
        tasks: list[asyncio.Task[None]],
        stop: asyncio.Event,
        until_idle: bool,
        max_seconds: float | None,
    ) -> HostResult:
        started = self._clock.monotonic()
        while True:
            if stop.is_set():
                return HostResult(HostOutcome.STOPPED)
            crashed = next((t for t in tasks if t.done() and t.exception() is not None), None)
            if crashed is not None:
                error = crashed.exception()
                logger.error("%s failed: %s", crashed.get_name(), error, exc_info=error)
                return HostResult(HostOutcome.FAILED, detail=f"{crashed.get_name()}: {error}")
            if until_idle and await self.is_idle():
                return HostResult(HostOutcome.IDLE)
            if max_seconds is not None and self._clock.monotonic() - started >= max_seconds:
                detail = await self.pending_work() if until_idle else ""
                return HostResult(HostOutcome.TIME_LIMIT, detail=detail)
            running = [t for t in tasks if not t.done()]
            await first_of(
                self._clock.sleep(self._idle_check_interval),
                stop.wait(),
                *([asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)] if running else []),
            )

    async def _shut_down(
        self,
        timer_tasks: list[asyncio.Task[None]],
        poll_tasks: list[asyncio.Task[None]],
        grace_seconds: float,
        force_stop: asyncio.Event,
    ) -> int:
        """Let listeners stop and in-flight work finish within the grace; abandon the rest.

        Returns:
            How many invocations were abandoned (messages left leased, timers cut short).
        """
        in_flight = [t for listener in self.queue_listeners for t in listener.in_flight_tasks()]
        work = [t for t in (*timer_tasks, *poll_tasks, *in_flight) if not t.done()]
        if work:
            if self.activity.snapshot().open:
                logger.info(
                    "stopping: %d invocation(s) in flight may take up to %g s to finish",
                    self.activity.snapshot().open,
                    grace_seconds,
                )
            await first_of(asyncio.wait(work, timeout=grace_seconds), force_stop.wait())
        abandoned = 0
        for listener in self.queue_listeners:
            abandoned += await listener.abandon()
        for task in timer_tasks:
            if not task.done():
                abandoned += 1  # a timer invocation still running
        for task in (*timer_tasks, *poll_tasks):
            task.cancel()
        await asyncio.gather(*timer_tasks, *poll_tasks, return_exceptions=True)
        if abandoned:
            logger.warning(
                "%d invocation(s) did not finish within the grace period; their messages were "
                "not deleted and reappear when their lease ends",
                abandoned,
            )
        return abandoned
