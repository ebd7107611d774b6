"""The Marketo-id index on Azurite: one lookup whatever entity a Marketo lead is, no index rows
for one-way entities, both directions' memory merged without clobbering, and tables written
by the first layout read (and their index backfilled) in place."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.state.keys import decode_component, encode_component, join_key
from shared.state.mapping_rows import MEMORY_COLUMNS
from shared.state.mappings import IdMapping, MappingLayout, MappingUpdate, SyncFilter
from shared.state.store import StateStore
from shared.state.tables import TableKind
from shared.state.transactions import TableOperation, submit_all
from tests.integration.state.conftest import RequestLog

pytestmark = pytest.mark.integration

INSTANCE = "contoso"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _persons(count: int, first: int = 1000) -> list[IdMapping]:
    """Every fourth a Dynamics lead, the rest contacts: all Marketo leads."""
    return [
        IdMapping(INSTANCE, "contact" if i % 4 else "lead", f"{i:08x}-aa", "lead", str(first + i))
        for i in range(count)
    ]


def _queries(layout: MappingLayout, ids: list[str]) -> int:
    """Requests to read ``ids`` of one entity's mapping rows by filters of 14."""
    per_bucket = Counter(layout.bucket_label(i) for i in ids)
    return sum(math.ceil(n / 14) for n in per_bucket.values())


def _index_reads(layout: MappingLayout, marketo_ids: list[str]) -> int:
    """Requests to read index rows: per partition, one scan page from 42 ids (all of a
    partition this small), else filters of 14."""
    per_partition = Counter(layout.index_key(INSTANCE, "lead", i)[0] for i in marketo_ids)
    return sum(1 if n >= 42 else math.ceil(n / 14) for n in per_partition.values())


def _warm(store: StateStore) -> None:
    store.ensure_tables()
    store.mappings.get("warm-up", "contact", "x")  # the once-per-process layout check


def test_one_marketo_id_is_found_in_one_lookup_whatever_its_entity(
    store: StateStore, request_log: RequestLog
) -> None:
    """A Marketo lead that is a Dynamics contact, one that is a Dynamics lead, one unknown:
    an index point read and one mapping read each, never a probe per entity."""
    contact = IdMapping(INSTANCE, "contact", "c-1", "lead", "11")
    lead = IdMapping(INSTANCE, "lead", "l-1", "lead", "12")
    store.mappings.put_many([contact, lead])
    _warm(store)
    for mapping in (contact, lead):
        request_log.clear()
        found = store.mappings.find_by_marketo(INSTANCE, "lead", [mapping.marketo_id])
        assert [(m.entity, m.dynamics_id) for m in found.values()] == [
            (mapping.entity, mapping.dynamics_id)
        ]
        assert request_log.count("GET") == len(request_log.requests) == 2
    request_log.clear()
    assert store.mappings.find_by_marketo(INSTANCE, "lead", ["13"]) == {}
    assert len(request_log.requests) == 1  # the index says no: nothing else is read


def test_a_batch_of_marketo_ids_costs_the_index_read_and_the_mapping_reads(
    store: StateStore, request_log: RequestLog
) -> None:
    """300 Marketo leads, a quarter of them Dynamics leads: the index read (per id range) plus
    the mapping rows per entity; the old way probed each entity's index and mappings."""
    persons = _persons(300)
    store.mappings.put_many(persons)
    _warm(store)
    layout = store.mappings.layout
    request_log.clear()
    found = store.mappings.find_by_marketo(
        INSTANCE, "lead", [m.marketo_id for m in persons] + ["999999"]
    )
    assert {k: (m.entity, m.dynamics_id) for k, m in found.items()} == {
        m.marketo_id: (m.entity, m.dynamics_id) for m in persons
    }
    index_cost = _index_reads(layout, [m.marketo_id for m in persons] + ["999999"])
    assert index_cost == 2  # the 300 ids are one id range (a scan), 999999 another
    mapping_cost = sum(
        _queries(layout, [m.dynamics_id for m in persons if m.entity == entity])
        for entity in ("lead", "contact")
    )
    assert len(request_log.requests) == request_log.count("GET") == index_cost + mapping_cost


