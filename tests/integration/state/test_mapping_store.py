"""ID mappings on Azurite: bulk reads and writes at a counted handful of requests, the Marketo-id
index's crash behaviour, field-level updates, and the layout guard.

Lookups by Marketo id, the memory of both directions and tables of the first layout:
``test_mapping_index.py``."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import ConfigurationError
from shared.state.keys import decode_component, encode_component
from shared.state.mapping_rows import index_entity
from shared.state.mappings import (
    IdMapping,
    MappingConflictError,
    MappingLayout,
    MappingUpdate,
    SyncFilter,
)
from shared.state.store import StateStore
from shared.state.tables import TableKind
from shared.state.transactions import TableOperation, submit_all
from tests.integration.state.conftest import RequestLog

pytestmark = pytest.mark.integration

INSTANCE, ENTITY = "contoso", "contact"


def _guids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
        for _ in range(count)
    ]


def _mappings(count: int, seed: int = 1) -> list[IdMapping]:
    return [
        IdMapping(INSTANCE, ENTITY, guid, "lead", str(1_000_000 + i))
        for i, guid in enumerate(_guids(count, seed))
    ]


def _expected_queries(layout: MappingLayout, ids: list[str], per_query: int = 14) -> int:
    per_bucket = Counter(layout.bucket_label(i) for i in ids)
    return sum(math.ceil(n / per_query) for n in per_bucket.values())


def test_a_300_record_batch_costs_a_handful_of_requests(
    store: StateStore, request_log: RequestLog
) -> None:
    """Writing 300 new mappings and reading them back both ways, counted at the transport."""
    mappings = _mappings(300)
    layout = store.mappings.layout
    store.ensure_tables()
    store.mappings.get("warm-up", ENTITY, "x")  # the once-per-process layout check
    request_log.clear()

    store.mappings.put_many(mappings)
    forward_buckets = {layout.bucket_label(m.dynamics_id) for m in mappings}
    index_partitions = {layout.index_key(INSTANCE, "lead", m.marketo_id)[0] for m in mappings}
    assert len(index_partitions) == 1  # Marketo ids 1,000,000-1,000,299: one id range
    reverse_buckets = [1] * math.ceil(300 / 100)  # so 100 index rows a transaction
    assert request_log.count("POST", "$batch") == len(forward_buckets) + len(reverse_buckets)
    assert len(request_log.requests) == len(forward_buckets) + len(reverse_buckets) <= 19

    request_log.clear()
    found = store.mappings.get_many(INSTANCE, ENTITY, [m.dynamics_id.upper() for m in mappings])
    assert len(found) == 300
    read_cost = _expected_queries(layout, [m.dynamics_id for m in mappings])
    assert len(request_log.requests) == request_log.count("GET") == read_cost <= 32

    request_log.clear()
    by_marketo = store.mappings.find_by_marketo(INSTANCE, "lead", [m.marketo_id for m in mappings])
    assert {k: v.dynamics_id for k, v in by_marketo.items()} == {
        m.marketo_id: m.dynamics_id for m in mappings
    }
    index_cost = 1  # one scan of the id range's partition
    assert len(request_log.requests) == index_cost + read_cost <= 64


def test_many_ids_of_one_partition_are_read_by_scanning_it(
    make_store: Callable[..., StateStore], request_log: RequestLog
) -> None:
    """200 of 250 rows of a partition, and 3 missing ids: one scan request instead of 15
    filtered queries; the link form reads the same rows with three columns."""
    store = make_store(mapping_buckets=1)
    mappings = _mappings(250, seed=3)
    store.mappings.put_many([replace(m, deleted_in_dynamics=i % 2 == 0) for i, m in
                             enumerate(mappings)])  # fmt: skip
    wanted = [m.dynamics_id.upper() for m in mappings[:200]] + _guids(3, seed=99)
    request_log.clear()
    found = store.mappings.get_many(INSTANCE, ENTITY, wanted)
    assert {k: v.marketo_id for k, v in found.items()} == {
        m.dynamics_id: m.marketo_id for m in mappings[:200]
    }
    assert len(request_log.requests) == 1
    request_log.clear()
    links = store.mappings.link_states(INSTANCE, ENTITY, wanted)
    assert links == {m.dynamics_id: (m.marketo_id, i % 2 == 0) for i, m in
                     enumerate(mappings[:200])}  # fmt: skip
    assert len(request_log.requests) == 1


def test_a_sparse_scan_gives_way_to_filters(
    make_store: Callable[..., StateStore], request_log: RequestLog
) -> None:
    """A big partition holding few of the wanted ids: the scan stops after its first page and
    filtered queries fetch the rest; pages dense enough keep the scan going to the end."""
    store = make_store(mapping_buckets=1)
    mappings = _mappings(400, seed=4)
    store.mappings.put_many(mappings)
    store.mappings.scan_page = 100
    store.mappings.scan_min_ids = 10
    store.mappings.scan_min_hits_whole_rows = 20
    store.mappings.scan_min_hits = 1000  # link_states' own threshold: not used by get_many
    ordered = sorted(mappings, key=lambda m: encode_component(m.dynamics_id))
    sparse = [m.dynamics_id for m in ordered[::10]]  # 10 per 100-row page
    request_log.clear()
    assert set(store.mappings.get_many(INSTANCE, ENTITY, sparse)) == set(sparse)
    # one scan page (10 hits < 20), then the other 30 ids by filters of 14
    assert len(request_log.requests) == 1 + math.ceil(30 / 14)
    dense = [m.dynamics_id for m in ordered[::2]] + _guids(2, seed=98)  # 50 per page
    request_log.clear()
    assert set(store.mappings.get_many(INSTANCE, ENTITY, dense)) == set(dense[:-2])
    assert len(request_log.requests) == 4  # the whole partition, no filters for the missing
    # a few columns (link_states) have their own threshold: 50 hits < 1000 stops the scan
    request_log.clear()
    assert len(store.mappings.link_states(INSTANCE, ENTITY, dense)) == 200
    assert len(request_log.requests) == 1 + math.ceil((200 - 50 + 2) / 14)


def test_whole_rows_are_scanned_only_when_a_third_of_a_page_is_wanted(
    make_store: Callable[..., StateStore], request_log: RequestLog
) -> None:
    """At the default thresholds, a 1,500-row partition of which a fifth is wanted: whole rows
    are read by filters after the first page, the three link columns by scanning on."""
    store = make_store(mapping_buckets=1)
    mappings = _mappings(1500, seed=6)
    store.mappings.put_many(mappings)
    ordered = sorted(mappings, key=lambda m: encode_component(m.dynamics_id))
    wanted = [m.dynamics_id for m in ordered[::5]]  # 200 per 1,000-row page
    request_log.clear()
    assert len(store.mappings.get_many(INSTANCE, ENTITY, wanted)) == 300
    assert len(request_log.requests) == 1 + math.ceil(100 / 14)
    request_log.clear()
    assert len(store.mappings.link_states(INSTANCE, ENTITY, wanted)) == 300
    assert len(request_log.requests) == 2  # both pages of the partition


def test_more_than_100_rows_in_one_partition(
    make_store: Callable[..., StateStore], request_log: RequestLog
) -> None:
    """With one bucket, 250 mappings take three transactions per table and all read back
    with one scan of the partition."""
    store = make_store(mapping_buckets=1)
    mappings = _mappings(250, seed=2)
    store.ensure_tables()
    store.mappings.get("warm-up", ENTITY, "x")
    request_log.clear()
    store.mappings.put_many(mappings)
    assert request_log.count("POST", "$batch") == 6  # 100 + 100 + 50, on each table
    request_log.clear()
    found = store.mappings.get_many(INSTANCE, ENTITY, [m.dynamics_id for m in mappings])
    assert set(found) == {m.dynamics_id for m in mappings}
    assert request_log.count("GET") == 1  # one scan page, not ⌈250 / 14⌉ filtered queries


def test_rows_across_partitions_and_point_reads(store: StateStore) -> None:
    """Rows of several buckets are written and found one by one in both directions."""
    mappings = store.mappings.put_many(_mappings(40, seed=3))
    assert len({store.mappings.layout.bucket_label(m.dynamics_id) for m in mappings}) > 1
    for m in mappings[:5]:
        assert store.mappings.get(INSTANCE, ENTITY, "{" + m.dynamics_id.upper() + "}") == m
        assert store.mappings.get_by_marketo(INSTANCE, ENTITY, m.marketo_id) == m
    assert store.mappings.get(INSTANCE, "lead", mappings[0].dynamics_id) is None
    assert store.mappings.get("other", ENTITY, mappings[0].dynamics_id) is None


def test_a_crash_between_the_two_writes_leaves_a_harmless_orphan(store: StateStore) -> None:
    """Only the index row was written (the crash): lookups either way find nothing; the
    replayed put_many repairs it."""
    mapping = _mappings(1, seed=4)[0]
    submit_all(
        store.tables.client(TableKind.MARKETO_INDEX),
        [TableOperation("upsert", index_entity(mapping, store.mappings.layout))],
        "simulating the first write",
    )
    assert store.mappings.find_by_marketo(INSTANCE, "lead", [mapping.marketo_id]) == {}
    assert store.mappings.get_by_marketo(INSTANCE, ENTITY, mapping.marketo_id) is None
    assert store.mappings.get_many_by_marketo(INSTANCE, ENTITY, [mapping.marketo_id]) == {}
    assert store.mappings.get(INSTANCE, ENTITY, mapping.dynamics_id) is None
    store.mappings.put_many([mapping])
    assert store.mappings.get_by_marketo(INSTANCE, ENTITY, mapping.marketo_id) is not None


def test_relinking_leaves_the_old_index_row_ignored(store: StateStore) -> None:
    """D moves from Marketo 1 to Marketo 2: looking up Marketo 1 no longer finds D."""
    first = IdMapping(INSTANCE, ENTITY, "aaaa-1", "lead", "1")
    store.mappings.put(first)
    moved = store.mappings.put(IdMapping(INSTANCE, ENTITY, "aaaa-1", "lead", "2"))
    assert moved.created_at is not None
    assert store.mappings.get_by_marketo(INSTANCE, ENTITY, "1") is None
    assert store.mappings.get_many_by_marketo(INSTANCE, ENTITY, ["1", "2"]) == {"2": moved}


def test_one_marketo_record_cannot_take_two_dynamics_records_in_a_call(store: StateStore) -> None:
    """Identity is one-to-one; a call that breaks it is refused before writing, with a typed
    error naming the conflict (split_conflicts lets the caller store the rest)."""
    with pytest.raises(MappingConflictError, match="one Dynamics record") as raised:
        store.mappings.put_many(
            [
                IdMapping(INSTANCE, ENTITY, "d-1", "lead", "7"),
                IdMapping(INSTANCE, ENTITY, "d-2", "lead", "7"),
            ]
        )
    assert store.mappings.get(INSTANCE, ENTITY, "d-1") is None
    assert [(c.kept.dynamics_id, c.refused.dynamics_id) for c in raised.value.conflicts] == [
        ("d-1", "d-2")
    ]
    assert isinstance(raised.value, ValueError)  # what callers caught before


def test_field_updates_from_both_directions_do_not_clobber(store: StateStore) -> None:
    """d2m writes the Marketo hash, m2d the Dynamics hash; both survive; missing ids reported."""
    mappings = _mappings(120, seed=5)
    store.mappings.put_many(mappings)
    ids = [m.dynamics_id for m in mappings]
    missing = store.mappings.update_many(
        INSTANCE,
        ENTITY,
        [MappingUpdate(i, marketo_hash="m-hash", dynamics_version="101") for i in ids]
        + [MappingUpdate("not-mapped-1", marketo_hash="x")],
    )
    assert missing == ["not-mapped-1"]
    store.mappings.update_many(
        INSTANCE,
        ENTITY,
        [MappingUpdate(i, dynamics_hash="d-hash", sync_filter=SyncFilter.NO) for i in ids[:10]]
        + [MappingUpdate("not-mapped-2", deleted_in_dynamics=True)],
    )
    found = store.mappings.get_many(INSTANCE, ENTITY, ids)
    assert all(m.marketo_hash == "m-hash" and m.dynamics_version == "101" for m in found.values())
    both = found[ids[0]]
    assert (both.dynamics_hash, both.sync_filter) == ("d-hash", SyncFilter.NO)
    assert both.marketo_written_at is not None and both.dynamics_written_at is not None
    assert found[ids[50]].dynamics_hash is None


def test_delete_removes_both_rows_but_not_a_relinked_index(store: StateStore) -> None:
    """Deleting D's mapping drops its index row, unless the Marketo record now maps elsewhere."""
    store.mappings.put_many(
        [
            IdMapping(INSTANCE, ENTITY, "d-1", "lead", "1"),
            IdMapping(INSTANCE, ENTITY, "d-2", "lead", "2"),
        ]
    )
    store.mappings.put(IdMapping(INSTANCE, ENTITY, "d-3", "lead", "2"))  # 2 re-linked to d-3
    assert store.mappings.delete_many(INSTANCE, ENTITY, ["d-1", "d-2", "d-9"]) == 2
    assert store.mappings.get(INSTANCE, ENTITY, "d-1") is None
    assert store.mappings.get_by_marketo(INSTANCE, ENTITY, "1") is None
    index = store.tables.client(TableKind.MARKETO_INDEX)
    assert [decode_component(r["RowKey"]) for r in index.list_entities()] == ["2"]
    assert store.mappings.get_by_marketo(INSTANCE, ENTITY, "2") is not None


