"""Defects of the one-way engine, each reproduced against Azurite and both emulators.

Every test here failed on the engine before the runner/pipeline split (shared/sync/engine.py at
commit e41d936) and passes now; the closing note of the change shows the failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.models import TableRef
from shared.errors import TransientServiceError
from shared.jobs import SyncJob
from shared.state.streams import StreamId
from shared.sync.config import EntitySpec
from shared.sync.pipeline import RecordWriter, WriteMode, WriteOp, WriteOutcome
from shared.sync.runner import JobOutcome
from tests.integration.sync.harness import sync_harness
from tests.integration.sync.test_incremental import company, person
from tests.integration.sync.test_reliability import no_duplicates, settle
from tests.integration.sync.writers import PassThroughWriter

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.0, "bad_data_share": 0.0}
BASE = {"systemuser": 2, "team": 1, "account": 4, "contact": 8}
CONTACTS = TableRef("contact", "contacts", "contactid")
ACCOUNTS = TableRef("account", "accounts", "accountid")


class FailingAfterWrites(PassThroughWriter):
    """The real writer, except that the call of ``mode`` fails ``fail_times`` times (as if
    Marketo answered 502)."""

    def __init__(self, inner: RecordWriter, mode: WriteMode, *, fail_times: int = 1) -> None:
        super().__init__(inner)
        self.mode = mode
        self.fail_times = fail_times

    async def write(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        if mode is self.mode and self.fail_times > 0:
            self.fail_times -= 1
            raise TransientServiceError("Marketo answered 502 (test)", system="marketo")
        return await self.inner.write(spec, mode, ops, done)


async def test_a_page_failing_after_its_creates_keeps_their_mappings(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 1: creates answered, then a later group of the same page fails. The new Marketo
    ids are stored before the failure propagates, so a delete made before the replay still
    reaches the live Marketo record."""
    dyn.control.seed(counts=BASE, seed=71, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        api = sync.runtime.dynamics
        fresh = await api.create(CONTACTS, {"lastname": "Newcomer", "emailaddress1": "n@x.org"})
        assert fresh.id
        victim = next(
            c["contactid"] for c in dyn.control.records("contact") if c["contactid"] != fresh.id
        )
        await api.update(CONTACTS, victim, {"lastname": "Changed"})
        sync.use_writer(FailingAfterWrites(sync.d2m.writer, WriteMode.UPDATE_BY_ID))
        await sync.tick()
        drained = await sync.drain()
        assert len(drained.failures) == 1  # the contact page failed on its update group
        assert sync.mapping("contact", fresh.id) is not None  # but its create is remembered
        await api.delete(CONTACTS, fresh.id)
        await settle(sync)
        assert person(mkto, fresh.id)["dynamicsIsDeleted"] is True
        no_duplicates(mkto)


async def test_a_delete_of_a_record_whose_mapping_was_lost_is_marked_by_its_key(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 1: the record reached Marketo but its mapping never got stored (a crash between
    the two); its Dynamics delete still marks it, found by the Dynamics id in its key field."""
    dyn.control.seed(counts=BASE, seed=72, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        victim = dyn.control.records("contact")[1]["contactid"]
        store = sync.runtime.store
        assert store.mappings.delete_many(sync.instance_id, "contact", [victim]) == 1
        await sync.runtime.dynamics.delete(CONTACTS, victim)
        await sync.cycle()
        assert person(mkto, victim)["dynamicsIsDeleted"] is True
        assert sync.open_errors() == []


async def test_a_job_turned_away_by_a_held_lease_comes_back_after_it(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 3: a dead worker's lease makes the job wait for it, never drops it."""
    dyn.control.seed(counts={"systemuser": 2}, seed=73, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        stream = StreamId(sync.instance_id, "systemuser", "d2m")
        dead = sync.runtime.store.leases.acquire(stream, "dead-worker", timedelta(seconds=2))
        report = await sync.tick()
        assert "systemuser" in report.enqueued
        drained = await sync.drain()
        assert JobOutcome.BUSY in drained.outcomes
        assert sync.pending_messages() >= 1  # the job waits, invisible, for the lease to end
        sync.clock.advance(3)
        assert dead.is_expired(sync.clock.now())
        for _ in range(100):  # the delayed message becomes visible within ~3 s
            if (await sync.drain()).count(JobOutcome.CAUGHT_UP):
                break
            await asyncio.sleep(0.1)
        assert sync.watermark("systemuser").phase.value == "incremental"


async def test_a_lost_continuation_is_recovered_by_the_next_tick_after_a_quiet_spell(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 7 and recovery: the page commits, sending its continuation fails; the job's own
    retry is then stale. The scheduler sees the run quiet and nudges it: no 15-minute stall."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1, "account": 9}, seed=74, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.tune(page_size=4)
        queue = sync.runtime.queue
        original = queue.enqueue
        failures: list[str] = []

        async def lossy(job: SyncJob, delay: timedelta | None = None) -> None:
            if job.entity == "account" and job.step == 1 and len(failures) < 3:
                failures.append(job.job_id)
                raise TransientServiceError("queue unavailable (test)", system="storage")
            await original(job, delay)

        queue.enqueue = lossy  # type: ignore[method-assign]
        await sync.tick()
        drained = await sync.drain(redeliver_failures=True)
        assert len(failures) == 3  # three tries, then the job failed ...
        assert JobOutcome.STALE in drained.outcomes  # ... and its redelivery was stale
        mark = sync.watermark("account")
        assert mark.run_open and mark.step == 1
        sync.clock.advance(10)
        early = await sync.tick()  # not quiet yet, nor within a tick of it
        assert "account" not in early.nudged and "account" not in early.nudged_later
        sync.clock.advance(20)
        # Quiet within the next minute: a nudge is sent now, visible only at that moment.
        assert "account" in (await sync.tick()).nudged_later
        sync.clock.advance(70)
        assert "account" in (await sync.tick()).nudged
        await sync.sync_until_caught_up()
        assert len(mkto.control.records("companies")) == 9


async def test_a_partial_update_of_a_company_marketo_lost_recreates_it_whole(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 7: a one-field change of an account whose company was deleted in Marketo makes
    a whole company again, not a stub holding the changed field and the key."""
    dyn.control.seed(counts={"systemuser": 1, "team": 1, "account": 2}, seed=75, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        account = dyn.control.records("account")[0]
        account_id = account["accountid"]
        before = company(mkto, account_id)
        await sync.runtime.marketo.companies.delete([{"externalCompanyId": account_id}])
        await sync.runtime.dynamics.update(ACCOUNTS, account_id, {"telephone1": "+1 555 0100"})
        await sync.cycle()
        again = company(mkto, account_id)
        assert again["mainPhone"] == "+1 555 0100"
        assert again["company"] == before["company"]  # the name came back with it
        assert again["id"] != before["id"]
        assert sync.mapping("account", account_id).marketo_id == str(again["id"])


async def test_a_delete_while_the_initial_copy_pages_is_found_by_the_sweep(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 8: with a delta link that stands for the *last* page of a paged first copy (the
    undocumented, unfavourable reading), a record read on page 1 and deleted before the last
    page is in no delta. The sweep after the read marks it."""
    dyn.control.seed(counts={"systemuser": 1, "team": 1, "account": 2, "contact": 12}, seed=76,
                     **CLEAN)  # fmt: skip
    dyn.control.set_delta_link_moment("last_page")
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.tune(page_size=5)
        first_page = sorted(c["contactid"] for c in dyn.control.records("contact"))[0]
        deleted: list[str] = []

        def delete_after_first_page(job: SyncJob) -> None:
            mark = sync.watermark("contact")
            if job.entity == "contact" and mark.cursor is not None and not deleted:
                deleted.append(first_page)
                dyn.control.delete_record("contact", first_page)

        sync.before_job = delete_after_first_page
        await sync.sync_until_caught_up()
        assert deleted
        assert person(mkto, first_page)["dynamicsIsDeleted"] is True
        assert sync.watermark("contact").sweep is None


async def test_two_roles_marketo_merges_into_one_are_a_sync_error_not_a_poison_job(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 5: two stakeholder connections with the same opportunity, contact and role are
    one role in Marketo. The second is a per-record sync error; the stream goes on."""
    dyn.control.seed(counts={"systemuser": 1, "team": 1, "account": 2, "contact": 3,
                             "opportunity": 2}, seed=77, **CLEAN)  # fmt: skip
    role = next(r for r in dyn.control.records("connection") if r.get("_record2id_value"))
    twin = {k: v for k, v in role.items() if k != "connectionid"}
    twin["connectionid"] = "0f0f0f0f-0000-4000-8000-000000000001"
    dyn.control.put_records("connection", [twin])
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.tick()
        for _ in range(10):
            drained = await sync.cycle()
            assert drained.failures == []
        # In one batch Marketo itself refuses the twin (1036); across batches or groups of a
        # page the sync does (duplicate-target, tests/unit/sync/test_apply.py). Either way: one
        # per-record error, and the stream is not stuck.
        codes = [e.code for e in sync.open_errors()]
        assert len(codes) == 1 and codes[0] in ("1036", "duplicate-target"), codes
        assert sync.watermark("connection").phase.value == "incremental"
        no_duplicates(mkto)


async def test_a_record_created_in_marketo_whose_mapping_was_never_stored_is_still_marked(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Defect 8 (found by the model test): the first copy's page reaches Marketo, then storage
    fails for every mapping write and the job dies; the record is deleted in Dynamics before the
    replay, which reads a new snapshot without it, so no delta and no mapping know it. The page's
    note of the ids it was creating (kept in the watermark) lets the next page mark it."""
    dyn.control.seed(counts={"systemuser": 1, "team": 1, "account": 1, "contact": 4}, seed=78,
                     **CLEAN)  # fmt: skip
    async with sync_harness(azurite, dyn, mkto) as sync:
        mappings = sync.runtime.store.mappings
        put_many = mappings.put_many

        def storage_down_for_contacts(rows: Any) -> Any:
            rows = list(rows)
            if rows and rows[0].entity == "contact":
                raise TransientServiceError("table service unavailable (test)", system="storage")
            return put_many(rows)

        mappings.put_many = storage_down_for_contacts  # type: ignore[method-assign]
        await sync.tick()
        drained = await sync.drain(redeliver_failures=False)
        for _ in range(5):  # users, teams, accounts first; then the contact page fails
            if drained.failures:
                break
            drained = await sync.drain()
        assert drained.failures, "the contact page failed on its mapping write"
        victim = dyn.control.records("contact")[0]["contactid"]
        assert person(mkto, victim)["dynamicsIsDeleted"] is False  # in Marketo, unmapped
        assert sync.watermark("contact").creating  # the page's note of what it was creating
        mappings.put_many = put_many  # type: ignore[method-assign]
        dyn.control.delete_record("contact", victim)
        await settle(sync)
        assert person(mkto, victim)["dynamicsIsDeleted"] is True
        assert sync.watermark("contact").creating == ()
        no_duplicates(mkto)
