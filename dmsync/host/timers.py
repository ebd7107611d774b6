"""The timer-trigger listener: one per timer function [reference §4].

* Occurrences come from the NCRONTAB schedule in UTC; the clock is injected, so a test with a
  :class:`~shared.clock.ManualClock` sees every occurrence at its exact time without waiting.
* ``useMonitor`` (default: on unless the schedule fires more often than once a minute) keeps
  ``Last``/``Next`` in a :class:`~dmsync.host.timer_status.ScheduleStatusStore`. On start, a
  recorded ``Next`` that has passed runs the function at once with ``IsPastDue=True``;
  otherwise ``runOnStartup`` runs it at once with ``IsPastDue=False``.
* Singleton: the next occurrence is computed only after an invocation ends, so a function never
  overlaps itself and occurrences missed while it ran are skipped.
* No retries: a failed invocation is logged and the schedule goes on.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from dmsync.host.activity import Activity
from dmsync.host.bindings import timer_request
from dmsync.host.function_index import FunctionSpec, TimerTrigger
from dmsync.host.invoker import Invoker
from dmsync.host.timer_status import ScheduleStatus, ScheduleStatusStore
from dmsync.host.waiting import first_of
from shared.clock import Clock

logger = logging.getLogger("dmsync.host")


class TimerListener:
    """Fires one timer function on its schedule."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        invoker: Invoker,
        status_store: ScheduleStatusStore,
        activity: Activity,
        clock: Clock,
    ) -> None:
        if not isinstance(spec.trigger, TimerTrigger):
            raise TypeError(f"{spec.name} is not a timer-triggered function")
        self.spec = spec
        self._trigger: TimerTrigger = spec.trigger
        self._invoker = invoker
        self._store = status_store
        self._activity = activity
        self._clock = clock
        self._use_monitor = False
        self.invocations = 0
        """Invocations started (successful or not)."""

    @property
    def fired(self) -> bool:
        """Whether the function has run at least once since the host started."""
        return self.invocations > 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Fire on schedule until ``stopping`` is set (a running invocation is not cut short)."""
        schedule = self._trigger.schedule
        now = self._clock.now()
        self._use_monitor = (
            self._trigger.use_monitor
            if self._trigger.use_monitor is not None
            else schedule.default_use_monitor(now)
        )
        status = await self._store.read(self.spec.name) if self._use_monitor else None
        past_due = status is not None and now > status.next
        if status is None:
            status = ScheduleStatus(last=None, next=schedule.next_after(now), last_updated=now)
            if self._use_monitor:
                await self._store.write(self.spec.name, status)
        logger.info(
            "timer %s: schedule %r (UTC), next occurrence %s%s",
            self.spec.name,
            schedule.expression,
            status.next.isoformat(),
            ", past due" if past_due else "",
        )
        if past_due:
            status = await self._fire(status, occurrence=status.next, past_due=True)
        elif self._trigger.run_on_startup:
            status = await self._fire(status, occurrence=now, past_due=False)
        while not stopping.is_set():
            due = status.next
            if not await self._sleep_until(due, stopping):
                return
            status = await self._fire(status, occurrence=due, past_due=False)

    async def _sleep_until(self, due: datetime, stopping: asyncio.Event) -> bool:
        """Wait until ``due`` on the clock; ``False`` if stopped first."""
        while not stopping.is_set():
            remaining = (due - self._clock.now()).total_seconds()
            if remaining <= 0:
                return True
            await first_of(self._clock.sleep(remaining), stopping.wait())
        return False

    async def _fire(
        self, status: ScheduleStatus, *, occurrence: datetime, past_due: bool
    ) -> ScheduleStatus:
        """Invoke once with ``status`` as the timer info; return the status that follows."""
        self._activity.begin()
        self.invocations += 1
        try:
            request = timer_request(past_due=past_due, schedule_status=status.as_timer_info())
            await self._invoker.invoke(
                self.spec, request, details={"past_due": past_due, "occurrence": occurrence}
            )
        finally:
            self._activity.end()
        now = self._clock.now()
        following = ScheduleStatus(
            last=occurrence,
            next=self._trigger.schedule.next_after(max(now, occurrence)),
            last_updated=now,
        )
        if self._use_monitor:
            try:
                await self._store.write(self.spec.name, following)
            except Exception as error:
                logger.warning(
                    "timer %s: recording schedule status failed: %s", self.spec.name, error
                )
        return following
