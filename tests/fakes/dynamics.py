"""Dataverse in memory, as the D→M pipeline reads it (duck-typed like ``DataverseChangeReader``).

Held to Microsoft Learn, "Use change tracking to synchronize data with external systems"
(https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems):

* every change gives the row a new, organization-wide increasing version (``versionnumber``);
* a full read pages (``page_size`` rows a page) over a snapshot taken at its first page; a
  replayed first page starts a new read with a new snapshot; only the last page has the delta
  link;
* a delta read returns each row changed since its token once, in its current state, and each
  row deleted since then as a deleted id (a row created and deleted in between comes back as a
  delete too);
* a token older than the organization keeps changes for is refused with 0x80044352
  (:class:`~shared.errors.DeltaTokenExpiredError`); here it is :meth:`expire_tokens` that ages
  every token issued so far.

UNVERIFIED, and chosen unfavourable on purpose: which moment the delta link of a *paged* full
read stands for is undocumented. Here deletes made while the pages are read never show up in
any delta (the token's delete horizon is the last page's moment), so only the sweep after the
read can find them. Rows created or changed meanwhile do show up (their horizon is the first
page's moment): under a token that forgot those too, no design could find them short of
another full read, so the model does not ask for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import DeltaTokenExpiredError, TransientServiceError
from shared.sync.config import EntitySpec
from shared.sync.id_sets import GuidSet
from shared.sync.identity import SourceIdentity
from shared.sync.pipeline import ChangeBatch, SourceRecord
from tests.fakes.faults import checkpoint


def _failure(call: str) -> BaseException:
    return TransientServiceError(f"Dataverse did not answer {call}", system="dynamics")


@dataclass
class _Snapshot:
    rows: list[tuple[str, dict[str, Any]]]
    started_at: int
    """The organization's version when the read's first page was served."""


class FakeDynamics:
    """The Dynamics organization: tables of rows, a change log, tokens (one per read)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.changed_at: dict[str, dict[str, int]] = {}
        self.deleted_at: dict[str, dict[str, int]] = {}
        self.version = 0
        self._ids = itertools.count(1)
        self._snapshots: dict[int, _Snapshot] = {}
        self._snapshot_ids = itertools.count(1)
        self._token_epoch = 0
        self.reads = 0
        self.reported_deletes: set[str] = set()
        """Ids a delta read has reported deleted (the others only a sweep can find)."""

    # --- what users do in Dynamics ----------------------------------------------------------

    def new_id(self) -> str:
        return f"00000000-0000-0000-0000-{next(self._ids):012d}"

    def upsert(self, entity_set: str, record_id: str, values: dict[str, Any], key: str) -> None:
        """Create or change a row (its version moves on)."""
        self.version += 1
        table = self.rows.setdefault(entity_set, {})
        row = {**table.get(record_id, {}), **values, key: record_id, "versionnumber": self.version}
        table[record_id] = row
        self.changed_at.setdefault(entity_set, {})[record_id] = self.version

    def delete(self, entity_set: str, record_id: str) -> None:
        self.version += 1
        self.rows.get(entity_set, {}).pop(record_id, None)
        self.deleted_at.setdefault(entity_set, {})[record_id] = self.version

    def expire_tokens(self) -> None:
        """Every delta token issued so far is now too old (0x80044352 from now on)."""
        self._token_epoch += 1

    def live(self, entity_set: str) -> dict[str, dict[str, Any]]:
        return self.rows.get(entity_set, {})

    # --- the reader (ChangeReader) ----------------------------------------------------------

    async def read(self, spec: EntitySpec, cursor: str | None, page_size: int) -> ChangeBatch:
        return checkpoint(
            f"dynamics.read({spec.entity_set})",
            lambda: self._read(spec, cursor, page_size),
            _failure,
        )

    def _read(self, spec: EntitySpec, cursor: str | None, page_size: int) -> ChangeBatch:
        self.reads += 1
        table = spec.entity_set
        if cursor is None:
            snapshot_id = next(self._snapshot_ids)
            current = self.live(table)
            self._snapshots[snapshot_id] = _Snapshot(
                [(i, dict(current[i])) for i in sorted(current)], self.version
            )
            cursor = f"page:{snapshot_id}:0"
        kind, *parts = cursor.split(":")
        if kind == "page":
            snapshot = self._snapshots[int(parts[0])]
            start = int(parts[1])
            chunk = snapshot.rows[start : start + page_size]
            records = [SourceRecord(i, dict(row), str(row["versionnumber"])) for i, row in chunk]
            if start + page_size < len(snapshot.rows):
                return ChangeBatch(records, [], f"page:{parts[0]}:{start + page_size}", False)
            # The unfavourable moment for deletes: the last page's (module docstring).
            token = self._token(snapshot.started_at, self.version)
            return ChangeBatch(records, [], token, True)
        if kind != "delta":
            raise ValueError(f"not a cursor of this fake: {cursor}")
        changes_after, deletes_after, epoch = (int(p) for p in parts)
        if epoch != self._token_epoch:
            raise DeltaTokenExpiredError(
                "Dataverse refused the delta token: it is older than the organization keeps "
                "changes (0x80044352)",
                system="dynamics",
                code="0x80044352",
            )
        live = self.live(table)
        changed = [
            i
            for i, at in self.changed_at.get(table, {}).items()
            if at > changes_after and i in live
        ]
        deleted = [i for i, at in self.deleted_at.get(table, {}).items() if at > deletes_after]
        records = [
            SourceRecord(i, dict(live[i]), str(live[i]["versionnumber"])) for i in sorted(changed)
        ]
        self.reported_deletes.update(deleted)
        return ChangeBatch(records, sorted(deleted), self._token(self.version, self.version), True)

    def _token(self, changes_after: int, deletes_after: int) -> str:
        return f"delta:{changes_after}:{deletes_after}:{self._token_epoch}"

    async def fetch(self, spec: EntitySpec, ids: Sequence[str]) -> list[SourceRecord]:
        def fetch() -> list[SourceRecord]:
            live = self.live(spec.entity_set)
            return [
                SourceRecord(i, dict(live[i]), str(live[i]["versionnumber"]))
                for i in ids
                if i in live
            ]

        return checkpoint(f"dynamics.fetch({spec.entity_set})", fetch, _failure)

    async def exists(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, bool]:
        def exists() -> dict[str, bool]:
            live = self.live(spec.entity_set)
            return {i.lower(): True for i in ids if i.lower() in live}

        return checkpoint(f"dynamics.exists({spec.entity_set})", exists, _failure)

    async def live_ids(self, spec: EntitySpec) -> GuidSet:
        """Every id the table holds now (the sweep's ids-only read)."""
        return checkpoint(
            f"dynamics.live_ids({spec.entity_set})",
            lambda: GuidSet(self.live(spec.entity_set)),
            _failure,
        )

    async def count(self, spec: EntitySpec) -> int:
        return checkpoint(
            f"dynamics.count({spec.entity_set})",
            lambda: len(self.live(spec.entity_set)),
            _failure,
        )

    async def reference_table(
        self, table_name: str, entity_set: str, key: str, value: str
    ) -> dict[str, Any]:
        return {}

    async def identity(self) -> SourceIdentity:
        return SourceIdentity(
            organization_id="00000000-0000-0000-0000-00000000000a",
            organization_name="model",
            organization_created_on=None,
            user_id="00000000-0000-0000-0000-00000000000b",
        )