def test_one_way_entities_get_no_index_rows_and_are_still_found_by_marketo_id(
    store: StateStore, request_log: RequestLog
) -> None:
    """Accounts (Marketo companies) are never looked up by Marketo id in a batch: a new
    mapping is one row; the compatibility lookup still answers, by a property filter."""
    accounts = [
        IdMapping(INSTANCE, "account", f"a-{i}", "company", str(500 + i)) for i in range(30)
    ]
    _warm(store)
    request_log.clear()
    accounts = store.mappings.put_many(accounts)
    buckets = {store.mappings.layout.bucket_label(m.dynamics_id) for m in accounts}
    assert request_log.count("POST", "$batch") == len(buckets)  # mapping rows only
    assert list(store.tables.client(TableKind.MARKETO_INDEX).list_entities()) == []
    found = store.mappings.get_many_by_marketo(INSTANCE, "account", ["500", "529", "9"])
    assert {k: m.dynamics_id for k, m in found.items()} == {"500": "a-0", "529": "a-29"}
    assert store.mappings.get_by_marketo(INSTANCE, "account", "503") == accounts[3]
    assert set(store.mappings.find_by_marketo(INSTANCE, "company", ["501"])) == {"501"}
    # the entity-scoped lookup of persons goes through the index and keeps to its entity
    store.mappings.put_many(_persons(8))
    assert set(store.mappings.get_many_by_marketo(INSTANCE, "lead", ["1000", "1001"])) == {"1000"}


