"""Records a stream processed recently, kept in its watermark row: five-minute buckets over the
last hour, written in the same save as the page they count (no extra storage call).

Encoded as ``"<bucket start, Unix minutes>:<records>"`` pairs joined by ``;`` (a few hundred
characters at most). Pure functions; a row written before this existed reads as empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta

BUCKET_MINUTES = 5
WINDOW = timedelta(hours=1)


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def decode(text: str) -> list[tuple[int, int]]:
    """``[(bucket start minute, records)]``; malformed parts are dropped."""
    buckets = []
    for part in text.split(";"):
        start, _, count = part.partition(":")
        if start.isdigit() and count.isdigit():
            buckets.append((int(start), int(count)))
    return buckets


def encode(buckets: list[tuple[int, int]]) -> str:
    """The text form of ``buckets``."""
    return ";".join(f"{start}:{count}" for start, count in buckets)


def record(text: str, now: datetime, records: int) -> str:
    """``text`` with ``records`` added to ``now``'s bucket and buckets older than the window
    (plus one bucket) dropped."""
    minute = _minute(now)
    bucket = minute - minute % BUCKET_MINUTES
    oldest = minute - int(WINDOW.total_seconds() // 60) - BUCKET_MINUTES
    kept = [(s, c) for s, c in decode(text) if s >= oldest]
    if records > 0:
        if kept and kept[-1][0] == bucket:
            kept[-1] = (bucket, kept[-1][1] + records)
        else:
            kept.append((bucket, records))
    return encode(kept)


def last_hour(text: str, now: datetime) -> int:
    """Records counted in buckets that began within the last hour."""
    since = _minute(now - WINDOW)
    return sum(count for start, count in decode(text) if start > since - BUCKET_MINUTES)
