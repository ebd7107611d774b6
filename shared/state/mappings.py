"""ID mappings: one Dynamics record ↔ one Marketo record, per (instance, entity). Pure part.

Partitioning
------------
The sync looks up a mapping for every record of a batch (up to 300), so rows are spread over a
fixed number of *buckets* per (instance, entity) and a batch is read with one query per touched
bucket (two when a bucket holds more ids than one filter may name; see
:func:`shared.state.odata.key_lookup_filters`)::

    forward  (table Mappings):          PK = instance ! entity ! bucket(dynamics id)
                                        RK = dynamics id              → the whole mapping
    reverse  (table MappingsByMarketo): PK = instance ! entity ! bucket(marketo id)
                                        RK = marketo id               → the dynamics id

``bucket(id) = blake2b-64(id) mod N`` (N = :attr:`MappingLayout.buckets`, default 16), written as
a zero-padded decimal. The hash is stable across processes and Python versions (unlike
``hash()``), and spreads ids evenly whatever their shape (GUIDs, integers, e-mail-like keys).
N is fixed for the life of a table: the store records it on first use and refuses to run
with a different one (rows would be looked for in the wrong bucket).

Dynamics ids are GUIDs and compared case-insensitively by Dataverse, so they are normalised to
lower case without braces; Marketo ids are kept as given (trimmed).

Per record the forward row holds what the sync needs: the Marketo object type and id, the
Dynamics record's last synced version (``versionnumber`` or ETag), a hash of the field values
last written to each side (echo suppression both ways), whether the record was deleted in
Dynamics, the last seen value of the sync filter field (``new_synctomkto``), and timestamps.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.state.keys import (
    InvalidKeyError,
    decode_component,
    encode_component,
    join_key,
    prefix_range,
)
from shared.state.keys import split_key as split_composite_key
from shared.state.properties import read_bool, read_datetime, read_str, utc

DEFAULT_BUCKETS = 16
MAX_BUCKETS = 1_000
SCHEMA_VERSION = 1


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
        """``(PartitionKey, RowKey)`` of the reverse row for a normalised Marketo id."""
        return (
            _partition_key(instance_id, entity, self.bucket_label(marketo_id)),
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "dynamics_id", normalize_dynamics_id(self.dynamics_id))
        object.__setattr__(self, "marketo_id", normalize_marketo_id(self.marketo_id))
        if not self.instance_id or not self.entity or not self.marketo_type:
            raise ValueError("a mapping needs an instance, an entity and a Marketo type")


@dataclass(frozen=True)
class MappingUpdate:
    """A partial change to an existing mapping; ``None`` fields are left as stored.

    Field-level updates let the two directions of a bidirectional entity write their own
    fields (``marketo_hash`` after writing to Marketo, ``dynamics_hash`` after writing to
    Dynamics) without overwriting each other's.
    """

    dynamics_id: str
    dynamics_version: str | None = None
    dynamics_hash: str | None = None
    marketo_hash: str | None = None
    deleted_in_dynamics: bool | None = None
    sync_filter: SyncFilter | None = None
    marketo_fields: Mapping[str, str] | None = None
    """The whole per-field hash map after this write (it replaces the stored one)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dynamics_id", normalize_dynamics_id(self.dynamics_id))


# --- row conversion ---------------------------------------------------------------------------


def forward_entity(mapping: IdMapping, layout: MappingLayout) -> dict[str, Any]:
    """The forward row (the whole mapping)."""
    partition_key, row_key = layout.forward_key(
        mapping.instance_id, mapping.entity, mapping.dynamics_id
    )
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": SCHEMA_VERSION,
        "marketo_type": mapping.marketo_type,
        "marketo_id": mapping.marketo_id,
        "deleted_in_dynamics": mapping.deleted_in_dynamics,
        "sync_filter": mapping.sync_filter.value,
    }
    for name in ("dynamics_version", "dynamics_hash", "marketo_hash"):
        value = getattr(mapping, name)
        if value is not None:
            entity[name] = value
    if mapping.marketo_fields is not None:
        entity["marketo_fields"] = _field_hashes_text(mapping.marketo_fields)
    for name in ("created_at", "updated_at", "dynamics_written_at", "marketo_written_at"):
        value = getattr(mapping, name)
        if value is not None:
            entity[name] = utc(value)
    return entity


