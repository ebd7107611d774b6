"""Reconciliation: compare what Dynamics holds with what Marketo holds, through the real APIs.

For every configured entity, in dependency order:

* **in Dynamics**: rows of the table (plain paged reads, no change tracking);
* **expected in Marketo**: rows in scope that the sync filter lets through, transformed with the
  same mapping the sync uses (links resolve to what this reconciliation found in Marketo);
* **found in Marketo**: expected rows present in Marketo under their key (queried by the key
  field, 300 keys a call; opportunity roles by their compound key);
* **mismatched fields**: found records whose mapped fields differ (after normalising numbers,
  booleans, dates and empty values);
* **sync errors**: the open sync errors of the entity (and records waiting for a dependency);
* **deletes**: records the ID mapping marks deleted in Dynamics must carry the deleted mark;
* **duplicates**: a key that more than one Marketo record answers to.

The reconciliation holds when, for every entity, each expected record is found or has an open
sync error, no found record is mismatched, no Marketo key is duplicated, and every delete is
marked. It reads, never writes. Field values are not reported (they may be personal data);
field names and record ids are.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.dynamics.client import DynamicsClient
from shared.marketo.client import MarketoClient
from shared.state.store import StateStore
from shared.state.sync_errors import PENDING_CODE
from shared.sync.config import EntitySpec, LinkSpec, SyncConfig, TargetKind
from shared.sync.d2m.reader import DataverseChangeReader
from shared.sync.d2m.writer import MarketoRecordWriter
from shared.sync.transform import UNMARKABLE, Decision, LinkState, RowTransformer
from shared.sync.values import normalise, same_value


@dataclass
class EntityReconciliation:
    """The comparison for one entity."""

    entity: str
    in_dynamics: int = 0
    expected: int = 0
    found: int = 0
    missing: list[str] = field(default_factory=list)
    """Expected ids not in Marketo and without an open sync error."""
    errored: list[str] = field(default_factory=list)
    """Expected ids not in Marketo, with an open sync error (the error explains them)."""
    pending: list[str] = field(default_factory=list)
    """Ids waiting for a dependency."""
    mismatched: dict[str, list[str]] = field(default_factory=dict)
    """Dynamics id → names of the fields that differ."""
    duplicates: list[str] = field(default_factory=list)
    deleted: int = 0
    deleted_unmarked: list[str] = field(default_factory=list)
    error_codes: dict[str, int] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """Nothing lost, doubled or corrupted beyond what sync errors explain."""
        return not (self.missing or self.mismatched or self.duplicates or self.deleted_unmarked)


@dataclass
class ReconciliationReport:
    """Every entity's comparison, in dependency order."""

    entities: list[EntityReconciliation]

    @property
    def holds(self) -> bool:
        """True when every entity holds."""
        return all(e.holds for e in self.entities)

    def table(self) -> str:
        """A fixed-width text table for terminals."""
        header = (
            f"{'entity':<22}{'dynamics':>9}{'expected':>9}{'found':>8}{'missing':>8}"
            f"{'mismatch':>9}{'dupes':>6}{'deleted':>8}{'errors':>7}{'pending':>8}  result"
        )
        lines = [header, "-" * len(header)]
        for e in self.entities:
            lines.append(
                f"{e.entity:<22}{e.in_dynamics:>9}{e.expected:>9}{e.found:>8}{len(e.missing):>8}"
                f"{len(e.mismatched):>9}{len(e.duplicates):>6}{e.deleted:>8}"
                f"{len(e.errored):>7}{len(e.pending):>8}  {'ok' if e.holds else 'FAILED'}"
            )
        return "\n".join(lines)


