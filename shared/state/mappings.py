"""ID mappings: one Dynamics record ↔ one Marketo record, per (instance, entity). Pure part.

Partitioning
------------
The sync looks up a mapping for every record of a batch (up to 5,000), so rows are spread over
a fixed number of *buckets* per (instance, entity) and a batch is read with one query per
touched bucket (more when a bucket holds more ids than one filter may name; see
:func:`shared.state.odata.key_lookup_filters`)::

    mapping (table Mappings):         PK = instance ! entity ! bucket(dynamics id)
                                      RK = dynamics id         → the whole mapping
    index   (table MarketoIndex):     PK = instance ! marketo type ! range(marketo id)
                                      RK = marketo id          → entity, dynamics id

(``range``: ``n`` + id // 1,000 for Marketo's integer ids, the hash bucket for other ids; see
:func:`index_partition_label`.)

The index exists only for the Marketo types the store is told to index
(:data:`DEFAULT_INDEXED_TYPES`: persons, which the Marketo → Dynamics direction looks up by
Marketo id; a Marketo lead may be a Dynamics lead *or* contact, which is why the index is
keyed by Marketo type and names the entity). One-way entities have no index rows.
The table ``MappingsByMarketo`` holds the index of the first layout (keyed by entity); it is
no longer written, and only cleaned up (see :mod:`shared.state.marketo_index`).

``bucket(id) = blake2b-64(id) mod N`` (N = :attr:`MappingLayout.buckets`, default 16), written as
a zero-padded decimal. The hash is stable across processes and Python versions (unlike
``hash()``), and spreads ids evenly whatever their shape (GUIDs, integers, e-mail-like keys).
N is fixed for the life of a table: the store records it on first use and refuses to run
with a different one (rows would be looked for in the wrong bucket).

Dynamics ids are GUIDs and compared case-insensitively by Dataverse, so they are normalised to
lower case without braces; Marketo ids are kept as given (trimmed).

Memory of both sides
--------------------
Per record the mapping row holds what the sync needs: the Marketo object type and id, the
version of each side last read, per-field hashes of the values last written to and read from
each side (echo suppression and per-field conflicts both ways), whether the record was deleted
in Dynamics, the last seen value of the sync filter field (``new_synctomkto``), and timestamps.

The two directions of a person entity are two streams, each under its own lease, running at
the same time, and both update the same row. Each property has **one owning direction**, and
:class:`MappingUpdate` is written as a MERGE of only the properties it sets, so neither
direction can overwrite what the other wrote:

===============================  ===========================================================
Dynamics → Marketo writes        ``dynamics_version``, ``dynamics_read_fields``,
                                 ``marketo_hash``, ``marketo_fields``, ``marketo_written_at``,
                                 ``deleted_in_dynamics``, ``sync_filter``
Marketo → Dynamics writes        ``marketo_version``, ``marketo_read_fields``,
                                 ``dynamics_hash``, ``dynamics_fields``, ``dynamics_written_at``
===============================  ===========================================================

A per-field map is replaced whole by its owner (which reads the row, under its lease, before
it writes); ``updated_at`` is written by both (the later write's time stands).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.state.keys import encode_component, join_key, prefix_range

DEFAULT_BUCKETS = 16
MAX_BUCKETS = 1_000
PERSON_TYPE = "lead"
"""Marketo's person object: Dynamics leads and contacts both map to it."""
INDEX_ID_RANGE = 1_000
"""Consecutive integer Marketo ids per index partition (:func:`index_partition_label`).

Small on purpose: Azurite finds a row by scanning its partition (LokiJS narrows a PartitionKey
+ RowKey lookup by its PartitionKey index only), so every write's cost grows with the
partition. Measured with 10,000 (``make bench``, 20,000 contacts): Azurite's CPU 25 s against
8.7 s with hash buckets, throughput halved. 1,000 rows a partition stay below the hash
buckets' 1,250 at 20,000 persons and 3,125 at 50,000."""
DEFAULT_INDEXED_TYPES: frozenset[str] = frozenset({PERSON_TYPE})
"""Marketo types whose mappings are indexed by Marketo id (see the module docstring)."""


class SyncFilter(StrEnum):
    """The last seen value of the record's sync filter field (``new_synctomkto``)."""

    YES = "yes"
    NO = "no"
    UNSET = "unset"
    """Missing or empty: synced, like Yes (design: only an explicit No excludes)."""


def normalize_dynamics_id(value: str) -> str:
    """A Dataverse GUID as we key it: trimmed, without braces, lower case."""
    text = str(value).strip().strip("{}").strip().lower()
    if not text:
        raise ValueError("empty Dynamics id")
    return text


def normalize_marketo_id(value: str | int) -> str:
    """A Marketo id as we key it: its text, trimmed."""
    text = str(value).strip()
    if not text:
        raise ValueError("empty Marketo id")
    return text


