"""Phase 2: how long a change made in Dynamics takes to reach Marketo, with the one-minute timer.

After the initial sync, ``changes`` distinct synced contacts are changed through the Web API
(``PATCH contacts(<id>)`` with ``If-Match: *``, as any Dynamics user or integration would), each
at a random moment within ``span`` seconds (uniform, seeded). Each change gives the contact a
unique job title. The latency of a change runs from the moment its PATCH was sent to the first
poll of the Marketo emulator's control API (``GET /_emulator/leads/<id>``) that shows the new
title on the contact's lead.

Polling: every pending change is polled every :data:`FAST_POLL` seconds during the first
:data:`FAST_WINDOW` seconds after each minute boundary (when the timer fires and the sync writes),
and every :data:`SLOW_POLL` seconds otherwise, so the measured latency is late by at most the
polling interval in force when the value arrived (0.5 s in the expected case).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.syncbench.stack import SYNC_FILTER_COLUMN, Stack

FAST_POLL = 0.5
SLOW_POLL = 2.0
FAST_WINDOW = 25.0
TITLE_PREFIX = "Bench change"


@dataclass
class Change:
    """One change and when it was seen in Marketo."""

    contact_id: str
    lead_id: int
    title: str
    due: float
    """Monotonic time it is scheduled for."""
    sent_at: float | None = None
    seen_at: float | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from the PATCH to Marketo holding the value."""
        if self.sent_at is None or self.seen_at is None:
            return None
        return self.seen_at - self.sent_at


@dataclass
class LatencyResult:
    """What the phase measured."""

    changes: list[Change]
    span_seconds: float
    started_utc: datetime
    marketo_usage: dict[str, Any] = field(default_factory=dict)
    dynamics_requests: dict[str, Any] = field(default_factory=dict)

    @property
    def latencies(self) -> list[float]:
        """Latencies of the changes that arrived."""
        return [c.latency for c in self.changes if c.latency is not None]

    @property
    def missing(self) -> int:
        """Changes never seen in Marketo within the phase."""
        return sum(1 for c in self.changes if c.seen_at is None)


def _pick(stack: Stack, count: int, rng: random.Random) -> list[tuple[str, int]]:
    """``count`` synced contacts with their Marketo lead ids."""
    leads = {
        str(lead["externalPersonId"]).lower(): int(lead["id"])
        for lead in stack.marketo.control.leads()
        if lead.get("dynamicsType") == "Contact" and lead.get("externalPersonId")
    }
    contacts = [
        str(row["contactid"]).lower()
        for row in stack.dynamics.control.records("contact", limit=10_000_000)
        if row.get(SYNC_FILTER_COLUMN) is not False
    ]
    candidates = [(c, leads[c]) for c in contacts if c in leads]
    if len(candidates) < count:
        raise RuntimeError(f"only {len(candidates)} synced contacts to change; asked for {count}")
    return rng.sample(candidates, count)


def _seconds_into_minute() -> float:
    now = datetime.now(UTC)
    return now.second + now.microsecond / 1e6


def run_latency(
    stack: Stack, changes: int, span: float, seed: int, settle: float = 150.0
) -> LatencyResult:
    """Make the changes over ``span`` seconds and wait (at most ``settle`` s after the last)."""
    rng = random.Random(seed)
    start = time.monotonic()
    offsets = sorted(rng.uniform(0, span) for _ in range(changes))
    plan = [
        Change(contact_id, lead_id, f"{TITLE_PREFIX} {index + 1} {rng.randrange(10**9)}", due)
        for index, ((contact_id, lead_id), due) in enumerate(
            zip(_pick(stack, changes, rng), (start + o for o in offsets), strict=True)
        )
    ]
    result = LatencyResult(plan, span, datetime.now(UTC))
    dyn = stack.dynamics
    control = stack.marketo.control
    with dyn.http_client(timeout=60) as http:
        token = dyn.fetch_token(http)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "If-Match": "*",
        }
        upcoming = list(plan)
        pending: list[Change] = []
        last_poll = 0.0
        give_up = start + span + settle
        while (upcoming or pending) and time.monotonic() < give_up:
            now = time.monotonic()
            while upcoming and upcoming[0].due <= now:
                change = upcoming.pop(0)
                change.sent_at = time.monotonic()
                response = http.patch(
                    f"{dyn.api_url}/contacts({change.contact_id})",
                    json={"jobtitle": change.title},
                    headers=headers,
                )
                response.raise_for_status()
                pending.append(change)
            interval = FAST_POLL if _seconds_into_minute() < FAST_WINDOW else SLOW_POLL
            if pending and now - last_poll >= interval:
                last_poll = now
                for change in list(pending):
                    lead = control.lead(change.lead_id)
                    if lead is not None and lead.get("title") == change.title:
                        change.seen_at = time.monotonic()
                        pending.remove(change)
            wake = min(
                [upcoming[0].due] if upcoming else [now + FAST_POLL],
                default=now + FAST_POLL,
            )
            time.sleep(max(0.0, min(wake, now + FAST_POLL) - time.monotonic()))
    result.marketo_usage = control.usage().__dict__
    result.dynamics_requests = dyn.control.requests()
    return result
