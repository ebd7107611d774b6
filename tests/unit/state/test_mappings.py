"""ID mapping partitioning (a million GUIDs over the buckets), keys and row conversion."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.state.keys import is_valid_key, split_key
from shared.state.mapping_rows import (
    forward_entity,
    index_entity,
    index_from_entity,
    mapping_from_entity,
    reverse_entity,
    reverse_from_entity,
    update_entity,
)
from shared.state.mappings import (
    DEFAULT_BUCKETS,
    IdMapping,
    MappingConflictError,
    MappingLayout,
    MappingUpdate,
    SyncFilter,
    fields_hash,
    index_partition_label,
    normalize_dynamics_id,
    split_conflicts,
    stable_bucket,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CHI_SQUARE_15_DOF_P001 = 37.70
"""Chi-square critical value for 15 degrees of freedom at p = 0.001."""


def _guids(count: int, seed: int) -> list[str]:
    """``count`` random version-4-shaped GUID strings, reproducibly."""
    text = random.Random(seed).randbytes(16 * count).hex()
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:32]}"
        for h in (text[i : i + 32] for i in range(0, len(text), 32))
    ]


def _chi_square(counts: Counter[int], buckets: int) -> float:
    expected = sum(counts.values()) / buckets
    return sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(buckets))


def test_a_million_guids_spread_evenly_over_the_default_buckets() -> None:
    """1,000,000 GUIDs land ~62,500 per bucket: every bucket within 1%, chi-square passes."""
    counts = Counter(stable_bucket(g, DEFAULT_BUCKETS) for g in _guids(1_000_000, seed=20260501))
    assert set(counts) == set(range(DEFAULT_BUCKETS))
    assert max(abs(c - 62_500) for c in counts.values()) < 625
    assert _chi_square(counts, DEFAULT_BUCKETS) < CHI_SQUARE_15_DOF_P001


def test_sequential_marketo_ids_spread_evenly_too() -> None:
    """Marketo's increasing integer ids do not cluster (the hash, not the value, decides)."""
    counts = Counter(stable_bucket(str(i), DEFAULT_BUCKETS) for i in range(1, 200_001))
    assert _chi_square(counts, DEFAULT_BUCKETS) < CHI_SQUARE_15_DOF_P001


def test_buckets_are_stable_across_processes_and_versions() -> None:
    """Known ids keep their buckets (a change would strand every stored mapping)."""
    assert stable_bucket("3f2504e0-4f89-11d3-9a0c-0305e82c3301", 16) == 12
    assert stable_bucket("12345", 16) == 1
    assert stable_bucket("jane@contoso.com", 1000) == 730


def test_a_batch_of_300_touches_at_most_the_bucket_count() -> None:
    """Lookups for 300 records go to ≤16 partitions, so a batch costs tens of requests."""
    layout = MappingLayout()
    partitions = {layout.forward_key("i", "contact", g)[0] for g in _guids(300, seed=3)}
    assert len(partitions) <= DEFAULT_BUCKETS


