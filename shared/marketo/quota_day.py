"""Which Marketo "day" a moment belongs to, and when the next one starts.

Marketo's daily API quota "resets daily at 12:00AM CST" (reference B.2; DEV error-codes.md,
code 607). We read "CST" as US Central *local* time, the way Marketo labels its subscription
times, so the day starts at 00:00 in ``America/Chicago``:

* standard time (early November to mid March): 00:00 CST = 06:00 UTC;
* daylight time (mid March to early November): 00:00 CDT = 05:00 UTC;
* so the day that contains the spring change is 23 hours long and the autumn one 25 hours.
  The budget applies per calendar day whatever its length.

This reading is UNVERIFIED (Marketo does not say what happens under daylight saving). It matters
for at most one hour a day, and a 607 from Marketo is always obeyed whatever our own counter
says, so a wrong guess costs a short pause, never a storm.

The IANA zone comes from the system time-zone database; where that is missing (some slim
containers), the US rule in force since 2007 is applied directly: daylight time from 02:00 on
the second Sunday of March to 02:00 on the first Sunday of November.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_STANDARD_OFFSET = timedelta(hours=-6)
_DAYLIGHT_OFFSET = timedelta(hours=-5)


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=n - 1)


def us_central_offset(moment: datetime) -> timedelta:
    """UTC offset of US Central time at ``moment`` (aware), by the post-2007 US rule."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    year = utc.year
    # 02:00 CST on the second Sunday of March is 08:00 UTC; 02:00 CDT in November is 07:00 UTC.
    dst_start = datetime.combine(_nth_sunday(year, 3, 2), time(8))
    dst_end = datetime.combine(_nth_sunday(year, 11, 1), time(7))
    return _DAYLIGHT_OFFSET if dst_start <= utc < dst_end else _STANDARD_OFFSET


def _central_zone() -> tzinfo | None:
    try:
        return ZoneInfo("America/Chicago")
    except ZoneInfoNotFoundError:  # no tz database on this host: fall back to the fixed rule
        return None


_CENTRAL = _central_zone()


def _to_central_naive(moment: datetime, zone: tzinfo | None) -> datetime:
    if zone is not None:
        return moment.astimezone(zone).replace(tzinfo=None)
    return (moment.astimezone(UTC) + us_central_offset(moment)).replace(tzinfo=None)


def _central_midnight_utc(day: date, zone: tzinfo | None) -> datetime:
    if zone is not None:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    # Midnight is never inside a US transition (they happen at 02:00), so the offset at
    # "midnight as if it were standard time" is the offset at midnight.
    guess = datetime.combine(day, time(6), tzinfo=UTC)
    offset = us_central_offset(guess)
    return datetime.combine(day, time(0), tzinfo=UTC) - offset


def quota_day(moment: datetime, *, zone: tzinfo | None = _CENTRAL) -> date:
    """The Marketo quota day (a US Central calendar date) that ``moment`` falls in."""
    if moment.tzinfo is None:
        raise ValueError("quota_day needs a timezone-aware datetime")
    return _to_central_naive(moment, zone).date()


def next_quota_reset(moment: datetime, *, zone: tzinfo | None = _CENTRAL) -> datetime:
    """When the quota day after the one containing ``moment`` starts, in UTC."""
    return _central_midnight_utc(quota_day(moment, zone=zone) + timedelta(days=1), zone)
