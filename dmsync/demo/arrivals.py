"""Make the changes through the Web API, then watch each one land in Marketo.

A change's latency runs from the Web API's answer to the first polling round that sees it in
Marketo; rounds are :data:`POLL_SECONDS` apart, so latencies are that precise. The sync itself
runs on its timer (``SYNC_SCHEDULE``): a change waits for the next tick, then for its stream's
job, so latencies are about one timer period plus one job.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from dmsync.demo.changes import Change, Observation
from dmsync.demo.output import DemoFailure, Narrator
from shared.dynamics.client import DynamicsClient

POLL_SECONDS = 0.5


async def make_changes(
    client: DynamicsClient, changes: Sequence[Change], narrator: Narrator
) -> None:
    """Make each change through the Web API, in order, noting when Dataverse answered."""
    for change in changes:
        change.record_id = await change.apply(client)
        change.applied_at = time.monotonic()
        narrator.say(f"made   {change.kind:<6} {change.description} (id {change.record_id})")


def watch(
    changes: Sequence[Change],
    seen: Observation,
    narrator: Narrator,
    *,
    timeout: float,
    host_alive: Callable[[], bool],
) -> None:
    """Poll until every change is visible in Marketo, printing each as it lands.

    Raises:
        DemoFailure: some change did not land in time (named), or the host stopped.
    """
    deadline = time.monotonic() + timeout
    waiting = list(changes)
    while waiting:
        seen.marketo.refresh()
        for change in list(waiting):
            evidence = change.check(seen, change.record_id)
            if evidence is None:
                continue
            change.landed_at = time.monotonic()
            change.evidence = evidence
            waiting.remove(change)
            narrator.say(
                f"landed {change.kind:<6} {change.description}\n"
                f"       after {change.latency:.1f} s: {evidence}"
            )
        if not waiting:
            break
        if not host_alive():
            raise DemoFailure("the host stopped while the changes were syncing")
        if time.monotonic() > deadline:
            names = "; ".join(c.description for c in waiting)
            raise DemoFailure(f"not seen in Marketo after {timeout:.0f} s: {names}")
        time.sleep(POLL_SECONDS)


def latency_summary(changes: Sequence[Change], schedule: str) -> str:
    """One line: how many landed and how long they took."""
    latencies = [c.latency for c in changes if c.latency is not None]
    if not latencies:
        return "no change has landed"
    return (
        f"all {len(latencies)} changes arrived; latency min {min(latencies):.1f} s, median "
        f"{statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
        f"(the sync timer runs on {schedule!r})"
    )