def test_keys_are_valid_and_name_instance_entity_and_bucket() -> None:
    """Forward PartitionKey decodes to (instance, entity, zero-padded bucket)."""
    layout = MappingLayout(buckets=100)
    pk, rk = layout.forward_key("org/1", "contact", "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert is_valid_key(pk) and is_valid_key(rk)
    instance, entity, bucket = split_key(pk)
    assert (instance, entity, len(bucket)) == ("org/1", "contact", 2)
    low, high = layout.instance_range("org/1")
    assert low <= pk < high
    with pytest.raises(ValueError, match="buckets"):
        MappingLayout(buckets=0)


def test_dynamics_ids_are_normalised() -> None:
    """Braces and case do not make a second mapping for the same GUID."""
    assert normalize_dynamics_id(" {3F2504E0-4F89-11D3-9A0C-0305E82C3301} ") == (
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    )
    mapping = IdMapping("i", "contact", "{ABC}", "lead", " 42 ")
    assert (mapping.dynamics_id, mapping.marketo_id) == ("abc", "42")
    with pytest.raises(ValueError, match="empty"):
        IdMapping("i", "contact", "{}", "lead", "1")


def test_mapping_and_index_rows_round_trip() -> None:
    """The mapping row is the whole mapping, memory of both sides included; the index row is
    keyed by Marketo type and points back to the entity and Dynamics id."""
    layout = MappingLayout()
    mapping = IdMapping(
        "i1",
        "contact",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "lead",
        "1001",
        dynamics_version="998877",
        dynamics_hash="d" * 64,
        marketo_hash="m" * 64,
        deleted_in_dynamics=True,
        sync_filter=SyncFilter.NO,
        created_at=T0,
        updated_at=T0,
        marketo_written_at=T0,
        marketo_fields={"email": "e1"},
        dynamics_fields={"emailaddress1": "e2"},
        dynamics_read_fields={"emailaddress1": "e3", "firstname": "f3"},
        marketo_read_fields={"email": "e4"},
        marketo_version="2026-05-01T12:00:00Z",
    )
    row = forward_entity(mapping, layout)
    assert mapping_from_entity(row) == mapping
    assert "deleted_in_dynamics" not in forward_entity(
        replace(mapping, deleted_in_dynamics=False), layout
    )
    index = index_entity(mapping, layout)
    assert index["PartitionKey"] == layout.index_key("i1", "lead", "1001")[0]
    assert split_key(index["PartitionKey"])[:2] == ("i1", "lead")
    assert index_from_entity(index) == ("1001", "contact", mapping.dynamics_id)
    reverse = reverse_entity(mapping, layout)  # the first layout's, keyed by entity
    assert reverse["PartitionKey"] == layout.reverse_key("i1", "contact", "1001")[0]
    assert reverse_from_entity(reverse) == ("1001", mapping.dynamics_id)


def test_a_row_of_the_first_layout_reads_with_empty_new_memory() -> None:
    """A mapping row as the first layout wrote it (schema 1, every property spelled out)."""
    layout = MappingLayout()
    partition_key, row_key = layout.forward_key("i1", "contact", "abc-1")
    old_row = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": 1,
        "marketo_type": "lead",
        "marketo_id": "77",
        "deleted_in_dynamics": False,
        "sync_filter": "yes",
        "dynamics_version": "5",
        "marketo_hash": "m" * 64,
        "marketo_fields": '{"email":"h1"}',
        "created_at": T0,
        "updated_at": T0,
        "marketo_written_at": T0,
    }
    mapping = mapping_from_entity(old_row)
    assert (mapping.marketo_id, mapping.sync_filter, mapping.marketo_fields) == (
        "77",
        SyncFilter.YES,
        {"email": "h1"},
    )
    assert mapping.dynamics_fields is None and mapping.marketo_read_fields is None
    assert mapping.dynamics_read_fields is None and mapping.marketo_version is None


def test_updates_carry_only_the_fields_they_set() -> None:
    """A Marketo-side update never touches the Dynamics-side hash, and vice versa."""
    row = update_entity(
        "i", "contact", MappingUpdate("ABC", marketo_hash="h1"), MappingLayout(), T0
    )
    assert set(row) == {
        "PartitionKey",
        "RowKey",
        "updated_at",
        "marketo_hash",
        "marketo_written_at",
    }
    row = update_entity(
        "i",
        "contact",
        MappingUpdate("ABC", deleted_in_dynamics=False, sync_filter=SyncFilter.YES),
        MappingLayout(),
        T0,
    )
    assert row["deleted_in_dynamics"] is False and row["sync_filter"] == "yes"
    assert "dynamics_hash" not in row