def test_has_any_sees_only_its_own_instance(store: StateStore) -> None:
    """The copy check finds mappings of an instance, and not of one whose id is a prefix."""
    store.mappings.put(IdMapping("contoso-eu", ENTITY, "d-1", "lead", "1"))
    assert store.mappings.has_any("contoso-eu")
    assert not store.mappings.has_any("contoso")


def test_has_any_per_entity_sees_only_that_entity(store: StateStore) -> None:
    """Per entity: an entity whose name is a prefix of another's, or an index row without its
    mapping, does not count."""
    store.mappings.put(IdMapping("i1", "opportunity_customer", "d-1", "opportunity_role", "g1"))
    assert store.mappings.has_any("i1", entity="opportunity_customer")
    assert not store.mappings.has_any("i1", entity="opportunity")
    index = store.tables.client(TableKind.MARKETO_INDEX)
    index.upsert_entity(
        index_entity(IdMapping("i1", "contact", "d-2", "lead", "5"), store.mappings.layout)
    )
    assert not store.mappings.has_any("i1", entity="contact")
    assert store.mappings.has_any("i1")


def test_the_bucket_count_cannot_change_under_existing_tables(
    make_store: Callable[..., StateStore],
) -> None:
    """A store configured with another bucket count refuses to read or write mappings."""
    make_store().mappings.put(IdMapping(INSTANCE, ENTITY, "d-1", "lead", "1"))
    with pytest.raises(ConfigurationError, match="16 buckets"):
        make_store(mapping_buckets=8).mappings.get(INSTANCE, ENTITY, "d-1")


@given(st.text(max_size=60), st.text(max_size=60))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_service_accepts_any_encoded_key(store: StateStore, first: str, second: str) -> None:
    """Arbitrary text, encoded, is stored and point-read by the real key rules (Azurite)."""
    client = store.tables.client(TableKind.CONFIG)
    partition, row = encode_component(first), encode_component(second)
    client.upsert_entity({"PartitionKey": partition, "RowKey": row, "v": second})
    stored = client.get_entity(partition, row)
    assert (decode_component(stored["PartitionKey"]), stored["v"]) == (first, second)
