"""Turn one Dynamics row into the Marketo record it should become: pure, per record, hot path.

The engine prefetches what the transform needs to know about other records (which link targets
are in Marketo already, names from reference tables) and passes it in, so this module does no
I/O and is tested exhaustively on plain dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.sync.config import (
    SYNC_FILTER_COLUMN,
    EntitySpec,
    FieldSpec,
    LinkSpec,
    SyncConfig,
    TargetKind,
)

MODIFIED_ON = "modifiedon"
"""Dataverse's row change time, read for entities that use ``latest_wins``."""

UNMARKABLE = frozenset({TargetKind.OPPORTUNITY_ROLE, TargetKind.SALES_PERSON})
"""Marketo objects without a "deleted in Dynamics" field: a delete leaves them as they are."""


class Decision(Enum):
    """What to do with a row."""

    SYNC = "sync"
    """Write it to Marketo."""
    FILTERED_OUT = "filtered_out"
    """``new_synctomkto`` is No: not synced; an existing Marketo record is left as it is."""
    OUT_OF_SCOPE = "out_of_scope"
    """The entity's ``where`` does not match (e.g. a connection that is not an opportunity role)."""
    HELD = "held"
    """A required link target is not in Marketo yet; try again on a later run."""


class LinkState(Enum):
    """What is known about one link target."""

    SYNCED = "synced"
    PENDING = "pending"
    """It is one of the link's entities but has not reached Marketo yet."""
    ABSENT = "absent"
    """Not a record of the link's entities (or filtered out of the sync): no link."""


LinkResolver = Callable[[LinkSpec, str], tuple[LinkState, str | None]]
"""``(link, dynamics_id) -> (state, value)``; value is the id to write when SYNCED."""


@dataclass(slots=True)
class Prepared:
    """The outcome of transforming one row."""

    dynamics_id: str
    decision: Decision
    payload: dict[str, Any] = field(default_factory=dict)
    pending_links: tuple[str, ...] = ()
    """Optional links left out because their targets are not synced yet (re-sent later)."""
    digest: str = ""
    """A hash of ``payload``: equal digests mean an identical write (skip it)."""
    changed_at: Any = None
    """The row's ``modifiedon`` when it was read (for the ``latest_wins`` rule)."""


def sync_filter_allows(row: Mapping[str, Any]) -> bool:
    """Reference A.4: only an explicit No (false) keeps a record out; missing/empty/Yes sync."""
    value = row.get(SYNC_FILTER_COLUMN)
    return value is not False and value != 0 and value != "0" and value != "false"


def payload_digest(payload: Mapping[str, Any]) -> str:
    """A stable hash of a payload built in spec order (insertion order is deterministic)."""
    text = json.dumps(payload, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _convert(value: Any, spec: FieldSpec) -> Any:
    if spec.values is None or value is None:
        return value
    key = str(value).lower() if isinstance(value, bool) else str(value)
    return spec.values.get(key, value)


def marketo_value(value: Any, spec: FieldSpec) -> Any:
    """A Dynamics value as the mapping sends it to Marketo (option labels translated)."""
    return _convert(value, spec)


class RowTransformer:
    """Prepared per entity once; ``prepare`` is then called for every row."""

    def __init__(
        self,
        config: SyncConfig,
        entity_name: str,
        lookup_tables: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.spec: EntitySpec = config.entity[entity_name]
        self._fields = tuple(self.spec.fields_to_marketo().items())
        self._plain = all(spec.values is None for _, spec in self._fields)
        self._lookups = tuple(self.spec.lookups.values())
        self._lookup_tables = {
            name: {str(k).lower(): v for k, v in table.items()}
            for name, table in (lookup_tables or {}).items()
        }
        self._links = tuple(self.spec.links.items())
        self._where = tuple(self.spec.where.items())
        extra: dict[str, Any] = dict(self.spec.constants)
        if self.spec.person_type is not None:
            extra[config.person.dynamics_type] = self.spec.person_type
            extra[config.person.is_deleted] = False
        self._extra = tuple(extra.items())
        self._deleted_field = (
            config.person.is_deleted if self.spec.person_type else config.objects.is_deleted
        )

    def prepare(self, row: Mapping[str, Any], resolve: LinkResolver) -> Prepared:
        """Decide about ``row`` and, when it syncs, build its Marketo payload."""
        spec = self.spec
        dynamics_id = str(row[spec.primary_key])
        for column, expected in self._where:
            if row.get(column) != expected:
                return Prepared(dynamics_id, Decision.OUT_OF_SCOPE)
        if spec.sync_filter and not sync_filter_allows(row):
            return Prepared(dynamics_id, Decision.FILTERED_OUT)

        payload: dict[str, Any] = {spec.key_field: dynamics_id} if spec.key_field else {}
        if self._plain:
            for column, field_spec in self._fields:
                payload[field_spec.to] = row.get(column)
        else:
            for column, field_spec in self._fields:
                payload[field_spec.to] = _convert(row.get(column), field_spec)
        for lookup in self._lookups:
            key = row.get(lookup.column)
            table = self._lookup_tables.get(lookup.entity_set, {})
            payload[lookup.to] = table.get(str(key).lower()) if key is not None else None
        for name, value in self._extra:
            payload[name] = value

        pending: list[str] = []
        for link_name, link in self._links:
            state, value = self._resolve_link(row, link, resolve)
            if state is LinkState.SYNCED:
                payload[link.to] = value
                for provided in link.replaces:
                    payload.pop(provided, None)
            elif state is LinkState.PENDING:
                if link.required:
                    return Prepared(dynamics_id, Decision.HELD, pending_links=(link_name,))
                pending.append(link_name)
            elif link.required:
                # A required link with no target at all (e.g. a role without its contact):
                # nothing to write in Marketo for this row.
                return Prepared(dynamics_id, Decision.OUT_OF_SCOPE)
            else:
                payload[link.to] = None
        return Prepared(
            dynamics_id,
            Decision.SYNC,
            payload=payload,
            pending_links=tuple(pending),
            digest=payload_digest(payload),
            changed_at=row.get(MODIFIED_ON),
        )

    @staticmethod
    def _resolve_link(
        row: Mapping[str, Any], link: LinkSpec, resolve: LinkResolver
    ) -> tuple[LinkState, str | None]:
        best: tuple[LinkState, str | None] = (LinkState.ABSENT, None)
        for column in link.columns:
            target = row.get(column)
            if not target:
                continue
            state, value = resolve(link, str(target))
            if state is LinkState.SYNCED:
                return state, value
            if state is LinkState.PENDING:
                best = (state, None)
        return best

    def deleted_payload(self, dynamics_id: str) -> dict[str, Any] | None:
        """The update that marks the Marketo record "deleted in Dynamics" (reference A.5).

        ``None`` when the target object has no such field (the record is then left as it is).
        """
        if self._deleted_field is None or self.spec.target in UNMARKABLE:
            return None
        mark: dict[str, Any] = {self._deleted_field: True}
        if self.spec.key_field:
            mark = {self.spec.key_field: dynamics_id, **mark}
        return mark