def test_each_direction_updates_only_its_own_memory() -> None:
    """What Marketo → Dynamics sets never names a property Dynamics → Marketo writes, and the
    other way round: MERGE keeps the other's."""
    m2d = update_entity(
        "i",
        "contact",
        MappingUpdate(
            "ABC",
            dynamics_hash="d",
            dynamics_fields={"firstname": "1"},
            marketo_read_fields={"firstName": "2"},
            marketo_version="v9",
        ),
        MappingLayout(),
        T0,
    )
    d2m = update_entity(
        "i",
        "contact",
        MappingUpdate(
            "ABC",
            dynamics_version="7",
            marketo_hash="m",
            marketo_fields={"firstName": "3"},
            dynamics_read_fields={"firstname": "4"},
            sync_filter=SyncFilter.YES,
        ),
        MappingLayout(),
        T0,
    )
    shared = {"PartitionKey", "RowKey", "updated_at"}
    assert set(m2d) - shared == {
        "dynamics_hash",
        "dynamics_written_at",
        "dynamics_fields",
        "marketo_read",
        "marketo_version",
    }
    assert (set(m2d) - shared).isdisjoint(set(d2m) - shared)


def test_two_records_resolved_to_one_record_of_the_other_side_are_split_out() -> None:
    """The first keeps the Marketo record, the second is reported naming both; a repeat of
    the same pair, or the same Marketo id of another type or instance, is no conflict; two
    Marketo records for one Dynamics record are the mirror conflict."""
    first = IdMapping("i", "opportunity_role", "d-1", "opportunityRole", "7")
    again = IdMapping("i", "opportunity_role", "D-1", "opportunityRole", "7")
    second = IdMapping("i", "opportunity_role", "d-2", "opportunityRole", "7")
    other_type = IdMapping("i", "contact", "d-3", "lead", "7")
    other_instance = IdMapping("j", "opportunity_role", "d-4", "opportunityRole", "7")
    ok, conflicts = split_conflicts([first, again, second, other_type, other_instance])
    assert ok == [first, again, other_type, other_instance]
    assert [(c.kept.dynamics_id, c.refused.dynamics_id, c.marketo_id) for c in conflicts] == [
        ("d-1", "d-2", "7")
    ]
    relinked = IdMapping("i", "opportunity_role", "D-1", "opportunityRole", "8")
    ok, conflicts_too = split_conflicts([first, relinked])
    assert ok == [first] and [c.refused for c in conflicts_too] == [relinked]
    assert "a Dynamics record maps to one Marketo record" in conflicts_too[0].describe()
    error = MappingConflictError(conflicts)
    assert isinstance(error, ValueError) and error.conflicts == conflicts
    assert "d-1" in str(error) and "d-2" in str(error)


def test_fields_hash_is_order_independent_and_value_sensitive() -> None:
    """Same values in any order hash alike; any changed value changes the hash."""
    assert fields_hash({"a": 1, "b": "x"}) == fields_hash({"b": "x", "a": 1})
    assert fields_hash({"a": 1}) != fields_hash({"a": 2})
    assert len(fields_hash({})) == 64


def test_index_partitions_follow_marketo_id_ranges() -> None:
    """Consecutive integer ids share a partition of at most 1,000; other ids (GUID-like,
    or digits that are not ASCII) fall back to the hash bucket."""
    layout = MappingLayout()
    labels = {index_partition_label(str(i), layout) for i in range(1_000_000, 1_000_300)}
    assert labels == {"n1000"}
    assert index_partition_label("1000999", layout) == "n1000"
    assert index_partition_label("1001000", layout) == "n1001"
    assert index_partition_label("ab-12", layout) == layout.bucket_label("ab-12")
    assert index_partition_label("١٢٣", layout) == layout.bucket_label("١٢٣")
    partition_key, row_key = layout.index_key("i", "lead", "1000123")
    assert split_key(partition_key) == ("i", "lead", "n1000") and row_key == "1000123"


def test_row_conversions_are_still_importable_from_their_old_module() -> None:
    """Callers of the first layout's module path keep working."""
    from shared.state import mapping_rows, mappings

    assert mappings.forward_entity is mapping_rows.forward_entity
    assert mappings.SCHEMA_VERSION == 2
    with pytest.raises(AttributeError):
        _ = mappings.no_such_name
