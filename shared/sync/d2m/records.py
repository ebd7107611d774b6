"""One page of Dynamics records (and deletes) written to Marketo.

Per page: resolve the links (company, owner…) through the mapping, transform the rows, read
the mappings, plan (:mod:`shared.sync.plan`), choose the fields to send and settle conflicts
(:mod:`shared.sync.conflicts`), write in groups, apply the outcomes
(:mod:`shared.sync.apply`) and store them (:mod:`shared.sync.d2m.memory`).

Groups go one after another (creates, updates, delete marks, then recreates of records Marketo
lost): if a call fails for good, no sibling write is left running while the job's message comes
back (close-timed upserts of one key can create duplicates in Marketo: Marketo REST API,
"Leads": "concurrent or closely timed upsert requests can create duplicate records"). When a
group fails part-way, what the answered batches did is stored before the failure propagates,
so no Marketo id that was just created is forgotten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from shared.clock import Clock
from shared.errors import DmsyncError
from shared.jobs import Direction
from shared.state.mapping_rows import MEMORY_COLUMNS
from shared.state.mappings import IdMapping, SyncFilter
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.sync.apply import (
    Applied,
    LinkUpdate,
    OpKind,
    PlannedWrite,
    apply_outcomes,
    merge_counts,
    recreate_writes,
)
from shared.sync.blocking import blocking
from shared.sync.config import EntitySpec, SyncConfig
from shared.sync.conflicts import (
    FieldPlan,
    SideValue,
    contested,
    keep_target_values,
    plan_fields,
    source_always_wins,
    target_keeps,
)
from shared.sync.d2m.memory import persist
from shared.sync.d2m.reader import DataverseChangeReader
from shared.sync.d2m.transformers import TransformerCache
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.links import build_link_index
from shared.sync.pipeline import (
    PageCounts,
    SourceRecord,
    WriteGuard,
    WriteMode,
    WriteOp,
    WriteOutcome,
)
from shared.sync.plan import MappingView, Plan, plan_page
from shared.sync.transform import Prepared
from shared.sync.values import fingerprints, parse_moment

UPDATED_AT = "updatedAt"
"""Marketo's record-level change time (standard field of leads and objects), for latest_wins."""


@dataclass
class _Writes:
    """A page's writes by group, and what needs no call."""

    groups: list[tuple[WriteMode, list[PlannedWrite]]] = field(default_factory=list)
    quiet: Applied = field(default_factory=Applied)
    """Records that need no call (every changed field was Marketo's to keep; unmarkable
    deletes), already in their applied form."""


