"""The first tick starts only the streams with nothing to wait for; the rest follow in order.

Adobe's order for a REST-based integration (Adobe Experience League, "Microsoft Dynamics Sync
Details" and the Marketo developer docs, "Opportunities": "sales persons, then companies, then
persons, then opportunities, then roles"): a record written before what it links to would be
written without its link. The expectations are written out here, not derived from the mapping's
``depends_on`` (which is what is under test).
"""

from __future__ import annotations

import base64

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.jobs import parse_job
from shared.state.watermarks import Phase
from tests.integration.sync.harness import JobOutcome, SyncHarness, sync_harness

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 2, "team": 1, "account": 3, "contact": 6, "lead": 3, "opportunity": 3,
          "new_project": 2}  # fmt: skip
NEEDS = {  # sales persons, then companies, then persons, then opportunities, then roles
    "systemuser": set(),
    "team": set(),
    "account": {"systemuser", "team"},
    "contact": {"systemuser", "team", "account"},
    "lead": {"systemuser", "team", "account"},
    "new_project": {"account"},
    "opportunity": {"systemuser", "team", "account", "contact"},
    "connection": {"opportunity", "contact"},
    "opportunity_customer": {"opportunity", "contact"},
}


def queued_entities(sync: SyncHarness) -> list[str]:
    """The entities of the jobs waiting in the queue (peeked, so they stay)."""
    return sorted(
        parse_job(base64.b64decode(m.content)).entity
        for m in sync.queue.peek_messages(max_messages=32)
    )


async def test_the_first_tick_enqueues_only_users_and_teams(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Everything else waits, and a second tick before any job ran starts nothing more."""
    dyn.control.seed(counts=COUNTS, seed=71)
    async with sync_harness(azurite, dyn, mkto) as sync:
        assert set(sync.runtime.runner.config.order) == set(NEEDS)
        first = await sync.tick()
        assert sorted(first.enqueued) == ["systemuser", "team"]
        assert set(first.waiting) == set(NEEDS) - {"systemuser", "team"}
        assert queued_entities(sync) == ["systemuser", "team"]

        second = await sync.tick()
        assert second.enqueued == []
        assert sorted(second.in_flight) == ["systemuser", "team"]
        assert queued_entities(sync) == ["systemuser", "team"]


async def test_each_stream_starts_only_after_what_it_links_to_is_complete(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """From one tick, with the queue played newest message first (Azure queues promise no
    order): every stream's first job that does work finds each entity it needs complete, and
    the completions alone start every stream."""
    dyn.control.seed(counts=COUNTS, seed=72)
    async with sync_harness(azurite, dyn, mkto) as sync:
        engine = sync.runtime.runner
        started: list[str] = []
        early: list[str] = []
        await sync.tick()
        for _ in range(200):
            messages = list(sync.queue.receive_messages(max_messages=32, visibility_timeout=300))
            if not messages:
                break
            for message in reversed(messages):
                job = parse_job(base64.b64decode(message.content))
                unfinished = {
                    needed
                    for needed in NEEDS[job.entity]
                    if sync.watermark(needed).phase is not Phase.INCREMENTAL
                }
                outcome = await engine.run_job(job)
                sync.queue.delete_message(message)
                if outcome is JobOutcome.WAITING or job.entity in started:
                    continue
                started.append(job.entity)
                early.extend(f"{job.entity} ran before {n} was complete" for n in unfinished)
        assert early == []
        assert set(started) == set(NEEDS), "every stream started from the one tick"
        for entity, needed in NEEDS.items():
            for before in needed:
                assert started.index(before) < started.index(entity), started
        for entity in NEEDS:
            assert sync.watermark(entity).phase is Phase.INCREMENTAL, entity
