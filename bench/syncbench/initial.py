"""Phase 1: the initial sync, from the timer's first tick until every stream is incremental.

The host is started a few seconds before a minute boundary, so its first tick (the default
schedule, ``0 */1 * * * *``) comes soon. The phase starts at that tick, as the host announced it
("next occurrence ..."), and ends when the last stream's watermark was stored as incremental with
no run open: the moment is that watermark's own ``updated_at``, read back from the state tables
(polled every half second; the poll only decides when to look, not the measured moment).

Counts come from the emulators' own counters (Marketo ``/_emulator/usage``, Dataverse
``/_emulator/requests``), taken after the phase; the records from what Marketo holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.syncbench.host import HostProcess
from bench.syncbench.stack import SYNCED_TABLES, Stack
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark
from shared.storage import StorageConnection

INSTANCE_ID = "default"
POLL_SECONDS = 0.5
MARKETO_OBJECTS = {"systemuser": "salespersons", "team": "salespersons", "account": "companies"}


@dataclass
class InitialResult:
    """What the initial sync did and cost."""

    started_utc: datetime
    finished_utc: datetime
    seconds: float
    cpu_seconds: float
    peak_rss_kb: int
    written: dict[str, int]
    """Records per entity that Marketo holds afterwards."""
    marketo_usage: dict[str, Any]
    dynamics_requests: dict[str, Any]
    watermarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    process_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds during the phase: the host, Azurite, both emulators, and the whole machine
    (every process, also other users': the machine is shared)."""
    job_durations_ms: list[float] = field(default_factory=list)


def _monotonic_of(moment: datetime) -> float:
    """``time.monotonic()`` at the wall-clock ``moment``."""
    return time.monotonic() - (datetime.now(UTC) - moment).total_seconds()


def _read_marks(store: StateStore) -> dict[str, Watermark]:
    return {
        entity: store.watermarks.get(StreamId(INSTANCE_ID, entity, Direction.DYNAMICS_TO_MARKETO))
        for entity in SYNCED_TABLES
    }


def _done(marks: dict[str, Watermark]) -> bool:
    return all(m.phase is Phase.INCREMENTAL and not m.run_open for m in marks.values())


def _written(stack: Stack) -> dict[str, int]:
    control = stack.marketo.control
    leads = control.leads()
    sales = control.records("salespersons")
    return {
        "systemuser": sum(1 for s in sales if s.get("firstName") != "Team"),
        "team": sum(1 for s in sales if s.get("firstName") == "Team"),
        "account": len(control.records("companies")),
        "contact": sum(1 for lead in leads if lead.get("dynamicsType") == "Contact"),
    }


def run_initial(stack: Stack, host: HostProcess, timeout: float) -> InitialResult:
    """Wait for the first tick, then for the initial sync to finish; collect the figures.

    Raises:
        RuntimeError: the host died, or the sync did not finish within ``timeout`` seconds.
    """
    store = StateStore.from_connection(
        StorageConnection.from_connection_string(stack.azurite.connection_string)
    )
    first_tick = host.first_occurrence()
    fire_at = _monotonic_of(first_tick)
    deadline = fire_at + timeout
    while True:
        if not host.alive():
            raise RuntimeError("the host exited during the initial sync:\n" + host.tail_text())
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the initial sync did not finish within {timeout:g} s:\n" + host.tail_text()
            )
        if time.monotonic() > fire_at:
            marks = _read_marks(store)
            if _done(marks):
                break
        time.sleep(POLL_SECONDS)
    finished = max(m.updated_at for m in marks.values() if m.updated_at is not None)
    end_at = _monotonic_of(finished)
    host.sample_now()
    seconds = (finished - first_tick).total_seconds()
    cpu = host.cpu_at(end_at) - host.cpu_at(fire_at)
    durations = [
        float(line.text.split("Duration=")[1].split("ms")[0])
        for line in host.lines_matching("Executed 'Functions.run_sync_job'")
    ]
    return InitialResult(
        started_utc=first_tick,
        finished_utc=finished,
        seconds=seconds,
        cpu_seconds=cpu,
        peak_rss_kb=host.peak_rss_kb(),
        written=_written(stack),
        marketo_usage=stack.marketo.control.usage().__dict__,
        dynamics_requests=stack.dynamics.control.requests(),
        watermarks={
            entity: {
                "read": m.counts.read,
                "written": m.counts.written,
                "skipped": m.counts.skipped,
                "failed": m.counts.failed,
                "total_expected": m.total_expected,
            }
            for entity, m in marks.items()
        },
        job_durations_ms=durations,
        process_cpu_seconds={
            role: round(host.cpu_at(end_at, role) - host.cpu_at(fire_at, role), 2)
            for role in [*host.others, "machine"]
        },
    )
