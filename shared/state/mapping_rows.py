"""ID mapping rows: what :class:`~shared.state.mappings.IdMapping` looks like in a table. Pure.

Row versions (``schema``): 1 is the first layout; 2 adds the memory of the Marketo → Dynamics
direction (``dynamics_fields``, ``dynamics_read``, ``marketo_read``, ``marketo_version``) and
leaves out properties at their default (``deleted_in_dynamics`` false). Both read the same:
a property that is not there reads as ``None`` (or its default), so rows of version 1 need no
rewrite.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.state.keys import InvalidKeyError, decode_component, split_key
from shared.state.mappings import IdMapping, MappingLayout, MappingUpdate, SyncFilter
from shared.state.properties import read_bool, read_datetime, read_str, utc

SCHEMA_VERSION = 2

_TEXT_FIELDS = ("dynamics_version", "dynamics_hash", "marketo_hash", "marketo_version")
_FIELD_MAPS = {
    # attribute of IdMapping / MappingUpdate → stored property
    "marketo_fields": "marketo_fields",
    "dynamics_fields": "dynamics_fields",
    "dynamics_read_fields": "dynamics_read",
    "marketo_read_fields": "marketo_read",
}
_TIMES = ("created_at", "updated_at", "dynamics_written_at", "marketo_written_at")
MEMORY_COLUMNS: tuple[str, ...] = (
    "marketo_type",
    "marketo_id",
    "deleted_in_dynamics",
    "sync_filter",
    *_TEXT_FIELDS,
    *_FIELD_MAPS.values(),
)
"""What a sync direction decides with: every property but the timestamps (whose parsing is
a good part of a row's read cost). ``MappingStore.get_many(..., columns=MEMORY_COLUMNS)``."""


def forward_entity(mapping: IdMapping, layout: MappingLayout) -> dict[str, Any]:
    """The mapping row (the whole mapping, written by REPLACE)."""
    partition_key, row_key = layout.forward_key(
        mapping.instance_id, mapping.entity, mapping.dynamics_id
    )
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": SCHEMA_VERSION,
        "marketo_type": mapping.marketo_type,
        "marketo_id": mapping.marketo_id,
        "sync_filter": mapping.sync_filter.value,
    }
    if mapping.deleted_in_dynamics:
        entity["deleted_in_dynamics"] = True
    for name in _TEXT_FIELDS:
        value = getattr(mapping, name)
        if value is not None:
            entity[name] = value
    for attribute, column in _FIELD_MAPS.items():
        hashes = getattr(mapping, attribute)
        if hashes is not None:
            entity[column] = field_hashes_text(hashes)
    for name in _TIMES:
        value = getattr(mapping, name)
        if value is not None:
            entity[name] = utc(value)
    return entity


def index_entity(mapping: IdMapping, layout: MappingLayout) -> dict[str, Any]:
    """The Marketo-id index row: (instance, Marketo type, Marketo id) → entity, Dynamics id."""
    partition_key, row_key = layout.index_key(
        mapping.instance_id, mapping.marketo_type, mapping.marketo_id
    )
    return {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "entity": mapping.entity,
        "dynamics_id": mapping.dynamics_id,
    }


def index_from_entity(entity: Any) -> tuple[str, str, str]:
    """``(marketo id, entity, dynamics id)`` from an index row."""
    return (
        decode_component(entity["RowKey"]),
        str(entity["entity"]),
        str(entity["dynamics_id"]),
    )


def reverse_entity(mapping: IdMapping, layout: MappingLayout) -> dict[str, Any]:
    """A row of the first layout's index (table ``MappingsByMarketo``, keyed by entity).

    No longer written by the store; kept to describe (and, in tests, to make) such rows.
    """
    partition_key, row_key = layout.reverse_key(
        mapping.instance_id, mapping.entity, mapping.marketo_id
    )
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "schema": 1,
        "dynamics_id": mapping.dynamics_id,
        "marketo_type": mapping.marketo_type,
    }
    if mapping.updated_at is not None:
        entity["updated_at"] = utc(mapping.updated_at)
    return entity


def reverse_from_entity(entity: Any) -> tuple[str, str]:
    """``(marketo id, dynamics id)`` from a row of the first layout's index."""
    return decode_component(entity["RowKey"]), str(entity["dynamics_id"])


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
    for name in _TEXT_FIELDS:
        value = getattr(update, name)
        if value is not None:
            entity[name] = value
    if update.dynamics_hash is not None:
        entity["dynamics_written_at"] = utc(now)
    if update.marketo_hash is not None:
        entity["marketo_written_at"] = utc(now)
    if update.deleted_in_dynamics is not None:
        entity["deleted_in_dynamics"] = update.deleted_in_dynamics
    if update.sync_filter is not None:
        entity["sync_filter"] = update.sync_filter.value
    for attribute, column in _FIELD_MAPS.items():
        hashes = getattr(update, attribute)
        if hashes is not None:
            entity[column] = field_hashes_text(hashes)
    return entity


def field_hashes_text(hashes: Mapping[str, str]) -> str:
    """Per-field hashes as compact JSON (well under the 32K-character property limit for any
    realistic field count: ~25 characters a field)."""
    return json.dumps(dict(hashes), separators=(",", ":"), sort_keys=True)


def _field_hashes(entity: Any, column: str) -> dict[str, str] | None:
    text = read_str(entity, column)
    if not text:
        return None
    loaded = json.loads(text)
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else None


@functools.lru_cache(maxsize=8192)
def stream_parts(partition_key: str) -> tuple[str, str]:
    """``(instance, entity or Marketo type)`` of a mapping or index partition key (a few dozen
    partitions per entity: decoded once, not once per row)."""
    parts = split_key(partition_key)
    if len(parts) != 3:
        raise InvalidKeyError(f"partition key {partition_key!r} is not a mapping partition")
    return parts[0], parts[1]


def mapping_from_entity(entity: Any) -> IdMapping:
    """The mapping stored in a mapping row (either version)."""
    metadata = getattr(entity, "metadata", None) or {}
    instance_id, entity_name = stream_parts(entity["PartitionKey"])
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
        marketo_fields=_field_hashes(entity, "marketo_fields"),
        created_at=read_datetime(entity, "created_at"),
        updated_at=read_datetime(entity, "updated_at"),
        dynamics_written_at=read_datetime(entity, "dynamics_written_at"),
        marketo_written_at=read_datetime(entity, "marketo_written_at"),
        etag=metadata.get("etag"),
        dynamics_fields=_field_hashes(entity, "dynamics_fields"),
        dynamics_read_fields=_field_hashes(entity, "dynamics_read"),
        marketo_read_fields=_field_hashes(entity, "marketo_read"),
        marketo_version=read_str(entity, "marketo_version"),
    )
