"""Marketo's quota day: 00:00 US Central, with daylight saving, from zoneinfo or the fixed rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.marketo.quota_day import next_quota_reset, quota_day, us_central_offset

FALLBACK = None  # zone=None selects the built-in US rule


@pytest.mark.parametrize("zone", ["zoneinfo", "rule"])
@pytest.mark.parametrize(
    ("moment", "day", "reset"),
    [
        # winter (CST, UTC-6): the day turns at 06:00 UTC
        (
            datetime(2026, 1, 15, 5, 59, tzinfo=UTC),
            date(2026, 1, 14),
            datetime(2026, 1, 15, 6, tzinfo=UTC),
        ),
        (
            datetime(2026, 1, 15, 6, 0, tzinfo=UTC),
            date(2026, 1, 15),
            datetime(2026, 1, 16, 6, tzinfo=UTC),
        ),
        # summer (CDT, UTC-5): at 05:00 UTC
        (
            datetime(2026, 7, 4, 4, 59, tzinfo=UTC),
            date(2026, 7, 3),
            datetime(2026, 7, 4, 5, tzinfo=UTC),
        ),
        (
            datetime(2026, 7, 4, 5, 0, tzinfo=UTC),
            date(2026, 7, 4),
            datetime(2026, 7, 5, 5, tzinfo=UTC),
        ),
        # spring forward on Sunday 2026-03-08: that day has 23 hours
        (
            datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
            date(2026, 3, 8),
            datetime(2026, 3, 9, 5, tzinfo=UTC),
        ),
        # fall back on Sunday 2026-11-01: that day has 25 hours
        (
            datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
            date(2026, 11, 1),
            datetime(2026, 11, 2, 6, tzinfo=UTC),
        ),
    ],
)
def test_quota_day_and_reset(zone: str, moment: datetime, day: date, reset: datetime) -> None:
    """The day a moment belongs to and the next reset agree with US Central local midnight."""
    kwargs = {} if zone == "zoneinfo" else {"zone": FALLBACK}
    assert quota_day(moment, **kwargs) == day
    assert next_quota_reset(moment, **kwargs) == reset


def test_fallback_rule_matches_the_tz_database_for_years() -> None:
    """The built-in rule gives the same offset as America/Chicago every 5 hours for 3 years."""
    from zoneinfo import ZoneInfo

    chicago = ZoneInfo("America/Chicago")
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment < datetime(2028, 1, 1, tzinfo=UTC):
        assert us_central_offset(moment) == moment.astimezone(chicago).utcoffset(), moment
        moment += timedelta(hours=5)


def test_naive_datetimes_are_refused() -> None:
    """A moment without a zone cannot be placed in a day."""
    with pytest.raises(ValueError, match="timezone-aware"):
        quota_day(datetime(2026, 1, 1))