def stable_bucket(record_id: str, buckets: int) -> int:
    """The bucket of ``record_id``: ``blake2b-64(utf-8 id) mod buckets``."""
    digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def fields_hash(values: Mapping[str, Any]) -> str:
    """A stable hash of field values (for echo suppression): SHA-256 of canonical JSON."""
    canonical = json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def index_partition_label(marketo_id: str, layout: MappingLayout) -> str:
    """The index partition of a Marketo id: ``n<id // INDEX_ID_RANGE>`` for an integer id,
    else the id's hash bucket.

    Marketo numbers its records in creation order, so the leads created by one page of the
    sync share few index partitions: their index rows take about ``⌈n / 100⌉`` transactions
    instead of one per hash bucket (16 for a page of 300). A partition never holds more than
    :data:`INDEX_ID_RANGE` rows, however big the database grows, which bounds what a lookup
    filter costs the service (a filter naming several RowKeys reads its partition) and what
    a write costs Azurite. The price: a batch of ids scattered over a big database touches
    more partitions than 16 buckets would (at 50,000 leads, 300 random ids ≈ 50 queries
    instead of ≈ 32; at a million, about one per id, each reading at most 1,000 rows).
    """
    if marketo_id.isascii() and marketo_id.isdigit():
        return f"n{int(marketo_id) // INDEX_ID_RANGE}"
    return layout.bucket_label(marketo_id)


@functools.lru_cache(maxsize=4096)
def _partition_key(instance_id: str, entity: str, bucket: str) -> str:
    # A few dozen partitions per (instance, entity): computed once, not once per row.
    return join_key(instance_id, entity, bucket)


@dataclass(frozen=True)
class MappingLayout:
    """How mapping rows are keyed; ``buckets`` partitions per (instance, entity)."""

    buckets: int = DEFAULT_BUCKETS

    def __post_init__(self) -> None:
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"mapping buckets must be within 1..{MAX_BUCKETS}")

    def bucket_label(self, record_id: str) -> str:
        """The bucket of an (already normalised) id, zero-padded."""
        width = len(str(self.buckets - 1))
        return str(stable_bucket(record_id, self.buckets)).zfill(width)

    def forward_key(self, instance_id: str, entity: str, dynamics_id: str) -> tuple[str, str]:
        """``(PartitionKey, RowKey)`` of the forward row for a normalised Dynamics id."""
        return (
            _partition_key(instance_id, entity, self.bucket_label(dynamics_id)),
            encode_component(dynamics_id),
        )

    def reverse_key(self, instance_id: str, entity: str, marketo_id: str) -> tuple[str, str]:
        """``(PartitionKey, RowKey)`` of a first-layout index row (``MappingsByMarketo``, keyed
        by entity) for a normalised Marketo id."""
        return (
            _partition_key(instance_id, entity, self.bucket_label(marketo_id)),
            encode_component(marketo_id),
        )

    def index_key(self, instance_id: str, marketo_type: str, marketo_id: str) -> tuple[str, str]:
        """``(PartitionKey, RowKey)`` of the Marketo-id index row for a normalised Marketo id
        (keyed by Marketo type, not entity: one lookup whatever entity the record is; see
        :func:`index_partition_label` for the partition)."""
        return (
            _partition_key(instance_id, marketo_type, index_partition_label(marketo_id, self)),
            encode_component(marketo_id),
        )

    def instance_range(self, instance_id: str) -> tuple[str, str]:
        """``(low, high)`` PartitionKey range holding every mapping row of an instance."""
        return prefix_range(instance_id)


@dataclass(frozen=True)
class IdMapping:
    """One linked pair of records and the sync's memory about it."""

    instance_id: str
    entity: str
    dynamics_id: str
    marketo_type: str
    """The Marketo object type, e.g. ``lead``, ``opportunity``, ``company`` or a custom object."""
    marketo_id: str
    dynamics_version: str | None = None
    """The Dynamics record's version last synced (``versionnumber`` or ETag)."""
    dynamics_hash: str | None = None
    """Hash of the field values this sync last wrote to Dynamics."""
    marketo_hash: str | None = None
    """Hash of the field values this sync last wrote to Marketo."""
    deleted_in_dynamics: bool = False
    sync_filter: SyncFilter = SyncFilter.UNSET
    marketo_fields: Mapping[str, str] | None = None
    """Per Marketo field, a short hash of the value last written there: an update sends only
    the fields whose value changed, and a field Marketo changed since is recognised."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    dynamics_written_at: datetime | None = None
    marketo_written_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)
    dynamics_fields: Mapping[str, str] | None = None
    """Per Dynamics column, a short hash of the value this sync last wrote there (Marketo →
    Dynamics): a change read back from Dynamics with the same hash is our own echo."""
    dynamics_read_fields: Mapping[str, str] | None = None
    """Per Dynamics column, a short hash of the value last read from Dynamics (Dynamics →
    Marketo): what Dynamics held when the sync last looked, for per-field conflicts."""
    marketo_read_fields: Mapping[str, str] | None = None
    """Per Marketo field, a short hash of the value last read from Marketo (Marketo →
    Dynamics)."""
    marketo_version: str | None = None
    """The Marketo record's version last read (e.g. its ``updatedAt`` or the last activity id)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dynamics_id", normalize_dynamics_id(self.dynamics_id))
        object.__setattr__(self, "marketo_id", normalize_marketo_id(self.marketo_id))
        if not self.instance_id or not self.entity or not self.marketo_type:
            raise ValueError("a mapping needs an instance, an entity and a Marketo type")