def differing_fields(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Names of the expected fields whose values differ in ``actual``."""
    return [
        name
        for name, value in expected.items()
        if (name in actual or value is not None) and not same_value(value, actual.get(name))
    ]


class Reconciler:
    """Runs a reconciliation of one instance."""

    def __init__(
        self,
        config: SyncConfig,
        dynamics: DynamicsClient,
        marketo: MarketoClient,
        store: StateStore,
        instance_id: str,
    ) -> None:
        self.config = config
        self.dynamics = dynamics
        self.marketo = marketo
        self.store = store
        self.instance_id = instance_id
        self._target = MarketoRecordWriter(marketo)
        self._source = DataverseChangeReader(dynamics)
        self._found: dict[str, dict[str, dict[str, Any]]] = {}
        """entity → Dynamics id → the Marketo record found for it."""

    async def run(self) -> ReconciliationReport:
        """Reconcile every entity, dependencies first."""
        errors = await asyncio.to_thread(self.store.errors.list, self.instance_id)
        open_errors: dict[str, dict[str, str]] = defaultdict(dict)
        for error in errors:
            if not error.resolved and error.dynamics_id:
                open_errors[error.stream.entity][error.dynamics_id.lower()] = error.code
        return ReconciliationReport(
            [await self._entity(name, open_errors.get(name, {})) for name in self.config.order]
        )

    async def _entity(self, name: str, errors: Mapping[str, str]) -> EntityReconciliation:
        spec = self.config.entity[name]
        result = EntityReconciliation(name)
        rows = await self._source.all_rows(spec)
        result.in_dynamics = len(rows)
        transformer = RowTransformer(self.config, name, await self._lookup_tables(spec))
        expected: dict[str, dict[str, Any]] = {}
        for row in rows:
            prepared = transformer.prepare(row, self._resolve)
            if prepared.decision is Decision.SYNC:
                expected[prepared.dynamics_id.lower()] = prepared.payload
            elif prepared.decision is Decision.HELD:
                expected[prepared.dynamics_id.lower()] = {}
        result.expected = len(expected)
        found, duplicates = await self._marketo_records(spec, expected)
        self._found[name] = found
        result.duplicates = sorted(duplicates)
        for dynamics_id, payload in expected.items():
            record = found.get(dynamics_id)
            code = errors.get(dynamics_id)
            if record is None:
                if code == PENDING_CODE:
                    result.pending.append(dynamics_id)
                elif code is not None:
                    result.errored.append(dynamics_id)
                else:
                    result.missing.append(dynamics_id)
                continue
            result.found += 1
            if code is not None and code != PENDING_CODE:
                continue  # the error explains a stale copy (e.g. a rejected update)
            diff = differing_fields(payload, record)
            if diff and code == PENDING_CODE:
                continue
            if diff:
                result.mismatched[dynamics_id] = diff
        for code in errors.values():
            result.error_codes[code] = result.error_codes.get(code, 0) + 1
        await self._check_deletes(spec, name, result)
        return result

    async def _lookup_tables(self, spec: EntitySpec) -> dict[str, dict[str, Any]]:
        return {
            lookup.entity_set: await self._source.reference_table(
                lookup.table, lookup.entity_set, lookup.key, lookup.field
            )
            for lookup in spec.lookups.values()
        }

    def _resolve(self, link: LinkSpec, target: str) -> tuple[LinkState, str | None]:
        for entity in link.entities:
            record = self._found.get(entity, {}).get(target.lower())
            if record is not None:
                if link.value == "marketo_id":
                    return LinkState.SYNCED, str(record.get("id") or record.get("marketoGUID"))
                return LinkState.SYNCED, target
        return LinkState.ABSENT, None

    async def _marketo_records(
        self, spec: EntitySpec, expected: Mapping[str, Mapping[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        fields = sorted(
            {name for payload in expected.values() for name in payload}
            | ({"id"} if spec.target is TargetKind.LEAD else set())
            | ({spec.key_field} if spec.key_field else set())
        )
        if spec.target is TargetKind.OPPORTUNITY_ROLE:
            return await self._roles(expected, fields)
        assert spec.key_field is not None
        keys = list(expected)
        if spec.target is TargetKind.LEAD:
            records = await self.marketo.leads.get_by_filter(spec.key_field, keys, fields=fields)
        else:
            api = self._target.objects_api(spec)
            records = await api.query(spec.key_field, keys, fields=fields)
        return _index(records, spec.key_field)

    async def _roles(
        self, expected: Mapping[str, Mapping[str, Any]], fields: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        keys = {
            dynamics_id: {k: payload.get(k) for k in ("externalOpportunityId", "leadId", "role")}
            for dynamics_id, payload in expected.items()
            if payload
        }
        records = await self.marketo.opportunity_roles.query_by_keys(
            list(keys.values()), fields=[*fields, "marketoGUID"]
        )
        by_key: dict[tuple[str | None, ...], list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            by_key[_role_key(record)].append(record)
        found: dict[str, dict[str, Any]] = {}
        duplicates: set[str] = set()
        for dynamics_id, key in keys.items():
            matches = by_key.get(_role_key(key), [])
            if matches:
                found[dynamics_id] = matches[0]
            if len(matches) > 1:
                duplicates.add(dynamics_id)
        return found, duplicates

    async def _check_deletes(
        self, spec: EntitySpec, name: str, result: EntityReconciliation
    ) -> None:
        mappings = await asyncio.to_thread(self.store.mappings.list_entity, self.instance_id, name)
        deleted = [m for m in mappings if m.deleted_in_dynamics]
        result.deleted = len(deleted)
        marker = (
            self.config.person.is_deleted
            if spec.target is TargetKind.LEAD
            else self.config.objects.is_deleted
        )
        if not deleted or marker is None or spec.target in UNMARKABLE:
            return
        assert spec.key_field is not None
        ids = [m.dynamics_id for m in deleted]
        if spec.target is TargetKind.LEAD:
            records = await self.marketo.leads.get_by_filter(
                spec.key_field, ids, fields=[spec.key_field, marker]
            )
        else:
            records = await self._target.objects_api(spec).query(
                spec.key_field, ids, fields=[spec.key_field, marker]
            )
        marked = {
            str(r.get(spec.key_field, "")).lower()
            for r in records
            if normalise(r.get(marker)) == "true"
        }
        result.deleted_unmarked = sorted(set(ids) - marked)


def _role_key(record: Mapping[str, Any]) -> tuple[str | None, ...]:
    return tuple(
        normalise(record.get(k)) if k != "role" else str(record.get(k) or "").lower() or None
        for k in ("externalOpportunityId", "leadId", "role")
    )


def _index(
    records: Iterable[Mapping[str, Any]], key_field: str
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    found: dict[str, dict[str, Any]] = {}
    duplicates: set[str] = set()
    for record in records:
        key = str(record.get(key_field) or "").lower()
        if not key:
            continue
        if key in found:
            duplicates.add(key)
        found[key] = dict(record)
    return found, duplicates
