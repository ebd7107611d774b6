"""Marketo in memory, as the D→M pipeline writes it (duck-typed like ``MarketoRecordWriter``).

Held to the Marketo REST API documentation ("Leads": Sync Leads; "Companies"/"Custom Objects":
sync), for the three write modes the pipeline uses:

* ``UPSERT_BY_KEY`` (``createOrUpdate`` on the key field): the record with that key is updated,
  or one is created with a new id;
* ``UPDATE_BY_ID`` (``updateOnly`` on ``id``) and ``UPDATE_BY_KEY`` (``updateOnly`` on the key):
  never create; a missing record is skipped with reason 1004 (lead not found) or 1013 (object
  not found);
* calls take at most 300 records: a longer write is sent as several batches, each answered on
  its own (``done`` is filled per batch as its answer arrives).

Each batch is one call through :func:`tests.fakes.faults.checkpoint`: its fault can fail it
before it lands, or let it land and lose its answer (the write is in Marketo, the caller hears
an error), or kill the worker on either side of it.

Not modelled: close-timed upserts of one key creating duplicates (the pipeline writes a stream's
groups one after another, and one job holds a stream), field validation, quotas.
"""

from __future__ import annotations

import itertools
from collections.abc import MutableMapping, Sequence
from datetime import datetime
from typing import Any

from shared.errors import TransientServiceError
from shared.sync.config import EntitySpec, TargetKind
from shared.sync.pipeline import WriteMode, WriteOp, WriteOutcome, WriteStatus
from tests.fakes.faults import enter, leave

BATCH = 300
NOT_FOUND = {TargetKind.LEAD: "1004"}
"""Skip reason of a missing record: 1004 for leads, 1013 for every object."""


def _failure(call: str) -> BaseException:
    return TransientServiceError(f"Marketo did not answer {call}", system="marketo")


class FakeMarketo:
    """Marketo's records per target kind, by Marketo id."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.batches = 0

    def of(self, kind: TargetKind) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(kind.value, {})

    def by_key(self, kind: TargetKind, key_field: str, key: str) -> list[str]:
        """Ids of the records whose key field holds ``key``."""
        return [i for i, r in self.of(kind).items() if r.get(key_field) == key]

    # --- the writer (RecordWriter) ------------------------------------------------------------

    async def quota_stop_until(self) -> datetime | None:
        return None

    def is_missing(self, outcome: WriteOutcome) -> bool:
        return outcome.code in ("1004", "1013")

    async def write(
        self,
        spec: EntitySpec,
        mode: WriteMode,
        ops: Sequence[WriteOp],
        done: MutableMapping[int, WriteOutcome] | None = None,
    ) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for start in range(0, len(ops), BATCH):
            batch = ops[start : start + BATCH]
            call = f"marketo.write({spec.target.value}, {mode.value}, {len(batch)})"
            kind = enter(call, _failure)
            answers = [self._one(spec, mode, op) for op in batch]
            self.batches += 1
            leave(call, kind, _failure)
            for offset, answer in enumerate(answers):
                if done is not None:
                    done[start + offset] = answer
            outcomes += answers
        return outcomes

    def _one(self, spec: EntitySpec, mode: WriteMode, op: WriteOp) -> WriteOutcome:
        records = self.of(spec.target)
        assert spec.key_field is not None
        if mode is WriteMode.UPDATE_BY_ID:
            target = op.target_id if op.target_id in records else None
        else:
            found = self.by_key(spec.target, spec.key_field, str(op.payload[spec.key_field]))
            target = found[0] if found else None
        if target is None:
            if mode is not WriteMode.UPSERT_BY_KEY:
                code = NOT_FOUND.get(spec.target, "1013")
                return WriteOutcome(WriteStatus.SKIPPED, None, code, f"{code} record not found")
            target = str(next(self._ids))
            records[target] = {"id": target, **op.payload}
            return WriteOutcome(WriteStatus.CREATED, target)
        records[target].update(op.payload)
        return WriteOutcome(WriteStatus.UPDATED, target)

    async def current(
        self, spec: EntitySpec, target_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        def read() -> dict[str, dict[str, Any]]:
            records = self.of(spec.target)
            return {
                i: {"id": i, **{f: records[i].get(f) for f in fields}}
                for i in target_ids
                if i in records
            }

        kind = enter(f"marketo.current({spec.target.value})", _failure)
        found = read()
        leave(f"marketo.current({spec.target.value})", kind, _failure)
        return found
