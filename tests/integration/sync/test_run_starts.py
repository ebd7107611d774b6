"""A stream's run is started once, when a dependency's completion and the timer meet.

Two starts of one run leave the first job stale mid-page (its commit is refused) while the
second job is turned away by the lease the first still holds: the run then stays open with no
job until it is considered stale (15 minutes), and the initial sync waits that long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.jobs import SyncJob
from shared.state.streams import StreamId
from shared.sync.runner import JobOutcome
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 1, "team": 1, "account": 2, "contact": 3, "opportunity": 2}


def count_outcomes(sync: SyncHarness) -> list[JobOutcome]:
    """Record every job's outcome from now on."""
    outcomes: list[JobOutcome] = []
    engine = sync.runtime.runner
    run_job = engine.run_job

    async def recorded(job: SyncJob) -> JobOutcome:
        outcome = await run_job(job)
        outcomes.append(outcome)
        return outcome

    engine.run_job = recorded  # type: ignore[method-assign]
    return outcomes


Kick = Callable[[StreamId], Awaitable[None]]


def engine_kick(sync: SyncHarness) -> Kick:
    """The runner's start of a finished stream's dependents, sending their jobs at once."""
    start = sync.runtime.runner.runs.start_dependents

    async def kick(stream: StreamId) -> None:
        for job in await start(stream):
            await sync.runtime.queue.enqueue(job)

    return kick


def delay_kick(sync: SyncHarness, entity: str) -> tuple[list[StreamId], Kick]:
    """Hold back the dependents' start after ``entity``'s initial sync.

    Returns:
        The held stream (once it is held) and the runner's own kick, to replay it with.
    """
    engine = sync.runtime.runner
    held: list[StreamId] = []
    start = engine.runs.start_dependents

    async def later(stream: StreamId) -> list[SyncJob]:
        if stream.entity == entity:
            held.append(stream)
            return []
        return await start(stream)

    engine.runs.start_dependents = later  # type: ignore[method-assign]
    return held, engine_kick(sync)


def on_enqueue(sync: SyncHarness, hook: Callable[[SyncJob], Awaitable[None]]) -> None:
    """Run ``hook`` after each job is enqueued (by the timer or by a job)."""
    queue = sync.runtime.queue
    enqueue = queue.enqueue

    async def hooked(job: SyncJob, delay: timedelta | None = None) -> None:
        await enqueue(job, delay)
        await hook(job)

    queue.enqueue = hooked  # type: ignore[method-assign]


async def test_a_timer_tick_between_commit_and_kick_starts_no_second_run(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """The tick starts the dependents; the kick that follows finds them running."""
    dyn.control.seed(counts=COUNTS, seed=51)
    async with sync_harness(azurite, dyn, mkto) as sync:
        outcomes = count_outcomes(sync)
        engine = sync.runtime.runner
        start = engine.runs.start_dependents

        async def tick_first(stream: StreamId) -> list[SyncJob]:
            if stream.entity == "opportunity":
                await sync.tick()  # the timer fires between the commit and the kick
            return await start(stream)

        engine.runs.start_dependents = tick_first  # type: ignore[method-assign]
        await sync.sync_until_caught_up()
        assert JobOutcome.STALE not in outcomes
        assert sync.watermark("opportunity_customer").sequence >= 1


async def test_a_kick_during_a_tick_starts_no_second_run(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """The kick lands after the tick read the watermarks: the tick leaves the stream alone."""
    dyn.control.seed(counts=COUNTS, seed=52)
    async with sync_harness(azurite, dyn, mkto) as sync:
        outcomes = count_outcomes(sync)
        held, kick = delay_kick(sync, "opportunity")
        replayed: list[StreamId] = []

        async def replay_kick(job: SyncJob) -> None:
            if job.entity == "connection" and held and not replayed:
                replayed.append(held.pop())
                await kick(replayed[0])

        on_enqueue(sync, replay_kick)
        await sync.sync_until_caught_up()
        assert replayed, "the held kick was replayed during a tick"
        assert JobOutcome.STALE not in outcomes
