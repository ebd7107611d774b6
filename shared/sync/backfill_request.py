"""An operator's back-fill of one field: checked against the mapping, recorded, first job sent.

The field is named by its Dynamics column or by its Marketo field; it must be a plain mapped
field that this direction writes (a link or lookup is not one field). The request replaces a
finished one; an open one is left running unless ``restart`` (its progress is then lost, which
is harmless: each step is a same-value update).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.errors import ConfigurationError
from shared.jobs import Direction
from shared.state.backfills import Backfill
from shared.state.store import StateStore
from shared.state.streams import StreamId
from shared.sync.backfill_jobs import backfill_job
from shared.sync.blocking import blocking
from shared.sync.config import EntitySpec, SyncConfig
from shared.sync.job_queue import JobQueue


@dataclass(frozen=True)
class BackfillRequested:
    """The stored request and whether it is a new one."""

    backfill: Backfill
    started: bool
    marketo_field: str


def resolve_field(config: SyncConfig, entity: str, name: str) -> tuple[str, str]:
    """``(Dynamics column, Marketo field)`` of a mapped field named either way.

    Raises:
        ConfigurationError: the entity or field is not one the sync sends to Marketo.
    """
    spec: EntitySpec | None = config.entity.get(entity)
    if spec is None:
        raise ConfigurationError(
            f"entity {entity!r} is not in the mapping (synced: {', '.join(config.order)})"
        )
    fields = spec.fields_to_marketo()
    if name in fields:
        return name, fields[name].to
    by_marketo = [column for column, field in fields.items() if field.to == name]
    if len(by_marketo) == 1:
        return by_marketo[0], name
    known = ", ".join(f"{c} → {f.to}" for c, f in fields.items())
    raise ConfigurationError(
        f"{name!r} is not a field entity {entity!r} sends to Marketo (its fields: {known})"
    )


async def request_backfill(
    store: StateStore,
    queue: JobQueue,
    config: SyncConfig,
    stream: StreamId,
    field: str,
    *,
    include_empty: bool = False,
    modified_since: datetime | None = None,
    restart: bool = False,
) -> BackfillRequested:
    """Record the request and send its first job (see the module docstring)."""
    if stream.direction is not Direction.DYNAMICS_TO_MARKETO:
        raise ConfigurationError("back-fill sends Dynamics values to Marketo (direction d2m)")
    column, marketo_field = resolve_field(config, stream.entity, field)
    current = await blocking(store.backfills.get, stream)
    if current is not None and current.open and not restart:
        return BackfillRequested(current, False, marketo_field)
    request = Backfill(
        stream=stream,
        column=column,
        include_empty=include_empty,
        modified_since=modified_since,
    )
    stored = await blocking(store.backfills.request, request)
    await queue.enqueue(backfill_job(stream, stored))
    return BackfillRequested(stored, True, marketo_field)