def test_both_directions_merge_their_memory_into_one_mapping(
    make_store: Callable[..., StateStore],
) -> None:
    """Two workers (two stores), one per direction, update the same 40 person mappings at the
    same time, 15 rounds each: every row ends with each direction's own last round."""
    persons = _persons(40)
    first = make_store()
    first.mappings.put_many(persons)
    d2m_store, m2d_store = make_store(), make_store()
    rounds = 15
    start = threading.Barrier(2)

    def d2m() -> None:
        start.wait()
        for r in range(rounds):
            for entity in ("lead", "contact"):
                d2m_store.mappings.update_many(
                    INSTANCE,
                    entity,
                    [
                        MappingUpdate(
                            m.dynamics_id,
                            dynamics_version=f"d2m-{r}",
                            marketo_hash=f"m-{r}",
                            marketo_fields={"email": f"w{r}"},
                            dynamics_read_fields={"emailaddress1": f"r{r}"},
                            sync_filter=SyncFilter.YES,
                        )
                        for m in persons
                        if m.entity == entity
                    ],
                )

    def m2d() -> None:
        start.wait()
        for r in range(rounds):
            for entity in ("contact", "lead"):
                m2d_store.mappings.update_many(
                    INSTANCE,
                    entity,
                    [
                        MappingUpdate(
                            m.dynamics_id,
                            marketo_version=f"m2d-{r}",
                            dynamics_hash=f"d-{r}",
                            dynamics_fields={"emailaddress1": f"w{r}"},
                            marketo_read_fields={"email": f"r{r}"},
                        )
                        for m in persons
                        if m.entity == entity
                    ],
                )

    threads = [threading.Thread(target=d2m), threading.Thread(target=m2d)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last = rounds - 1
    for entity in ("lead", "contact"):
        ids = [m.dynamics_id for m in persons if m.entity == entity]
        for m in first.mappings.get_many(INSTANCE, entity, ids).values():
            assert (m.dynamics_version, m.marketo_hash, m.sync_filter) == (
                f"d2m-{last}",
                f"m-{last}",
                SyncFilter.YES,
            )
            assert m.marketo_fields == {"email": f"w{last}"}
            assert m.dynamics_read_fields == {"emailaddress1": f"r{last}"}
            assert (m.marketo_version, m.dynamics_hash) == (f"m2d-{last}", f"d-{last}")
            assert m.dynamics_fields == {"emailaddress1": f"w{last}"}
            assert m.marketo_read_fields == {"email": f"r{last}"}
            assert m.marketo_written_at is not None and m.dynamics_written_at is not None


# --- tables written by the first layout -------------------------------------------------------


def _first_layout_rows(mapping: IdMapping) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mapping row and index row exactly as the first layout wrote them (its
    ``forward_entity`` and ``reverse_entity``, kept here verbatim in effect)."""
    buckets = MappingLayout().buckets

    def bucket(record_id: str) -> str:
        return MappingLayout(buckets).bucket_label(record_id)

    forward = {
        "PartitionKey": join_key(mapping.instance_id, mapping.entity, bucket(mapping.dynamics_id)),
        "RowKey": encode_component(mapping.dynamics_id),
        "schema": 1,
        "marketo_type": mapping.marketo_type,
        "marketo_id": mapping.marketo_id,
        "deleted_in_dynamics": False,
        "sync_filter": "yes",
        "dynamics_version": "41",
        "marketo_hash": "h" * 64,
        "marketo_fields": '{"email":"e1"}',
        "created_at": T0,
        "updated_at": T0,
        "marketo_written_at": T0,
    }
    reverse = {
        "PartitionKey": join_key(mapping.instance_id, mapping.entity, bucket(mapping.marketo_id)),
        "RowKey": encode_component(mapping.marketo_id),
        "schema": 1,
        "dynamics_id": mapping.dynamics_id,
        "marketo_type": mapping.marketo_type,
        "updated_at": T0,
    }
    return forward, reverse


def _write_first_layout(store: StateStore, mappings: list[IdMapping]) -> None:
    """Tables as a deployed instance has them: layout row without ``index_layout``, mapping
    rows of schema 1, index rows in ``MappingsByMarketo``."""
    config = store.tables.client(TableKind.CONFIG)
    config.create_entity({"PartitionKey": "layout", "RowKey": "id-mappings", "buckets": 16})
    rows = [_first_layout_rows(m) for m in mappings]
    submit_all(
        store.tables.client(TableKind.MAPPINGS_BY_MARKETO),
        [TableOperation("upsert", reverse) for _, reverse in rows],
        "writing first-layout index rows",
    )
    submit_all(
        store.tables.client(TableKind.MAPPINGS),
        [TableOperation("upsert", forward) for forward, _ in rows],
        "writing first-layout mapping rows",
    )


def test_tables_of_the_first_layout_are_read_in_place_and_their_index_backfilled(
    make_store: Callable[..., StateStore], request_log: RequestLog
) -> None:
    """A deployed instance's rows, untouched: read by Dynamics id as they are; the first
    lookup by Marketo id backfills the index (once: a second store finds it done) and then
    lookups cost the index read and the mapping reads; no resync, no rewrite of a row."""
    old = [*_persons(60), IdMapping(INSTANCE, "account", "a-1", "company", "77")]
    store = make_store()
    _write_first_layout(store, old)
    mapping_table = store.tables.client(TableKind.MAPPINGS)
    etags = {r["RowKey"]: r.metadata["etag"] for r in mapping_table.list_entities()}
    contacts = [m for m in old if m.entity == "contact"]
    found = store.mappings.get_many(INSTANCE, "contact", [m.dynamics_id for m in contacts])
    sample = found[contacts[0].dynamics_id]
    assert (sample.marketo_id, sample.dynamics_version, sample.marketo_fields) == (
        contacts[0].marketo_id,
        "41",
        {"email": "e1"},
    )
    assert sample.dynamics_fields is None and sample.created_at == T0
    assert not store.mappings.marketo_index_ready(INSTANCE)

    persons = [m for m in old if m.marketo_type == "lead"]
    wanted = [m.marketo_id for m in persons]
    by_marketo = store.mappings.find_by_marketo(INSTANCE, "lead", wanted)
    assert {k: m.dynamics_id for k, m in by_marketo.items()} == {
        m.marketo_id: m.dynamics_id for m in persons
    }
    index_rows = list(store.tables.client(TableKind.MARKETO_INDEX).list_entities())
    assert len(index_rows) == len(persons)  # persons only: the account is not indexed
    assert store.mappings.marketo_index_ready(INSTANCE)

    later = make_store()  # another worker: finds the backfill done
    _warm(later)
    request_log.clear()
    assert len(later.mappings.find_by_marketo(INSTANCE, "lead", wanted)) == len(persons)
    layout = later.mappings.layout
    expected = (
        1  # the backfill's progress row
        + _index_reads(layout, wanted)
        + sum(
            _queries(layout, [m.dynamics_id for m in persons if m.entity == e])
            for e in ("lead", "contact")
        )
    )
    assert len(request_log.requests) == expected
    assert later.mappings.get_many_by_marketo(INSTANCE, "account", ["77"])["77"].dynamics_id == (
        "a-1"
    )
    assert {r["RowKey"]: r.metadata["etag"] for r in mapping_table.list_entities()} == etags


def test_a_backfill_resumes_where_a_killed_worker_stopped_and_keeps_newer_rows(
    make_store: Callable[..., StateStore],
) -> None:
    """Page by page with a saved position; an index row written by a live mapping meanwhile
    (Marketo 1001 moved to another contact) is not overwritten by the backfill."""
    old = _persons(30)
    store = make_store()
    _write_first_layout(store, old)
    created, position = store.mappings.backfill_marketo_index(INSTANCE, limit=10)
    assert created == 10 and position is not None
    index = store.tables.client(TableKind.MARKETO_INDEX)
    done = {decode_component(r["RowKey"]) for r in index.list_entities()}
    assert len(done) == 10
    taken = next(m.marketo_id for m in old if m.marketo_id not in done)  # not indexed yet
    store.mappings.put(IdMapping(INSTANCE, "contact", "new-contact", "lead", taken))
    created, position = store.mappings.backfill_marketo_index(INSTANCE, after=position, limit=10)
    assert position is not None and created <= 10
    # the worker is killed here; another one looks a lead up and finishes the backfill
    successor = make_store()
    found = successor.mappings.find_by_marketo(INSTANCE, "lead", [m.marketo_id for m in old])
    assert found[taken].dynamics_id == "new-contact"
    assert {k for k in found} == {m.marketo_id for m in old}
    assert successor.mappings.marketo_index_ready(INSTANCE)


def test_deleting_on_first_layout_tables_cleans_both_indexes(
    make_store: Callable[..., StateStore],
) -> None:
    """delete_many drops the mapping, its new index row and its first-layout row; the copy
    check (has_any) sees first-layout rows while there are any."""
    old = _persons(4)
    store = make_store()
    _write_first_layout(store, old)
    store.mappings.find_by_marketo(INSTANCE, "lead", ["1001"])  # backfills
    contacts = [m.dynamics_id for m in old if m.entity == "contact"]
    assert store.mappings.delete_many(INSTANCE, "contact", contacts) == 3
    legacy = store.tables.client(TableKind.MAPPINGS_BY_MARKETO)
    index = store.tables.client(TableKind.MARKETO_INDEX)
    assert [decode_component(r["RowKey"]) for r in legacy.list_entities()] == ["1000"]
    assert [decode_component(r["RowKey"]) for r in index.list_entities()] == ["1000"]
    assert store.mappings.delete_many(INSTANCE, "lead", [old[0].dynamics_id]) == 1
    assert not store.mappings.has_any(INSTANCE)
    legacy.upsert_entity(_first_layout_rows(IdMapping("other", "contact", "c", "lead", "5"))[1])
    assert store.mappings.has_any("other")


def test_a_sync_reads_only_the_memory_columns_when_it_asks(store: StateStore) -> None:
    """``columns=MEMORY_COLUMNS``: every decision field of both sides, no timestamps."""
    mapping = IdMapping(
        INSTANCE,
        "contact",
        "c-1",
        "lead",
        "5",
        marketo_hash="m",
        marketo_fields={"email": "1"},
        dynamics_fields={"emailaddress1": "2"},
        marketo_read_fields={"email": "3"},
        dynamics_read_fields={"emailaddress1": "4"},
        marketo_version="v",
        deleted_in_dynamics=True,
        sync_filter=SyncFilter.NO,
    )
    stored = store.mappings.put(mapping)
    [light] = store.mappings.get_many(INSTANCE, "contact", ["c-1"], columns=MEMORY_COLUMNS).values()
    assert light == replace(stored, created_at=None, updated_at=None)
