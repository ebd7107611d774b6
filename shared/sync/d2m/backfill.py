"""One step of a back-fill (Marketo's "Quick Sync") for Dynamics → Marketo.

A step takes the next page of the entity's ID mapping, reads those records' current value of the
one column from Dataverse (one read by ids), and sends Marketo that field alone: an update by the
Marketo id for persons, by the key field otherwise (never a create). Nothing else of the record is
sent or changed. Left out: records marked deleted, records the sync filter keeps out, records not
modified since ``modified_since``, and empty values unless ``include_empty``. A refused record is
logged as a sync error (operation ``backfill``), so the ordinary retry picks it up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.state.backfills import Backfill, BackfillCounts
from shared.state.mappings import IdMapping, normalize_dynamics_id
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.state.sync_errors import FailedRecord
from shared.sync.blocking import blocking
from shared.sync.config import SYNC_FILTER_COLUMN, SyncConfig
from shared.sync.d2m.reader import DataverseChangeReader, table_ref
from shared.sync.pipeline import BackfillPage, RecordWriter, WriteGuard, WriteMode, WriteOp
from shared.sync.transform import MODIFIED_ON, marketo_value, sync_filter_allows

log = logging.getLogger("dmsync.backfill")

BACKFILL_PAGE = 300
"""Records per step: one Marketo write call (its 300-record limit) and one Dataverse read."""


class FieldBackfill:
    """Back-fill steps over the state store, the reader and the writer of the direction."""

    def __init__(
        self,
        config: SyncConfig,
        store: StateStore,
        reader: DataverseChangeReader,
        writer: RecordWriter,
        page_size: int = BACKFILL_PAGE,
    ) -> None:
        self.config = config
        self.store = store
        self.reader = reader
        self.writer = writer
        self.page_size = page_size

    async def step(self, stream: StreamId, backfill: Backfill, guard: WriteGuard) -> BackfillPage:
        """Send the field for the next page of mapped records (see the module docstring)."""
        spec = self.config.entity[stream.entity]
        field = spec.fields_to_marketo().get(backfill.column)
        if field is None:  # the mapping changed since the request: nothing left to send
            log.warning("back-fill of %s.%s: the column is no longer mapped; request closed",
                        stream.entity, backfill.column)  # fmt: skip
            return BackfillPage(None, BackfillCounts())
        mappings, position = await blocking(
            self.store.mappings.list_entity_page,
            stream.instance_id,
            stream.entity,
            backfill.position or "",
            self.page_size,
        )
        live = {m.dynamics_id: m for m in mappings if not m.deleted_in_dynamics}
        rows = await self._current(stream, backfill, list(live))
        ops: list[WriteOp] = []
        targets: list[IdMapping] = []
        empty = older = 0
        for dynamics_id, mapping in live.items():
            row = rows.get(dynamics_id)
            if row is None or (spec.sync_filter and not sync_filter_allows(row)):
                continue  # gone, or kept out: the sync itself deals with those
            if backfill.modified_since is not None and not _modified_since(
                row, backfill.modified_since
            ):
                older += 1
                continue
            value = marketo_value(row.get(backfill.column), field)
            if (value is None or value == "") and not backfill.include_empty:
                empty += 1
                continue
            if spec.updates_by_marketo_id:
                ops.append(WriteOp({field.to: value}, target_id=mapping.marketo_id))
            else:
                ops.append(WriteOp({spec.key_field or "": dynamics_id, field.to: value}))
            targets.append(mapping)
        failed = 0
        if ops:
            guard.check()
            mode = WriteMode.UPDATE_BY_ID if spec.updates_by_marketo_id else WriteMode.UPDATE_BY_KEY
            outcomes = await self.writer.write(spec, mode, ops)
            failures = [
                FailedRecord(
                    stream,
                    "backfill",
                    outcome.code or "unknown",
                    outcome.message or "refused",
                    dynamics_id=mapping.dynamics_id,
                    marketo_id=mapping.marketo_id,
                )
                for mapping, outcome in zip(targets, outcomes, strict=True)
                if not outcome.accepted
            ]
            if failures:
                await blocking(self.store.errors.record_many, failures)
            failed = len(failures)
        counts = BackfillCounts(
            sent=len(ops) - failed, empty=empty, older=older, failed=failed, scanned=len(mappings)
        )
        return BackfillPage(position, counts)

    async def _current(
        self, stream: StreamId, backfill: Backfill, ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        spec = self.config.entity[stream.entity]
        columns = [spec.primary_key, backfill.column]
        if spec.sync_filter:
            columns.append(SYNC_FILTER_COLUMN)
        if backfill.modified_since is not None:
            columns.append(MODIFIED_ON)
        records = await self.reader.client.read_records(
            table_ref(spec), ids, list(dict.fromkeys(columns)), include_lookup_names=False
        )
        return {normalize_dynamics_id(r.id): dict(r.attributes) for r in records}


def _modified_since(row: dict[str, Any], since: datetime) -> bool:
    value = row.get(MODIFIED_ON)
    if value is None:
        return True  # no change time: send it rather than miss it
    moment = (
        value
        if isinstance(value, datetime)
        else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment >= since