def reverse_entity(mapping: IdMapping, layout: MappingLayout) -> dict[str, Any]:
    """The reverse-index row: Marketo id → Dynamics id."""
    partition_key, row_key = layout.reverse_key(
        mapping.instance_id, mapping.entity, mapping.marketo_id
    )
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": SCHEMA_VERSION,
        "dynamics_id": mapping.dynamics_id,
        "marketo_type": mapping.marketo_type,
    }
    if mapping.updated_at is not None:
        entity["updated_at"] = utc(mapping.updated_at)
    return entity


def update_entity(
    instance_id: str, entity_name: str, update: MappingUpdate, layout: MappingLayout, now: datetime
) -> dict[str, Any]:
    """The MERGE row for a :class:`MappingUpdate` (only the fields it sets, plus times)."""
    partition_key, row_key = layout.forward_key(instance_id, entity_name, update.dynamics_id)
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "updated_at": utc(now),
    }
    if update.dynamics_version is not None:
        entity["dynamics_version"] = update.dynamics_version
    if update.dynamics_hash is not None:
        entity["dynamics_hash"] = update.dynamics_hash
        entity["dynamics_written_at"] = utc(now)
    if update.marketo_hash is not None:
        entity["marketo_hash"] = update.marketo_hash
        entity["marketo_written_at"] = utc(now)
    if update.deleted_in_dynamics is not None:
        entity["deleted_in_dynamics"] = update.deleted_in_dynamics
    if update.sync_filter is not None:
        entity["sync_filter"] = update.sync_filter.value
    if update.marketo_fields is not None:
        entity["marketo_fields"] = _field_hashes_text(update.marketo_fields)
    return entity


def _field_hashes_text(hashes: Mapping[str, str]) -> str:
    """The per-field hashes as compact JSON (well under the 32K-character property limit for
    any realistic field count: ~25 characters a field)."""
    return json.dumps(dict(hashes), separators=(",", ":"), sort_keys=True)


def _field_hashes(entity: Any) -> dict[str, str] | None:
    text = read_str(entity, "marketo_fields")
    if not text:
        return None
    loaded = json.loads(text)
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else None


def _stream_parts(partition_key: str) -> tuple[str, str]:
    parts = split_composite_key(partition_key)
    if len(parts) != 3:
        raise InvalidKeyError(f"partition key {partition_key!r} is not a mapping partition")
    return parts[0], parts[1]


def mapping_from_entity(entity: Any) -> IdMapping:
    """The mapping stored in a forward row."""
    metadata = getattr(entity, "metadata", None) or {}
    instance_id, entity_name = _stream_parts(entity["PartitionKey"])
    return IdMapping(
        instance_id=instance_id,
        entity=entity_name,
        dynamics_id=decode_component(entity["RowKey"]),
        marketo_type=read_str(entity, "marketo_type") or "",
        marketo_id=read_str(entity, "marketo_id") or "",
        dynamics_version=read_str(entity, "dynamics_version"),
        dynamics_hash=read_str(entity, "dynamics_hash"),
        marketo_hash=read_str(entity, "marketo_hash"),
        deleted_in_dynamics=read_bool(entity, "deleted_in_dynamics"),
        sync_filter=SyncFilter(read_str(entity, "sync_filter") or SyncFilter.UNSET.value),
        marketo_fields=_field_hashes(entity),
        created_at=read_datetime(entity, "created_at"),
        updated_at=read_datetime(entity, "updated_at"),
        dynamics_written_at=read_datetime(entity, "dynamics_written_at"),
        marketo_written_at=read_datetime(entity, "marketo_written_at"),
        etag=metadata.get("etag"),
    )


def reverse_from_entity(entity: Any) -> tuple[str, str]:
    """``(marketo id, dynamics id)`` from a reverse row."""
    return decode_component(entity["RowKey"]), str(entity["dynamics_id"])
