"""Recovery after a crash: ``kill -9`` every host process mid-run, start a new one, and time how
long the sync stands still.

The host is killed while the contact stream's first-copy page is being written to Marketo (its
lease held, some persons already in Marketo), as Azure kills a worker. A new host is started at
once. The figure is the seconds from that restart to the stream's next committed page (its
watermark's ``updated_at``, read back from the state tables); the dead job's message stays hidden
for the host's 10-minute receive lease, so only the scheduler's nudge of a quiet run
(:mod:`shared.sync.runs`) can get the stream moving sooner. Then the sync runs to the end and
the result is checked: every eligible contact in Marketo exactly once.

Used by ``make bench`` (at the real defaults: one-minute timer, ``SYNC_RECOVERY_SECONDS`` 90)
and by ``tests/integration/sync/test_host_recovery.py`` (a fast timer and a short quiet time).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.syncbench.host import HostProcess
from bench.syncbench.stack import SYNCED_TABLES, Stack
from shared.jobs import Direction
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.watermarks import Phase, Watermark
from shared.storage import StorageConnection

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RecoveryResult:
    """What the kill and the restart did."""

    persons_at_kill: int
    """Marketo persons written when the host was killed (the page was part-way)."""
    recovery_seconds: float
    """From the new host's start to the contact stream's next committed page."""
    total_seconds: float
    """From the new host's start to every stream incremental and idle."""
    contacts_in_marketo: int
    duplicate_keys: int


def _store(stack: Stack) -> StateStore:
    return StateStore.from_connection(
        StorageConnection.from_connection_string(stack.azurite.connection_string)
    )


def _mark(store: StateStore, entity: str) -> Watermark:
    return store.watermarks.get(StreamId("default", entity, Direction.DYNAMICS_TO_MARKETO))


def _wait(
    what: str, check: Callable[[], bool], timeout: float, host: HostProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if host is not None and not host.alive():
            raise RuntimeError(f"the host exited while waiting for {what}:\n{host.tail_text()}")
        if time.monotonic() > deadline:
            tail = host.tail_text() if host is not None else ""
            raise RuntimeError(f"{what}: not within {timeout:g} s\n{tail}")
        time.sleep(POLL_SECONDS)


def _contacts(stack: Stack) -> list[str]:
    return [
        str(lead.get("externalPersonId"))
        for lead in stack.marketo.control.leads()
        if lead.get("dynamicsType") == "Contact"
    ]


def kill_and_recover(
    stack: Stack,
    workdir: Path,
    log_dir: Path,
    timeout: float = 600.0,
    *,
    write_latency_ms: tuple[float, float] = (0.0, 0.0),
    **settings: str,
) -> RecoveryResult:
    """Run the scenario of the module docstring; ``settings`` are extra app settings.

    ``write_latency_ms`` slows Marketo's Sync Leads answers until the kill (a short page on a
    fast machine could otherwise be done before the host is killed).

    Raises:
        RuntimeError: a host died on its own, or a phase did not finish within ``timeout``.
    """
    store = _store(stack)
    app = stack.app_settings(**settings)
    if write_latency_ms != (0.0, 0.0):
        stack.marketo.control.set_faults(latency_ms=write_latency_ms, paths=["/rest/v1/leads"])
    first = HostProcess(app, workdir, log_dir / "recovery-before-kill.log.tmp")
    try:
        lease_of = StreamId("default", "contact", Direction.DYNAMICS_TO_MARKETO)
        _wait(
            "the contact page under way, with persons in Marketo",
            lambda: store.leases.get(lease_of) is not None and len(_contacts(stack)) > 0,
            timeout,
            first,
        )
        before = _mark(store, "contact")
        os.killpg(first.pid, signal.SIGKILL)  # every process of the host, as Azure does
        first.process.wait(30)
        persons_at_kill = len(_contacts(stack))
        stack.marketo.control.clear_faults()
    finally:
        first.stop(timeout=5)  # only closes its log if it is dead already
    restarted = datetime.now(UTC)
    started = time.monotonic()
    second = HostProcess(app, workdir, log_dir / "recovery-after-restart.log.tmp")
    try:
        _wait(
            "the contact stream's next committed page",
            lambda: (
                _mark(store, "contact").step > before.step
                or _mark(store, "contact").sequence > before.sequence
            ),
            timeout,
            second,
        )
        committed = _mark(store, "contact").updated_at or datetime.now(UTC)
        recovery = (committed - restarted).total_seconds()

        def done() -> bool:
            marks = [_mark(store, entity) for entity in SYNCED_TABLES]
            return all(m.phase is Phase.INCREMENTAL and not m.run_open for m in marks)

        _wait("every stream caught up", done, timeout, second)
        total = time.monotonic() - started
    finally:
        second.stop()
    keys = Counter(_contacts(stack))
    return RecoveryResult(
        persons_at_kill=persons_at_kill,
        recovery_seconds=round(max(0.0, recovery), 1),
        total_seconds=round(total, 1),
        contacts_in_marketo=len(keys),
        duplicate_keys=sum(1 for n in keys.values() if n > 1),
    )
