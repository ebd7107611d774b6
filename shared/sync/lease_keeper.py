"""Hold a stream's lease for the length of one job: renew it, notice losing it, give it back.

The renewal runs beside the job, every third of the lease's length. A job that was frozen (a
paused process, a stalled call) may come back after its lease lapsed and another job took the
stream over; it learns of that only at its next renewal. So :meth:`LeaseKeeper.check`, asked
before every write, also refuses once the lease's own expiry is near (by the state store's
clock): a frozen job then writes nothing stale over what its successor wrote.

Stopping never cancels a
renewal in flight: a cancelled ``asyncio.to_thread`` keeps running in its thread, and a renewal
landing after the release would bring the lease back to life, so the next job for the stream
would find it held. :meth:`LeaseKeeper.close` therefore signals the loop, waits for it to end
(and with it any renewal under way), and only then releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta

from shared.clock import Clock
from shared.errors import ConcurrencyConflict, DmsyncError, LeaseLostError
from shared.state.lease_store import LeaseStore
from shared.state.leases import Lease
from shared.sync.blocking import blocking

log = logging.getLogger("dmsync.sync")


class LeaseKeeper:
    """The lease of a running job (a :class:`~shared.sync.pipeline.WriteGuard`)."""

    def __init__(
        self,
        leases: LeaseStore,
        lease: Lease,
        duration: timedelta,
        context: Mapping[str, str],
        clock: Clock | None = None,
    ) -> None:
        self.lease = lease
        self.lost = False
        self._leases = leases
        self._clock = clock
        self._margin = duration / 6
        self._interval = duration.total_seconds() / 3
        self._context = dict(context)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin renewing."""
        self._task = asyncio.create_task(self._renew_until_stopped())

    def check(self) -> None:
        """Raise :class:`LeaseLostError` once the lease is lost, or so close to its expiry that
        another job may have it by the time a write lands (write nothing more)."""
        clock = self._clock
        if (
            not self.lost
            and clock is not None
            and clock.now() >= self.lease.expires_at - self._margin
        ):
            self.lost = True
            log.warning("the stream lease ran out while the job was held up; the job stops",
                        extra=self._context)  # fmt: skip
        if self.lost:
            raise LeaseLostError(
                f"the lease on {self.lease.stream} was lost; this job stops writing",
                system="storage",
            )

    async def close(self) -> None:
        """Stop renewing (waiting for a renewal in flight), then release unless lost."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if not self.lost:
            with contextlib.suppress(DmsyncError):  # an unreleased lease simply expires
                await blocking(self._leases.release, self.lease)

    async def _renew_until_stopped(self) -> None:
        while True:
            # Real time: the lease guards against real deaths, whatever clock the state uses.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            try:
                self.lease = await blocking(self._leases.renew, self.lease)
            except ConcurrencyConflict:
                self.lost = True
                log.warning("the stream lease was lost; the job stops writing", extra=self._context)
                return
            except DmsyncError as failure:  # storage hiccup: try again before the lease lapses
                log.warning(
                    "renewing the stream lease failed (%s); retrying", failure, extra=self._context
                )
