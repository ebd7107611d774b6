"""What the state commands (``instance``, ``errors``, ``status``) share: opening the store from
``AzureWebJobsStorage``, parsing times, and printing tables and JSON."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.state.store import StateStore
from shared.state.tables import DEFAULT_PREFIX

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """The options every state command takes: ``--table-prefix`` and ``--json``."""
    parser.add_argument(
        "--table-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of the state tables (default {DEFAULT_PREFIX})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def open_store(args: argparse.Namespace) -> StateStore:
    """The state store on ``AzureWebJobsStorage`` (settings errors name the setting)."""
    return StateStore.from_environment(table_prefix=args.table_prefix)


def parse_time(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``7d`` (that long before ``now``) or an ISO-8601 time (UTC if no zone).

    Raises:
        argparse.ArgumentTypeError: neither form.
    """
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration like 30m, 2h, 7d nor an ISO-8601 time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_age(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``, or ``-``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def format_time(value: datetime | None) -> str:
    """A UTC time to the second, or ``-``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters."""
    if not text:
        return "-"
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


def print_json(payload: Any) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))