class RecordWrites:
    """Writes pages of one direction's records (Dynamics → Marketo)."""

    def __init__(
        self,
        config: SyncConfig,
        store: StateStore,
        reader: DataverseChangeReader,
        writer: MarketoRecordWriter,
        transformers: TransformerCache,
        clock: Clock,
    ) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.writer = writer
        self.transformers = transformers
        self.clock = clock

    async def sync(
        self,
        stream: StreamId,
        records: Sequence[SourceRecord],
        deleted_ids: Sequence[str],
        counts: PageCounts,
        guard: WriteGuard,
        *,
        unmapped: Set[str] = frozenset(),
        before_creates: Callable[[tuple[str, ...]], Awaitable[None]] | None = None,
    ) -> None:
        """Write ``records`` and ``deleted_ids``; ``unmapped`` names ids known to have no
        mapping (a first copy into an empty mapping), whose mapping read is skipped.
        ``before_creates`` is told the ids about to be created, before Marketo is."""
        spec = self.config.entity[stream.entity]
        rows = [r.values for r in records]
        versions = {r.source_id: r.version for r in records}
        index = await build_link_index(
            self.config,
            stream.entity,
            rows,
            lambda entity, ids: self._link_states(stream.instance_id, entity, ids),
            lambda entity, ids: self.reader.exists(self.config.entity[entity], ids),
        )
        transformer = await self.transformers.get(stream.entity)
        resolve = index.resolver()
        prepared = [_lowered(transformer.prepare(row, resolve)) for row in rows]
        wanted = [p.dynamics_id for p in prepared if p.dynamics_id not in unmapped]
        stored = await blocking(
            self.store.mappings.get_many,
            stream.instance_id,
            stream.entity,
            [*wanted, *deleted_ids],
            columns=MEMORY_COLUMNS,  # these mappings are read, never written back whole
        )
        mappings = {key.lower(): value for key, value in stored.items()}
        plan = plan_page(prepared, deleted_ids, _views(mappings), keyed=spec.key_field is not None)
        writes = await self._plan_writes(spec, plan, mappings, versions, transformer)
        marketo_type = spec.object_name or spec.target.value
        creates = writes.groups[0][1]
        if creates and before_creates is not None:
            await before_creates(tuple(w.source_id for w in creates))
        applied = await self._send(stream, spec, marketo_type, writes.groups, guard)
        applied.extend(writes.quiet)
        merge_counts(counts, applied.counts)
        counts.filtered += len(plan.filtered)
        counts.unchanged += len(plan.unchanged)
        counts.held += len(plan.held)
        counts.ignored += len(plan.ignored)
        # An unchanged record whose link is still missing keeps waiting (its payload is the
        # same as last time precisely because the link is still left out).
        applied.pending += [p.dynamics_id for p in plan.unchanged if p.pending_links]
        await persist(
            self.store,
            stream,
            marketo_type,
            applied,
            now=self.clock.now(),
            filtered=plan.filtered,
            held={p.dynamics_id: p.pending_links for p in plan.held},
            also_resolved=[*(p.dynamics_id for p in plan.unchanged), *plan.filtered, *plan.ignored],
        )

    async def _link_states(
        self, instance_id: str, entity: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, bool]]:
        found = await blocking(self.store.mappings.link_states, instance_id, entity, ids)
        return {k: (marketo_id, not deleted) for k, (marketo_id, deleted) in found.items()}

    async def _plan_writes(
        self,
        spec: EntitySpec,
        plan: Plan,
        mappings: Mapping[str, IdMapping],
        versions: Mapping[str, str | None],
        transformer: Any,
    ) -> _Writes:
        writes = _Writes()
        creates = [
            PlannedWrite(
                OpKind.CREATE,
                p.dynamics_id,
                p.payload,
                None,
                p.digest,
                fingerprints(p.payload),
                versions.get(p.dynamics_id),
                bool(p.pending_links),
            )
            for p in plan.create
        ]
        by_id: list[PlannedWrite] = []
        whole: list[PlannedWrite] = []
        partial: list[PlannedWrite] = []
        for item, marketo_id, fields in await self._field_plans(spec, plan.update, mappings):
            version = versions.get(item.dynamics_id)
            if not fields.send:  # every changed field was Marketo's to keep: no call
                writes.quiet.updates.append(
                    LinkUpdate(
                        item.dynamics_id,
                        digest=item.digest,
                        field_hashes=fields.memory,
                        version=version,
                        filtered_out=False,
                    )
                )
                writes.quiet.counts.unchanged += 1
                writes.quiet.succeeded.append(item.dynamics_id)
                if item.pending_links:
                    writes.quiet.pending.append(item.dynamics_id)
                continue
            send = (
                {spec.key_field: item.dynamics_id, **fields.send} if spec.key_field else fields.send
            )
            write = PlannedWrite(
                OpKind.UPDATE,
                item.dynamics_id,
                send,
                marketo_id,
                item.digest,
                fields.memory,
                version,
                bool(item.pending_links),
                full_payload=item.payload,
            )
            if spec.updates_by_marketo_id:
                by_id.append(write)
            elif fields.whole:  # every field is sent: an upsert cannot leave a stub
                whole.append(write)
            else:  # a partial update must not create a stub if Marketo lost the record
                partial.append(write)
        marks_by_id: list[PlannedWrite] = []
        marks_by_key: list[PlannedWrite] = []
        for dynamics_id, marketo_id in plan.mark_deleted:
            mark = transformer.deleted_payload(dynamics_id)
            if mark is None:  # nothing in Marketo can carry the mark: remember the delete
                writes.quiet.updates.append(LinkUpdate(dynamics_id, deleted=True))
                writes.quiet.counts.deleted += 1
                continue
            target = marks_by_id if spec.updates_by_marketo_id else marks_by_key
            target.append(PlannedWrite(OpKind.MARK_DELETED, dynamics_id, mark, marketo_id))
        unmapped_marks: list[PlannedWrite] = []
        for dynamics_id in plan.mark_by_key:
            mark = transformer.deleted_payload(dynamics_id)
            if mark is None:
                writes.quiet.counts.ignored += 1
                continue
            unmapped_marks.append(PlannedWrite(OpKind.MARK_DELETED, dynamics_id, mark, None))
        writes.groups = [
            (WriteMode.UPSERT_BY_KEY, creates),
            (WriteMode.UPDATE_BY_ID, by_id),
            (WriteMode.UPSERT_BY_KEY, whole),
            (WriteMode.UPDATE_BY_KEY, partial),
            (WriteMode.UPDATE_BY_ID, marks_by_id),
            (WriteMode.UPDATE_BY_KEY, [*marks_by_key, *unmapped_marks]),
        ]
        return writes

    async def _field_plans(
        self,
        spec: EntitySpec,
        updates: Sequence[tuple[Prepared, str]],
        mappings: Mapping[str, IdMapping],
    ) -> list[tuple[Prepared, str, FieldPlan]]:
        """Per update, the fields to send (see :mod:`shared.sync.conflicts`). Where a changed
        field's rule does not always let Dynamics win (leads: Marketo wins), the changed fields'
        current Marketo values are read first: one read per 300."""
        plans = []
        for item, marketo_id in updates:
            known = mappings.get(item.dynamics_id)
            memory = None
            if (
                known is not None
                and not known.deleted_in_dynamics
                and known.sync_filter is not SyncFilter.NO
            ):
                memory = known.marketo_fields
            plans.append((item, marketo_id, plan_fields(item.payload, memory), memory))
        d2m = Direction.DYNAMICS_TO_MARKETO
        asked = {
            marketo_id: fields
            for _, marketo_id, fields, memory in plans
            if memory
            and any(not source_always_wins(spec.conflict_rule(f), d2m) for f in fields.send)
        }
        if not asked:
            return [(item, marketo_id, fields) for item, marketo_id, fields, _ in plans]
        names = sorted(set().union(*(set(f.send) for f in asked.values())) | {UPDATED_AT})
        current = await self.writer.current(spec, list(asked), names)
        settled = []
        for item, marketo_id, fields, memory in plans:
            now = current.get(marketo_id)
            if memory is not None and now is not None and marketo_id in asked:
                dynamics_at = parse_moment(item.changed_at)
                marketo_at = parse_moment(now.get(UPDATED_AT))
                kept = [
                    name
                    for name in contested(fields, memory, now)
                    if target_keeps(
                        spec.conflict_rule(name),
                        d2m,
                        SideValue(fields.send[name], dynamics_at),
                        SideValue(now.get(name), marketo_at),
                    )
                ]
                fields = keep_target_values(fields, memory, kept)
            settled.append((item, marketo_id, fields))
        return settled

    async def _send(
        self,
        stream: StreamId,
        spec: EntitySpec,
        marketo_type: str,
        groups: Sequence[tuple[WriteMode, list[PlannedWrite]]],
        guard: WriteGuard,
    ) -> Applied:
        applied = Applied()
        try:
            for mode, writes in groups:
                await self._write_group(spec, mode, writes, applied, guard)
            if applied.recreate:  # deleted in Marketo, changed in Dynamics: a new record
                lost, applied.recreate = applied.recreate, []
                await self._write_group(
                    spec,
                    WriteMode.UPSERT_BY_KEY,
                    recreate_writes(lost, fingerprints),
                    applied,
                    guard,
                )
        except BaseException:
            # Keep what Marketo already did (new ids above all) before the failure propagates.
            with contextlib.suppress(DmsyncError):
                await persist(self.store, stream, marketo_type, applied, now=self.clock.now())
            raise
        return applied

    async def _write_group(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        writes: list[PlannedWrite],
        applied: Applied,
        guard: WriteGuard,
    ) -> None:
        if not writes:
            return
        guard.check()
        answered: dict[int, WriteOutcome] = {}
        outcomes: list[WriteOutcome | None] | None = None
        try:
            ops = [WriteOp(w.payload, w.target_id) for w in writes]
            outcomes = list(await self.writer.write(spec, mode, ops, answered))
        finally:
            if outcomes is None:
                outcomes = [answered.get(i) for i in range(len(writes))]
            owners = {link.target_id: link.source_id for link in applied.links}
            applied.extend(apply_outcomes(writes, outcomes, self.writer.is_missing, owners=owners))


def _lowered(item: Prepared) -> Prepared:
    item.dynamics_id = item.dynamics_id.lower()
    return item


def _views(mappings: Mapping[str, IdMapping]) -> dict[str, MappingView]:
    return {
        key: MappingView(
            marketo_id=m.marketo_id,
            digest=m.marketo_hash,
            deleted=m.deleted_in_dynamics,
            filtered_out=m.sync_filter is SyncFilter.NO,
        )
        for key, m in mappings.items()
    }
