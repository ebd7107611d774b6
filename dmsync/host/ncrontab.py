"""NCRONTAB timer schedules, evaluated in UTC with the pinned croniter.

Six fields are ``{second} {minute} {hour} {day} {month} {day-of-week}``; five-field expressions
(no seconds) are accepted too [reference §4]. croniter reads six-field NCRONTAB when told the
seconds come first (``second_at_beginning=True``). TimeSpan schedules (``hh:mm:ss``) exist only
on App Service plans, not on Flex Consumption, so they are refused here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter
from croniter.croniter import CroniterError

from shared.errors import ConfigurationError

MONITOR_MIN_PERIOD_SECONDS = 60.0
"""``useMonitor`` defaults to on only for schedules that fire at most once a minute [ref §4]."""

_MONITOR_SAMPLE = 12
"""How many upcoming occurrences are inspected to decide the ``useMonitor`` default."""


@dataclass(frozen=True)
class NcrontabSchedule:
    """A validated NCRONTAB expression."""

    expression: str
    """The expression as written (after ``%Setting%`` resolution)."""

    @classmethod
    def parse(cls, expression: str, *, where: str) -> NcrontabSchedule:
        """Validate ``expression``.

        Args:
            expression: five or six NCRONTAB fields.
            where: what the schedule belongs to, for error messages.

        Raises:
            ConfigurationError: naming ``where`` when the expression is not a valid schedule.
        """
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise ConfigurationError(
                f"the {where} {expression!r} is not an NCRONTAB expression: expected six fields "
                "'{second} {minute} {hour} {day} {month} {day-of-week}' (or five, without "
                "seconds); TimeSpan schedules are not supported"
            )
        schedule = cls(" ".join(fields))
        try:
            schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except (CroniterError, ValueError, KeyError) as exc:
            raise ConfigurationError(
                f"the {where} {expression!r} is not a valid NCRONTAB expression: {exc}"
            ) from None
        return schedule

    @property
    def has_seconds(self) -> bool:
        """Whether the expression carries the leading seconds field."""
        return len(self.expression.split()) == 6

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (UTC, timezone-aware)."""
        start = moment.astimezone(UTC)
        iterator = croniter(self.expression, start, second_at_beginning=self.has_seconds)
        result: datetime = iterator.get_next(datetime)
        return result.astimezone(UTC)

    def occurrences_after(self, moment: datetime, count: int) -> list[datetime]:
        """The next ``count`` occurrences after ``moment``."""
        found: list[datetime] = []
        current = moment
        for _ in range(count):
            current = self.next_after(current)
            found.append(current)
        return found

    def default_use_monitor(self, now: datetime) -> bool:
        """``useMonitor``'s default: on unless the schedule fires more often than once a minute.

        The gaps between the next few occurrences are inspected; one shorter than a minute
        turns the monitor off, as the extension does for frequent schedules [reference §4].
        """
        moments = self.occurrences_after(now, _MONITOR_SAMPLE)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
        return min(gaps) >= MONITOR_MIN_PERIOD_SECONDS
