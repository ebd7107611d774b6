"""``dmsync errors retry``: the deployed sync retries a fixed record on its next job, at once
instead of after the backoff, and the command's ``--wait`` shows the result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from dmsync import errors_actions
from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.state.error_retry import request_retry
from shared.state.store import StateStore
from shared.state.sync_errors import SyncError
from tests.integration.sync.cli_env import run_cli, set_app_settings
from tests.integration.sync.harness import sync_harness
from tests.integration.sync.test_edge_cases import BASE, CLEAN, CONTACTS, FlakyWriter

pytestmark = pytest.mark.integration


async def test_retry_of_a_fixed_record_resolves_its_error_on_the_next_job(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dyn.control.seed(counts=BASE, seed=61, **CLEAN)
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        set_app_settings(monkeypatch, azurite, dyn, mkto, SYNC_INSTANCE_ID=sync.instance_id)
        prefix = sync.runtime.store.tables.names.prefix
        created = await sync.runtime.dynamics.create(
            CONTACTS, {"lastname": "Rejected", "emailaddress1": "rejected@example.com"}
        )
        assert created.id
        contact_id = created.id.lower()
        # Marketo refuses the record once (its cause is then fixed on the Marketo side).
        sync.use_writer(FlakyWriter(sync.d2m.writer, {contact_id: 1}))
        await sync.cycle()
        assert [e.dynamics_id for e in sync.open_errors()] == [contact_id]
        # Not due yet (the backoff's first delay is a minute): a cycle leaves it open.
        await sync.cycle()
        assert [e.attempts for e in sync.open_errors()] == [1]

        result: dict[str, tuple[int, str, str]] = {}

        def retry_and_wait() -> None:
            result["cli"] = run_cli(
                capsys, "errors", "retry", contact_id, "--wait", "--poll", "0.05",
                "--timeout", "120", "--table-prefix", prefix,
            )  # fmt: skip

        marked = threading.Event()

        def request_and_tell(store: StateStore, errors: Sequence[SyncError]) -> list[SyncError]:
            done = request_retry(store, errors)
            marked.set()
            return done

        monkeypatch.setattr(errors_actions, "request_retry", request_and_tell)
        waiting = threading.Thread(target=retry_and_wait)
        waiting.start()
        assert await asyncio.to_thread(marked.wait, 60)
        await sync.cycle()  # the app's next job of the stream
        await asyncio.to_thread(waiting.join, 120)
        assert not waiting.is_alive()
        code, out, _ = result["cli"]
        assert code == 0, out
        assert "1 sync errors of" in out and "marked for retry now (contact d2m)" in out
        assert f"contact  {contact_id}  resolved" in out
        assert "1 resolved, 0 failed again, 0 still waiting" in out
        assert sync.open_errors() == []
        people = [p for p in mkto.control.leads() if p.get("externalPersonId") == contact_id]
        assert len(people) == 1
