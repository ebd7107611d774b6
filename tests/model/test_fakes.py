"""The in-memory sides hold the documented rules the model relies on."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime, timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode

from shared.errors import ConcurrencyConflict, DeltaTokenExpiredError, LeaseHeldError
from shared.state import odata
from shared.sync.config import parse_config
from shared.sync.pipeline import WriteMode, WriteOp, WriteStatus
from tests.fakes.dynamics import FakeDynamics
from tests.fakes.faults import CURRENT, Fault, JobCalls, WorkerKilled
from tests.fakes.marketo import FakeMarketo
from tests.fakes.tables import TableService, parse_filter
from tests.model.world import ACCOUNT, CONTACT, MAPPING, World

CONFIG = parse_config(MAPPING, "model mapping")


def _client() -> object:
    return TableService().client().get_table_client("t")


def test_filters_as_the_store_builds_them() -> None:
    row = {
        "PartitionKey": "p1",
        "RowKey": "r'2",
        "attempts": EntityProperty(3, EdmType.INT64),
        "resolved": False,
        "next_retry_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    keyed = odata.key_lookup_filters("p1", ["r1", "r'2"])[0]
    assert parse_filter(keyed)(row)
    assert not parse_filter(odata.key_lookup_filters("p1", ["r1"])[0])(row)
    due = odata.all_of(
        odata.compare("resolved", "eq", odata.boolean(False)),
        odata.any_of(
            odata.compare("attempts", "lt", odata.integer(3)),
            odata.compare("code", "eq", odata.string("pending")),
        ),
        odata.compare("next_retry_at", "le", odata.timestamp(datetime(2026, 1, 2, tzinfo=UTC))),
    )
    assert not parse_filter(due)(row)  # attempts 3 is not < 3, and there is no code
    assert parse_filter(due)({**row, "code": "pending"})


def test_conditional_writes_and_transactions() -> None:
    client = _client()
    first = client.create_entity({"PartitionKey": "p", "RowKey": "a", "n": 1})
    with pytest.raises(ResourceExistsError):
        client.create_entity({"PartitionKey": "p", "RowKey": "a"})
    client.update_entity({"PartitionKey": "p", "RowKey": "a", "m": 2}, mode=UpdateMode.MERGE)
    assert dict(client.get_entity("p", "a")) == {"PartitionKey": "p", "RowKey": "a", "n": 1, "m": 2}
    with pytest.raises(ResourceModifiedError):  # the ETag read first is no longer the row's
        client.update_entity(
            {"PartitionKey": "p", "RowKey": "a"},
            mode=UpdateMode.REPLACE,
            etag=first["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    with pytest.raises(TableTransactionError) as refused:
        client.submit_transaction(
            [
                ("upsert", {"PartitionKey": "p", "RowKey": "b"}),
                ("update", {"PartitionKey": "p", "RowKey": "missing"}, {"mode": UpdateMode.MERGE}),
            ]
        )
    assert (refused.value.index, refused.value.status_code) == (1, 404)
    with pytest.raises(ResourceNotFoundError):  # all or nothing: "b" was not written
        client.get_entity("p", "b")
    client.delete_entity("p", "missing")  # not an error, as with the SDK


def test_a_fault_after_the_effect_loses_only_the_answer() -> None:
    client = _client()
    context = contextvars.copy_context()
    context.run(CURRENT.set, JobCalls(Fault("raise_after", 0)))
    with pytest.raises(ServiceResponseError):
        context.run(client.create_entity, {"PartitionKey": "p", "RowKey": "a"})
    assert client.get_entity("p", "a")["RowKey"] == "a"  # it landed
    dead = JobCalls(Fault("kill_before", 0))
    context.run(CURRENT.set, dead)
    with pytest.raises(WorkerKilled):
        context.run(client.create_entity, {"PartitionKey": "p", "RowKey": "b"})
    with pytest.raises(WorkerKilled):  # a dead worker's later calls never happen either
        context.run(client.get_entity, "p", "a")
    with pytest.raises(ResourceNotFoundError):
        client.get_entity("p", "b")


def test_leases_and_watermarks_over_the_fake_keep_their_rules() -> None:
    world = World()
    try:
        stream = world.stream(ACCOUNT)
        lease = world.store.leases.acquire(stream, "one", timedelta(minutes=15))
        with pytest.raises(LeaseHeldError):
            world.store.leases.acquire(stream, "two", timedelta(minutes=15))
        world.clock.advance(901)
        taken = world.store.leases.acquire(stream, "two", timedelta(minutes=15))
        assert not world.store.leases.release(lease)  # the successor's lease stays
        assert world.store.leases.get(stream) == taken
        mark = world.store.watermarks.start_run(stream)
        world.store.watermarks.save(mark)
        with pytest.raises(ConcurrencyConflict):  # saved twice from one read
            world.store.watermarks.save(mark)
    finally:
        world.close()


def test_dynamics_pages_a_snapshot_and_forgets_deletes_made_while_paging() -> None:
    dynamics = FakeDynamics()
    spec = CONFIG.entity["account"]
    ids = [dynamics.new_id() for _ in range(4)]
    for record_id in ids:
        dynamics.upsert("accounts", record_id, {"name": "x"}, "accountid")

    async def scenario() -> None:
        first = await dynamics.read(spec, None, 3)
        assert [r.source_id for r in first.records] == ids[:3] and not first.done
        dynamics.delete("accounts", ids[0])  # while paging: no delta will say so
        dynamics.upsert("accounts", ids[1], {"name": "y"}, "accountid")  # this one will
        last = await dynamics.read(spec, first.cursor, 3)
        assert [r.source_id for r in last.records] == ids[3:] and last.done
        delta = await dynamics.read(spec, last.cursor, 3)
        assert [r.values["name"] for r in delta.records] == ["y"]
        assert delta.deleted_ids == []
        dynamics.delete("accounts", ids[2])
        later = await dynamics.read(spec, delta.cursor, 3)
        assert later.deleted_ids == [ids[2]]
        dynamics.expire_tokens()
        with pytest.raises(DeltaTokenExpiredError):
            await dynamics.read(spec, later.cursor, 3)

    asyncio.run(scenario())


def test_marketo_write_modes() -> None:
    marketo = FakeMarketo()
    lead, company = CONFIG.entity["contact"], CONFIG.entity["account"]

    async def scenario() -> None:
        done: dict[int, object] = {}
        created = await marketo.write(
            lead, WriteMode.UPSERT_BY_KEY, [WriteOp({"externalPersonId": "a", "x": 1})], done
        )
        assert created[0].status is WriteStatus.CREATED and done[0] == created[0]
        again = await marketo.write(
            lead, WriteMode.UPSERT_BY_KEY, [WriteOp({"externalPersonId": "a", "x": 2})]
        )
        assert again[0].status is WriteStatus.UPDATED
        assert again[0].target_id == created[0].target_id
        gone = await marketo.write(lead, WriteMode.UPDATE_BY_ID, [WriteOp({"x": 3}, "999")])
        assert gone[0].status is WriteStatus.SKIPPED and marketo.is_missing(gone[0])
        assert gone[0].code == "1004"
        by_key = await marketo.write(
            company, WriteMode.UPDATE_BY_KEY, [WriteOp({"externalCompanyId": "nope"})]
        )
        assert by_key[0].code == "1013"
        assert len(marketo.of(CONTACT.target)) == 1 and marketo.of(ACCOUNT.target) == {}

    asyncio.run(scenario())
