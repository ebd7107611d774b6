"""A job goes on page after page: the next page is written while the last one commits."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.jobs import SyncJob
from shared.state.mappings import IdMapping
from shared.sync.config import DEFAULT_MAPPING_FILE, EntitySpec
from shared.sync.engine import EngineOptions, JobOutcome
from shared.sync.ports import SourcePage, WriteMode, WriteOutcome
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 2, "team": 1, "account": 4, "contact": 35}
CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.2, "bad_data_share": 0.0}
OVERLAP_WAIT = 20.0
"""How long the first page's mapping write waits for the second page's Marketo write: the
test only waits this long if the engine is sequential (then it fails)."""


def contacts_only(tmp_path: Any) -> str:
    """A mapping file with users, teams, accounts and contacts only."""
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").split("[entity.lead]")[0])
    return str(mapping)


def contact_jobs(sync: SyncHarness) -> list[str]:
    """Records the entity of every job the harness runs."""
    seen: list[str] = []
    sync.before_job = lambda job: seen.append(job.entity)
    return seen


async def caught_up(sync: SyncHarness) -> list[JobOutcome]:
    """Ticks and drains until every stream is incremental; the outcomes of all jobs."""
    outcomes: list[JobOutcome] = []
    for _ in range(6):
        await sync.tick()
        drained = await sync.drain()
        assert drained.failures == []
        outcomes += drained.outcomes
        if all(sync.watermark(e).phase.value == "incremental" for e in COUNTS):
            return outcomes
    raise AssertionError("the initial sync did not finish")


async def test_the_next_page_goes_to_marketo_while_the_last_page_commits(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, tmp_path: Any
) -> None:
    """Four pages of contacts in one job; page 1's mapping write is still blocked when page 2's
    Marketo write starts, and every contact arrives once with its mapping."""
    dyn.control.seed(counts=COUNTS, seed=4, **CLEAN)
    async with sync_harness(azurite, dyn, mkto, SYNC_MAPPING_FILE=contacts_only(tmp_path)) as sync:
        sync.runtime.engine.options = EngineOptions(page_size=10)
        jobs = contact_jobs(sync)
        second_page_sent = threading.Event()
        overlapped: list[bool] = []
        contact_writes = 0

        target = sync.runtime.engine.target
        write = target.write

        async def counting_write(
            spec: EntitySpec,
            records: Sequence[dict[str, Any]],
            mode: WriteMode,
            marketo_ids: Sequence[str] | None = None,
        ) -> list[WriteOutcome]:
            nonlocal contact_writes
            if spec.table == "contact":
                contact_writes += 1
                if contact_writes == 2:
                    second_page_sent.set()
            return await write(spec, records, mode, marketo_ids)

        target.write = counting_write  # type: ignore[method-assign]
        mappings = sync.runtime.store.mappings
        put_many = mappings.put_many

        def blocking_put_many(items: Any) -> list[IdMapping]:
            items = list(items)
            if items and items[0].entity == "contact" and not overlapped:
                overlapped.append(second_page_sent.wait(OVERLAP_WAIT))
            return put_many(items)

        mappings.put_many = blocking_put_many  # type: ignore[method-assign]
        link_states = mappings.link_states
        account_ids_asked: list[str] = []

        def counting_link_states(instance_id: str, entity: str, ids: Any) -> Any:
            ids = list(ids)
            if entity == "account":
                account_ids_asked.extend(ids)
            return link_states(instance_id, entity, ids)

        mappings.link_states = counting_link_states  # type: ignore[method-assign]
        await caught_up(sync)

        assert overlapped == [True]
        assert jobs.count("contact") == 1
        assert contact_writes == 4
        contacts = {c["contactid"].lower() for c in dyn.control.records("contact")}
        people = [
            str(lead["externalPersonId"]).lower()
            for lead in mkto.control.leads()
            if lead.get("dynamicsType") == "Contact"
        ]
        assert sorted(people) == sorted(contacts)
        stored = mappings.list_entity(sync.instance_id, "contact")
        assert {m.dynamics_id for m in stored} == contacts
        assert sync.watermark("contact").counts.read == len(contacts)
        # the one contact job asked about each linked account once, not once per page
        linked = {
            c["_parentcustomerid_value"].lower()
            for c in dyn.control.records("contact")
            if c.get("_parentcustomerid_value")
        }
        assert sorted(i.lower() for i in account_ids_asked) == sorted(linked)


async def test_a_job_hands_over_to_its_continuation_after_its_time(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo, tmp_path: Any
) -> None:
    """With reads taking 20 s (on the injected clock) and 30 s a job, each job does two
    pages and enqueues its continuation; the last closes the run."""
    dyn.control.seed(counts=COUNTS, seed=5, **CLEAN)
    async with sync_harness(azurite, dyn, mkto, SYNC_MAPPING_FILE=contacts_only(tmp_path)) as sync:
        sync.runtime.engine.options = EngineOptions(page_size=10, job_seconds=30)
        source = sync.runtime.engine.source
        read_page = source.read_page
        contact_outcomes: list[JobOutcome] = []
        current: list[str] = []

        async def slow_read(spec: EntitySpec, link: str | None, page_size: int) -> SourcePage:
            if spec.table == "contact":
                sync.clock.advance(20)
            return await read_page(spec, link, page_size)

        source.read_page = slow_read  # type: ignore[method-assign]
        engine_run = sync.runtime.engine.run_job

        async def recording_run(job: SyncJob) -> JobOutcome:
            outcome = await engine_run(job)
            if job.entity == "contact":
                current.append(job.entity)
                contact_outcomes.append(outcome)
            return outcome

        sync.runtime.engine.run_job = recording_run  # type: ignore[method-assign]
        await caught_up(sync)

        # 35 contacts: pages of 10, 10 | 10, 5 (the last page ends the read)
        assert contact_outcomes == [JobOutcome.ADVANCED, JobOutcome.CAUGHT_UP]
        mark = sync.watermark("contact")
        assert (mark.counts.read, mark.run_open) == (35, False)
