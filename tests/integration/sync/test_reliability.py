"""Breaking things: crashes between write and commit, replays, expired tokens, faults, copies."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.clock import ManualClock
from shared.dynamics.models import TableRef
from shared.state.instances import InstanceStatus
from shared.state.watermarks import Phase
from shared.sync.runner import JobOutcome
from tests.integration.sync.harness import SyncHarness, sync_harness

pytestmark = pytest.mark.integration

CLEAN = {"no_sync_share": 0.1, "null_sync_share": 0.1, "bad_data_share": 0.0}
ORG = {"systemuser": 3, "team": 2, "account": 10, "contact": 30, "lead": 20, "opportunity": 6,
       "new_project": 3}  # fmt: skip
CONTACTS = TableRef("contact", "contacts", "contactid")


class WorkerKilled(RuntimeError):
    """Stands in for a worker that dies at a chosen point."""


def fail_once(obj: Any, name: str, *, after: int = 0) -> list[int]:
    """Make ``obj.name`` raise WorkerKilled on its (after+1)-th call, once; returns a call log."""
    original: Callable[..., Any] = getattr(obj, name)
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == after + 1:
            raise WorkerKilled(f"killed in {name}")
        return original(*args, **kwargs)

    setattr(obj, name, wrapper)
    return calls


def no_duplicates(mkto: RunningMarketo) -> None:
    """Every Dynamics record is at most one Marketo record, in every object."""
    people = Counter(lead.get("externalPersonId") for lead in mkto.control.leads())
    assert max(people.values(), default=1) == 1
    for path, key in (("companies", "externalCompanyId"), ("salespersons", "externalSalesPersonId"),
                      ("opportunities", "externalOpportunityId"),
                      ("customobjects/project_c", "dynamicsProjectId")):  # fmt: skip
        keys = Counter(r.get(key) for r in mkto.control.records(path))
        assert max(keys.values(), default=1) == 1, path
    roles = Counter(
        (r.get("externalOpportunityId"), r.get("leadId"), r.get("role"))
        for r in mkto.control.records("opportunities/roles")
    )
    assert max(roles.values(), default=1) == 1


async def settle(sync: SyncHarness) -> None:
    """Run to quiet (redelivering failed jobs), then check nothing is lost or doubled."""
    for _ in range(30):
        drained = await sync.drain(redeliver_failures=True)
        if not drained.failures:
            break
    await sync.sync_until_caught_up()
    report = await sync.reconcile()
    assert report.holds, report.table()


@pytest.mark.parametrize(
    ("target", "method"),
    [("watermarks", "advance"), ("mappings", "put_many")],
    ids=["between-marketo-write-and-watermark-commit", "between-marketo-write-and-mapping-write"],
)
async def test_a_worker_killed_after_writing_replays_without_duplicates(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    target: str,
    method: str,
) -> None:
    """The page is written to Marketo, the worker dies before committing; the replay is clean."""
    dyn.control.seed(counts=ORG, seed=31, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.tune(page_size=7)  # several pages per entity
        calls = fail_once(getattr(sync.runtime.store, target), method, after=5)
        await sync.tick()
        first = await sync.drain()
        assert len(first.failures) == 1
        assert isinstance(first.failures[0], WorkerKilled)
        assert len(calls) > 5
        writes_before_replay = sync.marketo_writes()
        await settle(sync)
        assert sync.marketo_writes() > writes_before_replay
        no_duplicates(mkto)


async def test_every_job_delivered_twice_changes_nothing(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """At-least-once delivery: each job message arrives twice; the outcome is the same."""
    dyn.control.seed(counts=ORG, seed=32, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sync.tune(page_size=9)
        original_send = sync.runtime.queue._send

        def send_twice(body: str, delay: timedelta | None) -> None:
            original_send(body, delay)
            original_send(body, delay)

        sync.runtime.queue._send = send_twice  # type: ignore[method-assign]
        await sync.tick()
        drained = await sync.drain()
        assert (
            drained.count(JobOutcome.STALE)
            + drained.count(JobOutcome.BUSY)
            + drained.count(JobOutcome.CAUGHT_UP)
            > 0
        )
        await settle(sync)
        no_duplicates(mkto)


async def test_replaying_every_message_again_leaves_the_same_state(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """All job messages of a finished sync, replayed: no new Marketo record, no changed value."""
    dyn.control.seed(counts=ORG, seed=33, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        sent: list[str] = []
        original_send = sync.runtime.queue._send

        def record(body: str, delay: timedelta | None) -> None:
            sent.append(body)
            original_send(body, delay)

        sync.runtime.queue._send = record  # type: ignore[method-assign]
        await settle(sync)
        before = (mkto.control.leads(), mkto.control.records("companies"))
        for body in sent:
            sync.queue.send_message(base64.b64encode(body.encode()).decode())
        drained = await sync.drain()
        assert not drained.failures
        assert (mkto.control.leads(), mkto.control.records("companies")) == before


async def test_an_expired_delta_token_mid_run_falls_back_to_a_full_resync(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """0x80044352 mid-delta: the stream reads everything again, writes only what changed, and
    marks records deleted while the token was stale."""
    dyn.control.seed(counts=ORG, seed=34, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await settle(sync)
        sync.tune(page_size=4)
        api = sync.runtime.dynamics
        contacts = [
            c for c in dyn.control.records("contact") if c.get("new_synctomkto") is not False
        ]
        for contact in contacts[:9]:  # more than two delta pages
            await api.update(CONTACTS, contact["contactid"], {"jobtitle": "Changed"})
        gone = contacts[10]["contactid"]

        await sync.tick()

        def expire_on_second_page(job: Any) -> None:
            mark = sync.watermark("contact")
            second_page = job.entity == "contact" and mark.counts.read and mark.run_open
            if second_page and sync.before_job is not None:
                sync.before_job = None
                dyn.control.delete_record("contact", gone)
                dyn.control.expire_change_tracking()

        sync.before_job = expire_on_second_page
        writes = sync.marketo_writes()
        drained = await sync.drain()
        # The expiry hits every table's token: each stream still to read falls back on its own.
        assert drained.count(JobOutcome.RESYNC) >= 1
        assert "change token had expired" in sync.watermark("contact").status
        await settle(sync)
        mark = sync.watermark("contact")
        assert (mark.phase, mark.resync) == (Phase.INCREMENTAL, False)
        gone_person = [p for p in mkto.control.leads() if p.get("externalPersonId") == gone]
        assert gone_person[0]["dynamicsIsDeleted"] is True
        # Unchanged records were not written again: only the changed contacts (and the deleted
        # mark) cost Marketo calls, a handful of batches rather than one per page.
        assert sync.marketo_writes() - writes <= 16
        no_duplicates(mkto)


async def test_injected_faults_on_both_sides_still_reconcile(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """5 % 429/5xx from Dataverse and 606/5xx from Marketo during initial and incremental sync."""
    dyn.control.seed(counts=ORG, seed=35, **CLEAN)
    # Only injected 606s here: the clients wait on a manual clock (a 606 pause of 20 s passes
    # at once), so Marketo's real window is lifted out of the way.
    mkto.control.set_limits(rate_calls=100_000, concurrency=100)
    async with sync_harness(azurite, dyn, mkto, fast_retries=True) as sync:
        dyn.control.add_fault(
            path_prefix="/api/data", rates={"429": 0.03, "503": 0.02}, retry_after_seconds=1
        )
        mkto.control.set_faults(rates={"606": 0.03, "502": 0.02}, seed=5)
        await settle(sync)
        api = sync.runtime.dynamics
        for contact in dyn.control.records("contact")[:10]:
            await api.update(CONTACTS, contact["contactid"], {"jobtitle": "Under fire"})
        await settle(sync)
        dyn.control.clear_faults()
        mkto.control.clear_faults()
        usage = mkto.control.usage()
        assert usage.faults, "no Marketo fault was injected"
        assert sync.runtime.dynamics.counters.retries > 0
        no_duplicates(mkto)


async def test_a_copied_dynamics_environment_suspends_the_instance(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """A sandbox refresh is detected; nothing is written until an operator re-links."""
    dyn.control.seed(counts=ORG, seed=36, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await settle(sync)
        dyn.control.copy_environment(source_seed=99, records_per_table=5)
        writes = sync.marketo_writes()
        report = await sync.tick()
        assert report.status is InstanceStatus.SUSPENDED
        assert "copied or refreshed" in report.reason
        assert report.enqueued == []
        again = await sync.tick()
        assert again.status is InstanceStatus.SUSPENDED
        assert again.enqueued == []
        assert sync.marketo_writes() == writes
        instance = sync.runtime.store.instances.get(sync.instance_id)
        assert instance is not None
        assert instance.status is InstanceStatus.SUSPENDED
        resumed = await sync.runtime.scheduler.relink()
        assert resumed.status is InstanceStatus.ACTIVE
        assert (await sync.tick()).enqueued


async def test_a_bad_record_is_logged_retried_with_a_bound_and_fixed_later(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """An invalid email becomes a sync error; its batch goes on; a fix clears it."""
    dyn.control.seed(counts={"systemuser": 2, "team": 1, "account": 2}, seed=37, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        api = sync.runtime.dynamics
        good = await api.create(CONTACTS, {"lastname": "Good", "emailaddress1": "good@example.com"})
        bad = await api.create(CONTACTS, {"lastname": "Bad", "emailaddress1": "not-an-email"})
        stuck = await api.create(CONTACTS, {"lastname": "Stuck", "emailaddress1": "also@bad"})
        await sync.cycle()
        errors = {e.dynamics_id: e for e in sync.open_errors()}
        assert good.id not in errors
        assert bad.id is not None and stuck.id is not None
        error = errors[bad.id]
        assert (error.operation, error.stream.direction.value, error.code) == ("create", "d2m",
                                                                              "1001")  # fmt: skip
        assert "email" in error.message.lower()
        assert not [p for p in mkto.control.leads() if p.get("externalPersonId") == bad.id]

        await api.update(CONTACTS, bad.id, {"emailaddress1": "fixed@example.com"})
        for _ in range(12):  # retries come due ever later; the bound stops them
            sync.clock.advance(6 * 3600)
            await sync.cycle()
        remaining = {e.dynamics_id: e for e in sync.open_errors()}
        assert bad.id not in remaining
        assert [p for p in mkto.control.leads() if p.get("externalPersonId") == bad.id]
        assert remaining[stuck.id].attempts == 10  # ErrorRetryPolicy.max_attempts
        writes = sync.marketo_writes()
        sync.clock.advance(24 * 3600)
        await sync.cycle()
        assert sync.marketo_writes() == writes  # no eleventh attempt


async def test_marketo_daily_quota_stops_work_quietly_until_the_reset(
    azurite: AzuriteInstance, dyn: EmulatorHandle, mkto: RunningMarketo
) -> None:
    """607 mid-run: no poison, nothing lost; runs stay off until the reset, then resume."""
    dyn.control.seed(counts=ORG, seed=38, **CLEAN)
    async with sync_harness(azurite, dyn, mkto, fast_retries=True) as sync:
        sync.tune(page_size=7)
        mkto.control.set_limits(daily_quota=8)  # the instance's whole daily quota
        await sync.tick()
        drained = await sync.drain()
        assert not drained.failures  # nothing for the queue to retry or poison
        assert drained.count(JobOutcome.QUOTA) >= 1
        notes = [sync.watermark(e).status for e in sync.runtime.runner.config.order]
        assert any("daily API quota is used up" in n for n in notes)
        report = await sync.tick()
        assert report.enqueued == []
        assert "quota is used up" in report.reason

        mkto.control.set_limits(daily_quota=50_000)
        api_clock = sync.runtime.marketo.governor.clock
        assert isinstance(api_clock, ManualClock)
        api_clock.advance(26 * 3600)  # past Marketo's midnight (US Central)
        await settle(sync)
        no_duplicates(mkto)
