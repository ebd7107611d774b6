"""``/rest/v1/stats/*``: the instance's own usage report (usage.md)."""

from __future__ import annotations

from typing import Any

from emulators.marketo.call import Call
from emulators.marketo.envelope import success_body


def _days(call: Call, count: int) -> list[str]:
    limits = call.emulator.limits
    now = call.instance.clock.time()
    days: list[str] = []
    for back in range(count * 2):
        day = limits.day_of(now - back * 86_400)
        if day not in days:
            days.append(day)
        if len(days) == count:
            break
    return days


def usage_today(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/stats/usage.json``: today's calls, total and per API user."""
    return success_body(call.request_id, [call.emulator.usage.usage_day(_days(call, 1)[0])])


def usage_last7days(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/stats/usage/last7days.json``: one element per day, newest first."""
    usage = call.emulator.usage
    return success_body(call.request_id, [usage.usage_day(day) for day in _days(call, 7)])


def errors_today(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/stats/errors.json``: today's errors by code."""
    return success_body(call.request_id, [call.emulator.usage.errors_day(_days(call, 1)[0])])


def errors_last7days(call: Call) -> dict[str, Any]:
    """``GET /rest/v1/stats/errors/last7days.json``."""
    usage = call.emulator.usage
    return success_body(call.request_id, [usage.errors_day(day) for day in _days(call, 7)])
