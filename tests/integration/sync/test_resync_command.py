"""``dmsync resync ENTITY``: the app carries out a full copy of one entity while incremental
changes keep arriving; none is lost, nothing is doubled, a second request does not restart it.

Run under both readings of the moment a paged read's delta link stands for (the emulator's
``delta_link_moment``, UNVERIFIED in Microsoft's documentation): with ``last_page`` a change to
a record the read has passed would be missed if the stream went on from the read's own link.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.jobs import SyncJob
from shared.state.watermarks import Phase
from tests.integration.sync.cli_env import run_cli, set_app_settings
from tests.integration.sync.harness import sync_harness
from tests.integration.sync.test_edge_cases import CLEAN

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 2, "team": 1, "account": 4, "contact": 24, "lead": 2}


@pytest.fixture(params=["first_page", "last_page"])
def delta_moment(request: pytest.FixtureRequest, dyn: EmulatorHandle) -> Iterator[str]:
    """The emulator's reading of a paged read's delta link, restored afterwards."""
    dyn.control.set_delta_link_moment(request.param)
    yield request.param
    dyn.control.set_delta_link_moment("first_page")


def people_by_contact(mkto: RunningMarketo) -> dict[str, list[dict[str, Any]]]:
    """Marketo people per Dynamics contact id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for person in mkto.control.leads():
        key = str(person.get("externalPersonId") or "").lower()
        if key:
            found.setdefault(key, []).append(person)
    return found


async def test_resync_while_changes_arrive_loses_none_and_doubles_none(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    delta_moment: str,
) -> None:
    dyn.control.seed(counts=COUNTS, seed=71, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        before = sync.watermark("contact")
        account_before = sync.watermark("account")
        set_app_settings(monkeypatch, azurite, dyn, mkto, SYNC_INSTANCE_ID=sync.instance_id)
        prefix = sync.runtime.store.tables.names.prefix

        code, out, _ = await asyncio.to_thread(
            run_cli, capsys, "resync", "contact", "--table-prefix", prefix
        )
        assert code == 0
        assert "contact: full resync requested; the app starts it on its next timer tick" in out
        requested = sync.watermark("contact")
        assert requested.phase is Phase.INITIAL and not requested.run_open
        assert requested.resume_cursor == before.cursor

        sync.tune(page_size=5)
        contacts = sorted(r["contactid"] for r in dyn.control.records("contact"))
        changed: dict[str, str] = {}
        created: list[str] = []

        second_request: dict[str, Any] = {}

        def ask_again() -> None:  # the CLI runs its own event loop: give it a thread
            second_request["before"] = sync.watermark("contact")
            second_request["cli"] = run_cli(capsys, "resync", "contact", "--table-prefix", prefix)
            second_request["after"] = sync.watermark("contact")

        def change_while_reading(job: SyncJob) -> None:
            # After each committed page of the read: change a record it has passed, add one.
            if job.entity != "contact" or job.step == 0 or len(created) >= 3:
                return
            if job.step == 2:
                asking = threading.Thread(target=ask_again)
                asking.start()
                asking.join()
            passed = contacts[len(created)]
            changed[passed] = f"Changed{len(created)}"
            dyn.control.put_records("contact", [{"contactid": passed, "lastname": changed[passed]}])
            new_id = str(uuid.uuid4())
            created.append(new_id)
            dyn.control.put_records("contact", [{
                "contactid": new_id, "lastname": f"Arrived{len(created)}",
                "emailaddress1": f"arrived{len(created)}-{new_id[:8]}@example.com",
            }])  # fmt: skip

        sync.before_job = change_while_reading
        await sync.sync_until_caught_up(max_cycles=30)
        sync.before_job = None
        assert len(created) == 3 and len(changed) == 3

        mid = second_request["before"]
        assert mid.phase is Phase.INITIAL and mid.resync and mid.sequence > requested.sequence
        code, out, _ = second_request["cli"]
        assert code == 0
        assert "contact: a full resync is already under way (read 10" in out
        assert second_request["after"].sequence == mid.sequence, "not restarted"
        assert second_request["after"].counts.read == mid.counts.read

        after = sync.watermark("contact")
        assert after.phase is Phase.INCREMENTAL and not after.resync and after.resume_cursor is None
        account = sync.watermark("account")  # the rest of the sync went on, not restarted
        assert not account.resync and account.counts.read >= account_before.counts.read
        people = people_by_contact(mkto)
        in_dynamics = {r["contactid"].lower(): r for r in dyn.control.records("contact")}
        assert len(in_dynamics) == COUNTS["contact"] + 3
        doubled = {cid: len(p) for cid, p in people.items() if cid in in_dynamics and len(p) > 1}
        assert doubled == {}
        missing = sorted(set(in_dynamics) - set(people))
        assert missing == []
        for contact_id, lastname in changed.items():
            assert people[contact_id.lower()][0]["lastName"] == lastname, delta_moment
        for contact_id in created:
            assert people[contact_id][0]["lastName"].startswith("Arrived")
        assert sync.open_errors() == []
