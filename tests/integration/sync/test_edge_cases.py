"""Edge cases found in review: each reproduces a scenario that once lost or corrupted data."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.dynamics.models import TableRef
from shared.errors import TransientServiceError
from shared.jobs import SyncJob
from shared.state.instances import DynamicsOrganization, Instance, InstanceStatus
from shared.state.streams import StreamId
from shared.state.watermarks import Phase
from shared.sync import engine as engine_module
from shared.sync.config import EntitySpec
from shared.sync.engine import EngineOptions, JobOutcome
from shared.sync.ports import Target, WriteMode, WriteOutcome, WriteStatus
from tests.integration.sync.harness import SyncHarness, sync_harness
from tests.integration.sync.test_incremental import company, person
from tests.integration.sync.test_reliability import no_duplicates, settle

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.0, "null_sync_share": 0.2, "bad_data_share": 0.0}
BASE = {"systemuser": 2, "team": 1, "account": 4, "contact": 8, "lead": 4}
CONTACTS = TableRef("contact", "contacts", "contactid")
LEADS = TableRef("lead", "leads", "leadid")
ACCOUNTS = TableRef("account", "accounts", "accountid")


class FlakyTarget:
    """The real Marketo side, except that chosen records are rejected a set number of times."""

    def __init__(self, inner: Target, reject: dict[str, int], *, delay: float = 0.0) -> None:
        self.inner = inner
        self.reject = reject
        """Dynamics id (any key field value or Marketo id) → how many more times to reject."""
        self.delay = delay

    async def quota_stop_until(self) -> Any:
        return await self.inner.quota_stop_until()

    async def current_values(
        self, spec: EntitySpec, marketo_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        return await self.inner.current_values(spec, marketo_ids, fields)

    async def write(
        self,
        spec: EntitySpec,
        records: Sequence[Mapping[str, Any]],
        mode: WriteMode,
        marketo_ids: Sequence[str] | None = None,
    ) -> list[WriteOutcome]:
        if self.delay:
            await asyncio.sleep(self.delay)
        keys = [
            str(r.get(spec.key_field or "") or (marketo_ids[i] if marketo_ids else ""))
            for i, r in enumerate(records)
        ]
        refused = {i for i, k in enumerate(keys) if self.reject.get(k, 0) > 0}
        for i in refused:
            self.reject[keys[i]] -= 1
        passed = [i for i in range(len(records)) if i not in refused]
        results = await self.inner.write(
            spec,
            [records[i] for i in passed],
            mode,
            [marketo_ids[i] for i in passed] if marketo_ids else None,
        )
        merged: list[WriteOutcome] = []
        it = iter(results)
        for i in range(len(records)):
            if i in refused:
                merged.append(WriteOutcome(WriteStatus.SKIPPED, None, "1003", "refused (test)"))
            else:
                merged.append(next(it))
        return merged


async def synced(sync: SyncHarness) -> None:
    await sync.sync_until_caught_up()


async def test_a_person_gets_its_link_even_when_the_company_fails_twice_first(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """A waiting link stays waiting while its record's payload does not change."""
    dyn.control.seed(counts=BASE, seed=51, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await synced(sync)
        api = sync.runtime.dynamics
        account = await api.create(ACCOUNTS, {"name": "Slow Starters"})
        assert account.id
        contact = await api.create(CONTACTS, {
            "lastname": "Patient", "emailaddress1": "patient@example.com",
            "parentcustomerid_account@odata.bind": f"/accounts({account.id})",
        })  # fmt: skip
        assert contact.id
        sync.runtime.engine.target = FlakyTarget(sync.runtime.engine.target, {account.id: 2})
        for _ in range(6):
            await sync.cycle()
            sync.clock.advance(20 * 60)
        assert company(mkto, account.id)
        assert person(mkto, contact.id)["externalCompanyId"] == account.id
        assert sync.open_errors() == []


async def test_only_changed_fields_are_sent_and_conflicts_follow_the_rules(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """A Marketo edit survives an unrelated Dynamics change; on a field changed on both sides,
    Dynamics wins for contacts and Marketo wins for leads (design, reference A.3)."""
    dyn.control.seed(counts=BASE, seed=52, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await synced(sync)
        api = sync.runtime.dynamics
        contact = next(
            c for c in dyn.control.records("contact") if c.get("new_synctomkto") is not False
        )
        lead = next(r for r in dyn.control.records("lead") if r.get("new_synctomkto") is not False)
        contact_id, lead_id = contact["contactid"], lead["leadid"]
        in_marketo = person(mkto, contact_id)["id"]
        lead_in_marketo = person(mkto, lead_id)["id"]

        mkto.control.change_lead(
            in_marketo, {"mobilePhone": "+1 555 0100", "title": "From Marketo"}
        )
        mkto.control.change_lead(lead_in_marketo, {"title": "Marketo Title"})
        await api.update(CONTACTS, contact_id, {"jobtitle": "From Dynamics"})
        await api.update(LEADS, lead_id, {"jobtitle": "Dynamics Title", "lastname": "Renamed"})
        await synced(sync)

        now_contact = person(mkto, contact_id)
        assert now_contact["mobilePhone"] == "+1 555 0100"  # Marketo-only edit kept
        assert now_contact["title"] == "From Dynamics"  # both changed: Dynamics wins (contact)
        now_lead = person(mkto, lead_id)
        assert now_lead["title"] == "Marketo Title"  # both changed: Marketo wins (lead)
        assert now_lead["lastName"] == "Renamed"  # Dynamics-only change arrives


async def test_a_failed_deleted_mark_is_retried(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """The delete arrives once through the delta; a rejected mark must still be sent later."""
    dyn.control.seed(counts=BASE, seed=53, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await synced(sync)
        victim = next(
            c for c in dyn.control.records("contact") if c.get("new_synctomkto") is not False
        )
        victim_id = victim["contactid"]
        sync.runtime.engine.target = FlakyTarget(sync.runtime.engine.target, {victim_id: 1})
        await sync.runtime.dynamics.delete(CONTACTS, victim_id)
        await sync.cycle()
        assert person(mkto, victim_id)["dynamicsIsDeleted"] is False
        assert [e.operation for e in sync.open_errors()] == ["mark-deleted"]
        sync.clock.advance(120)  # the retry comes due a minute later
        await sync.cycle()
        assert person(mkto, victim_id)["dynamicsIsDeleted"] is True
        assert sync.mapping("contact", victim_id).deleted_in_dynamics
        assert sync.open_errors() == []


async def test_follow_up_jobs_are_sent_only_once_the_lease_is_released(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """A continuation picked up at once by another worker must find the stream free."""
    dyn.control.seed(counts=BASE, seed=54, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.runtime.engine.options = EngineOptions(page_size=3)
        store = sync.runtime.store
        original = sync.runtime.queue.enqueue
        held_at_send: list[str] = []

        async def enqueue(job: SyncJob) -> None:
            lease = store.leases.get(StreamId(job.instance_id, job.entity, job.direction))
            if lease is not None and not lease.is_expired(store.clock.now()):
                held_at_send.append(job.entity)
            await original(job)

        sync.runtime.queue.enqueue = enqueue  # type: ignore[method-assign]
        await synced(sync)
        assert held_at_send == []


async def test_a_storage_error_while_renewing_the_lease_does_not_fail_the_job(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Renewal retries quietly; the job's outcome and the lease release are unaffected."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1}, seed=55, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.runtime.engine.options = EngineOptions(lease_duration=timedelta(seconds=0.3))
        sync.runtime.engine.target = FlakyTarget(sync.runtime.engine.target, {}, delay=0.4)
        renewals: list[int] = []

        def failing_renew(*_: Any, **__: Any) -> Any:
            renewals.append(1)
            raise TransientServiceError("table service unavailable", system="storage")

        sync.runtime.store.leases.renew = failing_renew  # type: ignore[method-assign]
        await sync.tick()
        drained = await sync.drain()
        assert drained.failures == []
        assert renewals
        assert set(drained.outcomes) <= {JobOutcome.CAUGHT_UP, JobOutcome.ADVANCED}
        for entity in ("systemuser", "team"):
            assert sync.runtime.store.leases.get(StreamId("default", entity, "d2m")) is None


async def test_the_resync_sweep_runs_in_bounded_steps(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an expired token, the delete check is split over jobs and still finds deletes."""
    monkeypatch.setattr(engine_module, "SWEEP_CHUNK", 3)
    dyn.control.seed(counts=BASE, seed=56, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await synced(sync)
        contacts = [
            c for c in dyn.control.records("contact") if c.get("new_synctomkto") is not False
        ]
        gone = contacts[-1]["contactid"]
        dyn.control.delete_record("contact", gone)
        dyn.control.expire_change_tracking()
        await sync.tick()
        drained = await sync.drain()
        assert drained.count(JobOutcome.ADVANCED) >= 3  # several sweep steps for contacts
        mark = sync.watermark("contact")
        assert (mark.phase, mark.sweep, mark.run_open) == (Phase.INCREMENTAL, None, False)
        assert person(mkto, gone)["dynamicsIsDeleted"] is True
        no_duplicates(mkto)


async def test_an_instance_registered_by_hand_still_detects_a_sandbox_refresh(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """Without a recorded identity the first tick adopts the environment; a copy then suspends."""
    dyn.control.seed(counts=BASE, seed=57, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.runtime.store.instances.create(
            Instance(
                "default", DynamicsOrganization(url=dyn.base_url), integrated_with_dynamics=True
            )
        )
        await settle(sync)
        dyn.control.copy_environment(source_seed=77, records_per_table=3)
        report = await sync.tick()
        assert report.status is InstanceStatus.SUSPENDED


async def test_relink_starts_every_stream_over(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """After a refresh the old cursors mean nothing: relink resyncs everything, without doubles."""
    dyn.control.seed(counts=BASE, seed=58, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await settle(sync)
        dyn.control.copy_environment(snapshot=dyn.control.snapshot())
        assert (await sync.tick()).status is InstanceStatus.SUSPENDED
        await sync.runtime.scheduler.relink()
        marks = [sync.watermark(e) for e in sync.runtime.engine.config.order]
        assert all(m.phase is Phase.INITIAL and m.resync and not m.run_open for m in marks)
        await settle(sync)
        no_duplicates(mkto)
