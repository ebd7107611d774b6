"""Store what a Dynamics → Marketo page taught: ID mappings, sync errors, records to look at again.

One :func:`persist` call per page (and per partial page, when a write failed part-way), in an
order that keeps every crash harmless: new mappings first (a replay then updates the record
instead of creating it again), then mapping updates, failures, pending links, and last the
resolution of errors that no longer apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from shared.state.mappings import (
    IdMapping,
    MappingUpdate,
    SyncFilter,
    normalize_dynamics_id,
    split_conflicts,
)
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import PENDING_CODE, FailedRecord
from shared.sync.apply import Applied
from shared.sync.blocking import blocking


async def persist(
    store: StateStore,
    stream: StreamId,
    marketo_type: str,
    applied: Applied,
    *,
    now: datetime,
    filtered: Sequence[str] = (),
    held: Mapping[str, Sequence[str]] | None = None,
    also_resolved: Iterable[str] = (),
) -> None:
    """Write ``applied`` (and the page's filter flips and held records) to the state store.

    Args:
        filtered: ids whose sync filter turned No (remembered; the Marketo record stays).
        held: ids waiting for a required link target, with the links they wait for.
        also_resolved: ids that needed no write but whose open errors no longer apply.
    """
    mappings = [
        IdMapping(
            instance_id=stream.instance_id,
            entity=stream.entity,
            dynamics_id=link.source_id,
            marketo_type=marketo_type,
            marketo_id=link.target_id,
            dynamics_version=link.version,
            marketo_hash=link.digest,
            sync_filter=SyncFilter.YES,
            marketo_fields=link.field_hashes,
            marketo_written_at=now,
        )
        for link in applied.links
    ]
    # Marketo may resolve two Dynamics records to one of its own (the apply step catches that
    # within a group; this, any pair of the call): the later one is a per-record error.
    mappings, conflicts = split_conflicts(mappings)
    if mappings:
        await blocking(store.mappings.put_many, mappings)
    changes = [
        MappingUpdate(
            dynamics_id=u.source_id,
            dynamics_version=u.version,
            marketo_hash=u.digest,
            deleted_in_dynamics=u.deleted,
            sync_filter=None if u.filtered_out is None else _filter_state(u.filtered_out),
            marketo_fields=u.field_hashes,
        )
        for u in applied.updates
    ]
    changes += [MappingUpdate(dynamics_id=i, sync_filter=SyncFilter.NO) for i in filtered]
    if changes:
        await blocking(store.mappings.update_many, stream.instance_id, stream.entity, changes)
    failures = [
        FailedRecord(
            stream=stream,
            operation=f.operation,
            code=f.code,
            message=f.message,
            dynamics_id=f.source_id,
            marketo_id=f.target_id,
        )
        for f in applied.failures
    ]
    failures += [FailedRecord.for_conflict(stream, c) for c in conflicts]
    failures += pending_links(stream, applied.pending, held or {})
    if failures:
        await blocking(store.errors.record_many, failures)
    waiting = set(applied.pending) | set(held or {})
    done = [i for i in (*applied.succeeded, *also_resolved) if i not in waiting]
    if done:
        # Only records with an open error row: resolving an id without one costs the store a
        # rejected transaction round trip each (a 404 per id), minutes for a first copy.
        open_ids = await blocking(store.errors.open_record_ids, stream)
        to_resolve = [i for i in done if normalize_dynamics_id(i) in open_ids]
        if to_resolve:
            await blocking(store.errors.resolve, stream, to_resolve)


def pending_links(
    stream: StreamId, link_pending: Sequence[str], held: Mapping[str, Sequence[str]]
) -> list[FailedRecord]:
    """Rows that bring records back on a later run without counting as failures.

    They go into the sync-error table under :data:`PENDING_CODE` (its retry schedule brings
    them back); operators see them apart from real errors.
    """
    rows = [
        FailedRecord(
            stream=stream,
            operation="link",
            code=PENDING_CODE,
            message="a linked record had not reached Marketo yet; the link is re-sent",
            dynamics_id=dynamics_id,
        )
        for dynamics_id in link_pending
    ]
    rows += [
        FailedRecord(
            stream=stream,
            operation="hold",
            code=PENDING_CODE,
            message="waiting for " + ", ".join(links) + " to reach Marketo",
            dynamics_id=dynamics_id,
        )
        for dynamics_id, links in held.items()
    ]
    return rows


def _filter_state(filtered_out: bool) -> SyncFilter:
    return SyncFilter.NO if filtered_out else SyncFilter.YES
