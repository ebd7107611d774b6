"""The first copy into an empty ID mapping skips mapping reads, and a replayed page is safe."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.errors import TransientServiceError
from shared.jobs import Direction, SyncJob
from shared.state.mappings import IdMapping
from shared.state.watermarks import Phase
from shared.sync.config import DEFAULT_MAPPING_FILE
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 2, "team": 1, "account": 4, "contact": 35}
CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.2, "bad_data_share": 0.0}


class Recorder:
    """Which contact ids the contact stream's jobs looked up in the mapping, per job."""

    def __init__(self, sync: SyncHarness) -> None:
        self.entity = ""
        self.contact_lookups: list[list[str]] = []
        store = sync.runtime.store.mappings
        original = store.get_many

        def get_many(
            instance_id: str, entity: str, ids: Iterable[str], **options: Any
        ) -> dict[str, IdMapping]:
            wanted = list(ids)
            if self.entity == "contact" and entity == "contact":
                self.contact_lookups.append(wanted)
            return original(instance_id, entity, wanted, **options)

        store.get_many = get_many  # type: ignore[method-assign]
        sync.before_job = self.before_job

    def before_job(self, job: SyncJob) -> None:
        self.entity = job.entity


async def run_to_incremental(sync: SyncHarness) -> list[BaseException]:
    """Ticks and drains (failed jobs redelivered at once) until every stream is incremental."""
    failures: list[BaseException] = []
    for _ in range(8):
        await sync.tick()
        drained = await sync.drain(redeliver_failures=True)
        failures.extend(drained.failures)
        if all(sync.watermark(e).phase is Phase.INCREMENTAL for e in COUNTS):
            return failures
        sync.clock.advance(61)
    raise AssertionError("the initial sync did not finish")


def contact_leads(mkto: RunningMarketo) -> dict[str, list[dict[str, Any]]]:
    """Marketo people of contacts, by Dynamics id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for lead in mkto.control.leads():
        if lead.get("dynamicsType") == "Contact":
            found.setdefault(str(lead["externalPersonId"]).lower(), []).append(lead)
    return found


async def test_a_replayed_page_of_a_first_copy_creates_nothing_twice(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    tmp_path: Any,
) -> None:
    """Pages of 10 contacts, one page per job; the second page's job fails after its writes and
    mappings (before the watermark moves) and is redelivered: the replay skips the mapping read
    again, upserts by the Dynamics key, and every contact is one Marketo person whose mapping
    names it."""
    dyn.control.seed(counts=COUNTS, seed=3, **CLEAN)
    mapping = tmp_path / "mapping.toml"  # users, teams, accounts and contacts only
    mapping.write_text(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").split("[entity.lead]")[0])
    async with sync_harness(azurite, dyn, mkto, SYNC_MAPPING_FILE=str(mapping)) as sync:
        sync.tune(page_size=10)
        recorder = Recorder(sync)
        watermarks = sync.runtime.store.watermarks
        advance = watermarks.advance
        contact_pages: list[bool] = []

        def crash_once(stream: Any, **kwargs: Any) -> Any:
            if stream.entity == "contact":
                contact_pages.append(bool(sync.watermark("contact").fresh_copy))
                if len(contact_pages) == 2:
                    raise TransientServiceError("worker lost before the watermark moved")
            return advance(stream, **kwargs)

        watermarks.advance = crash_once  # type: ignore[method-assign]
        failures = await run_to_incremental(sync)

        # The second page's job failed once and its redelivery succeeded.
        assert [str(f) for f in failures] == ["worker lost before the watermark moved"]
        # page 1 decided (no mapping yet), pages 2 (twice: failed, replayed), 3 and 4 carried it
        assert contact_pages == [False, True, True, True, True]
        # One (empty) lookup per page job: pages 1, 2 (failed), 2 (replayed), 3 and 4; and the
        # replay first looks up the ten ids its failed attempt noted it was creating (they are
        # mapped: nothing to mark).
        noted = [lookup for lookup in recorder.contact_lookups if lookup]
        assert [len(lookup) for lookup in noted] == [10]
        assert len(recorder.contact_lookups) == 6
        contacts = dyn.control.records("contact")
        people = contact_leads(mkto)
        assert set(people) == {c["contactid"].lower() for c in contacts}
        assert all(len(leads) == 1 for leads in people.values()), "a contact became two people"
        mappings = sync.runtime.store.mappings.list_entity(sync.instance_id, "contact")
        assert len(mappings) == len(contacts)
        assert all(int(m.marketo_id) == people[m.dynamics_id][0]["id"] for m in mappings)
        assert not sync.watermark("contact").fresh_copy

        # A full resync starts with mappings in place: it reads them and writes nothing.
        restarted = watermarks.reset(sync.watermark("contact").stream, status="test resync")
        await sync.runtime.queue.enqueue(
            SyncJob(
                instance_id=sync.instance_id,
                entity="contact",
                direction=Direction.DYNAMICS_TO_MARKETO,
                sequence=restarted.sequence,
            )
        )
        recorder.contact_lookups.clear()
        writes = sync.marketo_writes()
        assert await run_to_incremental(sync) == []
        assert sum(len(lookup) for lookup in recorder.contact_lookups) == len(contacts)
        assert sync.marketo_writes() == writes
        assert Counter(len(v) for v in contact_leads(mkto).values()) == {1: len(contacts)}


async def test_opportunity_roles_always_read_their_mapping(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Roles have no Dynamics key in Marketo (it finds them by opportunity, person and role),
    so a replayed page must find their mapping: their first copy never skips the read, while
    keyed entities of the same run do."""
    dyn.control.seed(
        counts={**COUNTS, "lead": 5, "opportunity": 12, "new_project": 0}, seed=9, **CLEAN
    )
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.tune(page_size=10)
        watermarks = sync.runtime.store.watermarks
        advance = watermarks.advance
        fresh_pages: dict[str, list[bool]] = {}

        def record(stream: Any, **kwargs: Any) -> Any:
            fresh_pages.setdefault(stream.entity, []).append(bool(kwargs.get("fresh_copy")))
            return advance(stream, **kwargs)

        watermarks.advance = record  # type: ignore[method-assign]
        await sync.sync_until_caught_up()

        connections = dyn.control.records("connection")
        assert len(connections) > 10, "the seed should give the roles more than one page"
        assert fresh_pages["connection"] and not any(fresh_pages["connection"])
        assert any(fresh_pages["opportunity"]) and any(fresh_pages["contact"])
        report = await sync.reconcile()
        assert report.holds, report.table()