@dataclass(frozen=True)
class MappingUpdate:
    """A partial change to an existing mapping; ``None`` fields are left as stored.

    Written as a MERGE of the fields it sets, so the two directions of a person entity update
    their own fields (module docstring: who owns which) without overwriting each other's.
    """

    dynamics_id: str
    dynamics_version: str | None = None
    dynamics_hash: str | None = None
    marketo_hash: str | None = None
    deleted_in_dynamics: bool | None = None
    sync_filter: SyncFilter | None = None
    marketo_fields: Mapping[str, str] | None = None
    """The whole per-field hash map after this write (it replaces the stored one); the same
    holds for the three maps below."""
    dynamics_fields: Mapping[str, str] | None = None
    dynamics_read_fields: Mapping[str, str] | None = None
    marketo_read_fields: Mapping[str, str] | None = None
    marketo_version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dynamics_id", normalize_dynamics_id(self.dynamics_id))


# --- one Marketo record, one Dynamics record ---------------------------------------------------


@dataclass(frozen=True)
class MappingConflict:
    """Two records of one side that the other side resolved to one record: two Dynamics
    records to one Marketo record (two stakeholder connections with the same opportunity,
    contact and role), or two Marketo records to one Dynamics record.

    ``kept`` keeps the link; ``refused`` is not stored, and is for the caller to report as a
    per-record sync error.
    """

    kept: IdMapping
    refused: IdMapping

    @property
    def marketo_id(self) -> str:
        """The Marketo id of the refused mapping."""
        return self.refused.marketo_id

    def describe(self) -> str:
        """An operator's sentence naming both records (ids only: no field values)."""
        kept, refused = self.kept, self.refused
        if kept.marketo_id == refused.marketo_id:
            return (
                f"Marketo {kept.marketo_type} {kept.marketo_id} is already the record of "
                f"{kept.entity} {kept.dynamics_id}; {refused.entity} {refused.dynamics_id} "
                "resolved to it too, and a Marketo record maps to one Dynamics record"
            )
        return (
            f"{kept.entity} {kept.dynamics_id} is already the record of Marketo "
            f"{kept.marketo_type} {kept.marketo_id}; Marketo {refused.marketo_type} "
            f"{refused.marketo_id} resolved to it too, and a Dynamics record maps to one "
            "Marketo record"
        )


def split_conflicts(
    mappings: Iterable[IdMapping],
) -> tuple[list[IdMapping], list[MappingConflict]]:
    """Split mappings into those that may be stored and those whose Marketo record (per
    instance and Marketo type) or Dynamics record (per instance and entity) is already taken
    by an earlier mapping of the same call, linked to another record: the first one in input
    order keeps it. A repeat of the same pair is not a conflict.
    """
    by_marketo: dict[tuple[str, str, str], IdMapping] = {}
    by_dynamics: dict[tuple[str, str, str], IdMapping] = {}
    accepted: list[IdMapping] = []
    conflicts: list[MappingConflict] = []
    for mapping in mappings:
        pair = (mapping.entity, mapping.dynamics_id, mapping.marketo_type, mapping.marketo_id)
        marketo_owner = by_marketo.setdefault(
            (mapping.instance_id, mapping.marketo_type, mapping.marketo_id), mapping
        )
        dynamics_owner = by_dynamics.setdefault(
            (mapping.instance_id, mapping.entity, mapping.dynamics_id), mapping
        )
        owner = next((o for o in (marketo_owner, dynamics_owner) if _pair(o) != pair), None)
        if owner is None:
            accepted.append(mapping)
        else:
            conflicts.append(MappingConflict(kept=owner, refused=mapping))
    return accepted, conflicts


def _pair(mapping: IdMapping) -> tuple[str, str, str, str]:
    return (mapping.entity, mapping.dynamics_id, mapping.marketo_type, mapping.marketo_id)


class MappingConflictError(ValueError):
    """A ``put_many`` call held :class:`MappingConflict` s; nothing of it was written.

    Call :func:`split_conflicts` first to store the rest and report these per record.
    """

    def __init__(self, conflicts: Iterable[MappingConflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__("; ".join(c.describe() for c in self.conflicts))


_MOVED_TO_ROWS = frozenset(
    {
        "forward_entity",
        "mapping_from_entity",
        "reverse_entity",
        "reverse_from_entity",
        "update_entity",
        "SCHEMA_VERSION",
    }
)


def __getattr__(name: str) -> Any:
    """The row conversions that lived here before :mod:`shared.state.mapping_rows` (kept
    importable from here; imported on first use, as that module imports this one)."""
    if name in _MOVED_TO_ROWS:
        from shared.state import mapping_rows

        return getattr(mapping_rows, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
