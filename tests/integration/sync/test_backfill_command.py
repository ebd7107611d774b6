"""``dmsync backfill ENTITY FIELD``: the app sends one field of every mapped record, nothing
else; interrupted and resumed, it writes each record once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import MutableMapping, Sequence
from typing import Any

import pytest

from emulators.azurite import AzuriteInstance
from emulators.dynamics.runner import EmulatorHandle
from emulators.marketo.runner import RunningMarketo
from shared.errors import TransientServiceError
from shared.sync.config import EntitySpec
from shared.sync.pipeline import RecordWriter, WriteMode, WriteOp, WriteOutcome
from shared.sync.runner import JobOutcome
from tests.integration.sync.cli_env import run_cli, set_app_settings
from tests.integration.sync.harness import sync_harness
from tests.integration.sync.test_edge_cases import CLEAN

pytestmark = pytest.mark.integration

COUNTS = {"systemuser": 2, "team": 1, "account": 3, "contact": 23, "lead": 2}


class CountingWriter:
    """The real writer, counting each record written and failing one call on request."""

    def __init__(self, inner: RecordWriter, fail_on_call: int) -> None:
        self.inner = inner
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.written: Counter[str] = Counter()
        self.payload_fields: set[str] = set()

    async def quota_stop_until(self) -> Any:
        return await self.inner.quota_stop_until()

    def is_missing(self, outcome: WriteOutcome) -> bool:
        return self.inner.is_missing(outcome)

    async def current(self, spec: EntitySpec, ids: Sequence[str], fields: Sequence[str]) -> Any:
        return await self.inner.current(spec, ids, fields)

    async def write(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        self.calls += 1
        if self.calls == self.fail_on_call:  # the worker dies before this page is written
            raise TransientServiceError("injected: the worker went away", system="marketo")
        outcomes = await self.inner.write(spec, mode, ops, done)
        for op in ops:
            self.written[str(op.target_id)] += 1
            self.payload_fields.update(op.payload)
        return outcomes


async def test_backfill_sends_one_field_once_per_record_across_an_interruption(
    azurite: AzuriteInstance,
    dyn: EmulatorHandle,
    mkto: RunningMarketo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dyn.control.seed(counts=COUNTS, seed=81, **CLEAN)
    untitled = sorted(r["contactid"] for r in dyn.control.records("contact"))[::4]
    dyn.control.put_records("contact", [{"contactid": c, "jobtitle": None} for c in untitled])
    async with sync_harness(azurite, dyn, mkto) as sync:
        await sync.sync_until_caught_up()
        set_app_settings(monkeypatch, azurite, dyn, mkto, SYNC_INSTANCE_ID=sync.instance_id)
        prefix = sync.runtime.store.tables.names.prefix
        contacts = {r["contactid"].lower(): r for r in dyn.control.records("contact")}
        people = {
            str(p["externalPersonId"]).lower(): p
            for p in mkto.control.leads()
            if str(p.get("externalPersonId") or "").lower() in contacts
        }
        assert len(people) == len(contacts)
        # In Marketo, someone blanked the title and edited the first name of everyone.
        for person in people.values():
            mkto.control.change_lead(person["id"], {"title": "stale", "firstName": "Edited"})
        with_title = {cid for cid, row in contacts.items() if row.get("jobtitle")}
        assert 3 < len(with_title) < len(contacts), "some titles are empty"

        writer = CountingWriter(sync.d2m.writer, fail_on_call=3)
        sync.d2m.backfill.writer = writer
        sync.d2m.backfill.page_size = 5
        code, out, _ = await asyncio.to_thread(
            run_cli, capsys, "backfill", "contact", "title",
            "--table-prefix", prefix, "--queue", sync.queue.queue_name,
        )  # fmt: skip
        assert code == 0, out
        assert "back-fill of contact.jobtitle → title requested" in out

        drained = await sync.drain(redeliver_failures=True)
        assert len(drained.failures) == 1, "the injected interruption"
        assert drained.count(JobOutcome.CAUGHT_UP) == 1

        by_marketo = {str(p["id"]): cid for cid, p in people.items()}
        assert {by_marketo[t] for t in writer.written} == with_title
        assert set(writer.written.values()) == {1}, "each record written once"
        assert writer.payload_fields == {"title"}, "nothing but the one field is sent"
        for contact_id, person in people.items():
            now = mkto.control.lead(person["id"])
            assert now is not None
            assert now["firstName"] == "Edited", "other fields are not touched"
            expected = contacts[contact_id]["jobtitle"] if contact_id in with_title else "stale"
            assert now["title"] == expected

        backfill = sync.runtime.store.backfills.get(sync.watermark("contact").stream)
        assert backfill is not None and not backfill.open
        assert backfill.counts.sent == len(with_title)
        assert backfill.counts.empty == len(contacts) - len(with_title)
        assert backfill.counts.scanned == len(contacts)

        # With --include-empty the empty ones are sent too (and only the field again).
        writer = CountingWriter(sync.d2m.writer, fail_on_call=0)
        sync.d2m.backfill.writer = writer
        code, out, _ = await asyncio.to_thread(
            run_cli, capsys, "backfill", "contact", "jobtitle", "--include-empty",
            "--table-prefix", prefix, "--queue", sync.queue.queue_name,
        )  # fmt: skip
        assert code == 0, out
        await sync.drain()
        assert set(writer.written.values()) == {1} and len(writer.written) == len(contacts)
        for contact_id, person in people.items():
            now = mkto.control.lead(person["id"])
            assert now is not None
            assert now.get("title") == contacts[contact_id]["jobtitle"]  # an empty one: gone
            assert now["firstName"] == "Edited"

        code, _, err = await asyncio.to_thread(
            run_cli, capsys, "backfill", "contact", "nosuchfield", "--table-prefix", prefix,
        )  # fmt: skip
        assert code == 2
        assert "'nosuchfield' is not a field entity 'contact' sends to Marketo" in err
